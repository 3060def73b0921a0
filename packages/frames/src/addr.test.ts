import { describe, expect, it } from "vitest";
import { AddressError, FAMILY_IPV4, FAMILY_IPV6, formatAddress, formatAddressWords, parseAddress } from "./index.js";

/** The address as big-endian 32-bit words, the form the detectors keep. */
function words(text: string): Uint32Array {
  const b = parseAddress(text);
  const w = new Uint32Array(4);
  for (let i = 0; i < b.length; i += 4) w[i / 4] = ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  return w;
}

describe("formatAddressWords", () => {
  it("writes IPv4 as a dotted quad", () => {
    expect(formatAddressWords(words("192.0.2.53"), 0, FAMILY_IPV4)).toBe("192.0.2.53");
    expect(formatAddressWords(words("255.255.255.255"), 0, FAMILY_IPV4)).toBe("255.255.255.255");
    expect(formatAddressWords(words("0.0.0.0"), 0, FAMILY_IPV4)).toBe("0.0.0.0");
  });

  it("follows RFC 5952 for IPv6", () => {
    const cases: Array<[string, string]> = [
      ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"], // 4.1 leading zeros, 4.2.1 longest run
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // 4.2.2 a single zero group is not compressed
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // 4.2.3 equal runs: the first
      ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // 4.2.3 the longest run wins
      ["2001:DB8::ABCD", "2001:db8::abcd"], // 4.3 lower case
      ["::", "::"],
      ["::1", "::1"],
      ["fe80::", "fe80::"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ];
    for (const [input, text] of cases) expect(formatAddressWords(words(input), 0, FAMILY_IPV6), input).toBe(text);
  });

  it("writes an IPv4-mapped IPv6 address with a dotted quad (RFC 5952 section 5)", () => {
    expect(formatAddressWords(words("::ffff:192.0.2.1"), 0, FAMILY_IPV6)).toBe("::ffff:192.0.2.1");
    expect(formatAddressWords(words("::ffff:c000:201"), 0, FAMILY_IPV6)).toBe("::ffff:192.0.2.1");
    // Only the mapped prefix: other embeddings stay hex.
    expect(formatAddressWords(words("64:ff9b::c000:201"), 0, FAMILY_IPV6)).toBe("64:ff9b::c000:201");
  });

  it("reads from an offset into a larger array, and agrees with formatAddress", () => {
    const table = new Uint32Array(12);
    table.set(words("2001:db8::7"), 4);
    expect(formatAddressWords(table, 4, FAMILY_IPV6)).toBe("2001:db8::7");
    for (const text of ["2001:db8::7", "::ffff:10.0.0.1", "10.1.2.3", "::2:0:0:0:3"]) {
      const b = parseAddress(text);
      const fam = b.length === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
      expect(formatAddressWords(words(text), 0, fam)).toBe(formatAddress(b, 0, b.length));
    }
  });

  it("names an unknown family", () => {
    expect(() => formatAddressWords(new Uint32Array(4), 0, 5)).toThrow(AddressError);
    expect(() => formatAddressWords(new Uint32Array(4), 0, 5)).toThrow(/family 5/);
  });
});
