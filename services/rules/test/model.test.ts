import { describe, expect, it } from "vitest";
import { Action, Direction, Rule } from "@vigil/proto";
import { canonicalRule, fnv53, hostAddress, hostCidrOf, hostRuleId } from "../src/model.js";

describe("host addresses and their rule ids", () => {
  it("derives the id of a host block rule from the address alone, equal to the canonical rule's", () => {
    for (const text of ["192.0.2.1", "10.255.0.7", "2001:db8::1", "2001:DB8:0:0::5", "::ffff:198.51.100.9", "fe80::1", "::"]) {
      const a = hostAddress(text);
      const canon = canonicalRule(Rule.fromPartial({ action: Action.ACTION_DROP, srcCidr: hostCidrOf(a), direction: Direction.DIRECTION_BOTH })).rule;
      expect(hostRuleId(a)).toBe(canon.id);
      expect(canon.srcCidr).toBe(hostCidrOf(a));
    }
  });

  it("parses once into bytes and canonical text, IPv4-mapped IPv6 as the IPv4 host", () => {
    expect(hostAddress("::ffff:192.0.2.66")).toEqual({ bytes: new Uint8Array([192, 0, 2, 66]), text: "192.0.2.66" });
    expect(hostAddress("2001:DB8:0::5").text).toBe("2001:db8::5");
    expect(() => hostAddress("not-an-address")).toThrow();
  });
});

/** FNV-1a, 64 bits, over UTF-16 code units, in BigInt arithmetic: the definition fnv53 computes in 16-bit limbs. */
function fnv1a64(key: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < key.length; i++) h = ((h ^ BigInt(key.charCodeAt(i))) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}

describe("rule ids", () => {
  it("are the low 53 bits of the 64-bit FNV-1a of the key (ids in stores stay valid)", () => {
    const keys = ["", "a", "1|10.0.0.1/32||0|0|0|3", "2|2001:db8::/32|2001:db8::1/128|6|22|22|1", "\u00e9\u4e2d\ud83d\ude00\ud800", "x".repeat(300)];
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 2000; n++) {
      let s = "";
      const len = Math.floor(random() * 64);
      for (let i = 0; i < len; i++) s += String.fromCharCode(random() < 0.9 ? 32 + Math.floor(random() * 95) : Math.floor(random() * 0x10000));
      keys.push(s);
    }
    for (const key of keys) {
      const low = Number(fnv1a64(key) & (2n ** 53n - 1n));
      expect(fnv53(key)).toBe(low === 0 ? 1 : low);
    }
  });
});
