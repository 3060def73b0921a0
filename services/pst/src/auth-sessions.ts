import { createHash } from "node:crypto";
import { formatAddressWords, IPPROTO_TCP, TCP_PSH } from "@vigil/frames";
import { DIR_CLIENT, DIR_SERVER } from "@vigil/models";
import { Verdict } from "@vigil/proto";
import { formatEvidence, type RawEvidence } from "./evidence.js";
import type { JudgedConnection } from "./judged.js";

/**
 * Password guessing, told by what it repeats: short sessions to a login service. A guesser's
 * session is refused after the login (a few messages from the server); a command or a transfer
 * gets output. Each session may look ordinary to the model of its service, so guessing slow
 * enough (11 sessions in 70 s) or through a service the models rarely saw (ftp) gives no window
 * of anomalous connections: this counts such sessions per source on its own.
 */

/** Where people log in: ssh, ftp, telnet, smtp submission, pop3(s), imap(s), rdp, vnc. Not smtp 25: mail servers relay many short sessions. */
export const AUTH_PORTS: ReadonlySet<number> = new Set([21, 22, 23, 110, 143, 465, 587, 993, 995, 3389, 5900]);

export interface AuthSessionOptions {
  /** A short session: every symbol kept (not cut to head and tail) and at most this many data segments from the server. */
  maxServerPushes: number;
  /** Short sessions of one source within horizonS that make a verdict. */
  minSessions: number;
  horizonS: number;
  maxSources: number;
  evidenceMax: number;
}

export const DEFAULT_AUTH_SESSIONS: AuthSessionOptions = { maxServerPushes: 10, minSessions: 8, horizonS: 120, maxSources: 10_000, evidenceMax: 20 };

interface Tally {
  ends: number[];
  evidence: RawEvidence[];
  packets: number;
  ports: Set<number>;
}

/**
 * Whether a judged connection is a short login session the remote client opened: ended (by FIN or
 * RST: one judged early, on its first symbols, may yet carry a command's output), handshake
 * verified, data from the client, little from the server.
 */
export function shortLoginSession(c: JudgedConnection, ended: boolean, maxServerPushes: number): boolean {
  if (!ended || !c.remoteIsClient || !c.handshakeVerified || !AUTH_PORTS.has(c.localPort)) return false;
  const { head, tail } = c.symbols();
  if (tail) return false;
  let clientData = false;
  let serverPushes = 0;
  for (const s of head) {
    if ((s & TCP_PSH) === 0 || s >> 9) continue;
    if (s >> 8 === DIR_CLIENT) clientData = true;
    else if (s >> 8 === DIR_SERVER) serverPushes++;
  }
  return clientData && serverPushes <= maxServerPushes;
}

export class AuthSessions {
  private readonly sources = new Map<string, Tally>();
  constructor(readonly opts: AuthSessionOptions = DEFAULT_AUTH_SESSIONS) {}

  /** Counts a judged connection; returns the source's verdict when its short sessions first reach minSessions. */
  note(c: JudgedConnection, ended: boolean, score: number, serviceClass: string, origin: { detector: string; instance: string; sourceId: string }): Verdict | null {
    if (!shortLoginSession(c, ended, this.opts.maxServerPushes)) return null;
    const address = formatAddressWords(c.remoteWords, 0, c.family);
    const end = c.lastTs;
    let t = this.sources.get(address);
    if (!t) {
      if (this.sources.size >= this.opts.maxSources) this.sources.delete(this.sources.keys().next().value as string);
      t = { ends: [], evidence: [], packets: 0, ports: new Set() };
      this.sources.set(address, t);
    }
    while (t.ends.length && end - t.ends[0]! > this.opts.horizonS) {
      t.ends.shift();
      t.evidence.shift();
    }
    t.ends.push(end);
    t.evidence.push(c.evidence(score, serviceClass));
    if (t.evidence.length > this.opts.evidenceMax) t.evidence.splice(0, t.evidence.length - this.opts.evidenceMax);
    t.packets += c.packets;
    t.ports.add(c.localPort);
    if (t.ends.length < this.opts.minSessions) return null;
    // One verdict per run of minSessions: the next needs as many new sessions.
    this.sources.delete(address);
    const firstTs = t.evidence[0]!.firstTs;
    const ports = [...t.ports].sort((a, b) => a - b);
    const local = formatAddressWords(c.localWords, 0, c.family);
    const id = `${origin.detector}-${createHash("sha256").update(`${origin.detector}|${origin.sourceId}|auth|${address}|${firstTs.toFixed(6)}`).digest("hex").slice(0, 24)}`;
    return Verdict.fromPartial({
      id,
      detector: origin.detector,
      instance: origin.instance,
      sourceId: origin.sourceId,
      address,
      aggregate: false,
      localAddress: local,
      localPorts: ports,
      protocol: IPPROTO_TCP,
      score: t.ends.length,
      threshold: this.opts.minSessions,
      model: "pst/auth-sessions@1",
      label: "brute-force",
      connections: t.ends.length,
      packets: t.packets,
      firstTs,
      lastTs: end,
      summary: `brute-force: ${t.ends.length} short sessions from ${address} to ${local} port ${ports.join(",")} within ${Math.round(end - t.ends[0]!)} s (login refused or abandoned: at most ${this.opts.maxServerPushes} data segments from the server)`,
      pst: { connections: t.evidence.map(formatEvidence) },
    });
  }
}
