// The DKMS install path for real, on this host, without loading anything into
// the host's kernel: deploy/dkms.sh (the step deploy/install.sh runs) registers
// kmod/ with Debian's dkms and builds and installs vigil.ko for the Debian 6.1
// kernel the VM tests boot (kmod/test/vm/kver.sh, which installs its headers
// when missing); the module must carry that kernel's vermagic and symbol CRCs,
// load in a VM booting that kernel (from the DKMS install path, by modprobe),
// and `dkms.sh remove` must leave nothing of it behind.
//
// The VM lock (/tmp/vigil-vm.lock) is held throughout: every VM run reads the
// host's /lib/modules, where the module sits while the test runs.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "@vigil/testing";
import { holdLock, type HeldLock } from "./support/docker.js";

const dkmsSh = join(repoRoot, "deploy/dkms.sh");
const dkmsConf = join(repoRoot, "kmod/dkms.conf");
const VM_LOCK = "/tmp/vigil-vm.lock";
const DKMS_LOCK = "/tmp/vigil-dkms-test.lock";
const VM_LOCK_WAIT_MS = Number(process.env.VIGIL_DKMS_VM_WAIT_MS ?? 20 * 60_000);

const run = (cmd: string, args: string[], timeout = 600_000, env: NodeJS.ProcessEnv = process.env): SpawnSyncReturns<string> =>
  spawnSync(cmd, args, { cwd: repoRoot, encoding: "utf8", timeout, maxBuffer: 32 << 20, env });
const must = (cmd: string, args: string[], timeout?: number): string => {
  const r = run(cmd, args, timeout);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal}):\n${(r.stderr || "").slice(-4000)}\n${(r.stdout || "").slice(-2000)}`);
  return r.stdout;
};

const confField = (name: string) => new RegExp(`^${name}="?([^"\\n]*)"?$`, "m").exec(existsSync(dkmsConf) ? readFileSync(dkmsConf, "utf8") : "")?.[1];
const NAME = confField("PACKAGE_NAME") ?? "vigil";
const VERSION = confField("PACKAGE_VERSION") ?? "";

const staticReason =
  process.getuid?.() !== 0
    ? "DKMS writes /usr/src, /var/lib/dkms and /lib/modules: needs root"
    : !existsSync(dkmsConf)
      ? "kmod/dkms.conf is missing"
      : run("dkms", ["--version"], 10_000).status !== 0
        ? "dkms is not installed (apt-get install dkms; scripts/deps/deploy.apt lists it)"
        : null;
if (staticReason) console.warn(`deploy/test/dkms: skipped: ${staticReason}`);

/** Files under a directory, relative, sorted ([] when it does not exist). */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).map(String).sort();
}

