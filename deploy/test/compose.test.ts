import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { connect } from "@nats-io/transport-node";
import { createNatsAuth, NATS_SERVICES, nodeFlagsOf } from "@vigil/stack";
import { freePort, portOpen, repoRoot, stopChild, waitFor } from "@vigil/testing";
import { composeCommand } from "./support/docker.js";

const compose = composeCommand();
const composeMissing = compose ? null : "neither `docker compose` nor docker-compose is installed (apt-get install docker-compose)";

interface ComposeService {
  image?: string;
  build?: { target?: string; dockerfile?: string };
  user?: string;
  restart?: string;
  network_mode?: string;
  networks?: unknown;
  cap_add?: string[];
  cap_drop?: string[];
  ports?: unknown[];
  container_name?: string;
  healthcheck?: { test: string[] };
  devices?: unknown[];
  environment?: Record<string, string>;
  volumes?: Array<{ type: string; source: string; target: string } | string>;
  read_only?: boolean;
  security_opt?: string[];
}

/** The file as docker compose resolves it (interpolation, anchors, overlays). */
const cache = new Map<string, { services: Record<string, ComposeService> }>();
function resolved(files: string[], env: Record<string, string> = {}): { services: Record<string, ComposeService> } {
  const key = JSON.stringify([files, env]);
  if (!cache.has(key)) cache.set(key, resolveUncached(files, env));
  return cache.get(key)!;
}
function resolveUncached(files: string[], env: Record<string, string>): { services: Record<string, ComposeService> } {
  const args = [...compose!.slice(1), ...files.flatMap((f) => ["-f", join(repoRoot, f)]), "config"];
  const r = spawnSync(compose![0], args, { cwd: repoRoot, encoding: "utf8", env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${compose!.join(" ")} config failed: ${r.stderr}`);
  return parseYaml(r.stdout) as { services: Record<string, ComposeService> };
}

const mountsOf = (svc: ComposeService) =>
  (svc.volumes ?? []).map((v) => (typeof v === "string" ? { source: v.split(":")[0], target: v.split(":")[1], type: v.startsWith("/") || v.startsWith(".") ? "bind" : "volume" } : v));

const dockerfile = readFileSync(join(repoRoot, "deploy/docker/Dockerfile"), "utf8");
const targets = new Set([...dockerfile.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => m[1]));
function targetBlock(target: string): string {
  const start = dockerfile.search(new RegExp(`^FROM\\s+\\S+\\s+AS\\s+${target}\\s*$`, "im"));
  const rest = dockerfile.slice(start + 1);
  const next = rest.search(/^FROM\s/im);
  return next < 0 ? rest : rest.slice(0, next);
}

describe.skipIf(composeMissing)(`compose.yaml ${composeMissing ? `(skipped: ${composeMissing})` : ""}`, () => {
  it("is valid, alone and with the kernel overlay", () => {
    const base = resolved(["compose.yaml"]);
    expect(Object.keys(base.services).sort()).toEqual(["capture", "console", "credentials", "enforcement", "grafana", "nats", "nats-volume-init", "notify", "prometheus", "pst", "rules", "som"]);
    const kernel = resolved(["compose.yaml", "deploy/compose.kernel.yaml"]);
    expect(JSON.stringify(kernel.services.capture.devices)).toContain("/dev/vigil");
    expect(kernel.services.capture.environment!.VIGIL_CAPTURE__SOURCE).toBe("kernel");
    expect(base.services.capture.devices).toBeUndefined();
    expect(base.services.capture.environment!.VIGIL_CAPTURE__SOURCE).toBe("afpacket");
  });

  it("deploy/lab.sh drives the same project, adding the kernel overlay only when /dev/vigil exists", () => {
    const r = spawnSync(join(repoRoot, "deploy/lab.sh"), ["config"], { cwd: "/", encoding: "utf8", env: { ...process.env, VIGIL_CAPTURE_INTERFACE: "lab0" } });
    expect(r.status, r.stderr).toBe(0);
    const cfg = parseYaml(r.stdout) as { services: Record<string, ComposeService> };
    expect(cfg.services.capture.environment!.VIGIL_CAPTURE__INTERFACE).toBe("lab0");
    expect(cfg.services.capture.environment!.VIGIL_CAPTURE__SOURCE).toBe(existsSync("/dev/vigil") ? "kernel" : "afpacket");
  });

  it("runs nothing as root but what needs it, with the fewest capabilities", () => {
    const { services } = resolved(["compose.yaml"]);
    const privileged: Record<string, string[]> = { capture: ["NET_ADMIN", "NET_RAW"], rules: ["NET_ADMIN"], "nats-volume-init": ["CHOWN"], credentials: ["CHOWN"] };
    for (const [name, svc] of Object.entries(services)) {
      expect(svc.cap_drop, name).toEqual(["ALL"]);
      expect([...(svc.cap_add ?? [])].sort(), name).toEqual(privileged[name] ?? []);
      const uid = svc.user?.split(":")[0];
      if (privileged[name]) expect(uid, name).toBe("0");
      else expect(uid && uid !== "0" && uid !== "root", `${name} runs as ${svc.user}`).toBe(true);
      if (name !== "nats-volume-init" && name !== "credentials") {
        expect(svc.restart, name).toBe("unless-stopped");
        expect(svc.security_opt, name).toContain("no-new-privileges:true");
      }
    }
  });

  it("every long-running service has a health check (in compose or in its image)", () => {
    const { services } = resolved(["compose.yaml"]);
    for (const [name, svc] of Object.entries(services)) {
      if (name === "nats-volume-init" || name === "credentials") continue;
      const inImage = svc.build?.target ? /^HEALTHCHECK\s/m.test(targetBlock(svc.build.target)) : false;
      expect(Boolean(svc.healthcheck) || inImage, name).toBe(true);
    }
  });

  it("builds every Vigil service from a target of the one Dockerfile", () => {
    const { services } = resolved(["compose.yaml"]);
    for (const name of ["capture", "pst", "som", "rules", "console", "notify"]) {
      const svc = services[name];
      expect(svc.build?.dockerfile, name).toMatch(/deploy\/docker\/Dockerfile$/);
      expect(targets.has(svc.build!.target!), `${name}: Dockerfile has no target ${svc.build?.target}`).toBe(true);
      expect(svc.image).toBe(`vigil/${name}:dev`);
      // The target's command starts the daemon with its heap flags, as every launcher does (packages/stack/src/node-flags.ts).
      const target = dockerfile.slice(dockerfile.indexOf(`AS ${svc.build!.target}\n`));
      const cmd = /^CMD (\[.*\])$/m.exec(target.slice(0, target.indexOf("\nFROM ") > 0 ? target.indexOf("\nFROM ") : undefined));
      expect(cmd, `${name}: no CMD in its target`).not.toBeNull();
      expect(JSON.parse(cmd![1]), name).toEqual(["node", ...nodeFlagsOf(name), `services/${name}/dist/main.js`]);
    }
    // Local base images replace the public ones by variable.
    const local = resolved(["compose.yaml"], { VIGIL_NATS_IMAGE: "vigil-local/nats:2", VIGIL_TAG: "t1" });
    expect(local.services.nats.image).toBe("vigil-local/nats:2");
    expect(local.services.pst.image).toBe("vigil/pst:t1");
  });

  it("lets detectors scale, keeps capture and the console on the host's network, rules in a namespace of their own", () => {
    const { services } = resolved(["compose.yaml"]);
    for (const name of ["pst", "som", "notify"]) {
      const svc = services[name];
      // Fixed names or published ports would make a second replica fail to start.
      expect(svc.container_name, name).toBeUndefined();
      expect(svc.ports ?? [], name).toEqual([]);
      expect(svc.network_mode, name).toBeUndefined();
      expect(svc.environment!.VIGIL_NATS__SERVERS).toBe("[nats://nats:4222]");
    }
    for (const name of ["capture", "console"]) {
      expect(services[name].network_mode, name).toBe("host");
      expect(services[name].environment!.VIGIL_NATS__SERVERS).toBe("[nats://127.0.0.1:4222]");
    }
    // Not the host's firewall by default: rules share the enforcement container's namespace, enforcing with nftables there.
    expect(services.rules.network_mode).toMatch(/^(service|container):enforcement/);
    expect(services.rules.environment!.VIGIL_RULES__ENFORCER).toBe("nftables");
    // The lab's attackers are blocked from the start: no warm-up unless asked for (the image's vigil.yaml has 24h).
    expect(services.rules.environment!.VIGIL_RULES__WARMUP).toBe("0");
    expect(services.rules.environment!.VIGIL_NATS__SERVERS).toBe("[nats://nats:4222]");
    expect(services.rules.ports ?? []).toEqual([]);
    expect(services.enforcement.networks).toBeDefined();
    // The console reaches rules over the control socket on the shared state volume.
    expect(services.console.environment!.VIGIL_CONSOLE__RULES__ADDRESS).toBe("unix:/var/lib/vigil/control.sock");
    const stateOf = (svc: ComposeService) => JSON.stringify(svc.volumes ?? []);
    expect(stateOf(services.console)).toMatch(/vigil-state/);
    expect(stateOf(services.rules)).toMatch(/vigil-state/);
    // The capture interface comes from the environment, eth0 when unset.
    expect(services.capture.environment!.VIGIL_CAPTURE__INTERFACE).toBe("eth0");
    expect(resolved(["compose.yaml"], { VIGIL_CAPTURE_INTERFACE: "ens3" }).services.capture.environment!.VIGIL_CAPTURE__INTERFACE).toBe("ens3");
    // The overlay puts rules on the host's firewall, and Prometheus follows them there.
    const host = resolved(["compose.yaml", "deploy/compose.host-enforcement.yaml"]).services;
    expect(host.rules.network_mode).toBe("host");
    expect(host.rules.environment!.VIGIL_RULES__ENFORCER).toBe("auto");
    expect(host.rules.environment!.VIGIL_NATS__SERVERS).toBe("[nats://127.0.0.1:4222]");
    const promConfig = (svc: ComposeService) => mountsOf(svc).find((m) => m.target === "/etc/prometheus/prometheus.yml")!.source;
    expect(promConfig(services.prometheus)).toMatch(/prometheus-lab\.yml$/);
    expect(promConfig(host.prometheus)).toMatch(/prometheus-lab-host-enforcement\.yml$/);
    expect(mountsOf(host.prometheus).filter((m) => m.target === "/etc/prometheus/prometheus.yml")).toHaveLength(1);
    const scrapes = (f: string) => readFileSync(join(repoRoot, "deploy/prometheus", f), "utf8");
    expect(scrapes("prometheus-lab.yml")).toContain('"enforcement:9473"');
    expect(scrapes("prometheus-lab-host-enforcement.yml")).toContain('"172.30.47.1:9473"');
    // Apart from the rules target the two files say the same.
    const strip = (t: string) => t.replace(/^[ \t]*#.*\n/gm, "").replace(/"enforcement:9473"|"172\.30\.47\.1:9473"/, "RULES");
    expect(strip(scrapes("prometheus-lab-host-enforcement.yml"))).toBe(strip(scrapes("prometheus-lab.yml")));
    // Published ports stay on the host's loopback.
    for (const [name, svc] of Object.entries(services))
      for (const p of (svc.ports ?? []) as Array<{ host_ip?: string } | string>)
        expect(typeof p === "string" ? p.split(":")[0] : p.host_ip, `${name} publishes ${JSON.stringify(p)}`).toBe("127.0.0.1");
  });

  it("keeps JetStream on a volume and mounts configuration that exists", () => {
    const { services } = resolved(["compose.yaml"]);
    const mounts = mountsOf;
    const natsData = mounts(services.nats).find((m) => m.target === "/data");
    expect(natsData?.type).toBe("volume");
    const natsConf = readFileSync(join(repoRoot, "deploy/config/nats-lab.conf"), "utf8");
    expect(natsConf).toMatch(/jetstream\s*\{[^}]*store_dir:\s*\/data/);
    for (const [name, svc] of Object.entries(services))
      for (const m of mounts(svc)) if (m.type === "bind") expect(existsSync(m.source), `${name} mounts ${m.source}`).toBe(true);
    // As nats-server finds it in the container: the users file the credentials service generates beside it.
    const dir = mkdtempSync(join(tmpdir(), "vigil-compose-nats-"));
    try {
      copyFileSync(join(repoRoot, "deploy/config/nats-lab.conf"), join(dir, "nats-server.conf"));
      createNatsAuth(join(dir, "secrets"));
      const r = spawnSync("nats-server", ["-c", join(dir, "nats-server.conf"), "-t"], { encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Security issue 12: the lab's bus had no authentication and its console ran with auth: none.
  it("gives every service its own NATS user, from the secrets volume the credentials service fills, and the console a login", () => {
    const { services } = resolved(["compose.yaml"]);
    const natsMounts = mountsOf(services.nats);
    expect(natsMounts.find((m) => m.target === "/etc/nats/secrets")?.source).toBe("vigil-secrets");
    expect(mountsOf(services.credentials).find((m) => m.target === "/secrets")?.source).toBe("vigil-secrets");
    expect(JSON.stringify(services.nats)).toContain("credentials");
    for (const name of NATS_SERVICES) {
      const svc = services[name];
      expect(svc.environment!.VIGIL_NATS__USER, name).toBe(name);
      expect(svc.environment!.VIGIL_NATS__PASSWORD_FILE, name).toBe(`/run/vigil-secrets/nats-${name}.password`);
      expect(mountsOf(svc).find((m) => m.target === "/run/vigil-secrets"), name).toMatchObject({ source: "vigil-secrets" });
    }
    // The overlays keep the credentials.
    const host = resolved(["compose.yaml", "deploy/compose.host-enforcement.yaml"]).services;
    expect(host.rules.environment!.VIGIL_NATS__USER).toBe("rules");
    expect(services.console.environment!.VIGIL_CONSOLE__AUTH).toBe("token");
    expect(services.console.environment!.VIGIL_CONSOLE__TOKEN_FILE).toBe("/run/vigil-secrets/console.token");
    expect(resolved(["compose.yaml"], { VIGIL_CONSOLE_AUTH: "none" }).services.console.environment!.VIGIL_CONSOLE__AUTH).toBe("none");
  });

  it("the lab's nats-server refuses anonymous clients and a service's wrong password, and admits the services' users", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-compose-nats-"));
    const port = await freePort();
    // The lab's file as it is, but for the ports and the JetStream store (the container's /data).
    const conf = readFileSync(join(repoRoot, "deploy/config/nats-lab.conf"), "utf8").replace("store_dir: /data", `store_dir: ${JSON.stringify(join(dir, "js"))}`);
    writeFileSync(join(dir, "nats-server.conf"), conf);
    const auth = createNatsAuth(join(dir, "secrets"));
    const server = spawn("nats-server", ["-c", join(dir, "nats-server.conf"), "-a", "127.0.0.1", "-p", String(port), "-m", String(await freePort())], { stdio: "ignore" });
    try {
      await waitFor("the lab's nats-server", () => portOpen(port).then((ok) => ok || null), 10_000, 50);
      const refused = (opts: object) => connect({ servers: [`127.0.0.1:${port}`], reconnect: false, ...opts }).then(
        async (nc) => (await nc.close(), "admitted"),
        (err: Error) => err.message,
      );
      expect(await refused({})).toMatch(/authorization/i);
      expect(await refused({ user: "rules", pass: "not-the-password" })).toMatch(/authorization/i);
      for (const s of NATS_SERVICES) expect(await refused({ user: s, pass: auth.credentials[s].password }), s).toBe("admitted");
    } finally {
      await stopChild(server, 5000);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

const grafanaOf = (env: Record<string, string> = {}) =>
  resolved(["compose.yaml"], env).services.grafana as ComposeService & { depends_on?: Record<string, { condition: string }> };

// Security review (LOW): the lab's Grafana let anyone on the host in as a viewer, and its admin in with `vigil-lab`.
describe("the lab's Grafana", () => {
  it.skipIf(composeMissing)("lets nobody in anonymously unless asked, and takes its admin password from the credentials service", () => {
    const g = grafanaOf();
    expect(g.environment!.GF_AUTH_ANONYMOUS_ENABLED).toBe("false");
    expect(g.environment!.GF_SECURITY_ADMIN_PASSWORD).toBeUndefined();
    expect(JSON.stringify(g)).not.toContain("vigil-lab");
    expect(g.environment!.GF_SECURITY_ADMIN_PASSWORD__FILE).toBe("/run/vigil-secrets/grafana-admin.password");
    expect(mountsOf(g).find((m) => m.target === "/run/vigil-secrets")).toMatchObject({ source: "vigil-secrets" });
    expect(g.depends_on?.credentials).toEqual({ condition: "service_completed_successfully" });
    expect(grafanaOf({ VIGIL_GRAFANA_ANONYMOUS: "true" }).environment!.GF_AUTH_ANONYMOUS_ENABLED).toBe("true");
    // The credentials service makes the file, for Grafana's uid alone, passing on VIGIL_GRAFANA_PASSWORD when set.
    const creds = readFileSync(join(repoRoot, "compose.yaml"), "utf8");
    expect(creds).toMatch(/node deploy\/scripts\/credentials\.mjs \/secrets --grafana;/);
    expect(creds).toMatch(/chown 472:0 \/secrets\/grafana-admin\.password;/);
    expect(creds).toMatch(/VIGIL_GRAFANA_PASSWORD: \$\{VIGIL_GRAFANA_PASSWORD:-\}/);
  });

  it("credentials.mjs --grafana: a generated password kept across runs, or the one VIGIL_GRAFANA_PASSWORD gives; 0600", () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-grafana-creds-"));
    const script = join(repoRoot, "deploy/scripts/credentials.mjs");
    const run = (secrets: string, env: Record<string, string> = {}) => {
      const r = spawnSync(process.execPath, [script, secrets, "--grafana"], { encoding: "utf8", env: { ...process.env, VIGIL_GRAFANA_PASSWORD: "", ...env } });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe("");
      return readFileSync(join(secrets, "grafana-admin.password"), "utf8").trim();
    };
    try {
      const made = run(join(dir, "a"));
      expect(made).toMatch(/^[\w-]{24,}$/);
      expect(statSync(join(dir, "a/grafana-admin.password")).mode & 0o777).toBe(0o600);
      expect(run(join(dir, "a"))).toBe(made);
      expect(run(join(dir, "b"), { VIGIL_GRAFANA_PASSWORD: "chosen by the operator" })).toBe("chosen by the operator");
      // Without --grafana (install.sh), no such file: an install has no Grafana.
      spawnSync(process.execPath, [script, join(dir, "c")]);
      expect(existsSync(join(dir, "c/grafana-admin.password"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
