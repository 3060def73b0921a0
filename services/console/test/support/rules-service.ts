import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { freePort, repoRoot } from "@vigil/testing";

export const RULES_MAIN = join(repoRoot, "services/rules/dist/main.js");

/** The one configured allowlist entry of the rules service under test. */
export const ALLOWLISTED = "198.18.250.1/32";

export interface RulesUnderTest {
  proc: ChildProcess;
  /** host:port of its token-protected TCP control API. */
  address: string;
  /** The last 20 kB of its standard error. */
  log(): string;
  /** SIGTERM, resolved once it has exited (at once when it already has). */
  stop(): Promise<void>;
}

/**
 * The real rules service, dry run, for the console's browser tests: its control API on a free TCP
 * port behind `token` (a TCP API needs one), no host allowlist but one configured entry
 * (ALLOWLISTED, for the overview's allowlist), metrics on a free port. `env`: more settings (or other ones).
 */
export async function startRulesService(opts: { natsUrl: string; stateDir: string; token: string; env?: Record<string, string> }): Promise<RulesUnderTest> {
  const grpcPort = await freePort();
  let log = "";
  const proc = spawn(process.execPath, [RULES_MAIN], {
    stdio: ["ignore", "ignore", "pipe"],
    env: {
      ...process.env,
      VIGIL_CONFIG: "/dev/null",
      VIGIL_STATE_DIR: opts.stateDir,
      VIGIL_NATS__SERVERS: `[${opts.natsUrl}]`,
      VIGIL_RULES__ENFORCER: "dry-run",
      VIGIL_RULES__ALLOWLIST_DEFAULTS: "false",
      VIGIL_RULES__ALLOWLIST: `[${ALLOWLISTED}]`,
      VIGIL_RULES__GRPC__PORT: String(grpcPort),
      VIGIL_RULES__GRPC__TOKEN: opts.token,
      VIGIL_RULES__METRICS__PORT: String(await freePort()),
      ...opts.env,
    },
  });
  proc.stderr!.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  proc.once("exit", (code) => code && console.warn(`rules service exited with ${code}:\n${log}`));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    await exited;
  };
  return { proc, address: `127.0.0.1:${grpcPort}`, log: () => log, stop };
}