describe.skipIf(staticReason)(`DKMS install of vigil.ko ${staticReason ? `(skipped: ${staticReason})` : ""}`, () => {
  let reason: string | null = "not set up";
  let vmReason: string | null = null;
  let kver = "";
  let vmLock: HeldLock | null = null;
  let testLock: HeldLock | null = null;
  let installed = false;
  const before = { dkmsTree: [] as string[], updates: [] as string[], updatesExisted: false, mok: [] as string[] };
  const updatesDir = () => `/lib/modules/${kver}/updates`;

  beforeAll(async () => {
    testLock = await holdLock(DKMS_LOCK, 30 * 60_000);
    const status = run("dkms", ["status", "-m", NAME]).stdout.trim();
    const src = readdirSync("/usr/src").filter((d) => d.startsWith(`${NAME}-`));
    if (status || src.length) {
      reason = `${NAME} is already registered with DKMS on this host (${status || src.join(", ")}): the test would replace a real installation`;
      console.warn(`deploy/test/dkms: skipped: ${reason}`);
      return;
    }
    const kv = run(join(repoRoot, "kmod/test/vm/kver.sh"), [], 900_000);
    kver = kv.stdout.trim();
    if (kv.status !== 0 || !kver) {
      reason = `no Debian 6.1 kernel with headers here (kmod/test/vm/kver.sh: ${kv.stderr.trim().split("\n").at(-1)})`;
      console.warn(`deploy/test/dkms: skipped: ${reason}`);
      return;
    }
    if (!existsSync(`/lib/modules/${kver}/build`)) {
      reason = `the headers of ${kver} are missing (/lib/modules/${kver}/build): apt-get install linux-headers-${kver}`;
      console.warn(`deploy/test/dkms: skipped: ${reason}`);
      return;
    }
    try {
      vmLock = await holdLock(VM_LOCK, VM_LOCK_WAIT_MS);
    } catch (err) {
      // Building and installing touches no running VM's files it reads at
      // boot; only the load check needs the VM itself.
      vmReason = `the VM stayed busy for ${VM_LOCK_WAIT_MS / 60_000} min (${VM_LOCK}): ${(err as Error).message}`;
      console.warn(`deploy/test/dkms: the load check in the VM will be skipped: ${vmReason}`);
    }
    before.dkmsTree = tree("/var/lib/dkms");
    before.mok = ["mok.key", "mok.pub"].filter((f) => existsSync(join("/var/lib/dkms", f)));
    before.updatesExisted = existsSync(updatesDir());
    before.updates = tree(updatesDir());
    reason = null;
    installed = true;
    must(dkmsSh, ["install", "--kernel", kver], 900_000);
  }, 60 * 60_000);

  /** Undoes what the test did beyond dkms itself: a signing key DKMS made for this run, empty directories. */
  const tidy = () => {
    for (const f of ["mok.key", "mok.pub"]) if (!before.mok.includes(f)) rmSync(join("/var/lib/dkms", f), { force: true });
    if (kver && !before.updatesExisted) {
      for (const d of [join(updatesDir(), "dkms"), updatesDir()]) {
        try {
          rmdirSync(d);
        } catch {
          /* absent, or not empty: the assertions say which */
        }
      }
    }
  };

  afterAll(async () => {
    try {
      if (installed && run("dkms", ["status", "-m", NAME]).stdout.trim()) run(dkmsSh, ["remove"], 300_000);
      if (installed) tidy();
    } finally {
      await vmLock?.release();
      await testLock?.release();
    }
  }, 600_000);

  it("dkms.sh install registers kmod/ and installs vigil.ko for the VM kernel, built from source", (ctx) => {
    if (reason) return ctx.skip(reason);
    expect(run("dkms", ["status", "-m", NAME, "-v", VERSION]).stdout).toMatch(new RegExp(`^${NAME}/${VERSION}, ${kver.replace(/[.+]/g, "\\$&")}, x86_64: installed`, "m"));
    const ko = must(dkmsSh, ["module-path", "--kernel", kver]).trim();
    expect(ko).toMatch(new RegExp(`^/lib/modules/${kver.replace(/[.+]/g, "\\$&")}/updates/dkms/${NAME}\\.ko`));
    // depmod ran: modprobe finds it by name.
    expect(readFileSync(`/lib/modules/${kver}/modules.dep`, "utf8")).toMatch(new RegExp(`^updates/dkms/${NAME}\\.ko[^:]*:`, "m"));
    // The source DKMS keeps is the module's, not an in-tree build's objects.
    const src = tree(`/usr/src/${NAME}-${VERSION}`);
    expect(src).toContain("dkms.conf");
    expect(src).toContain("include/uapi/linux/vigil.h");
    expect(src.filter((f) => /\.(o|ko|mod|cmd)$|^test\/|^tools\/|Module\.symvers/.test(f))).toEqual([]);
  });

  it("the DKMS-built module carries the kernel's vermagic and symbol CRCs", (ctx) => {
    if (reason) return ctx.skip(reason);
    const ko = must(dkmsSh, ["module-path", "--kernel", kver]).trim();
    const stock = must("find", [`/lib/modules/${kver}/kernel/net`, "-name", "*.ko*", "-print", "-quit"]).trim();
    expect(stock, `no stock module of ${kver} to compare with`).not.toBe("");
    const vermagic = must("modinfo", ["-F", "vermagic", ko]).trim();
    expect(vermagic.split(" ")[0]).toBe(kver);
    expect(vermagic).toBe(must("modinfo", ["-F", "vermagic", stock]).trim());
    expect(must("modinfo", ["-F", "version", ko]).trim()).toBe(VERSION);
    // What modversions checks at load time: every kernel symbol the module
    // uses has the CRC this kernel exports it with.
    const symvers = new Map<string, string>();
    for (const line of readFileSync(`/lib/modules/${kver}/build/Module.symvers`, "utf8").split("\n")) {
      const [crc, sym] = line.split("\t");
      if (sym) symvers.set(sym, crc);
    }
    const used = must("modprobe", ["--dump-modversions", ko]).trim().split("\n").map((l) => l.split("\t"));
    expect(used.length).toBeGreaterThan(10);
    const mismatched = used.filter(([crc, sym]) => symvers.get(sym) !== crc).map(([crc, sym]) => `${sym} ${crc} (kernel: ${symvers.get(sym) ?? "absent"})`);
    expect(mismatched).toEqual([]);
  });

  it("loads by modprobe from the DKMS install in a VM booting that kernel", (ctx) => {
    if (reason) return ctx.skip(reason);
    if (vmReason) return ctx.skip(vmReason);
    // This process already holds the VM lock; run-vm.sh takes a private one.
    const privateLock = mkdtempSync(join(tmpdir(), "vigil-dkms-vm-"));
    try {
      const script = [
        "set -e",
        `modprobe ${NAME}`,
        `grep "^${NAME} " /proc/modules`,
        `echo "path=$(modinfo -n ${NAME})"`,
        `echo "version=$(cat /sys/module/${NAME}/version)"`,
        "test -c /dev/vigil && echo dev=ok",
        `rmmod ${NAME}`,
        `grep -q "^${NAME} " /proc/modules && exit 3 || echo unloaded`,
      ].join("\n");
      const r = run(join(repoRoot, "kmod/test/vm/run-vm.sh"), ["--no-build", "--timeout", "300", "--", script], 420_000, {
        ...process.env,
        VIGIL_KVER: kver,
        VIGIL_VM_LOCK: join(privateLock, "lock"),
      });
      const out = `${r.stdout}\n${r.stderr}`;
      expect(r.status, out.slice(-3000)).toBe(0);
      expect(out).toContain(`path=/lib/modules/${kver}/updates/dkms/${NAME}.ko`);
      expect(out).toContain(`version=${VERSION}`);
      expect(out).toContain("dev=ok");
      expect(out).toContain("unloaded");
    } finally {
      rmSync(privateLock, { recursive: true, force: true });
    }
  }, 600_000);

  it("dkms.sh remove leaves nothing of it in /usr/src, /var/lib/dkms or /lib/modules", (ctx) => {
    if (reason) return ctx.skip(reason);
    must(dkmsSh, ["remove"], 300_000);
    tidy();
    expect(run("dkms", ["status", "-m", NAME]).stdout.trim()).toBe("");
    expect(readdirSync("/usr/src").filter((d) => d.startsWith(`${NAME}-`))).toEqual([]);
    expect(tree("/var/lib/dkms")).toEqual(before.dkmsTree);
    expect(tree(updatesDir())).toEqual(before.updates);
    expect(existsSync(updatesDir())).toBe(before.updatesExisted);
    expect(readFileSync(`/lib/modules/${kver}/modules.dep`, "utf8")).not.toMatch(new RegExp(`/${NAME}\\.ko`));
    // Removing twice is harmless (an uninstall script may run it again).
    must(dkmsSh, ["remove"]);
  }, 300_000);
});
