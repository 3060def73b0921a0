import type { ConnectionEvidence, SomEvidence, Verdict } from "@vigil/proto";
import { hostAddress } from "./model.js";
import { handshakeCompleted } from "./policy.js";

/**
 * Whether a verdict's evidence shows an attack, not only traffic a model found unusual. A detector
 * trained on one network finds much of another network's normal use unusual; a block needs what
 * attacks do and normal use does not: many ports or hosts probed, half-open or refused connections,
 * connections without data, floods of fragments or unanswered packets, repeated short sessions to
 * an authentication service. Where the shape of the traffic cannot tell an attack from normal use
 * (complete sessions with data both ways, a transfer of large packets over established
 * connections, a burst of requests the server answers), the verdict is recorded but blocks nothing.
 */
export interface EvidenceJudgement {
  specific: boolean;
  why: string;
}

/** Where people log in: ssh, ftp, telnet, smtp submission, pop3(s), imap(s), rdp, vnc. Not smtp 25: mail servers relay many short sessions. */
export const AUTH_PORTS: ReadonlySet<number> = new Set([21, 22, 23, 110, 143, 465, 587, 993, 995, 3389, 5900]);

/** A login session is short when the server sent at most this many data segments: a refusal, not a command's output. */
const SHORT_SESSION_SERVER_PUSHES = 10;
/** Short sessions to an authentication port that make guessing. */
const MIN_AUTH_SESSIONS = 5;
/** Distinct local ports a remote client opened connections to that make a scan. */
const MIN_SCAN_PORTS = 6;
/** Share of a source's connections that must be probes (half-open, refused, no data). */
const MIN_PROBE_SHARE = 0.25;

// SOM: per window of the verdict's evidence (one second by default).
/** Distinct (host, port) pairs the source opened (UDP not from a lower port, TCP SYN, echo requests). */
const MIN_PROBED_PORTS = 20;
/** ...or this many, when ports or hosts probed are what makes the window anomalous (its largest deviation). */
const MIN_PROBED_WHEN_ANOMALY = 10;
const MIN_HALF_OPEN = 20;
const MIN_FRAGMENTS = 100;
/** Packets of one source in a window that make a flood, when nothing answers them (or they are pings). */
const MIN_FLOOD_PACKETS = 500;
/** Packets our side sent back, as a share of the source's: more is an answered exchange (polling, a transfer). */
const MAX_FLOOD_REPLY_SHARE = 0.1;

export type ConnectionKind = "probe" | "auth-short" | "session" | "theirs" | "midstream";

/** Whether an evidence address is `canonical` (the verdict's address, made canonical at intake: "::ffff:192.0.2.1" is 192.0.2.1). */
function sameAddress(text: string, canonical: string): boolean {
  if (text === canonical) return true;
  try {
    return hostAddress(text).text === canonical;
  } catch {
    return false;
  }
}

/** What one evidence connection shows about `remote`. */
export function connectionKind(c: ConnectionEvidence, remote: string): ConnectionKind {
  // What our side opened (the remote is the server) is no evidence against the remote.
  if (!sameAddress(c.client, remote)) return "theirs";
  const tokens = c.symbols.trim().split(/\s+/);
  const first = tokens[0] ?? "";
  if (first !== "C:S") {
    // A first segment from the client with neither SYN nor ACK: FIN, null, Xmas probes.
    const flags = first.startsWith("C:") ? first.slice(2) : "";
    return flags && !flags.includes("A") && !flags.includes("S") ? "probe" : "midstream";
  }
  if (!handshakeCompleted(c.symbols, true)) return "probe";
  let clientData = false;
  let serverPushes = 0;
  // A connection judged before it ended (no END) may yet carry a command's output: never short.
  let truncated = tokens[tokens.length - 1] !== "END";
  for (const t of tokens) {
    if (t === "…") truncated = true;
    else if (t.startsWith("C:") && t.includes("P")) clientData = true;
    else if (t.startsWith("S:") && t.includes("P")) serverPushes++;
  }
  if (!clientData) return "probe";
  if (AUTH_PORTS.has(c.serverPort) && !truncated && serverPushes <= SHORT_SESSION_SERVER_PUSHES) return "auth-short";
  return "session";
}

function judgePst(v: Verdict, connections: ConnectionEvidence[]): EvidenceJudgement {
  let probes = 0;
  let auth = 0;
  let opened = 0;
  const ports = new Set<number>();
  for (const c of connections) {
    const kind = connectionKind(c, v.address);
    if (kind === "theirs" || kind === "midstream") continue;
    opened++;
    ports.add(c.serverPort);
    if (kind === "probe") probes++;
    else if (kind === "auth-short") auth++;
  }
  if (ports.size >= MIN_SCAN_PORTS) return { specific: true, why: `connections to ${ports.size} local ports` };
  if (probes > 0 && probes >= MIN_PROBE_SHARE * opened) return { specific: true, why: `${probes} of ${opened} connections half-open, refused or without data` };
  if (auth >= MIN_AUTH_SESSIONS) return { specific: true, why: `${auth} short sessions to an authentication port` };
  if (opened === 0) return { specific: false, why: "no connection the source opened: nothing it did to us" };
  return { specific: false, why: `${opened - probes - auth} of ${opened} connections complete with data both ways, ${auth} short login session(s): normal use` };
}

function judgeSom(v: Verdict, som: SomEvidence): EvidenceJudgement | null {
  const s = som.sources.find((x) => sameAddress(x.address, v.address));
  if (!s) return null;
  if (s.ports >= MIN_PROBED_PORTS) return { specific: true, why: `${s.ports} ports or hosts probed` };
  const top = som.deviations[0]?.name;
  if (s.ports >= MIN_PROBED_WHEN_ANOMALY && (top === "source_fanout" || top === "distinct_dst_ports"))
    return { specific: true, why: `${s.ports} ports or hosts probed, the window's largest deviation (${top})` };
  if (s.halfOpen >= MIN_HALF_OPEN) return { specific: true, why: `${s.halfOpen} half-open connections` };
  if (s.fragments >= MIN_FRAGMENTS) return { specific: true, why: `${s.fragments} fragments` };
  const feature = (name: string) => som.features.find((f) => f.name === name)?.value ?? 0;
  const packets = Number(s.packets);
  if (packets >= MIN_FLOOD_PACKETS) {
    if (feature("icmp_packets") >= 0.5 * som.windowPackets) return { specific: true, why: `${packets} packets in one window, mostly ICMP: a ping flood` };
    // What our side sent in the window, less its refusals: an upper bound of its answers to the source.
    let remote = 0;
    for (const x of som.sources) remote += Number(x.packets);
    const replies = Math.max(0, som.windowPackets - remote - feature("icmp_unreachables"));
    if (replies < MAX_FLOOD_REPLY_SHARE * packets) return { specific: true, why: `${packets} packets in one window, ${replies} answered: a flood` };
  }
  return { specific: false, why: `${packets} packets, ${s.ports} port(s) probed, ${s.halfOpen} half-open, answered: unusual, not an attack's shape` };
}

/** Judges the evidence a verdict carries; null when it carries none to judge (a verdict without detector evidence is judged by its score alone). */
export function judgeEvidence(v: Verdict): EvidenceJudgement | null {
  if (v.pst?.connections.length) return judgePst(v, v.pst.connections);
  if (v.som?.sources.length) return judgeSom(v, v.som);
  return null;
}
