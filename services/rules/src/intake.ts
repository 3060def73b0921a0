import { codecs, DecodeError } from "@vigil/bus";
import type { Verdict } from "@vigil/proto";
import { hostAddress, type HostAddress } from "./model.js";

/** A verdict that passed intake: checked, its address parsed once (null on aggregate verdicts). */
export interface AcceptedVerdict {
  verdict: Verdict;
  address: HostAddress | null;
}

/** A message that did not: `reason` is the metric label, `problem` the log text. */
export interface RejectedVerdict {
  reason: string;
  problem: string;
  id?: string;
  /** Worth a log line: a real decoding error or a failed check (not any exception). */
  log: boolean;
}

const PREFIX = "vigil.verdicts.";

/** Checks what the policy relies on; returns the problem or null. */
export function verdictProblem(v: Verdict, subject: string): string | null {
  if (!v.id) return "missing id";
  if (!v.detector) return "missing detector";
  const fromSubject = subject.startsWith(PREFIX) ? subject.slice(PREFIX.length) : v.detector;
  if (fromSubject !== v.detector) return `detector "${v.detector}" published on ${subject}`;
  if (!Number.isFinite(v.score) || !Number.isFinite(v.threshold)) return "score or threshold is not a finite number";
  if (!v.aggregate && !v.address) return "no address on a non-aggregate verdict";
  return null;
}

function reasonOf(problem: string): string {
  return problem.split(" ")[0] === "detector" ? "detector-mismatch" : problem.replace(/ ".*$/, "").replace(/\s+/g, "-");
}

/**
 * Bytes on vigil.verdicts.* to a checked verdict. The address is normalized
 * here, once (IPv4-mapped IPv6 becomes the IPv4 host, text canonical): rule
 * ids and kernel rules are derived from the resulting bytes.
 */
export function readVerdict(data: Uint8Array, subject: string): AcceptedVerdict | RejectedVerdict {
  let v: Verdict;
  try {
    v = codecs.verdict.decode(data, subject);
  } catch (err) {
    return { reason: "undecodable", problem: (err as Error).message, log: err instanceof DecodeError };
  }
  const problem = verdictProblem(v, subject);
  if (problem) return { reason: reasonOf(problem), problem, id: v.id, log: true };
  if (v.aggregate) return { verdict: v, address: null };
  let address: HostAddress;
  try {
    address = hostAddress(v.address);
  } catch {
    const p = `unparseable address "${v.address.slice(0, 64)}"`;
    return { reason: reasonOf(p), problem: p, id: v.id, log: true };
  }
  v.address = address.text;
  return { verdict: v, address };
}

export function isRejected(r: AcceptedVerdict | RejectedVerdict): r is RejectedVerdict {
  return "reason" in r;
}
