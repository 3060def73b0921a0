import { execFile } from "node:child_process";
import { isIP } from "node:net";
import { promisify } from "node:util";

// What `vigil up` tells the operator before anything else: what is watched,
// what blocks, and what will never be blocked automatically.

/**
 * The source address of the SSH session `vigil up` runs in ($SSH_CONNECTION
 * "client port server port", else $SSH_CLIENT "client port port"): allowlisted
 * so that the first run cannot lock its own admin out (fail2ban's ignoreself).
 */
export function sshSessionSource(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const v of [env.SSH_CONNECTION, env.SSH_CLIENT]) {
    const addr = v?.trim().split(/\s+/)[0]?.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");
    if (addr && isIP(addr)) return addr;
  }
  return null;
}

export interface RulesStatus {
  enforcer: string;
  enforcerDetail?: string;
  dryRun?: boolean;
  /** "warmup", "blocking" or "dry-run" (absent from a rules service older than the warm-up). */
  phase?: string;
  warmupUntil?: number;
  allowlist?: Array<{ cidr: string; why: string }>;
}

/** The running rules service's status, through `vigil status --json` on the control socket. */
export async function rulesStatus(socket: string): Promise<RulesStatus | { error: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [process.argv[1]!, "status", "--json", "--socket", socket], { timeout: 10_000 });
    return JSON.parse(stdout) as RulesStatus;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { error: (e.stderr || e.message).trim().split("\n")[0]! };
  }
}

const iso = (s: number | undefined) => (s ? new Date(s * 1000).toISOString().replace(/\.\d+Z$/, "Z") : "?");

/** The lines on enforcement, protected addresses and the allowlist. */
export function describeProtection(status: RulesStatus | { error: string }): string[] {
  if ("error" in status) return [`  blocking   UNKNOWN: cannot ask the rules service (${status.error})`];
  const live = !status.dryRun && status.enforcer !== "dry-run";
  const enforcer = `enforcer ${status.enforcer}${status.enforcerDetail ? ` (${status.enforcerDetail})` : ""}`;
  const entries = status.allowlist ?? [];
  const own = entries.filter((e) => e.why === "own address").map((e) => e.cidr);
  const rest = entries.filter((e) => e.why !== "own address");
  const byWhy = new Map<string, string[]>();
  for (const e of rest) byWhy.set(e.why, [...(byWhy.get(e.why) ?? []), e.cidr]);
  return [
    !live
      ? `  blocking   SIMULATED (dry run): enforcer ${status.enforcer}; rules are decided and listed but nothing is blocked`
      : status.phase === "warmup"
        ? `  blocking   WARM-UP until ${iso(status.warmupUntil)}: ${enforcer}; learning this host's traffic, automatic blocks are simulated until then (manual rules are enforced; \`vigil warmup end\` blocks now)`
        : `  blocking   LIVE: ${enforcer}; detector verdicts become real block rules`,
    `  protected  ${own.length ? own.join(", ") : "(no own address found)"}`,
    `  allowlist  never blocked automatically (\`vigil allowlist\` lists them):`,
    ...[...byWhy].map(([why, cidrs]) => `               ${why}: ${cidrs.join(", ")}`),
  ];
}
