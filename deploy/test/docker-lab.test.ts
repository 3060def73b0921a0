// The compose lab for real: local base images (no registry here), the Vigil
// images, `compose up`, an attack replayed through capture, the verdict and the
// rule read over the gRPC API and found in the enforcement namespace's nftables
// (not the host's), the block notified to a webhook by the notifier, pst scaled to three replicas sharing the shards
// (seen on the bus and by Prometheus), then everything torn down and checked gone.
//
// Runs wherever a Docker engine can: the host's when it answers, else a dockerd
// started here (and stopped afterwards). `./vigil test` installs docker.io,
// docker-compose and debootstrap (scripts/deps/deploy.apt). Cost on two cores:
// about a minute with the base images cached, a few minutes from nothing (the
// debootstrap rootfs is cached in /var/cache/vigil-images, keyed by its recipe).
// VIGIL_DOCKER_LAB=0 skips it on request. Grafana is not started: no registry,
// and Debian has no grafana package (its dashboards are checked by
// dashboards.test.ts and metrics.test.ts).
import { execFileSync, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { codecs, connectBus, subjects, type NatsConnection } from "@vigil/bus";
import { createLogger } from "@vigil/lifecycle";
import { ControlClient, ListRulesRequest, ListVerdictsRequest, type ListRulesResponse, type ListVerdictsResponse } from "@vigil/proto";
import { freePort, repoRoot, waitFor } from "@vigil/testing";
import { composeCommand, dockerEngine, holdLock, type DockerEngine, type HeldLock } from "./support/docker.js";
import { benignConnection, synScan, writePcap, type TimedPacket } from "./support/pcap.js";
import { serviceMissing } from "./support/services.js";

const compose = composeCommand();
const staticReason =
  process.env.VIGIL_DOCKER_LAB === "0"
    ? "VIGIL_DOCKER_LAB=0 asks to skip the docker lab"
    : !compose
      ? "neither `docker compose` nor docker-compose is installed (apt-get install docker-compose; scripts/deps/deploy.apt lists it)"
      : (["capture", "pst", "som", "rules", "notify"].map(serviceMissing).find(Boolean) ?? null);
if (staticReason) console.warn(`deploy/test/docker-lab: skipped: ${staticReason}`);

const PROJECT = "vigil-labtest";
const dummy = `vgllab${process.pid % 10000}`;
const TAG = "labtest";
/** One lab at a time on this machine: the engine, the images and the project name are shared. */
const LAB_LOCK = "/tmp/vigil-docker-lab.lock";

describe.skipIf(staticReason)(`docker compose lab ${staticReason ? `(skipped: ${staticReason})` : ""}`, () => {
  let engine: DockerEngine | string = "the lab was not set up";
  let lock: HeldLock | null = null;
  let env: NodeJS.ProcessEnv;
  let work: string;
  let nc: NatsConnection | null = null;
  let control: InstanceType<typeof ControlClient> | null = null;
  const pstOwners = new Map<string, { shards: number[]; at: number }>();
  const rulesEos = new Set<string>();
  let promPort = 0;
  /** Where the lab's credentials volume is on the host. */
  let secrets = "";
  /** The notifier's webhook: a receiver on the lab bridge's gateway (the host side), started once the bridge exists. */
  let hook: Server | null = null;
  const hooked: Array<Record<string, unknown>> = [];
  const hookPort = 39000 + (process.pid % 1000);
  const timings: Record<string, number> = {};
  const timed = async <T>(phase: string, fn: () => T | Promise<T>): Promise<T> => {
    const t = Date.now();
    try {
      return await fn();
    } finally {
      timings[phase] = (Date.now() - t) / 1000;
    }
  };

  const run = (cmd: string, args: string[], timeout = 600_000): SpawnSyncReturns<string> =>
    spawnSync(cmd, args, { cwd: repoRoot, env, encoding: "utf8", timeout, maxBuffer: 64 << 20 });
  const must = (cmd: string, args: string[], timeout?: number): string => {
    const r = run(cmd, args, timeout);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}):\n${(r.stderr || "").slice(-3000)}\n${(r.stdout || "").slice(-1000)}`);
    return r.stdout;
  };
  const files = () => ["-f", "compose.yaml", "-f", join(work, "override.yaml")];
  const dc = (...args: string[]) => must(compose![0], [...compose!.slice(1), "-p", PROJECT, ...files(), ...args]);
  const projectObjects = (kind: "container" | "network" | "volume") => {
    const args = kind === "container" ? ["ps", "-a"] : [kind, "ls"];
    return must("docker", [...args, "-q", "--filter", `label=com.docker.compose.project=${PROJECT}`]).trim().split("\n").filter(Boolean);
  };
  /** The container of a compose service (compose v1 and v2 name them differently). */
  const containerOf = (svc: string) =>
    must("docker", ["ps", "-q", "--filter", `label=com.docker.compose.project=${PROJECT}`, "--filter", `label=com.docker.compose.service=${svc}`]).trim().split("\n")[0];

  beforeAll(async () => {
    const started = Date.now();
    lock = await timed("wait for the lab lock", () => holdLock(LAB_LOCK, 20 * 60_000));
    engine = await timed("engine", () => dockerEngine());
    if (typeof engine === "string") {
      console.warn(`deploy/test/docker-lab: skipped: ${engine}`);
      return;
    }
    work = mkdtempSync(join(tmpdir(), "vigil-lab-"));
    const natsPort = await freePort();
    promPort = await freePort();
    env = {
      ...process.env,
      DOCKER_HOST: engine.host,
      VIGIL_TAG: TAG,
      VIGIL_NODE_IMAGE: "vigil-local/node:20-bookworm-slim",
      VIGIL_NATS_IMAGE: "vigil-local/nats:2",
      VIGIL_PROMETHEUS_IMAGE: "vigil-local/prometheus:2",
      VIGIL_NATS_PORT: String(natsPort),
      VIGIL_NATS_MONITOR_PORT: String(await freePort()),
      VIGIL_PROMETHEUS_PORT: String(promPort),
      VIGIL_RULES_GRPC_PORT: String(await freePort()),
      VIGIL_CONSOLE_PORT: String(await freePort()),
      // No VIGIL_RULES_ENFORCER: the lab's default, nftables in the enforcement
      // container's namespace; the host's own firewall stays untouched (checked below).
      // An idle interface of its own (one end of a veth pair): live AF_PACKET
      // capture starts, capabilities and all, without reading anybody else's traffic.
      VIGIL_CAPTURE_INTERFACE: dummy,
      VIGIL_NOTIFY_TARGETS: `[{name: lab, type: webhook, url: "http://172.30.47.1:${hookPort}/hook"}]`,
    };
    // A run killed half-way leaves its project behind: start from nothing.
    if (projectObjects("container").length + projectObjects("volume").length + projectObjects("network").length > 0) {
      console.warn(`deploy/test/docker-lab: removing the leftovers of an earlier run of ${PROJECT}`);
      run(compose![0], [...compose!.slice(1), "-p", PROJECT, "-f", "compose.yaml", "down", "-v", "--remove-orphans"], 180_000);
    }
    execFileSync("ip", ["link", "add", dummy, "type", "veth", "peer", "name", `${dummy}p`]);
    execFileSync("ip", ["link", "set", dummy, "up"]);
    // Any pst verdict blocks (the policy is not under test here: pst's window
    // verdicts can score below the per-connection threshold they carry), and so
    // does a replay's: the attack below is a pcap, which capture marks as a replay
    // (security review F28: not enforced unless rules.enforceReplays).
    writeFileSync(
      join(work, "override.yaml"),
      "services:\n  rules:\n    environment:\n      VIGIL_RULES__DETECTORS__PST__MIN_SCORE: \"0.001\"\n      VIGIL_RULES__ENFORCE_REPLAYS: \"true\"\n",
    );
    await timed("base images", () => must(join(repoRoot, "deploy/docker/local-base-images.sh"), [], 1_200_000));
    await timed("vigil images", () =>
      must(join(repoRoot, "deploy/docker/build-images.sh"), ["--tag", TAG, "--node-image", "vigil-local/node:20-bookworm-slim", "capture", "pst", "som", "rules", "notify"]),
    );
    // Rebuilt images leave their predecessors untagged: do not let them pile up.
    run("docker", ["image", "prune", "-f", "--filter", "label=org.opencontainers.image.source=vigil"], 120_000);
    await timed("compose up", () => dc("up", "-d", "nats", "capture", "pst", "som", "rules", "notify", "prometheus"));
    hook = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        hooked.push(JSON.parse(body) as Record<string, unknown>);
        res.end("ok");
      });
    });
    await new Promise<void>((r) => hook!.listen(hookPort, "172.30.47.1", r));

    // The lab's bus admits its services' users only: the test listens as the console, which may read all it needs.
    secrets = must("docker", ["volume", "inspect", `${PROJECT}_vigil-secrets`, "--format", "{{.Mountpoint}}"]).trim();
    nc = await connectBus({
      servers: [`nats://127.0.0.1:${natsPort}`],
      name: "docker-lab-test",
      logger: createLogger("docker-lab-test", "warn"),
      user: "console",
      passwordFile: join(secrets, "nats-console.password"),
    });
    nc.subscribe(subjects.heartbeat("pst"), {
      callback: (_e, m) => {
        const hb = codecs.heartbeat.decode(m.data);
        if (!hb.stopping) pstOwners.set(hb.instance, { shards: [...hb.shards], at: Date.now() });
      },
    });
    nc.subscribe(subjects.endOfStream("rules"), { callback: (_e, m) => void rulesEos.add(codecs.endOfStream.decode(m.data).sourceId) });
    const volume = must("docker", ["volume", "inspect", `${PROJECT}_vigil-state`, "--format", "{{.Mountpoint}}"]).trim();
    control = new ControlClient(`unix:${volume}/control.sock`, grpc.credentials.createInsecure());
    timings["set up"] = (Date.now() - started) / 1000;
  }, 1_500_000);

  afterAll(async () => {
    control?.close();
    hook?.closeAllConnections();
    await new Promise((r) => (hook ? hook.close(r) : r(undefined)));
    if (nc) await nc.close().catch(() => undefined);
    const leftovers: string[] = [];
    try {
      if (typeof engine === "object") {
        await timed("tear down", () => run(compose![0], [...compose!.slice(1), "-p", PROJECT, ...files(), "down", "-v", "--remove-orphans"], 180_000));
        for (const kind of ["container", "network", "volume"] as const) {
          const ids = projectObjects(kind);
          if (ids.length) leftovers.push(`${ids.length} ${kind}(s)`);
        }
        await engine.stop();
        console.log(`deploy/test/docker-lab: engine ${engine.started ? "started and stopped by the test" : `already running at ${engine.host}`}; seconds: ${JSON.stringify(timings)}`);
      }
    } finally {
      if (work) rmSync(work, { recursive: true, force: true });
      try {
        execFileSync("ip", ["link", "del", dummy], { stdio: "ignore" });
      } catch {
        /* never created */
      }
      await lock?.release();
    }
    expect(leftovers, `compose down left objects of ${PROJECT} behind`).toEqual([]);
  }, 300_000);

  it("brings the lab up healthy", async (ctx) => {
    if (typeof engine === "string") return ctx.skip(engine);
    await waitFor("every lab container healthy", () => {
      const ps = must("docker", ["ps", "--filter", `label=com.docker.compose.project=${PROJECT}`, "--format", "{{.Names}} {{.Status}}"]);
      const lines = ps.trim().split("\n").filter(Boolean);
      return lines.length >= 8 && lines.every((l) => l.includes("(healthy)"));
    }, 180_000, 2000);
    // Who runs as what, inside: only capture and rules are root, and with just their capabilities.
    const proc1 = (svc: string) => must("docker", ["exec", containerOf(svc), "cat", "/proc/1/status"]);
    const field = (status: string, name: string) => new RegExp(`^${name}:\\s+(\\S+)`, "m").exec(status)![1];
    for (const svc of ["pst", "som", "notify"]) expect(field(proc1(svc), "Uid"), svc).toBe("10001");
    expect(field(proc1("nats"), "Uid")).toBe("65534");
    const capEff = (svc: string) => BigInt(`0x${field(proc1(svc), "CapEff")}`);
    const NET_ADMIN = 1n << 12n;
    const NET_RAW = 1n << 13n;
    expect(capEff("rules")).toBe(NET_ADMIN);
    expect(capEff("capture")).toBe(NET_ADMIN | NET_RAW);
    expect(capEff("pst")).toBe(0n);
    // Rules live in the enforcement container's network namespace, not the host's.
    const netns = (svc: string) => readlinkSync(`/proc/${must("docker", ["inspect", "-f", "{{.State.Pid}}", containerOf(svc)]).trim()}/ns/net`);
    expect(netns("rules")).toBe(netns("enforcement"));
    expect(netns("rules")).not.toBe(readlinkSync("/proc/self/ns/net"));
    // Nobody gets on the bus without a service's credential (security issue 12), and the console asks for its login.
    const anonymous = await connect({ servers: [`127.0.0.1:${env.VIGIL_NATS_PORT}`], reconnect: false }).then(
      async (c) => (await c.close(), "admitted"),
      (err: Error) => err.message,
    );
    expect(anonymous).toMatch(/authorization/i);
    const token = readFileSync(join(secrets, "console.token"), "utf8").trim();
    expect(token.length).toBeGreaterThanOrEqual(12);
    expect(statSync(join(secrets, "nats-users.conf")).mode & 0o777).toBe(0o600);
  }, 240_000);

  it("a replayed attack becomes a verdict and a rule, read over the gRPC API", async (ctx) => {
    if (typeof engine === "string") return ctx.skip(engine);
    const attacker = "203.0.113.77";
    const t0 = 1_700_000_000;
    const packets: TimedPacket[] = [];
    for (let i = 0; i < 30; i++) packets.push(...benignConnection(`198.51.100.${10 + i}`, "192.0.2.10", 41000 + i, 443, t0 + i * 0.2));
    packets.push(...synScan(attacker, "192.0.2.10", Array.from({ length: 300 }, (_, i) => 20 + i * 3), t0 + 1));
    writePcap(join(work, "attack.pcap"), packets);
    // Capture as a one-shot replay container from the lab's capture image, beside the live one.
    must("docker", [
      "run", "--rm", "--network", "host", "--user", "0:10001", "--cap-drop", "ALL", "--read-only", "--security-opt", "no-new-privileges:true",
      "-v", `${work}:/replay:ro`, "-v", `${PROJECT}_vigil-secrets:/run/vigil-secrets:ro`,
      "-e", `VIGIL_NATS__SERVERS=[nats://127.0.0.1:${env.VIGIL_NATS_PORT}]`,
      "-e", "VIGIL_NATS__USER=capture", "-e", "VIGIL_NATS__PASSWORD_FILE=/run/vigil-secrets/nats-capture.password",
      "-e", "VIGIL_CAPTURE__SOURCE=pcap", "-e", "VIGIL_CAPTURE__FILE=/replay/attack.pcap", "-e", "VIGIL_CAPTURE__SOURCE_ID=docker-lab-1",
      "-e", "VIGIL_CAPTURE__LOCAL=[192.0.2.0/24]", "-e", "VIGIL_CAPTURE__METRICS__HOST=127.0.0.1", "-e", "VIGIL_CAPTURE__METRICS__PORT=0",
      `vigil/capture:${TAG}`,
    ]);
    await waitFor("rules passing on the end of the replay", () => rulesEos.has("docker-lab-1"), 60_000, 200);
    const verdicts = await new Promise<ListVerdictsResponse>((res, rej) => control!.listVerdicts(ListVerdictsRequest.fromPartial({ address: attacker }), (e: grpc.ServiceError | null, r: ListVerdictsResponse) => (e ? rej(e) : res(r))));
    expect(verdicts.verdicts.length).toBeGreaterThan(0);
    const rules = await new Promise<ListRulesResponse>((res, rej) => control!.listRules(ListRulesRequest.fromPartial({}), (e: grpc.ServiceError | null, r: ListRulesResponse) => (e ? rej(e) : res(r))));
    expect(rules.rules.some((r) => r.srcCidr === `${attacker}/32`), JSON.stringify(rules.rules)).toBe(true);
    // Enforced by nftables inside the enforcement namespace, and nowhere in the host's ruleset.
    const pid = must("docker", ["inspect", "-f", "{{.State.Pid}}", containerOf("rules")]).trim();
    await waitFor("the block in the enforcement namespace's nftables", () => must("nsenter", [`--net=/proc/${pid}/ns/net`, "nft", "list", "table", "inet", "vigil"]).includes(attacker), 20_000, 500);
    expect(must("nft", ["list", "ruleset"])).not.toContain(attacker);
    // The notifier in its container told the webhook.
    await waitFor("the block notified to the webhook", () => hooked.some((j) => j.kind === "block" && (j.rule as { source?: string })?.source === `${attacker}/32`), 30_000, 500);
  }, 120_000);

  it("scales pst to three replicas that share the shards, and Prometheus finds all three", async (ctx) => {
    if (typeof engine === "string") return ctx.skip(engine);
    dc("up", "-d", "--no-deps", "--no-recreate", "--scale", "pst=3", "pst");
    await waitFor("three pst replicas splitting the 16 shards", () => {
      const live = [...pstOwners.values()].filter((o) => Date.now() - o.at < 6000);
      const all = live.flatMap((o) => o.shards);
      return live.length === 3 && live.every((o) => o.shards.length > 0) && new Set(all).size === 16 && all.length === 16;
    }, 90_000, 500);
    await waitFor("Prometheus scraping three pst targets", async () => {
      const r = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets`)).json()) as { data: { activeTargets: Array<{ labels: { job: string }; health: string }> } };
      return r.data.activeTargets.filter((t) => t.labels.job === "vigil-pst" && t.health === "up").length === 3;
    }, 90_000, 1000);
    // Rules are scraped in their namespace, through the enforcement container's name.
    await waitFor("Prometheus scraping rules at enforcement:9473", async () => {
      const r = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets`)).json()) as { data: { activeTargets: Array<{ labels: { job: string; instance: string }; health: string }> } };
      return r.data.activeTargets.some((t) => t.labels.job === "vigil-rules" && t.labels.instance === "enforcement:9473" && t.health === "up");
    }, 60_000, 1000);
  }, 240_000);
});
