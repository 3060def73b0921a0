import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type NatsServer } from "@vigil/stack";
import { freePort, repoRoot, stopChild, waitFor } from "@vigil/testing";
import { mainOf, serviceMissing } from "./support/services.js";

/**
 * Security review F17: every service ran as uid `vigil`, so the console and the
 * detectors could drive the firewall through the control socket, rewrite each
 * other's models and read each other's credentials. Here the accounts install.sh
 * makes are used for real: files are owned as the install leaves them, and the
 * real rules service and CLI run under those uids (setpriv).
 */
const INSTALL = join(repoRoot, "deploy/install.sh");
const CLI = join(repoRoot, "packages/cli/dist/main.js");
const tools = ["systemd-sysusers", "systemd-tmpfiles", "setpriv", "unshare"].find((t) => spawnSync(t, ["--version"]).status !== 0);
const skip =
  (process.getuid?.() !== 0 ? "needs root (chown, setpriv)" : null) ??
  (tools ? `${tools} is not installed` : null) ??
  (existsSync(CLI) ? null : "the CLI is not built (packages/cli/dist/main.js)");
const SERVICES = ["capture", "pst", "som", "rules", "console"] as const;

/** name -> [uid, gid] from a root's passwd, and name -> [gid, members] from its group file. */
function accounts(root: string) {
  const users = new Map<string, [number, number]>();
  for (const l of readFileSync(join(root, "etc/passwd"), "utf8").split("\n").filter(Boolean)) {
    const f = l.split(":");
    users.set(f[0], [Number(f[2]), Number(f[3])]);
  }
  const groups = new Map<string, [number, string[]]>();
  for (const l of readFileSync(join(root, "etc/group"), "utf8").split("\n").filter(Boolean)) {
    const f = l.split(":");
    groups.set(f[0], [Number(f[2]), f[3] ? f[3].split(",") : []]);
  }
  return { users, groups };
}

