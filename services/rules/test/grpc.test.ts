import { statSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { describe, expect, it } from "vitest";
import { Action, Direction, Event, WatchEventsRequest, Origin, Rule, RuleEvent_Kind, type ListRulesResponse, type Status } from "@vigil/proto";
import { repoRoot, toolMissing, waitFor } from "@vigil/testing";
import { ControlApi } from "../src/client.js";
import { grpcStack, publishVerdict, verdict } from "./support/rules.js";

const natsSkip = toolMissing("nats-server");
if (natsSkip) console.warn(`gRPC tests skipped: ${natsSkip}`);

const TOKEN = "s3cret-token-for-tests";

describe.skipIf(natsSkip)("gRPC control API end to end", () => {
  const env = grpcStack({ bucket: "grpc_test", token: TOKEN });

  it("refuses calls without valid credentials", async () => {
    for (const token of [undefined, "wrong-token"]) {
      const c = new ControlApi({ addr: env.server.address, token });
      await expect(c.call("getStatus", {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      await expect(c.call("addRule", { rule: Rule.fromPartial({ srcCidr: "192.0.2.1" }), ttlS: 0 })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      c.close();
    }
    expect(env.r.svc.listRules({})).toEqual([]);
    const anon = new ControlApi({ addr: env.server.address });
    const watchErr = await new Promise<grpc.ServiceError>((res) => {
      const s = anon.raw.watchEvents(WatchEventsRequest.fromPartial({}), new grpc.Metadata());
      s.on("data", () => undefined);
      s.on("error", res);
    });
    expect(watchErr.code).toBe(grpc.status.UNAUTHENTICATED);
    anon.close();
    // The unix socket is not world-accessible and needs the token too.
    expect(statSync(join(env.dir, "control.sock")).mode & 0o777).toBe(0o660);
    const unix = new ControlApi({ socket: join(env.dir, "control.sock") });
    await expect(unix.call("getStatus", {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    unix.close();
    const unixOk = new ControlApi({ socket: join(env.dir, "control.sock"), token: TOKEN });
    expect(await unixOk.call<object, Status>("getStatus", {})).toMatchObject({ enforcer: "dry-run", dryRun: true });
    unixOk.close();
  });

  it("records who made a rule by the connection, and a client-named user only as its claim (F23)", async () => {
    const md = env.api.metadata();
    md.set("x-vigil-user", "root@admin-laptop\"");
    const added = await new Promise<Rule>((res, rej) =>
      env.api.raw.addRule({ rule: Rule.fromPartial({ srcCidr: "203.0.113.77", reason: "spoofed author" }), ttlS: 60, force: false, sessionSource: "" } as never, md, (err, rule) => (err ? rej(err) : res(rule))),
    );
    // The connection is what the server knows; the header is what the client says, labelled so.
    expect(added.createdBy).toMatch(/^via 127\.0\.0\.1:[0-9]+ \(claims user "root@admin-laptop"\)$/);
    await env.api.call("deleteRule", { id: added.id });
  });

  it("answers INVALID_ARGUMENT naming the field", async () => {
    const cases: Array<[Partial<Rule>, number, string]> = [
      [{ srcCidr: "10.0.0.300" }, 0, "rule.src_cidr"],
      [{ srcCidr: "" }, 0, "rule.src_cidr"],
      [{ srcCidr: "10.0.0.1/24" }, 0, "rule.src_cidr"],
      [{ srcCidr: "10.0.0.0/24", dportMin: 90, dportMax: 80, protocol: 6 }, 0, "rule.dport_max"],
      [{ srcCidr: "10.0.0.0/24", dportMin: 70000 }, 0, "rule.dport_min"],
      [{ srcCidr: "10.0.0.0/24", dstCidr: "2001:db8::/32" }, 0, "rule.dst_cidr"],
      [{ srcCidr: "10.0.0.0/24" }, 400_000_000, "ttl_s"],
      [{ srcCidr: "10.0.0.0/24", origin: Origin.ORIGIN_DETECTOR }, 0, "rule.origin"],
      [{ srcCidr: "10.0.0.0/24", origin: Origin.ORIGIN_CONFIG }, 0, "rule.origin"],
      [{ srcCidr: "10.0.0.0/24", origin: Origin.ORIGIN_FEEDBACK }, 0, "rule.origin"],
    ];
    for (const [rule, ttlS, field] of cases) {
      const err = await env.api.call("addRule", { rule: Rule.fromPartial(rule), ttlS }).catch((e: grpc.ServiceError) => e);
      expect(err, JSON.stringify(rule)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
      expect((err as grpc.ServiceError).details).toMatch(new RegExp(`^${field.replace(".", "\\.")}:`));
    }
    await expect(env.api.call("addRule", { ttlS: 0 })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^rule:/) });
    await expect(env.api.call("deleteRule", { id: 0 })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^id:/) });
    await expect(env.api.call("listRules", { address: "bogus" })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^address:/) });
    await expect(env.api.call("markFalseAlarm", { verdictId: "" })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/^verdict_id:/) });
    await expect(env.api.call("markFalseAlarm", { verdictId: "unknown" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("adds, lists, watches and deletes rules; lists verdicts; marks a false alarm", async () => {
    const events: Event[] = [];
    const stream = env.api.raw.watchEvents(WatchEventsRequest.fromPartial({ verdicts: true, rules: true }), env.api.metadata());
    stream.on("data", (e: Event) => events.push(e));
    stream.on("error", () => undefined);
    await new Promise((res) => setTimeout(res, 100));

    const added = await env.api.call<unknown, Rule>("addRule", {
      rule: Rule.fromPartial({ action: Action.ACTION_DROP, srcCidr: "198.51.100.0/24", protocol: 6, dportMin: 22, dportMax: 23, direction: Direction.DIRECTION_INGRESS, reason: "ssh abuse" }),
      ttlS: 3600,
    });
    expect(added).toMatchObject({ origin: Origin.ORIGIN_MANUAL, srcCidr: "198.51.100.0/24", dportMin: 22, dportMax: 23, reason: "ssh abuse", enforced: false });
    expect(added.createdBy).toMatch(/via/);
    expect(added.expiresAt - added.createdAt).toBeCloseTo(3600, 0);
    const list = await env.api.call<unknown, ListRulesResponse>("listRules", { address: "198.51.100.7" });
    expect(list.rules.map((x) => x.id)).toEqual([added.id]);
    expect((await env.api.call<unknown, ListRulesResponse>("listRules", { origin: Origin.ORIGIN_DETECTOR })).rules).toEqual([]);

    const v = verdict("192.0.2.44", { handshakes: 1 });
    publishVerdict(env.r.nc, v);
    await waitFor("verdict event", () => events.find((e) => e.verdict?.verdict?.id === v.id));
    const verdicts = await env.api.call<unknown, { verdicts: Array<{ outcome: string; ruleId: number }> }>("listVerdicts", { address: "192.0.2.44" });
    expect(verdicts.verdicts[0]).toMatchObject({ outcome: "blocked" });
    const status = await env.api.call<object, Status>("getStatus", {});
    expect(status).toMatchObject({ activeRules: 2, rulesByOrigin: { manual: 1, detector: 1 }, enforcer: "dry-run" });

    const fa = await env.api.call<unknown, { removedRuleIds: number[]; allowRuleId: number }>("markFalseAlarm", { verdictId: v.id, allowTtlS: 60 });
    expect(fa.removedRuleIds).toEqual([verdicts.verdicts[0].ruleId]);
    expect(await env.api.call("deleteRule", { id: added.id })).toEqual({ deleted: true });
    expect(await env.api.call("deleteRule", { id: added.id })).toEqual({ deleted: false });
    await waitFor("rule events", () => events.filter((e) => e.rule).length >= 5 || null);
    stream.cancel();
    expect(events.filter((e) => e.rule).map((e) => e.rule!.kind)).toEqual([
      RuleEvent_Kind.KIND_ADDED, // manual
      RuleEvent_Kind.KIND_ADDED, // detector
      RuleEvent_Kind.KIND_REMOVED, // false alarm
      RuleEvent_Kind.KIND_ADDED, // feedback allow
      RuleEvent_Kind.KIND_REMOVED, // manual deleted
    ]);
  });

  it("serves the standard health service and server reflection", async () => {
    const healthDef = protoLoader.loadSync(join(repoRoot, "node_modules/grpc-health-check/proto/health/v1/health.proto"), { enums: String });
    const Health = (grpc.loadPackageDefinition(healthDef) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } }).grpc.health.v1.Health;
    const hc = new Health(env.server.address, grpc.credentials.createInsecure());
    const check = (service: string) =>
      new Promise<{ status: string }>((res, rej) => hc.check({ service }, (err: Error | null, out: { status: string }) => (err ? rej(err) : res(out))));
    expect(await check("vigil.v1.Control")).toEqual({ status: "SERVING" });
    hc.close();

    const reflDef = protoLoader.loadSync(join(repoRoot, "node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto"), { keepCase: true });
    const Refl = (grpc.loadPackageDefinition(reflDef) as unknown as { grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } } }).grpc.reflection.v1.ServerReflection;
    const rc = new Refl(env.server.address, grpc.credentials.createInsecure());
    const call = rc.ServerReflectionInfo();
    const reply = await new Promise<{ list_services_response: { service: Array<{ name: string }> } }>((res, rej) => {
      call.on("data", res);
      call.on("error", rej);
      call.write({ list_services: "" });
    });
    call.end();
    rc.close();
    expect(reply.list_services_response.service.map((s) => s.name)).toContain("vigil.v1.Control");
  });
});
