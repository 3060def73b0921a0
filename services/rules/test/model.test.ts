import { describe, expect, it } from "vitest";
import { Action, Direction, Rule } from "@vigil/proto";
import { canonicalRule, hostAddress, hostCidrOf, hostRuleId } from "../src/model.js";

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
