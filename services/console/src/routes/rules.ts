import type { FastifyPluginAsync } from "fastify";
import { Action, Direction, Origin, Rule } from "@vigil/proto";
import { httpError, type ConsoleContext } from "../http.js";

const ACTIONS: Record<string, Action> = { drop: Action.ACTION_DROP, accept: Action.ACTION_ACCEPT };
const DIRECTIONS: Record<string, Direction> = {
  both: Direction.DIRECTION_BOTH,
  ingress: Direction.DIRECTION_INGRESS,
  egress: Direction.DIRECTION_EGRESS,
};

interface RuleBody {
  srcCidr: string;
  dstCidr?: string;
  protocol?: number;
  dportMin?: number;
  dportMax?: number;
  action?: "drop" | "accept";
  direction?: "both" | "ingress" | "egress";
  reason: string;
  ttlS?: number;
  /** Set only after the operator typed the confirmation: the rule would cut off this host or its admin. */
  force?: boolean;
}

const ruleIdParams = { type: "object", properties: { id: { type: "string", pattern: "^[0-9]{1,16}$" } } };

/** The active rules, through the rules service's API: list, add by hand, extend, delete. */
export const ruleRoutes: FastifyPluginAsync<ConsoleContext> = async (app, { rules }) => {
  app.get("/api/rules", async () => {
    const res = await rules.listRules();
    return { now: Date.now() / 1000, rules: res.rules.map((r) => Rule.toJSON(r)) };
  });

  app.post<{ Body: RuleBody }>(
    "/api/rules",
    {
      schema: {
        body: {
          type: "object",
          required: ["srcCidr", "reason"],
          properties: {
            srcCidr: { type: "string", minLength: 1, maxLength: 64 },
            dstCidr: { type: "string", maxLength: 64 },
            protocol: { type: "integer", minimum: 0, maximum: 255 },
            dportMin: { type: "integer", minimum: 0, maximum: 65535 },
            dportMax: { type: "integer", minimum: 0, maximum: 65535 },
            action: { enum: ["drop", "accept"] },
            direction: { enum: ["both", "ingress", "egress"] },
            reason: { type: "string", minLength: 1, maxLength: 200 },
            ttlS: { type: "integer", minimum: 0, maximum: 365 * 86400 },
            force: { type: "boolean" },
          },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const b = req.body;
      const rule = Rule.fromPartial({
        action: ACTIONS[b.action ?? "drop"],
        srcCidr: b.srcCidr.trim(),
        dstCidr: b.dstCidr?.trim() ?? "",
        protocol: b.protocol ?? 0,
        dportMin: b.dportMin ?? 0,
        dportMax: b.dportMax ?? b.dportMin ?? 0,
        direction: DIRECTIONS[b.direction ?? "both"],
        origin: Origin.ORIGIN_MANUAL,
        reason: b.reason,
        createdBy: "console",
      });
      // The browser's own address goes along, so a rule that would cut off this very session is refused too.
      // The audit trail names the console session's address; a browser's own headers are never passed on.
      return Rule.toJSON(await rules.addRule({ rule, ttlS: b.ttlS ?? 3600, force: b.force ?? false, sessionSource: req.ip }, `console session from ${req.ip}`));
    },
  );

  app.post<{ Params: { id: string }; Body: { seconds: number; force?: boolean } }>(
    "/api/rules/:id/extend",
    {
      schema: {
        params: ruleIdParams,
        body: {
          type: "object",
          required: ["seconds"],
          properties: { seconds: { type: "integer", minimum: 1, maximum: 365 * 86400 }, force: { type: "boolean" } },
          additionalProperties: false,
        },
      },
    },
    async (req) => {
      const id = Number(req.params.id);
      const existing = (await rules.listRules()).rules.find((r) => r.id === id);
      if (!existing) throw httpError(404, "VIGIL_ERR_NOT_FOUND", `no active rule ${id}`);
      // "+1 h" from when it would have ended; the rule keeps its origin and history (ExtendRule), and a rule
      // that would now cut off this session or the host is refused unless forced, as when adding one.
      const remaining = existing.expiresAt > 0 ? Math.max(0, existing.expiresAt - Date.now() / 1000) : 0;
      const ttlS = Math.ceil(remaining + req.body.seconds);
      return Rule.toJSON(await rules.extendRule({ id, ttlS, force: req.body.force ?? false, sessionSource: req.ip }, `console session from ${req.ip}`));
    },
  );

  app.delete<{ Params: { id: string } }>("/api/rules/:id", { schema: { params: ruleIdParams } }, async (req) => {
    const res = await rules.deleteRule(Number(req.params.id));
    if (!res.deleted) throw httpError(404, "VIGIL_ERR_NOT_FOUND", `no rule ${req.params.id}`);
    return res;
  });
};
