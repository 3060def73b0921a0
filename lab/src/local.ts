import { RecordCursor, formatAddress } from "@vigil/frames";
import { readPcapRecords } from "@vigil/packet-sources";

export interface LocalGuess {
  /** CIDRs (/32, /128) of the inferred local host. */
  local: string[];
  /** Per family: the address chosen and the share of that family's packets it appears in. */
  evidence: { address: string; share: number; packets: number }[];
  /**
   * "dominant": one address is in at least minShare of the packets (a capture made on the host).
   * "private": no such address (several local clients, a capture made on their gateway): the
   * private (RFC 1918, ULA, link-local) addresses that opened conversations with public ones.
   * "initiators": no private address either: the addresses that opened conversations.
   */
  method: "dominant" | "private" | "initiators" | "none";
}

/**
 * Infers the protected addresses of a capture made on a host: the host is in
 * every packet it sends or receives, so per IP family the address that appears
 * (as source or destination) in the largest share of packets is taken when
 * that share is at least `minShare`; among addresses within 1 % of that share,
 * the one that receives the most packets. A capture taken on a router or a span
 * port has no such address: the caller must then name --local.
 */
export async function inferLocal(file: string, minShare = 0.5): Promise<LocalGuess> {
  const counts = [new Map<string, number>(), new Map<string, number>()];
  const received = [new Map<string, number>(), new Map<string, number>()];
  const totals = [0, 0];
  /** Per family: who opened conversations (sent a TCP SYN without ACK, or the first UDP/ICMP packet of a pair). */
  const initiators = [new Map<string, number>(), new Map<string, number>()];
  const pairsSeen = new Set<string>();
  const cur = new RecordCursor();
  for await (const records of readPcapRecords(file)) {
    cur.reset(records);
    while (cur.next()) {
      // Only the addresses matter here: read them from the fixed header
      // offsets, so even packets the decoder would call malformed count.
      const o = cur.dataOffset;
      const version = cur.capLen > 0 ? cur.buf[o]! >> 4 : 0;
      let fam: number;
      let src: string;
      let dst: string;
      let proto: number;
      let l4: number;
      if (version === 4 && cur.capLen >= 20) {
        fam = 0;
        src = formatAddress(cur.buf, o + 12, 4);
        dst = formatAddress(cur.buf, o + 16, 4);
        proto = cur.buf[o + 9]!;
        l4 = o + (cur.buf[o]! & 15) * 4;
      } else if (version === 6 && cur.capLen >= 40) {
        fam = 1;
        src = formatAddress(cur.buf, o + 8, 16);
        dst = formatAddress(cur.buf, o + 24, 16);
        proto = cur.buf[o + 6]!;
        l4 = o + 40;
      } else {
        continue;
      }
      const tcpFlags = proto === 6 && l4 + 14 <= o + cur.capLen ? cur.buf[l4 + 13]! : -1;
      const pair = src < dst ? `${src} ${dst}` : `${dst} ${src}`;
      const opens = tcpFlags >= 0 ? (tcpFlags & 0x12) === 0x02 : !pairsSeen.has(pair);
      pairsSeen.add(pair);
      if (opens) initiators[fam]!.set(src, (initiators[fam]!.get(src) ?? 0) + 1);
      totals[fam]++;
      const m = counts[fam]!;
      m.set(src, (m.get(src) ?? 0) + 1);
      if (dst !== src) m.set(dst, (m.get(dst) ?? 0) + 1);
      const r = received[fam]!;
      r.set(dst, (r.get(dst) ?? 0) + 1);
    }
  }
  const guess: LocalGuess = { local: [], evidence: [], method: "none" };
  for (const fam of [0, 1]) {
    let top = 0;
    for (const n of counts[fam]!.values()) top = Math.max(top, n);
    // Between two hosts talking only to each other both are in every packet:
    // the protected one is the one being talked to (it receives the probes of
    // a scan). Remaining ties go to the smaller address, never to map order.
    let best = "";
    let bestCount = 0;
    let bestReceived = -1;
    for (const [a, n] of counts[fam]!) {
      if (n < top * 0.99) continue;
      const r = received[fam]!.get(a) ?? 0;
      if (r > bestReceived || (r === bestReceived && a < best)) {
        best = a;
        bestCount = n;
        bestReceived = r;
      }
    }
    const total = totals[fam]!;
    if (total === 0) continue;
    const share = bestCount / total;
    if (share >= minShare && !isMulticastOrUnspecified(best)) {
      guess.local.push(`${best}/${fam === 0 ? 32 : 128}`);
      guess.evidence.push({ address: best, share, packets: total });
    }
  }
  if (guess.local.length) return { ...guess, method: "dominant" };
  // No host in half the packets: a capture of several clients (on their gateway, or merged). Their side is
  // the private one; without private addresses, the side that opens the conversations.
  for (const method of ["private", "initiators"] as const) {
    for (const fam of [0, 1]) {
      const opened = [...initiators[fam]!.keys()].filter((a) => !isMulticastOrUnspecified(a));
      const picked = method === "private" ? opened.filter((a) => isPrivate(a) && [...counts[fam]!.keys()].some((b) => !isPrivate(b))) : opened;
      for (const a of picked.sort()) {
        guess.local.push(`${a}/${fam === 0 ? 32 : 128}`);
        guess.evidence.push({ address: a, share: (counts[fam]!.get(a) ?? 0) / totals[fam]!, packets: totals[fam]! });
      }
    }
    if (guess.local.length) return { ...guess, method };
  }
  return guess;
}

/** RFC 1918, shared (RFC 6598), link-local, loopback; IPv6 ULA, link-local, loopback. */
export function isPrivate(a: string): boolean {
  if (a.includes(":")) {
    const l = a.toLowerCase();
    return l === "::1" || /^f[cd]/.test(l) || /^fe[89ab]/.test(l);
  }
  const [x, y] = a.split(".").map(Number) as [number, number];
  return x === 10 || x === 127 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) || (x === 169 && y === 254) || (x === 100 && y >= 64 && y <= 127);
}

function isMulticastOrUnspecified(a: string): boolean {
  if (a.includes(":")) return a === "::" || a.toLowerCase().startsWith("ff");
  const first = Number(a.split(".")[0]);
  return a === "0.0.0.0" || a === "255.255.255.255" || (first >= 224 && first <= 239);
}
