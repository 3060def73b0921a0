import { formatAddressWords } from "@vigil/frames";
import { ConnectionEvidence } from "@vigil/proto";
import { TCP_ACK, TCP_RST, TCP_SYN } from "@vigil/frames";
import { DIR_CLIENT, DIR_SERVER, ELLIPSIS, UNPROVEN_MARK, symbolText } from "@vigil/models";

/** One connection's evidence as copied out of the table: formatted only if a verdict needs it. */
export interface RawEvidence {
  family: number;
  /** Client address words then server address words. */
  words: ArrayLike<number>;
  clientPort: number;
  serverPort: number;
  serviceClass: string;
  head: ArrayLike<number>;
  tail: ArrayLike<number> | null;
  score: number;
  /** The connection's packets (counted into a window that starts from a pending source). */
  packets: number;
  firstTs: number;
  lastTs: number;
  /** Which end is the remote one, and whether it acknowledged our initial sequence number. */
  remoteIsClient: boolean;
  verified: boolean;
}

export function formatEvidence(e: RawEvidence): ConnectionEvidence {
  return ConnectionEvidence.fromPartial({
    client: formatAddressWords(e.words, 0, e.family),
    clientPort: e.clientPort,
    server: formatAddressWords(e.words, 4, e.family),
    serverPort: e.serverPort,
    serviceClass: e.serviceClass,
    symbols: formatEvidenceSymbols(e),
    score: e.score,
    firstTs: e.firstTs,
    lastTs: e.lastTs,
  });
}

/**
 * The connection's symbols as evidence text. When the remote end did not acknowledge our initial
 * sequence number, its segments that look like the completion of a handshake (a remote client's
 * ACK after our SYN-ACK, a remote server's SYN-ACK after our SYN) are marked "?": their flags are
 * what was sent, but they prove nothing. Whoever reads the flags as proof that the remote end
 * receives our packets (the rules service, to tell spoofed sources from real ones) must not be
 * misled by a blind spoofer's forged ACK: `C:S S:SA ?C:FPUA S:R END`.
 */
export function formatEvidenceSymbols(e: RawEvidence): string {
  const remoteDir = e.remoteIsClient ? DIR_CLIENT : DIR_SERVER;
  const mask = TCP_SYN | TCP_ACK | TCP_RST;
  // Ours: the SYN-ACK to a remote client, the SYN to a remote server. What would then read as
  // completion: a remote client's ACK, a remote server's SYN-ACK.
  const ourSyn = e.remoteIsClient ? TCP_SYN | TCP_ACK : TCP_SYN;
  const claim = e.remoteIsClient ? TCP_ACK : TCP_SYN | TCP_ACK;
  let synSeen = false;
  const out: string[] = [];
  const add = (syms: ArrayLike<number>) => {
    for (let i = 0; i < syms.length; i++) {
      const s = syms[i];
      const text = symbolText(s);
      const dir = s >> 8;
      if (!e.verified && synSeen && dir === remoteDir && (s & mask) === claim) out.push(UNPROVEN_MARK + text);
      else out.push(text);
      if (dir === 1 - remoteDir && (s & mask) === ourSyn) synSeen = true;
    }
  };
  add(e.head);
  if (e.tail) {
    out.push(ELLIPSIS);
    add(e.tail);
  }
  return out.join(" ");
}
