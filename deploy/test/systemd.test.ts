import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { controlSocket, stateDir } from "@vigil/lifecycle";
import { nodeFlagsOf } from "@vigil/stack";
import { repoRoot } from "@vigil/testing";

const unitsDir = join(repoRoot, "deploy/systemd");
const SERVICES = ["capture", "pst", "som", "rules", "console"] as const;
const UNITS = ["vigil.target", "vigil-nats.service", ...SERVICES.map((s) => `vigil-${s}.service`)];

/** A unit file as section -> key -> values (keys may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = new Map();
      out.set(sec[1], section);
      continue;
    }
    const eq = line.indexOf("=");
    if (!section || eq < 0) throw new Error(`not a unit file line: ${line}`);
    const key = line.slice(0, eq);
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}
const unit = (name: string) => parseUnit(readFileSync(join(unitsDir, name), "utf8"));
const last = (u: ReturnType<typeof parseUnit>, sec: string, key: string) => u.get(sec)?.get(key)?.at(-1);
const words = (v: string | undefined) => new Set((v ?? "").split(/\s+/).filter(Boolean));

/** Each service's own user (F17): the extra detector instances share their detector's. */
const USERS: Record<string, string> = {
  "vigil-nats.service": "vigil-nats",
  "vigil-capture.service": "vigil-capture",
  "vigil-pst.service": "vigil-pst",
  "vigil-pst@.service": "vigil-pst",
  "vigil-som.service": "vigil-som",
  "vigil-som@.service": "vigil-som",
  "vigil-rules.service": "vigil-rules",
  "vigil-console.service": "vigil-console",
};
/** What each keeps on disk, under /var/lib: capture and rules keep nothing (rules live in JetStream). */
const STATE_DIRS: Record<string, string | undefined> = {
  "vigil-nats.service": "vigil-nats",
  "vigil-capture.service": undefined,
  "vigil-pst.service": "vigil/pst",
  "vigil-pst@.service": "vigil/pst",
  "vigil-som.service": "vigil/som",
  "vigil-som@.service": "vigil/som",
  "vigil-rules.service": undefined,
  "vigil-console.service": "vigil/console",
};
/** Only these may connect to the control socket: full control of the firewall. */
const CONTROL = new Set(["vigil-rules.service", "vigil-console.service"]);

const systemdAnalyze = spawnSync("systemd-analyze", ["--version"]).status === 0 ? null : "systemd-analyze is not installed";
const cliBuilt = existsSync(join(repoRoot, "packages/cli/dist/main.js"))
  ? null
  : "the checkout is not built (packages/cli/dist/main.js missing): run node scripts/build.mjs";

describe("systemd units", () => {
  it("every unit hardens the service and grants only the capabilities it needs", () => {
    const caps: Record<string, string[]> = {
      "vigil-capture.service": ["CAP_NET_ADMIN", "CAP_NET_RAW"],
      "vigil-rules.service": ["CAP_NET_ADMIN"],
      "vigil-pst.service": [],
      "vigil-som.service": [],
      "vigil-console.service": [],
      "vigil-nats.service": [],
      "vigil-pst@.service": [],
      "vigil-som@.service": [],
    };
    for (const [name, want] of Object.entries(caps)) {
      const u = unit(name);
      const svc = (k: string) => last(u, "Service", k);
      expect(svc("NoNewPrivileges"), name).toBe("yes");
      expect(svc("ProtectSystem"), name).toBe("strict");
      expect(svc("ProtectHome"), name).toBe("yes");
      expect(svc("PrivateTmp"), name).toBe("yes");
      expect(svc("User"), name).toBe(USERS[name]);
      expect(svc("Restart"), name).toBe("on-failure");
      expect([...words(svc("CapabilityBoundingSet"))].sort(), name).toEqual(want);
      expect([...words(svc("AmbientCapabilities"))].sort(), name).toEqual(want);
      expect(last(u, "Unit", "PartOf"), name).toBe("vigil.target");
      expect(last(u, "Install", "WantedBy"), name).toBe("vigil.target");
      if (name !== "vigil-nats.service") {
        expect(svc("StateDirectory"), name).toBe(STATE_DIRS[name]);
        const service = name.replace(/^vigil-|@?\.service$/g, "");
        // The daemon's heap flags, as every launcher gives them (packages/stack/src/node-flags.ts).
        expect(svc("ExecStart"), name).toBe(["/opt/vigil/bin/node", ...nodeFlagsOf(service), `/opt/vigil/services/${service}/dist/main.js`].join(" "));
        expect(u.get("Service")!.get("Environment")!.join(" "), name).toContain("VIGIL_CONFIG=/etc/vigil/vigil.yaml");
      }
      // Only capture may touch a device, and only the ring.
      if (name === "vigil-capture.service") {
        expect(svc("DevicePolicy")).toBe("closed");
        expect(u.get("Service")!.get("DeviceAllow")).toEqual(["/dev/vigil rw"]);
        expect(words(svc("RestrictAddressFamilies")).has("AF_PACKET")).toBe(true);
      } else {
        expect(svc("PrivateDevices"), name).toBe("yes");
        expect(words(svc("RestrictAddressFamilies")).has("AF_PACKET"), name).toBe(false);
      }
    }
  });

  it("extra detector instances take their name and metrics port from the instance", () => {
    for (const d of ["pst", "som"]) {
      const env = unit(`vigil-${d}@.service`).get("Service")!.get("Environment")!.join(" ");
      expect(env).toContain(`VIGIL_${d.toUpperCase()}__METRICS__PORT=%i`);
      expect(env).toContain(`VIGIL_${d.toUpperCase()}__INSTANCE=%H-${d}-%i`);
    }
  });

  it("vigil.target pulls in every service", () => {
    const wants = words(last(unit("vigil.target"), "Unit", "Wants"));
    for (const u of UNITS.slice(1)) expect(wants.has(u), u).toBe(true);
  });
});

