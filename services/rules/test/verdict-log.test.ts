import { describe, expect, it } from "vitest";
import { VerdictLog } from "../src/verdict-log.js";
import { verdict } from "./support/rules.js";

const record = (i: number) => ({ verdict: verdict(`10.0.${(i >> 8) & 255}.${i & 255}`, { id: `v-${i}` }), outcome: "blocked", ruleId: 0, receivedAt: i });

describe("the verdict log", () => {
  it("keeps the last `size` verdicts, newest first, across many compactions, and forgets the index of dropped ones", () => {
    const log = new VerdictLog(100);
    for (let i = 0; i < 5000; i++) log.add(record(i), 10);
    const all = log.list({});
    expect(all).toHaveLength(100);
    expect(all[0].verdict!.id).toBe("v-4999");
    expect(all[99].verdict!.id).toBe("v-4900");
    expect(log.get("v-4899")).toBeUndefined();
    expect(log.get("v-4900")?.receivedAt).toBe(4900);
    expect(log.list({ since: 4990 })).toHaveLength(10);
    expect(log.list({ limit: 3 }).map((r) => r.receivedAt)).toEqual([4999, 4998, 4997]);
  });

  it("keeps within its byte budget, and always the newest verdict", () => {
    const log = new VerdictLog(10_000, 1000);
    for (let i = 0; i < 3000; i++) log.add(record(i), 100);
    expect(log.list({})).toHaveLength(10);
    log.add(record(3000), 5000);
    expect(log.list({}).map((r) => r.receivedAt)).toEqual([3000]);
  });
});
