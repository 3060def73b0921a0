import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Kvm } from "@nats-io/kv";
import { describe, expect, it } from "vitest";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { EXIT, type Logger } from "@vigil/lifecycle";
import { pino } from "pino";
import { Rule, RuleEvent_Kind, WatchEventsRequest, type Event, type RuleEvent, type Status } from "@vigil/proto";
import { disposeNatsServer, freePort, netnsUnavailableReason, startNatsServer, toolMissing, waitFor } from "@vigil/testing";
import { ControlApi } from "../src/client.js";
import { rulesDefaults } from "../src/config.js";
import { NftablesEnforcer } from "../src/enforcers/nftables.js";
import { startGrpcServer } from "../src/grpc-server.js";
import { checkWarmupRecord, WARMUP_KEY } from "../src/warmup.js";
import { metricValue, natsAndVeth, ping, publishVerdict, runCommand, startService, verdict, type Running } from "./support/rules.js";

const natsSkip = toolMissing("nats-server");
const nftSkip = toolMissing("nft") ?? netnsUnavailableReason();
const now = () => Date.now() / 1000;

describe("rules.warmup and its stored record", () => {
  it("reads durations as written in the configuration", () => {
    expect(rulesDefaults({}).warmup).toBe(0);
    for (const [text, s] of [["24h", 86_400], ["30m", 1800], ["1h30m", 5400], ["7d", 604_800], [90, 90], ["off", 0], [false, 0], ["0", 0]] as const)
      expect(rulesDefaults({ warmup: text as never }).warmup).toBe(s);
    for (const bad of ["soon", "24 hours", "-1h", 1.5, -3, "9999d"]) expect(() => rulesDefaults({ warmup: bad as never })).toThrow(/is not a duration/);
  });

  it("refuses a record that would hold off blocking or end it on no evidence", () => {
    const t = 1_800_000_000;
    expect(checkWarmupRecord({ startedAt: t - 10 }, t)).toEqual({ startedAt: t - 10 });
    expect(checkWarmupRecord({ startedAt: t - 10, endedAt: t - 5, endedBy: "op" }, t)).toEqual({ startedAt: t - 10, endedAt: t - 5, endedBy: "op" });
    expect(() => checkWarmupRecord({ startedAt: t + 86_400 * 365 }, t)).toThrow(/startedAt .* is in the future/);
    expect(() => checkWarmupRecord({ startedAt: "yesterday" }, t)).toThrow(/startedAt is not a time/);
    expect(() => checkWarmupRecord({ startedAt: t - 10, endedAt: t - 20 }, t)).toThrow(/endedAt is before startedAt/);
    expect(() => checkWarmupRecord({ startedAt: t - 10, endedAt: -1 }, t)).toThrow(/endedAt is not a time/);
    expect(() => checkWarmupRecord({ startedAt: t - 10, over: true }, t)).toThrow(/unknown field "over"/);
    expect(() => checkWarmupRecord([t], t)).toThrow(/not a JSON object/);
    expect(() => checkWarmupRecord({ startedAt: t - 10, endedBy: "x".repeat(500) }, t)).toThrow(/endedBy/);
  });
});

/** Rule events (phase changes among them) as another client of the bus receives them. */
async function busEvents(url: string): Promise<{ events: RuleEvent[]; stop(): Promise<void> }> {
  const nc = await connectBus({ servers: [url], name: "warmup-test-watcher", firstConnectTimeoutMs: 5000 });
  const events: RuleEvent[] = [];
  nc.subscribe(subjects.ruleEvents, { callback: (err, msg) => !err && events.push(codecs.ruleEvent.decode(msg.data, msg.subject)) });
  await nc.flush();
  return { events, stop: () => nc.close() };
}

async function storedWarmup(nc: NatsConnection, bucket: string): Promise<unknown> {
  const e = await (await new Kvm(nc).open(bucket)).get(WARMUP_KEY);
  return e && e.operation === "PUT" ? JSON.parse(e.string()) : null;
}

async function putWarmup(nc: NatsConnection, bucket: string, text: string): Promise<void> {
  await (await new Kvm(nc).open(bucket)).put(WARMUP_KEY, text);
}