/** A unit's Environment= lines as variables (the units quote nothing). */
function envOf(name: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of unit(name).get("Service")?.get("Environment") ?? [])
    for (const w of line.split(/\s+/).filter(Boolean)) env[w.slice(0, w.indexOf("="))] = w.slice(w.indexOf("=") + 1);
  return env;
}
/** sysusers.d lines: type, name, then the rest. */
const sysusers = () =>
  readFileSync(join(unitsDir, "vigil.sysusers.conf"), "utf8")
    .split("\n")
    .filter((l) => l.trim() && !l.trim().startsWith("#"))
    .map((l) => l.trim().split(/\s+/));
/** tmpfiles.d lines: path -> [type, mode, user, group]. */
function tmpfiles(text = readFileSync(join(unitsDir, "vigil.tmpfiles.conf"), "utf8")): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const l of text.split("\n").filter((x) => x.trim() && !x.trim().startsWith("#"))) {
    const [type, path, mode, user, group] = l.trim().split(/\s+/);
    out.set(path, [type, mode, user, group]);
  }
  return out;
}

describe("one user per service (F17)", () => {
  const names = Object.keys(USERS);
  const svc = (name: string, key: string) => last(unit(name), "Service", key);

  it("runs every service as its own user and group: one compromised service is not all of them", () => {
    for (const name of names) {
      expect(svc(name, "User"), name).toBe(USERS[name]);
      expect(svc(name, "Group"), name).toBe(USERS[name]);
      expect(svc(name, "DynamicUser"), name).toBeUndefined();
      // Files a service makes are its own: no group write, nothing for others.
      expect(svc(name, "UMask"), name).toBe("0027");
    }
    // Distinct per service; only an extra instance shares its detector's.
    const byService = new Map(names.map((n) => [n.replace(/@?\.service$/, ""), USERS[n]]));
    expect(new Set(byService.values()).size).toBe(byService.size);
  });

  it("gives only rules and the console the control group, and nobody else a way to the socket", () => {
    for (const name of names) {
      const groups = words(svc(name, "SupplementaryGroups"));
      expect(groups.has("vigil-control"), name).toBe(CONTROL.has(name));
      // Group vigil reads /etc/vigil; no unit gets another service's group.
      for (const g of groups) expect(["vigil", "vigil-control"], `${name}: ${g}`).toContain(g);
    }
    const rules = envOf("vigil-rules.service");
    // The socket lives in the rules unit's own runtime directory, which the service gives to vigil-control (0750).
    expect(svc("vigil-rules.service", "RuntimeDirectory")).toBe("vigil");
    expect(svc("vigil-rules.service", "RuntimeDirectoryMode")).toBe("0750");
    expect(rules.VIGIL_RULES__GRPC__SOCKET_GROUP).toBe("vigil-control");
    const socket = `/run/${svc("vigil-rules.service", "RuntimeDirectory")}/control.sock`;
    // The rules service listens, the console and the installed CLI connect, all at one path (the code decides, from the environment).
    expect(controlSocket(rules)).toBe(socket);
    expect(controlSocket(envOf("vigil-console.service"))).toBe(socket);
    expect(controlSocket({})).toBe(socket);
    // No other service is told where it is, nor has a runtime directory it could share.
    for (const name of names.filter((n) => n !== "vigil-rules.service")) expect(svc(name, "RuntimeDirectory"), name).toBeUndefined();
    for (const name of names.filter((n) => !CONTROL.has(n))) expect(envOf(name).VIGIL_CONTROL_SOCKET, name).toBeUndefined();
  });

  it("gives each service a state directory of its own, where the code keeps that service's state", () => {
    const owners = new Map<string, string>();
    for (const name of names) {
      const dir = STATE_DIRS[name];
      expect(svc(name, "StateDirectory"), name).toBe(dir);
      if (!dir) continue;
      expect(svc(name, "StateDirectoryMode"), name).toBe("0750");
      // Shared only between instances of one service (one user).
      if (owners.has(dir)) expect(owners.get(dir), dir).toBe(USERS[name]);
      owners.set(dir, USERS[name]);
    }
    // The detectors keep learned models and feedback in <state root>/<service>: the unit's own directory.
    for (const d of ["pst", "som"]) for (const n of [`vigil-${d}.service`, `vigil-${d}@.service`]) expect(stateDir({}, d, envOf(n)), n).toBe(`/var/lib/${STATE_DIRS[n]}`);
    // The console's state (a login token it made itself) is its directory; it reads no detector's.
    expect(envOf("vigil-console.service").VIGIL_STATE_DIR).toBe(`/var/lib/${STATE_DIRS["vigil-console.service"]}`);
  });

  it("defines every user and group in sysusers.d, with vigil-control holding rules and the console only", () => {
    const lines = sysusers();
    const users = lines.filter((l) => l[0] === "u").map((l) => l[1]);
    expect(users.sort()).toEqual([...new Set(Object.values(USERS))].sort());
    expect(lines.filter((l) => l[0] === "g").map((l) => l[1]).sort()).toEqual(["vigil", "vigil-control"]);
    const members = (g: string) => lines.filter((l) => l[0] === "m" && l[2] === g).map((l) => l[1]).sort();
    expect(members("vigil-control")).toEqual(["vigil-console", "vigil-rules"]);
    expect(members("vigil")).toEqual(users.sort());
    // The account the services used to share is gone.
    expect(lines.some((l) => l[1] === "vigil" && l[0] === "u")).toBe(false);
    for (const l of lines.filter((x) => x[0] === "u")) expect(l.at(-1), l[1]).toBe("/usr/sbin/nologin");
  });

  it("gives the capture ring to the capture service's group only", () => {
    const rule = readFileSync(join(unitsDir, "60-vigil.rules"), "utf8").split("\n").find((l) => l.startsWith("KERNEL=="))!;
    expect(rule).toContain(`GROUP="${svc("vigil-capture.service", "Group")}"`);
    expect(rule).toContain('MODE="0660"');
    expect(rule).toContain('OWNER="root"');
  });

  it("records each NATS credential as its service's user's alone (tmpfiles.d)", () => {
    const t = tmpfiles();
    for (const name of names) {
      const file = envOf(name).VIGIL_NATS__PASSWORD_FILE;
      if (!file) continue;
      expect(t.get(file), `${name}: ${file}`).toEqual(["z", "0600", USERS[name], USERS[name]]);
    }
    expect(t.get("/etc/vigil/secrets/console.token")).toEqual(["z", "0600", "vigil-console", "vigil-console"]);
    expect(t.get("/etc/vigil/secrets/nats-users.conf")).toEqual(["z", "0600", "vigil-nats", "vigil-nats"]);
    // The directory lets the services find their file, nobody else look in.
    expect(t.get("/etc/vigil/secrets")).toEqual(["z", "0750", "root", "vigil"]);
    // The host's settings, which may hold tokens: read by systemd (root) for the units, by nobody else.
    expect(t.get("/etc/default/vigil")).toEqual(["z", "0640", "root", "vigil"]);
    expect(t.get("/var/lib/vigil")).toEqual(["d", "0755", "root", "root"]);
    // Models an operator trains: root writes, only their detector reads.
    expect(t.get("/etc/vigil/models/pst")).toEqual(["d", "0750", "root", "vigil-pst"]);
    expect(t.get("/etc/vigil/models/som")).toEqual(["d", "0750", "root", "vigil-som"]);
    // Every file install.sh makes in secrets/ is listed.
    const made = mkdtempSync(join(tmpdir(), "vigil-creds-"));
    try {
      execFileSync(process.execPath, [join(repoRoot, "deploy/scripts/credentials.mjs"), made]);
      for (const f of readdirSync(made)) expect(t.has(`/etc/vigil/secrets/${f}`), f).toBe(true);
    } finally {
      rmSync(made, { recursive: true, force: true });
    }
  });
});

