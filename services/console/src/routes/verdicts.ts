import type { FastifyPluginAsync } from "fastify";
import { VerdictRecord } from "@vigil/proto";
import { httpError, type ConsoleContext } from "../http.js";
import type { LiveVerdict } from "../live.js";

interface VerdictQuery {
  detector?: string;
  address?: string;
  limit?: number;
}

/** Verdicts: the rules service's history merged with what this console saw on the bus; marking a false alarm. */
export const verdictRoutes: FastifyPluginAsync<ConsoleContext> = async (app, { live, rules }) => {
  const mergeVerdicts = async (q: VerdictQuery) => {
    const byId = new Map<string, { verdict: Record<string, unknown>; outcome: string; ruleId: number; receivedAt: number }>();
    const keep = (v: LiveVerdict) => {
      const verdict = v.verdict as Record<string, unknown>;
      if (q.detector && verdict.detector !== q.detector) return;
      if (q.address && verdict.address !== q.address) return;
      byId.set(String(verdict.id), { verdict, outcome: "", ruleId: 0, receivedAt: v.receivedAt });
    };
    live.verdicts.forEach(keep);
    let rulesError: string | null = null;
    try {
      const res = await rules.listVerdicts({ detector: q.detector ?? "", address: q.address ?? "", limit: q.limit ?? 500 });
      for (const rec of res.verdicts) {
        const json = VerdictRecord.toJSON(rec) as { verdict?: Record<string, unknown>; outcome?: string; ruleId?: number; receivedAt?: number };
        if (!json.verdict) continue;
        byId.set(String(json.verdict.id), { verdict: json.verdict, outcome: json.outcome ?? "", ruleId: json.ruleId ?? 0, receivedAt: json.receivedAt ?? 0 });
      }
    } catch (err) {
      rulesError = (err as Error).message;
    }
    const list = [...byId.values()].sort((a, b) => b.receivedAt - a.receivedAt).slice(0, q.limit ?? 500);
    return { verdicts: list, rulesError };
  };

  app.get<{ Querystring: VerdictQuery }>(
    "/api/verdicts",
    {
      schema: {
        querystring: {
          type: "object",
          properties: { detector: { type: "string", maxLength: 64 }, address: { type: "string", maxLength: 64 }, limit: { type: "integer", minimum: 1, maximum: 5000 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => mergeVerdicts(req.query),
  );

  app.get<{ Params: { id: string } }>("/api/verdicts/:id", async (req) => {
    const { verdicts } = await mergeVerdicts({ limit: 5000 });
    const found = verdicts.find((v) => v.verdict.id === req.params.id);
    if (!found) throw httpError(404, "VIGIL_ERR_NOT_FOUND", `no verdict ${req.params.id} in the rules service's history or this console's`);
    return found;
  });

  app.post<{ Params: { id: string }; Body: { comment?: string; allowTtlS?: number } }>(
    "/api/verdicts/:id/false-alarm",
    {
      schema: {
        body: {
          type: "object",
          properties: { comment: { type: "string", maxLength: 500 }, allowTtlS: { type: "integer", minimum: 0, maximum: 30 * 86400 } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const res = await rules.markFalseAlarm({ verdictId: req.params.id, allowTtlS: req.body?.allowTtlS ?? 0, comment: req.body?.comment ?? "via console" });
      return { removedRuleIds: res.removedRuleIds, allowRuleId: res.allowRuleId };
    },
  );
};
