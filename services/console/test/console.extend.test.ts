import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { createLogger } from "@vigil/lifecycle";
import { Action, Origin, Rule } from "@vigil/proto";
import { disposeNatsServer, startNatsServer, toolMissing, waitFor, type NatsServerHandle } from "@vigil/testing";
import { consoleSchema, createConsoleServer, CSRF_HEADER, RulesClient, type ConsoleServer } from "../src/index.js";
import { ATTACKER, pstVerdict } from "./support/fixtures.js";
import { RULES_MAIN, startRulesService, type RulesUnderTest } from "./support/rules-service.js";

/**
 * "Keep this attacker out longer": POST /api/rules/:id/extend against the real rules service (dry run, real
 * nats-server). A detector's block is extended as a detector's block; a configured rule is not extended; a rule
 * that now covers the operator's own session or loopback is refused unless forced; a rule is never shortened.
 */
const TOKEN = "extend-test-token";
const STATIC = "192.0.2.200/32";
const skip = toolMissing("nats-server") ?? (existsSync(RULES_MAIN) ? null : `${RULES_MAIN} is not built (node scripts/build.mjs)`);
if (skip) console.warn(`console extend tests skipped: ${skip}`);

describe.skipIf(skip)("console: extending a rule through the rules service", () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let rules: RulesUnderTest;
  let client: RulesClient;
  let server: ConsoleServer;
  let stateDir: string;

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "vigil-console-extend-"));
    nats = await startNatsServer({ jetstream: true });
    nc = await connectBus({ servers: [nats.url], name: "console-extend-test", firstConnectTimeoutMs: 5000 });
    rules = await startRulesService({
      natsUrl: nats.url,
      stateDir,
      token: TOKEN,
      env: { VIGIL_RULES__BUCKET: "console_extend", VIGIL_RULES__STATIC_RULES: JSON.stringify([{ action: "block", cidr: STATIC }]) },
    });
    client = new RulesClient(rules.address, 3000, TOKEN);
    await waitFor(`the rules service's Control API (${rules.log()})`, () => client.getStatus().then(() => true), 30_000, 200);
    const config = consoleSchema.parse({ port: 0, token: TOKEN, rules: { address: rules.address, token: TOKEN } });
    server = await createConsoleServer({ config, logger: createLogger("console-extend", "warn"), nats: null, env: { ...process.env, VIGIL_STATE_DIR: stateDir } });
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    client?.close();
    await rules?.stop();
    await nc?.close();
    if (nats) await disposeNatsServer(nats);
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  const extend = (id: number, body: object) =>
    server.app.inject({ method: "POST", url: `/api/rules/${id}/extend`, payload: body, headers: { authorization: `Bearer ${TOKEN}`, [CSRF_HEADER]: "1" } });
  const ruleOf = async (cidr: string) => (await client.listRules()).rules.find((r) => r.srcCidr === cidr);

  it("extends a detector's block: still the detector's, with its reason and verdicts, expiring later", async () => {
    const v = pstVerdict(Date.now() / 1000);
    nc.publish(subjects.verdicts("pst"), codecs.verdict.encode(v));
    const before = await waitFor(`the detector's block (${rules.log()})`, () => ruleOf(`${ATTACKER}/32`).then((r) => r ?? null), 10_000);
    expect(before.origin).toBe(Origin.ORIGIN_DETECTOR);
    expect(before.expiresAt).toBeGreaterThan(0);

    const res = await extend(before.id, { seconds: 3600 });
    expect(res.statusCode, res.body).toBe(200);
    const after = (await ruleOf(`${ATTACKER}/32`))!;
    expect(after).toMatchObject({ id: before.id, origin: Origin.ORIGIN_DETECTOR, detector: "pst", reason: before.reason, verdictIds: before.verdictIds, createdAt: before.createdAt });
    expect(after.expiresAt).toBeGreaterThanOrEqual(before.expiresAt + 3600 - 1);
    expect(after.expiresAt).toBeLessThanOrEqual(before.expiresAt + 3600 + 2);
    expect(res.json()).toMatchObject({ id: before.id, origin: "ORIGIN_DETECTOR", expiresAt: after.expiresAt });
  });

  it("refuses a configured rule: the configuration sets its life", async () => {
    const rule = (await ruleOf(STATIC))!;
    expect(rule.origin).toBe(Origin.ORIGIN_CONFIG);
    const res = await extend(rule.id, { seconds: 600 });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatch(/comes from the configuration \(rules\.staticRules\)/);
    expect((await ruleOf(STATIC))!.expiresAt).toBe(0);
  });

  it("never shortens: a rule that never expires stays so", async () => {
    const rule = await client.addRule({ rule: Rule.fromPartial({ action: Action.ACTION_DROP, srcCidr: "192.0.2.201/32", reason: "kept for good" }), ttlS: 0, force: false, sessionSource: "" });
    const res = await extend(rule.id, { seconds: 600 });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatch(/never expires: a ttl of 600 s would shorten it/);
    expect((await ruleOf("192.0.2.201/32"))!.expiresAt).toBe(0);
  });

  it("runs the lockout check: a block over loopback (the console's own session) needs force, as when adding it", async () => {
    const rule = await client.addRule({ rule: Rule.fromPartial({ action: Action.ACTION_DROP, srcCidr: "127.0.0.9/32", reason: "forced once" }), ttlS: 600, force: true, sessionSource: "" });
    const refused = await extend(rule.id, { seconds: 600 });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: "VIGIL_ERR_LOCKOUT" });
    expect((await ruleOf("127.0.0.9/32"))!.expiresAt).toBe(rule.expiresAt);
    const forced = await extend(rule.id, { seconds: 600, force: true });
    expect(forced.statusCode, forced.body).toBe(200);
    expect((await ruleOf("127.0.0.9/32"))!.expiresAt).toBeGreaterThanOrEqual(rule.expiresAt + 599);
  });

  it("404 for a rule that is not active", async () => {
    expect((await extend(12345, { seconds: 60 })).statusCode).toBe(404);
  });
});