describe.skipIf(natsSkip)("warm-up on a dry-run service", () => {
  it("changes nothing: decided and listed as in every dry run, the clock runs and the phase says dry-run", async () => {
    const nats = await startNatsServer({ jetstream: true });
    try {
      const r = await startService(nats.url, { bucket: "warmup_dry", dryRun: true, warmup: "1h" as never });
      try {
        const st = r.svc.status();
        expect(st).toMatchObject({ phase: "dry-run", dryRun: true });
        expect(st.warmupUntil).toBe(st.warmupStartedAt + 3600);
        expect(await metricValue(r.registry, "vigil_rules_phase", { phase: "dry-run" })).toBe(1);
        publishVerdict(r.nc, verdict("198.51.100.90"));
        const [rule] = await waitFor("listed", () => (r.svc.listRules({ address: "198.51.100.90" }).length ? r.svc.listRules({ address: "198.51.100.90" }) : null), 5000);
        expect(rule!.enforced).toBe(false);
        expect(r.svc.listVerdicts({ address: "198.51.100.90" })[0]!.outcome).toBe("blocked");
      } finally {
        await r.stop();
      }
    } finally {
      await disposeNatsServer(nats);
    }
  }, 30_000);
});

describe.skipIf(natsSkip || nftSkip)("warm-up of a new host, enforcing with nftables in a namespace", () => {
  const env = natsAndVeth();
  const enforcing = async (bucket: string, warmup: string | number, extra = {}, logger?: Logger): Promise<{ r: Running; enforcer: NftablesEnforcer; stop(): Promise<void> }> => {
    const enforcer = new NftablesEnforcer({ netns: env.pair.b, table: "vigil" });
    const r = await startService(env.nats.url, { bucket, netns: env.pair.b, warmup: warmup as never, ...extra }, enforcer, undefined, logger);
    return { r, enforcer, stop: async () => (await r.stop(), await enforcer.destroy()) };
  };

  it("simulates automatic blocks, enforces manual rules, then starts blocking by itself and enforces nothing from before", async () => {
    const { pair } = env;
    const bus = await busEvents(env.nats.url);
    const t0 = now();
    const { r, enforcer, stop } = await enforcing("warmup_e2e", 8);
    try {
      const st = r.svc.status();
      expect(st.phase).toBe("warmup");
      expect(st.warmupStartedAt).toBeGreaterThanOrEqual(t0 - 1);
      expect(st.warmupUntil).toBeCloseTo(st.warmupStartedAt + 8, 3);
      expect(await metricValue(r.registry, "vigil_rules_phase", { phase: "warmup" })).toBe(1);
      expect(await metricValue(r.registry, "vigil_rules_phase", { phase: "blocking" })).toBe(0);
      await waitFor("the warm-up announced", () => bus.events.find((e) => e.kind === RuleEvent_Kind.KIND_PHASE && e.phase === "warmup") ?? null, 3000);

      // The namespace's neighbour is flagged: decided as usual, recorded as simulated, not blocked.
      expect(ping(pair.a, pair.addrB4)).toBe(true);
      publishVerdict(r.nc, verdict(pair.addrA4));
      await waitFor("decided", () => r.svc.listVerdicts({ address: pair.addrA4 })[0] ?? null, 5000);
      await r.svc.idle();
      expect(r.svc.listVerdicts({ address: pair.addrA4 })[0]!.outcome).toBe("warmup-simulated");
      expect(r.svc.listRules({})).toEqual([]);
      expect(await metricValue(r.registry, "vigil_rules_decisions_total", { outcome: "warmup-simulated" })).toBe(1);
      expect(ping(pair.a, pair.addrB4)).toBe(true);
      // An operator's rule is no simulation.
      const manual = await r.svc.addRule(Rule.fromPartial({ srcCidr: "198.51.100.60" }), 600, "test");
      expect(manual.enforced).toBe(true);
      let { elems } = await enforcer.actual();
      expect([...elems.keys()]).toEqual(["drop4|198.51.100.60"]);
      expect(r.svc.status().phase).toBe("warmup");

      await waitFor("blocking started", () => (r.svc.status().phase === "blocking" ? true : null), 15_000);
      const ended = await waitFor("the end announced", () => bus.events.find((e) => e.kind === RuleEvent_Kind.KIND_PHASE && e.phase === "blocking") ?? null, 3000);
      expect(await metricValue(r.registry, "vigil_rules_phase", { phase: "blocking" })).toBe(1);
      expect(await metricValue(r.registry, "vigil_rules_phase", { phase: "warmup" })).toBe(0);
      expect(ended.detail).toMatch(/warm-up over after 8s: automatic blocks are enforced from now on/);
      expect(ended.rule).toBeUndefined();
      // Nothing simulated is enforced when blocking starts, even after a reconciliation.
      await r.svc.idle();
      ({ elems } = await enforcer.actual());
      expect([...elems.keys()]).toEqual(["drop4|198.51.100.60"]);
      expect(ping(pair.a, pair.addrB4)).toBe(true);

      // New evidence after the warm-up blocks as it always did.
      publishVerdict(r.nc, verdict(pair.addrA4));
      await waitFor("blocked", () => r.svc.listRules({ address: pair.addrA4 })[0] ?? null, 5000);
      await r.svc.idle();
      ({ elems } = await enforcer.actual());
      expect([...elems.keys()].sort()).toEqual([`drop4|${pair.addrA4}`, "drop4|198.51.100.60"]);
      expect(ping(pair.a, pair.addrB4)).toBe(false);
      expect(await storedWarmup(r.nc, "warmup_e2e")).toEqual({ startedAt: st.warmupStartedAt, endedAt: st.warmupUntil, endedBy: "vigil-rules" });
    } finally {
      await bus.stop();
      await stop();
    }
  }, 60_000);

  it("survives restarts: a restart continues the warm-up, one that elapsed while down ends, an ended one stays ended", async () => {
    const first = await enforcing("warmup_restart", "1h");
    const started = first.r.svc.status().warmupStartedAt;
    await first.stop();
    await new Promise((res) => setTimeout(res, 1100));
    const bus = await busEvents(env.nats.url);
    const second = await enforcing("warmup_restart", "1h");
    try {
      const st = second.r.svc.status();
      expect(st.phase).toBe("warmup");
      expect(st.warmupStartedAt).toBe(started);
      expect(st.warmupUntil).toBe(started + 3600);
      expect(second.r.svc.warmup.endNow(now(), "test operator")).toBe(true);
      expect(second.r.svc.warmup.endNow(now(), "test operator")).toBe(false);
    } finally {
      await second.stop();
    }
    const third = await enforcing("warmup_restart", "1h");
    try {
      const st = third.r.svc.status();
      expect(st.phase).toBe("blocking");
      expect(st.warmupStartedAt).toBe(started);
      expect(st.warmupUntil).toBeLessThan(now());
      // Only the early end was announced: no warm-up began again.
      await new Promise((res) => setTimeout(res, 300));
      expect(bus.events.filter((e) => e.kind === RuleEvent_Kind.KIND_PHASE).map((e) => [e.phase, e.by])).toEqual([["blocking", "test operator"]]);
    } finally {
      await third.stop();
    }
    // Down for longer than the warm-up: it ended while down, and blocking starts at once.
    const seeded = await enforcing("warmup_elapsed", 0);
    await putWarmup(seeded.r.nc, "warmup_elapsed", JSON.stringify({ startedAt: now() - 120 }));
    await seeded.stop();
    const back = await enforcing("warmup_elapsed", 60);
    try {
      expect(back.r.svc.status().phase).toBe("blocking");
      publishVerdict(back.r.nc, verdict("198.51.100.70"));
      await waitFor("blocked", () => back.r.svc.listRules({ address: "198.51.100.70" })[0] ?? null, 5000);
      expect((await storedWarmup(back.r.nc, "warmup_elapsed")) as object).toMatchObject({ endedBy: "vigil-rules" });
    } finally {
      await back.stop();
      await bus.stop();
    }
  }, 60_000);

  it("refuses a crafted or corrupt stored start and warms up again from now instead of blocking", async () => {
    const crafted = [
      "not json at all",
      JSON.stringify({ startedAt: now() + 365 * 86_400 }),
      JSON.stringify({ startedAt: "long ago" }),
      JSON.stringify({ startedAt: now() - 10, endedAt: now() - 3600 }),
      JSON.stringify({ startedAt: 1, endedAt: 2, admin: true }),
    ];
    for (const [i, text] of crafted.entries()) {
      const bucket = `warmup_bad_${i}`;
      const seed = await enforcing(bucket, 0);
      await putWarmup(seed.r.nc, bucket, text);
      await seed.stop();
      const t0 = now();
      const logged: Array<Record<string, unknown>> = [];
      const logger = pino({ level: "warn" }, { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) });
      const { r, stop } = await enforcing(bucket, "1h", {}, logger);
      try {
        const st = r.svc.status();
        expect(st.phase, text).toBe("warmup");
        expect(st.warmupStartedAt).toBeGreaterThanOrEqual(t0 - 1);
        expect(await metricValue(r.registry, "vigil_rules_store_quarantined_total", { kind: "warmup" })).toBe(1);
        // A clear error: what, where, why, and what happens instead.
        const refusal = logged.find((l) => l.code === "VIGIL_ERR_STORE_RECORD");
        expect(refusal, JSON.stringify(logged)).toMatchObject({ key: WARMUP_KEY, stored: text.slice(0, 200), msg: expect.stringMatching(/stored warm-up start failed its checks: refused, and the warm-up starts again now/) });
        expect(refusal!.problem).toMatch(/JSON|not a time|in the future|before startedAt|unknown field/);
        publishVerdict(r.nc, verdict("198.51.100.80"));
        await waitFor("decided", () => r.svc.listVerdicts({ address: "198.51.100.80" })[0] ?? null, 5000);
        expect(r.svc.listVerdicts({ address: "198.51.100.80" })[0]!.outcome).toBe("warmup-simulated");
        expect(r.svc.listRules({})).toEqual([]);
        // Replaced by a good record, so the warm-up does end some day.
        await waitFor("rewritten", async () => ((await storedWarmup(r.nc, bucket)) as { startedAt?: number } | null)?.startedAt === st.warmupStartedAt || null, 5000);
      } finally {
        await stop();
      }
    }
  }, 90_000);

  it("an operator ends it early through the API (authorized like every control call) and the CLI", async () => {
    const { r, stop } = await enforcing("warmup_api", "1h");
    const dir = mkdtempSync(join(tmpdir(), "vigil-warmup-"));
    const sock = join(dir, "control.sock");
    const server = await startGrpcServer(r.svc, { host: "127.0.0.1", port: await freePort(), socket: sock, token: "tok" });
    try {
      const anon = new ControlApi({ addr: server.address });
      await expect(anon.call("endWarmup", {})).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      anon.close();
      expect(r.svc.status().phase).toBe("warmup");

      // A watcher of the control API hears the phase change as a rule event without a rule.
      const watcher = new ControlApi({ socket: sock, token: "tok" });
      const heard: Event[] = [];
      const stream = watcher.raw.watchEvents(WatchEventsRequest.fromPartial({ rules: true }), watcher.metadata());
      stream.on("data", (e: Event) => heard.push(e));
      stream.on("error", () => undefined);

      const c = ["--socket", sock, "--token", "tok"];
      const st = await runCommand(["status", ...c]);
      expect(st.code).toBe(EXIT.OK);
      expect(st.stdout).toMatch(/phase\s+warm-up until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \([\dhms]+ left\): automatic blocks are simulated, manual rules enforced/);
      expect(JSON.parse((await runCommand(["status", ...c, "--json"])).stdout)).toMatchObject({ phase: "warmup" });
      expect((await runCommand(["warmup", "later", ...c])).code).toBe(EXIT.USAGE);

      const end = await runCommand(["warmup", "end", ...c]);
      expect(end.code).toBe(EXIT.OK);
      expect(end.stdout).toMatch(/^phase: blocking \(warm-up over since \d{4}-/);
      expect(r.svc.status().phase).toBe("blocking");
      const phaseEvent = await waitFor("the phase change on the watch stream", () => heard.find((e) => e.rule?.kind === RuleEvent_Kind.KIND_PHASE) ?? null, 5000);
      expect(phaseEvent.rule).toMatchObject({ phase: "blocking", detail: expect.stringMatching(/^warm-up ended early by via .*: automatic blocks are enforced from now on/) });
      stream.cancel();
      watcher.close();
      const again = await runCommand(["warmup", "end", ...c]);
      expect(again.code).not.toBe(EXIT.OK);
      expect(again.stderr).toMatch(/no warm-up in progress: blocking has started/);
      expect((await runCommand(["status", ...c])).stdout).toMatch(/phase\s+blocking \(warm-up over since/);
      const api = new ControlApi({ socket: sock, token: "tok" });
      const s = await api.call<object, Status>("getStatus", {});
      api.close();
      expect(s.phase).toBe("blocking");
      expect((await storedWarmup(r.nc, "warmup_api")) as object).toMatchObject({ endedBy: expect.stringMatching(/^via .*\(claims user "/) });
    } finally {
      await server.close();
      await stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