function install(dest: string): void {
  const r = spawnSync(INSTALL, ["--destdir", dest, "--no-build", "--users"], { encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`install.sh failed (${r.status}):\n${r.stderr}`);
}

describe.skipIf(skip)(`install.sh --users: one account per service (F17) ${skip ? `(skipped: ${skip})` : ""}`, () => {
  let dest: string;
  beforeAll(() => {
    dest = mkdtempSync(join(tmpdir(), "vigil-accounts-"));
    install(dest);
  }, 120_000);
  afterAll(() => rmSync(dest, { recursive: true, force: true }));

  it("creates a user per service and gives each only its own credential", () => {
    const { users, groups } = accounts(dest);
    const uids = SERVICES.map((s) => users.get(`vigil-${s}`)?.[0]);
    expect(new Set(uids).size).toBe(SERVICES.length);
    for (const u of uids) expect(u, "a system account").toBeGreaterThan(0);
    for (const s of SERVICES) {
      const st = statSync(join(dest, `etc/vigil/secrets/nats-${s}.password`));
      expect([st.uid, st.gid, st.mode & 0o777], s).toEqual([...users.get(`vigil-${s}`)!, 0o600]);
    }
    expect(statSync(join(dest, "etc/vigil/secrets/console.token")).uid).toBe(users.get("vigil-console")![0]);
    expect(statSync(join(dest, "etc/vigil/secrets/nats-users.conf")).uid).toBe(users.get("vigil-nats")![0]);
    expect(groups.get("vigil-control")![1].sort()).toEqual(["vigil-console", "vigil-rules"]);
    const secrets = statSync(join(dest, "etc/vigil/secrets"));
    expect([secrets.uid, secrets.gid, secrets.mode & 0o777]).toEqual([0, groups.get("vigil")![0], 0o750]);
    // The host's settings may hold tokens: root and group vigil only.
    const defaults = statSync(join(dest, "etc/default/vigil"));
    expect([defaults.uid, defaults.gid, defaults.mode & 0o777]).toEqual([0, groups.get("vigil")![0], 0o640]);
  });

  it("upgrades an install of the shared account: state to each service, operators to vigil-control, configuration and credentials kept", () => {
    const old = mkdtempSync(join(tmpdir(), "vigil-upgrade-"));
    try {
      // What the previous install.sh left: uid vigil owns everything, alice used the CLI through group vigil.
      mkdirSync(join(old, "etc/vigil/secrets"), { recursive: true });
      writeFileSync(join(old, "etc/passwd"), "root:x:0:0::/root:/bin/bash\nvigil:x:990:990::/var/lib/vigil:/usr/sbin/nologin\nalice:x:1500:1500::/home/alice:/bin/bash\n");
      writeFileSync(join(old, "etc/group"), "root:x:0:\nvigil:x:990:alice\nalice:x:1500:\n");
      const state = join(old, "var/lib/vigil");
      mkdirSync(join(state, "pst/models"), { recursive: true });
      mkdirSync(join(state, "som"));
      writeFileSync(join(state, "pst/models/web.json"), "{}\n");
      writeFileSync(join(state, "som/feedback.json"), "[]\n");
      writeFileSync(join(state, "console-login.token"), "made-by-the-old-console\n", { mode: 0o600 });
      writeFileSync(join(state, "control.sock"), "");
      writeFileSync(join(old, "etc/vigil/vigil.yaml"), "nats:\n  servers: [nats://10.1.2.3:4222]\n");
      writeFileSync(join(old, "etc/vigil/secrets/nats-pst.password"), "the-running-pst-password\n", { mode: 0o600 });
      for (const p of ["var/lib/vigil", "var/lib/vigil/pst", "var/lib/vigil/pst/models", "var/lib/vigil/pst/models/web.json", "var/lib/vigil/som", "var/lib/vigil/som/feedback.json", "var/lib/vigil/console-login.token", "etc/vigil/secrets", "etc/vigil/secrets/nats-pst.password"])
        chownSync(join(old, p), 990, 990);
      chmodSync(state, 0o750);
      chmodSync(join(old, "etc/vigil/secrets"), 0o700);

      install(old);

      const { users, groups } = accounts(old);
      const owner = (p: string) => [statSync(join(old, p)).uid, statSync(join(old, p)).gid];
      // The root of the state belongs to nobody's service; each service's part to that service alone.
      expect([...owner("var/lib/vigil"), statSync(state).mode & 0o777]).toEqual([0, 0, 0o755]);
      for (const p of ["var/lib/vigil/pst", "var/lib/vigil/pst/models/web.json"]) expect(owner(p), p).toEqual(users.get("vigil-pst"));
      for (const p of ["var/lib/vigil/som", "var/lib/vigil/som/feedback.json"]) expect(owner(p), p).toEqual(users.get("vigil-som"));
      expect(statSync(join(state, "pst")).mode & 0o777).toBe(0o750);
      expect(readFileSync(join(state, "console/console-login.token"), "utf8")).toBe("made-by-the-old-console\n");
      expect(owner("var/lib/vigil/console/console-login.token")).toEqual(users.get("vigil-console"));
      expect(existsSync(join(state, "control.sock"))).toBe(false);
      expect(existsSync(join(state, "console-login.token"))).toBe(false);
      // Kept: the edited configuration, the running services' passwords (now their own user's).
      expect(readFileSync(join(old, "etc/vigil/vigil.yaml"), "utf8")).toContain("10.1.2.3");
      expect(readFileSync(join(old, "etc/vigil/secrets/nats-pst.password"), "utf8")).toBe("the-running-pst-password\n");
      expect(owner("etc/vigil/secrets/nats-pst.password")).toEqual(users.get("vigil-pst"));
      // The operator keeps the control socket; the old group now only reads the configuration.
      expect(groups.get("vigil-control")![1].sort()).toEqual(["alice", "vigil-console", "vigil-rules"]);
      expect(groups.get("vigil")![0]).toBe(990);
      // What that ownership means, tried under the new uids: a detector writes its own models only, the console reads none.
      chmodSync(old, 0o755);
      const tryAs = (user: string, cmd: string[]) => spawnSync("setpriv", [`--reuid=${users.get(user)![0]}`, `--regid=${users.get(user)![1]}`, `--groups=${groups.get("vigil")![0]}`, ...cmd], { cwd: "/" }).status;
      expect(tryAs("vigil-pst", ["touch", join(state, "pst/models/new.json")])).toBe(0);
      expect(tryAs("vigil-som", ["touch", join(state, "pst/models/evil.json")])).not.toBe(0);
      expect(tryAs("vigil-som", ["cat", join(state, "pst/models/web.json")])).not.toBe(0);
      expect(tryAs("vigil-console", ["cat", join(state, "som/feedback.json")])).not.toBe(0);
      expect(tryAs("vigil-pst", ["touch", join(state, "som/feedback.json")])).not.toBe(0);
      expect(tryAs("vigil-pst", ["touch", join(state, "planted")])).not.toBe(0);
    } finally {
      rmSync(old, { recursive: true, force: true });
    }
  }, 120_000);

  it("the installed CLI looks for the socket in /run/vigil, or in a state directory its caller names", () => {
    const cli = join(dest, "usr-local-vigil");
    writeFileSync(cli, readFileSync(join(dest, "usr/local/bin/vigil"), "utf8").replaceAll("/opt/vigil/", `${dest}/opt/vigil/`), { mode: 0o755 });
    const run = (env: Record<string, string>) => spawnSync(cli, ["status"], { encoding: "utf8", env: { PATH: "/usr/bin:/bin", ...env }, timeout: 20_000 }).stderr;
    expect(run({})).toContain("unix:/run/vigil/control.sock");
    expect(run({ VIGIL_STATE_DIR: "/srv/lab-state" })).toContain("unix:/srv/lab-state/control.sock");
  });
});

const rulesMissing = skip ?? serviceMissing("rules");
describe.skipIf(rulesMissing)(`the control socket under the install's accounts (F17) ${rulesMissing ? `(skipped: ${rulesMissing})` : ""}`, () => {
  let root: string;
  let run: string;
  let nats: NatsServer;
  let rules: ChildProcess;
  let output = "";
  let ids: ReturnType<typeof accounts>;
  const uid = (name: string) => ids.users.get(name)![0];
  const gid = (name: string) => ids.groups.get(name)![0];

  /** A command as the given uid/gid with exactly these supplementary groups, as systemd would run it. */
  function as(user: [number, number], groups: number[], cmd: string[], env: Record<string, string> = {}) {
    const r = spawnSync("setpriv", [`--reuid=${user[0]}`, `--regid=${user[1]}`, groups.length ? `--groups=${groups.join(",")}` : "--clear-groups", ...cmd], {
      encoding: "utf8",
      cwd: "/",
      timeout: 20_000,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    });
    return { code: r.status, out: `${r.stdout}${r.stderr}` };
  }
  const status = (user: [number, number], groups: number[]) => as(user, groups, [process.execPath, CLI, "status", "--json"], { VIGIL_CONTROL_SOCKET: join(run, "control.sock") });

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "vigil-control-"));
    chmodSync(root, 0o755);
    install(root);
    ids = accounts(root);
    nats = await startNatsServer({ store: join(root, "nats") });
    // What systemd makes for RuntimeDirectory=vigil: the service's own, 0750.
    run = join(root, "run/vigil");
    mkdirSync(run, { recursive: true });
    chownSync(run, uid("vigil-rules"), gid("vigil-rules"));
    chmodSync(run, 0o750);
    const metricsPort = await freePort();
    const cfg = join(root, "etc/vigil/test.yaml");
    writeFileSync(cfg, JSON.stringify({ nats: { servers: [nats.url] }, rules: { enforcer: "dry-run", allowlistDefaults: false, metrics: { host: "127.0.0.1", port: metricsPort } } }), { mode: 0o644 });
    // The rules unit's identity: its user, groups vigil and vigil-control, names resolved in the install's own databases.
    const groups = [gid("vigil"), gid("vigil-control")].join(",");
    const script = `mount --bind "$ROOT/etc/group" /etc/group && mount --bind "$ROOT/etc/passwd" /etc/passwd && exec setpriv --reuid=${uid("vigil-rules")} --regid=${gid("vigil-rules")} --groups=${groups} "$NODE" "$MAIN"`;
    rules = spawn("unshare", ["--mount", "--", "sh", "-c", script], {
      cwd: "/",
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        ROOT: root,
        NODE: process.execPath,
        MAIN: mainOf("rules"),
        VIGIL_CONFIG: cfg,
        VIGIL_STATE_DIR: join(root, "var/lib/vigil"),
        // As the rules unit sets them, and systemd for its RuntimeDirectory.
        VIGIL_CONTROL_SOCKET: join(run, "control.sock"),
        VIGIL_RULES__GRPC__SOCKET_GROUP: "vigil-control",
        RUNTIME_DIRECTORY: run,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    for (const s of [rules.stdout!, rules.stderr!]) s.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-20_000)));
    const sock = join(run, "control.sock");
    const ready = await waitFor("the control socket, given to vigil-control", () => (rules.exitCode !== null ? "exited" : existsSync(sock) && statSync(run).gid === gid("vigil-control") ? "ok" : null), 45_000, 200);
    if (ready === "exited") throw new Error(`rules exited with ${rules.exitCode}:\n${output}`);
  }, 180_000);

  afterAll(async () => {
    if (rules) await stopChild(rules, 15_000);
    await nats?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 30_000);

  it("keeps the socket and its directory to the rules user and group vigil-control", () => {
    const sock = statSync(join(run, "control.sock"));
    expect([sock.uid, sock.gid, sock.mode & 0o777]).toEqual([uid("vigil-rules"), gid("vigil-control"), 0o660]);
    const dir = statSync(run);
    expect([dir.uid, dir.gid, dir.mode & 0o777]).toEqual([uid("vigil-rules"), gid("vigil-control"), 0o750]);
  });

  it("refuses the detectors, capture, the bus and nobody: none can drive the firewall", () => {
    for (const name of ["vigil-capture", "vigil-pst", "vigil-som", "vigil-nats"]) {
      const r = status(ids.users.get(name)!, [gid("vigil")]);
      expect(r.code, `${name}: ${r.out}`).not.toBe(0);
      expect(r.out, name).toMatch(/EACCES|permission denied/i);
      expect(r.out, name).toContain("vigil-control");
    }
    expect(status([65534, 65534], []).code).not.toBe(0);
  });

  it("lets the console and an operator in vigil-control in, and the operator not without it", () => {
    const console = status(ids.users.get("vigil-console")!, [gid("vigil"), gid("vigil-control")]);
    expect(console.code, console.out + output.slice(-2000)).toBe(0);
    expect(JSON.parse(console.out).enforcer).toBeTruthy();
    expect(status([1500, 1500], [gid("vigil-control")]).code).toBe(0);
    expect(status([1500, 1500], []).code).not.toBe(0);
  });

  it("lets each service read its own NATS credential and no other's", () => {
    const read = (user: string, file: string) => as(ids.users.get(user)!, [gid("vigil")], ["cat", join(root, "etc/vigil/secrets", file)]).code;
    for (const s of SERVICES) {
      expect(read(`vigil-${s}`, `nats-${s}.password`), s).toBe(0);
      for (const other of SERVICES.filter((o) => o !== s)) expect(read(`vigil-${s}`, `nats-${other}.password`), `${s} reads ${other}'s`).not.toBe(0);
    }
    expect(read("vigil-pst", "console.token")).not.toBe(0);
    expect(read("vigil-console", "nats-users.conf")).not.toBe(0);
    expect(read("vigil-nats", "nats-users.conf")).toBe(0);
  });
});
