import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Action, Rule } from "@vigil/proto";
import { disposeNatsServer, startNatsServer, toolMissing, waitFor, type NatsServerHandle } from "@vigil/testing";
import { applyWrite, mergeWrites, type RecordWrite } from "../src/rule-record.js";
import type { HistoryEntry } from "../src/store.js";
import { publishVerdict, startService, verdict } from "./support/rules.js";

// The table holds a rule and its evidence only; the record in the store holds its history and verdicts,
// and a change of the rule is written as what the record gains.

const rule = Rule.fromPartial({ id: 7, action: Action.ACTION_DROP, srcCidr: "192.0.2.7/32" });
const h = (why: string): HistoryEntry => ({ ts: 1, event: "updated", by: "test", why });

describe("a rule's record written as what it gains", () => {
  const v1 = verdict("192.0.2.7");
  const v2 = verdict("192.0.2.7");
  const v3 = verdict("192.0.2.7");
  const stored = { rule, history: [h("added")], verdicts: [v1] };

  it("keeps the stored history and the verdicts the evidence keeps, and adds the new ones", () => {
    const w: RecordWrite = { rule, history: [h("second")], verdicts: [v2], keep: [v1.id, v2.id], whole: false };
    const out = applyWrite(stored, w);
    expect(out.history.map((x) => x.why)).toEqual(["added", "second"]);
    expect(out.verdicts.map((v) => v.id)).toEqual([v1.id, v2.id]);
    // A verdict the evidence no longer keeps leaves the record.
    expect(applyWrite(stored, { ...w, keep: [v2.id] }).verdicts.map((v) => v.id)).toEqual([v2.id]);
    // A new record carries nothing stored before.
    expect(applyWrite(stored, { ...w, whole: true })).toEqual({ rule, history: [h("second")], verdicts: [v2] });
  });

  it("merges two queued writes of a record into one that adds both", () => {
    const a: RecordWrite = { rule, history: [h("a")], verdicts: [v2], keep: [v1.id, v2.id], whole: false };
    const b: RecordWrite = { rule: { ...rule, enforced: true }, history: [h("b")], verdicts: [v3], keep: [v2.id, v3.id], whole: false };
    const m = mergeWrites(a, b);
    expect(m.rule.enforced).toBe(true);
    expect(applyWrite(stored, m)).toEqual({ rule: m.rule, history: [h("added"), h("a"), h("b")], verdicts: [v2, v3] });
    // After a new record, the merge is still a new record; a newer new record replaces what came before it.
    expect(mergeWrites({ ...a, whole: true }, b).whole).toBe(true);
    expect(mergeWrites(a, { ...b, whole: true })).toEqual({ ...b, whole: true });
  });
});

const skip = toolMissing("nats-server");

describe.skipIf(skip)("rules loaded from the store without their records", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
  });
  afterAll(async () => {
    if (nats) await disposeNatsServer(nats);
  });

  it("keep their stored history and verdicts when they change, and a false alarm still finds an old verdict", async () => {
    const cfg = { bucket: "record_after_restart", dryRun: true };
    const first = verdict("192.0.2.70", { handshakes: 1, firstTs: 1_700_000_100, lastTs: 1_700_000_200 });
    let r = await startService(nats.url, cfg);
    let id: number;
    try {
      publishVerdict(r.nc, first);
      id = (await waitFor("the block", () => r.svc.listRules({ address: "192.0.2.70" })[0] ?? null, 5000)).id;
      await waitFor("stored", () => r.svc.storeBacklog === 0 || null, 5000);
    } finally {
      await r.stop();
    }
    r = await startService(nats.url, cfg);
    try {
      expect(r.svc.rules.get(id)!.evidence.map((e) => e.id)).toEqual([first.id]);
      // Evidence from before the block: kept with the rule (not seen while blocked).
      const second = verdict("192.0.2.70", { handshakes: 1, firstTs: 1_700_000_150, lastTs: 1_700_000_250 });
      publishVerdict(r.nc, second);
      await waitFor("attached", () => (r.svc.rules.get(id)!.evidence.length === 2 ? true : null), 5000);
      await r.svc.extendRule({ id, ttlS: 7 * 86_400, by: "test", sessions: [], force: false });
      const pending = await r.svc.ruleRecord(id);
      await waitFor("stored", () => r.svc.storeBacklog === 0 || null, 5000);
      const record = await r.svc.ruleRecord(id);
      expect(record).toEqual(pending);
      expect(record!.verdicts.map((v) => v.id)).toEqual([first.id, second.id]);
      expect(record!.verdicts[0]).toEqual(first);
      expect(record!.history.map((x) => x.event)).toEqual(["added", "updated"]);
      expect(record!.history[1].why).toMatch(/^extended: expires /);
      expect(record!.rule.verdictIds).toEqual([first.id, second.id]);
    } finally {
      await r.stop();
    }
    r = await startService(nats.url, cfg);
    try {
      // Read back from the bucket by a store that never wrote it, and checked as any record loaded.
      expect((await r.svc.ruleRecord(id))!.history.map((x) => x.event)).toEqual(["added", "updated"]);
      // The first verdict is in no verdict log now: only the rule's record has it.
      expect(r.svc.listVerdicts({})).toEqual([]);
      const fa = await r.svc.markFalseAlarm(first.id, 0, "", "test");
      expect(fa.removed).toEqual([id]);
      const allow = await r.svc.ruleRecord(fa.allowRuleId);
      expect(allow!.verdicts).toEqual([first]);
    } finally {
      await r.stop();
    }
  }, 60_000);
});
