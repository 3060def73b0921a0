import { createHash } from "node:crypto";
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";
import { codecs, subjects, type NatsConnection } from "@vigil/bus";
import {
  Action,
  ControlService,
  Direction,
  FeedbackKind,
  Origin,
  RuleEvent_Kind,
  type AddRuleRequest,
  type Rule,
  type VerdictRecord,
} from "@vigil/proto";

/**
 * A stand-in for the rules service's Control API, used by the console's browser
 * test only while services/rules is not built: real gRPC on a real socket, real
 * NATS messages, the documented semantics (a verdict above its threshold blocks
 * its address; MarkFalseAlarm removes the verdict's rules, adds a temporary
 * allow rule and publishes Feedback). It decides nothing like the real policy.
 */
export async function startControlStandIn(nc: NatsConnection, port = 0): Promise<{ address: string; rules: Map<number, Rule>; close(): Promise<void> }> {
  const rules = new Map<number, Rule>();
  const verdicts: VerdictRecord[] = [];
  const now = () => Date.now() / 1000;
  const ruleId = (r: Partial<Rule>) =>
    Number.parseInt(createHash("sha1").update(`${r.action}|${r.srcCidr}|${r.dstCidr}|${r.protocol}|${r.dportMin}|${r.dportMax}|${r.direction}`).digest("hex").slice(0, 12), 16);
  const publish = (kind: RuleEvent_Kind, rule: Rule) => nc.publish(subjects.ruleEvents, codecs.ruleEvent.encode({ kind, rule, ts: now(), by: "stand-in" }));
  const put = (partial: Partial<Rule>, ttlS: number): Rule => {
    const id = ruleId(partial);
    const existing = rules.get(id);
    const rule: Rule = {
      id, action: Action.ACTION_DROP, srcCidr: "", dstCidr: "", protocol: 0, dportMin: 0, dportMax: 0, direction: Direction.DIRECTION_BOTH,
      priority: 100, origin: Origin.ORIGIN_MANUAL, reason: "", detector: "", verdictIds: [], createdBy: "", createdAt: now(), expiresAt: 0,
      offences: 1, hits: 0, bytes: 0, enforced: false, decidedTs: 0, ...existing, ...partial,
    };
    rule.id = id;
    rule.expiresAt = ttlS ? now() + ttlS : 0;
    rules.set(id, rule);
    publish(existing ? RuleEvent_Kind.KIND_UPDATED : RuleEvent_Kind.KIND_ADDED, rule);
    return rule;
  };

  const sub = nc.subscribe(subjects.verdictsAll);
  void (async () => {
    for await (const m of sub) {
      const v = codecs.verdict.decode(m.data, m.subject);
      const rec: VerdictRecord = { verdict: v, outcome: "below-threshold", ruleId: 0, receivedAt: now() };
      if (v.aggregate) rec.outcome = "aggregate";
      else if (v.score >= v.threshold && v.address) {
        const rule = put({ srcCidr: `${v.address}/${v.address.includes(":") ? 128 : 32}`, origin: Origin.ORIGIN_DETECTOR, reason: v.summary || `${v.detector} verdict`, detector: v.detector, verdictIds: [v.id], decidedTs: v.lastTs }, 600);
        rec.outcome = "blocked";
        rec.ruleId = rule.id;
      }
      verdicts.push(rec);
    }
  })();

  type Call<Req> = ServerUnaryCall<Req, unknown>;
  const server = new Server();
  server.addService(ControlService, {
    listRules: (_c: Call<unknown>, cb: sendUnaryData<unknown>) => cb(null, { rules: [...rules.values()] }),
    addRule: (c: Call<AddRuleRequest>, cb: sendUnaryData<unknown>) => {
      const r = c.request.rule;
      if (!r?.srcCidr) return cb({ code: status.INVALID_ARGUMENT, details: "rule.src_cidr is required" });
      const { id: _id, ...rest } = r;
      cb(null, put(rest, c.request.ttlS));
    },
    extendRule: (c: Call<{ id: number; ttlS: number }>, cb: sendUnaryData<unknown>) => {
      const rule = rules.get(c.request.id);
      if (!rule) return cb({ code: status.NOT_FOUND, details: `no active rule ${c.request.id}` });
      rule.expiresAt = c.request.ttlS ? now() + c.request.ttlS : 0;
      publish(RuleEvent_Kind.KIND_UPDATED, rule);
      cb(null, rule);
    },
    deleteRule: (c: Call<{ id: number }>, cb: sendUnaryData<unknown>) => {
      const rule = rules.get(c.request.id);
      if (rule) {
        rules.delete(rule.id);
        publish(RuleEvent_Kind.KIND_REMOVED, rule);
      }
      cb(null, { deleted: !!rule });
    },
    listVerdicts: (_c: Call<unknown>, cb: sendUnaryData<unknown>) => cb(null, { verdicts }),
    markFalseAlarm: (c: Call<{ verdictId: string; allowTtlS: number }>, cb: sendUnaryData<unknown>) => {
      const rec = verdicts.find((r) => r.verdict?.id === c.request.verdictId);
      if (!rec?.verdict) return cb({ code: status.NOT_FOUND, details: `no verdict ${c.request.verdictId}` });
      const removed: number[] = [];
      for (const rule of [...rules.values()])
        if (rule.verdictIds.includes(rec.verdict.id)) {
          rules.delete(rule.id);
          removed.push(rule.id);
          publish(RuleEvent_Kind.KIND_REMOVED, rule);
        }
      const allow = put({ action: Action.ACTION_ACCEPT, srcCidr: `${rec.verdict.address}/32`, origin: Origin.ORIGIN_FEEDBACK, reason: `false alarm ${rec.verdict.id}`, priority: 10 }, c.request.allowTtlS || 3600);
      rec.outcome = "false-alarm";
      nc.publish(subjects.feedback, codecs.feedback.encode({ verdictId: rec.verdict.id, detector: rec.verdict.detector, kind: FeedbackKind.FEEDBACK_KIND_FALSE_ALARM, verdict: rec.verdict, by: "console", comment: "", ts: now() }));
      cb(null, { removedRuleIds: removed, allowRuleId: allow.id });
    },
    getStatus: (_c: Call<unknown>, cb: sendUnaryData<unknown>) => {
      const byOrigin: Record<string, number> = {};
      for (const r of rules.values()) byOrigin[Origin[r.origin]] = (byOrigin[Origin[r.origin]] ?? 0) + 1;
      cb(null, { enforcer: "dry-run", enforcerDetail: "test stand-in", dryRun: true, activeRules: rules.size, rulesByOrigin: byOrigin, detectors: [], version: "stand-in", startedAt: now() });
    },
    watchEvents: (call: { emit(e: string, err: unknown): void }) => call.emit("error", { code: status.UNIMPLEMENTED, details: "stand-in" }),
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${bound}`,
    rules,
    async close() {
      sub.unsubscribe();
      await new Promise<void>((r) => server.tryShutdown(() => r()));
    },
  };
}