describe.skipIf(cliBuilt)(`deploy/install.sh ${cliBuilt ? `(skipped: ${cliBuilt})` : ""}`, () => {
  let dest: string;
  beforeAll(() => {
    dest = mkdtempSync(join(tmpdir(), "vigil-install-"));
    execFileSync(join(repoRoot, "deploy/install.sh"), ["--destdir", dest, "--no-build"], { stdio: ["ignore", "ignore", "pipe"] });
  }, 120_000);
  afterAll(() => rmSync(dest, { recursive: true, force: true }));

  it("stages the services, the CLI, the units and the configuration", () => {
    for (const u of [...UNITS, "vigil-pst@.service", "vigil-som@.service"]) expect(existsSync(join(dest, "etc/systemd/system", u)), u).toBe(true);
    expect(readFileSync(join(dest, "etc/default/vigil"), "utf8")).toMatch(/^VIGIL_CAPTURE__SOURCE=(kernel|afpacket)$/m);
    // It may hold tokens (VIGIL_*__TOKEN): not for every local user to read.
    expect(statSync(join(dest, "etc/default/vigil")).mode & 0o777).toBe(0o640);
    for (const f of ["etc/vigil/vigil.yaml", "etc/vigil/nats-server.conf", "usr/local/bin/vigil", "usr/lib/sysusers.d/vigil.conf", "etc/udev/rules.d/60-vigil.rules"])
      expect(existsSync(join(dest, f)), f).toBe(true);
    expect(readFileSync(join(dest, "usr/local/bin/vigil"), "utf8")).toContain("exec /opt/vigil/bin/node /opt/vigil/packages/cli/dist/main.js");
    for (const s of SERVICES)
      expect(existsSync(join(dest, "opt/vigil/services", s, "dist/main.js")), s).toBe(existsSync(join(repoRoot, "services", s, "dist/main.js")));
    // Production dependencies only.
    const modules = readdirSync(join(dest, "opt/vigil/node_modules"));
    for (const dev of ["typescript", "vitest", "ts-proto"]) expect(modules, dev).not.toContain(dev);
    expect(existsSync(join(dest, "opt/vigil/node_modules/@vigil/testing"))).toBe(false);
    expect(existsSync(join(dest, "opt/vigil/packages/testing"))).toBe(false);
  });

  it("generates the install's credentials (0600, never printed), and nats-server accepts the users they define (F2, F22)", () => {
    const secrets = join(dest, "etc/vigil/secrets");
    for (const s of ["capture", "pst", "som", "rules", "console"]) {
      const file = join(secrets, `nats-${s}.password`);
      expect(statSync(file).mode & 0o777, file).toBe(0o600);
      expect(readFileSync(file, "utf8").trim().length).toBeGreaterThanOrEqual(24);
      const units = s === "pst" || s === "som" ? [`vigil-${s}.service`, `vigil-${s}@.service`] : [`vigil-${s}.service`];
      for (const u of units)
        expect(readFileSync(join(dest, "etc/systemd/system", u), "utf8"), u).toContain(`VIGIL_NATS__USER=${s} VIGIL_NATS__PASSWORD_FILE=/etc/vigil/secrets/nats-${s}.password`);
    }
    expect(statSync(join(secrets, "console.token")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dest, "etc/systemd/system/vigil-console.service"), "utf8")).toContain("VIGIL_CONSOLE__TOKEN_FILE=/etc/vigil/secrets/console.token");
    const users = readFileSync(join(secrets, "nats-users.conf"), "utf8");
    expect(users).toMatch(/user: "pst".*\n.*publish: \{ allow: \["vigil\.verdicts\.pst"/);
    // The shipped nats-server.conf includes them; nats-server -t checks the whole configuration.
    const conf = readFileSync(join(dest, "etc/vigil/nats-server.conf"), "utf8").replace("/var/lib/vigil-nats", join(dest, "nats-store"));
    writeFileSync(join(dest, "etc/vigil/nats-test.conf"), conf);
    const check = spawnSync("nats-server", ["-t", "-c", join(dest, "etc/vigil/nats-test.conf")], { encoding: "utf8" });
    expect(check.status, check.stderr + check.stdout).toBe(0);
    // A reinstall keeps them: running services are not locked out.
    const before = readFileSync(join(secrets, "nats-rules.password"), "utf8");
    execFileSync(join(repoRoot, "deploy/install.sh"), ["--destdir", dest, "--no-build"], { stdio: ["ignore", "ignore", "pipe"] });
    expect(readFileSync(join(secrets, "nats-rules.password"), "utf8")).toBe(before);
  }, 120_000);

  it("the staged tree runs on its own", () => {
    const out = execFileSync(join(dest, "opt/vigil/bin/node"), [join(dest, "opt/vigil/packages/cli/dist/main.js"), "--help"], {
      cwd: "/",
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin" },
    });
    expect(out).toMatch(/^\s+up\s+start the whole stack/m);
  });

  for (const s of SERVICES) {
    const notBuilt = existsSync(join(repoRoot, "services", s, "dist/main.js")) ? null : `services/${s} is not built`;
    it.skipIf(notBuilt)(`the staged ${s} daemon loads every module it needs and validates its configuration ${notBuilt ? `(skipped: ${notBuilt})` : ""}`, () => {
      // A misspelt key stops the daemon right after its imports resolved: a
      // missing dependency or native addon in the staged tree would fail first.
      const cfg = join(dest, `bad-${s}.yaml`);
      writeFileSync(cfg, `${s}:\n  noSuchKey: 1\n`);
      const r = spawnSync(join(dest, "opt/vigil/bin/node"), [join(dest, "opt/vigil/services", s, "dist/main.js")], {
        cwd: "/",
        encoding: "utf8",
        env: { PATH: "/usr/bin:/bin", VIGIL_CONFIG: cfg, VIGIL_STATE_DIR: dest },
        timeout: 30_000,
      });
      expect(r.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)|\.node/);
      expect(r.status, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/noSuchKey/);
    });
  }

  const addon = "packages/packet-sources/native/build/Release/vigil_packet_sources.node";
  const addonMissing = existsSync(join(repoRoot, addon)) ? null : `${addon} is not built`;
  it.skipIf(addonMissing)(`ships capture's native addon, loadable on its own ${addonMissing ? `(skipped: ${addonMissing})` : ""}`, () => {
    // capture loads it only when a source opens: check it directly.
    const out = execFileSync(join(dest, "opt/vigil/bin/node"), ["-e", `console.log(Object.keys(require(${JSON.stringify(join(dest, "opt/vigil", addon))})).length)`], {
      cwd: "/",
      encoding: "utf8",
    });
    expect(Number(out.trim())).toBeGreaterThan(0);
    expect(existsSync(join(dest, "opt/vigil/packages/packet-sources/native/build/Release/obj.target"))).toBe(false);
  });

  it("an upgrade keeps an edited configuration and offers the new default beside it", () => {
    const cfg = join(dest, "etc/vigil/vigil.yaml");
    writeFileSync(cfg, "nats:\n  servers: [nats://10.1.2.3:4222]\n");
    // /etc/default/vigil as an older install left it: world-readable, with a token in it since.
    const defaults = join(dest, "etc/default/vigil");
    appendFileSync(defaults, "VIGIL_RULES__GRPC__TOKEN=kept-secret\n");
    chmodSync(defaults, 0o644);
    execFileSync(join(repoRoot, "deploy/install.sh"), ["--destdir", dest, "--no-build"], { stdio: ["ignore", "ignore", "pipe"] });
    expect(readFileSync(cfg, "utf8")).toContain("10.1.2.3");
    expect(readFileSync(defaults, "utf8")).toContain("VIGIL_RULES__GRPC__TOKEN=kept-secret");
    expect(statSync(defaults).mode & 0o777).toBe(0o640);
    expect(readFileSync(`${cfg}.dist`, "utf8")).toBe(readFileSync(join(repoRoot, "deploy/config/vigil.yaml"), "utf8"));
    expect(existsSync(join(dest, "opt/vigil.previous/packages/cli/dist/main.js"))).toBe(true);
  }, 120_000);

  it("--uninstall removes the services, units and CLI but keeps the configuration", () => {
    const copy = mkdtempSync(join(tmpdir(), "vigil-uninstall-"));
    try {
      execFileSync(join(repoRoot, "deploy/install.sh"), ["--destdir", copy, "--no-build"], { stdio: ["ignore", "ignore", "pipe"] });
      execFileSync(join(repoRoot, "deploy/install.sh"), ["--destdir", copy, "--uninstall"], { stdio: ["ignore", "ignore", "pipe"] });
      for (const gone of ["opt/vigil", "usr/local/bin/vigil", ...UNITS.map((u) => `etc/systemd/system/${u}`)]) expect(existsSync(join(copy, gone)), gone).toBe(false);
      expect(existsSync(join(copy, "etc/vigil/vigil.yaml"))).toBe(true);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  }, 120_000);

  it("refuses unknown options and a relative prefix", () => {
    const bad = spawnSync(join(repoRoot, "deploy/install.sh"), ["--frobnicate"], { encoding: "utf8" });
    expect(bad.status).toBe(64);
    expect(bad.stderr).toContain("unknown option --frobnicate");
    const rel = spawnSync(join(repoRoot, "deploy/install.sh"), ["--destdir", dest, "--prefix", "opt/vigil"], { encoding: "utf8" });
    expect(rel.status).toBe(1);
    expect(rel.stderr).toContain("--prefix must be an absolute path");
  });

  describe.skipIf(systemdAnalyze)(`systemd-analyze ${systemdAnalyze ? `(skipped: ${systemdAnalyze})` : ""}`, () => {
    // The installed units name /opt/vigil; point them at the staged tree so that
    // verify can check the executables too.
    // Templates are checked as an instance of themselves.
    const INSTANCES: Record<string, string> = { "vigil-pst@9481.service": "vigil-pst@.service", "vigil-som@9482.service": "vigil-som@.service" };
    function rendered(): string {
      const dir = mkdtempSync(join(tmpdir(), "vigil-units-"));
      for (const u of [...UNITS, ...Object.keys(INSTANCES)]) {
        const text = readFileSync(join(dest, "etc/systemd/system", INSTANCES[u] ?? u), "utf8").replaceAll("/opt/vigil/", `${dest}/opt/vigil/`);
        writeFileSync(join(dir, u), text);
      }
      return dir;
    }

    it("verify finds nothing to complain about", () => {
      const dir = rendered();
      try {
        const r = spawnSync("systemd-analyze", ["verify", ...[...UNITS, ...Object.keys(INSTANCES)].map((u) => join(dir, u))], { encoding: "utf8" });
        expect(r.stderr.trim()).toBe("");
        expect(r.status).toBe(0);
        // The check itself works: a misspelt directive is reported.
        writeFileSync(join(dir, "vigil-pst.service"), readFileSync(join(dir, "vigil-pst.service"), "utf8").replace("ProtectHome=yes", "ProtectHomes=yes"));
        const bad = spawnSync("systemd-analyze", ["verify", join(dir, "vigil-pst.service")], { encoding: "utf8" });
        expect(bad.stderr).toMatch(/Unknown key '?ProtectHomes'?/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("every service's exposure is rated OK by systemd-analyze security", () => {
      const dir = rendered();
      try {
        for (const u of [...UNITS.slice(1), ...Object.keys(INSTANCES)]) {
          const r = spawnSync("systemd-analyze", ["security", "--offline=true", "--no-pager", join(dir, u)], { encoding: "utf8" });
          const m = /Overall exposure level for \S+: (\d+\.\d+) (\S+)/.exec(r.stdout);
          expect(m, `${u}: ${r.stdout.slice(-300)}${r.stderr}`).not.toBeNull();
          // 0 = fully locked down, 10 = unprotected; capture (raw sockets, a device) is the most exposed.
          expect(Number(m![1]), u).toBeLessThanOrEqual(2.5);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});


