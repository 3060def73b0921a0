import { parseCidr, type Cidr } from "@vigil/frames";
import { Action, type Rule } from "@vigil/proto";
import type { AllowEntry } from "./allowlist.js";
import { hostAddress, hostCidrOf, isAddressOnly, normalizeMatch } from "./model.js";

/** A manual drop rule would cut the host off; `forceable` when `force` may override it. */
export class LockoutError extends Error {
  readonly code = "VIGIL_ERR_LOCKOUT";
  constructor(
    readonly field: string,
    problem: string,
    readonly forceable: boolean,
  ) {
    super(`${field}: ${problem}`);
  }
}

/** Protected whatever the allowlist says: the host talking to itself. */
const LOOPBACK: AllowEntry[] = [
  { cidr: "127.0.0.0/8", why: "loopback" },
  { cidr: "::1/128", why: "loopback" },
];

function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.bytes.length !== b.bytes.length) return false;
  const bits = Math.min(a.prefix, b.prefix);
  for (let i = 0; i < bits; i++) {
    const bit = 0x80 >> (i & 7);
    if ((a.bytes[i >> 3] & bit) !== (b.bytes[i >> 3] & bit)) return false;
  }
  return true;
}

/**
 * The caller's address from a gRPC peer ("192.0.2.1:5555", "::1:5555",
 * "[2001:db8::1]:5555"); null for a unix socket or anything unparseable.
 */
export function peerAddress(peer: string): string | null {
  const host = peer.startsWith("[") ? peer.slice(1, peer.indexOf("]")) : peer.slice(0, peer.lastIndexOf(":"));
  try {
    return hostAddress(host.replace(/^ipv[46]:/, "")).text;
  } catch {
    return null;
  }
}

/**
 * Refuses a manual DROP rule that covers what keeps the host reachable:
 * loopback, the allowlist (own addresses, default gateways, DNS servers,
 * configured entries) and the caller's own session sources. `force`
 * overrides that, but never for a rule that drops everything (0.0.0.0/0 or
 * ::/0 with no other condition). Throws a LockoutError naming what is hit.
 */
export function checkLockout(rule: Rule, protectedEntries: AllowEntry[], sessions: string[], force: boolean): void {
  if (rule.action !== Action.ACTION_DROP) return;
  const m = normalizeMatch(rule);
  if (m.src.prefix === 0 && isAddressOnly(m))
    throw new LockoutError("rule.src_cidr", `${rule.srcCidr} drops all traffic of the family: refused, even with force (block narrower prefixes)`, false);
  if (force) return;
  const sessionEntries = sessions.map((s) => ({ cidr: hostCidrOf(hostAddress(s)), why: "the session this request came from" }));
  for (const e of [...LOOPBACK, ...sessionEntries, ...protectedEntries]) {
    let c: Cidr;
    try {
      c = parseCidr(e.cidr);
    } catch {
      continue;
    }
    if (overlaps(m.src, c))
      throw new LockoutError("rule.src_cidr", `${rule.srcCidr} would cut the host off: it covers ${e.cidr} (${e.why}); set force (--force) to add it anyway`, true);
  }
}
