import { describe, expect, it } from "vitest";
import { ruleKey, ruleKeyId } from "../src/rule-key.js";

describe("the key of a rule's record", () => {
  it("reads back the id of every key ruleKey writes", () => {
    for (const id of [0, 1, 9, 10, 4096, 2 ** 31, 2 ** 32 + 5, 123456789012345, Number.MAX_SAFE_INTEGER]) expect(ruleKeyId(ruleKey(id))).toBe(id);
    let id = 1;
    for (let i = 0; i < 1000; i++) {
      id = (id * 48271 + i) % Number.MAX_SAFE_INTEGER;
      expect(ruleKeyId(ruleKey(id))).toBe(id);
    }
  });

  it("names no id for any other text, so that a record under such a key is never taken for the rule's", () => {
    const others = ["rule.", "rule", "rule.007", "rule.00", "rule.-1", "rule.+1", "rule.1e3", "rule. 7", "rule.7 ", "rule.0x10", "rule.1.5", "rule.NaN",
      "rule.9007199254740992", "rule.12345678901234567", "rule.99999999999999999999999", "offence.10.0.0.1", "Rule.7", "xrule.7", "warmup.start"];
    for (const key of others) expect(ruleKeyId(key), key).toBeNaN();
  });
});
