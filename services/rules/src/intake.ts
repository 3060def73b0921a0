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

/** What one verdict may carry: far above what the detectors send, far below what fills memory. */
export const VERDICT_LIMITS = { text: 256, summary: 1024, symbols: 4096, evidence: 64, features: 256, ports: 1024 } as const;

/** The first field of `v` over its limit, described, or null. */
function oversized(v: Verdict): string | null {
  const L = VERDICT_LIMITS;
  for (const [name, text] of [["id", v.id], ["detector", v.detector], ["instance", v.instance], ["source_id", v.sourceId], ["address", v.address], ["local_address", v.localAddress], ["model", v.model], ["label", v.label]] as const)
    if (text.length > L.text) return `field ${name} is longer than ${L.text} characters`;
  if (v.summary.length > L.summary) return `field summary is longer than ${L.summary} characters`;
  if (v.localPorts.length > L.ports) return `field local_ports has more than ${L.ports} entries`;
  const conns = v.pst?.connections ?? [];
  if (conns.length > L.evidence) return `field pst.connections has more than ${L.evidence} entries`;
  for (const c of conns) {
    if (c.symbols.length > L.symbols) return `field pst.connections.symbols is longer than ${L.symbols} characters`;
    if (c.client.length > L.text || c.server.length > L.text || c.serviceClass.length > L.text) return `field pst.connections has a text longer than ${L.text} characters`;
  }
  if (v.som) {
    for (const [name, list] of [["features", v.som.features], ["deviations", v.som.deviations], ["sources", v.som.sources]] as const) {
      if (list.length > L.features) return `field som.${name} has more than ${L.features} entries`;
      for (const x of list) if (("name" in x ? x.name : x.address).length > L.text) return `field som.${name} has a text longer than ${L.text} characters`;
    }
  }
  return null;
}

/** Checks what the policy relies on; returns the problem or null. */
export function verdictProblem(v: Verdict, subject: string): string | null {
  if (!v.id) return "missing id";
  if (!v.detector) return "missing detector";
  const fromSubject = subject.startsWith(PREFIX) ? subject.slice(PREFIX.length) : v.detector;
  if (fromSubject !== v.detector) return `detector "${v.detector}" published on ${subject}`;
  if (!Number.isFinite(v.score) || !Number.isFinite(v.threshold)) return "score or threshold is not a finite number";
  if (!v.aggregate && !v.address) return "no address on a non-aggregate verdict";
  const big = oversized(v);
  return big ? `too large: ${big}` : null;
}

function reasonOf(problem: string): string {
  if (problem.startsWith("too large")) return "too-large";
  return problem.split(" ")[0] === "detector" ? "detector-mismatch" : problem.replace(/ ".*$/, "").replace(/\s+/g, "-");
}

/**
 * Bytes on vigil.verdicts.* to a checked verdict. The address is normalized
 * here, once (IPv4-mapped IPv6 becomes the IPv4 host, text canonical): rule
 * ids and kernel rules are derived from the resulting bytes.
 */
export function readVerdict(data: Uint8Array, subject: string, maxBytes = Infinity): AcceptedVerdict | RejectedVerdict {
  if (data.length > maxBytes) return { reason: "too-large", problem: `too large: ${data.length} bytes, more than ${maxBytes}`, log: true };
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
