// One window's traffic statistics, the accumulator behind the SOM's feature vector. It is a
// little over 500 lines because it is one concept on the per-packet hot path: the address table,
// the pair, flow and port sets and the per-address counters share one slot layout and one reset,
// and splitting them would spread that layout over files without making any part reusable.
import {
  DIR_EGRESS,
  DIR_INGRESS,
  FAMILY_IPV4,
  FAMILY_IPV6,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  TCP_ACK,
  TCP_FIN,
  TCP_RST,
  TCP_SYN,
  formatAddressWords,
  mix32,
  type PacketDecoder,
} from "@vigil/frames";

import * as vector from "./feature-vector.js";
import { LARGE_PACKET_BYTES, SMALL_PACKET_BYTES } from "./feature-vector.js";

export * from "./feature-vector.js";

/** Hard limit on packets per window: keeps every per-window table bounded (slot indices fit 16 bits). */
export const MAX_WINDOW_PACKETS = 16384;

export interface WindowOptions {
  /** Window length in capture-time milliseconds; windows are aligned to multiples of it. */
  windowMs: number;
  /** A window also closes after this many packets. */
  maxPackets: number;
  /** Floor of the duration used for rates of a window cut short by the packet limit. */
  minDurationMs?: number;
}

/** ICMP types: echo request, destination unreachable (IPv4 and IPv6). */
const ICMP_ECHO_REQUEST = 8;
const ICMP_UNREACHABLE = 3;
const ICMPV6_ECHO_REQUEST = 128;
const ICMPV6_UNREACHABLE = 1;
/** Pseudo ports in the (source, destination, port) set: an echo request touches the host's "echo port"; HOST_KEY marks a probed host. */
const ECHO_KEY = 0x10000;
const HOST_KEY = 0x10001;

const ST_SYN = 1;
const ST_SYNACK = 2;
const ST_PAYLOAD = 4;
/** Segments of the flow were shed under overload (see shed()): its emptiness is ours, not its. */
const ST_SHED = 8;

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p <<= 1;
  return p;
}

/**
 * Per-window traffic statistics for one stream of packets. Every table is a
 * typed array sized from the packet limit and reset through the list of the
 * slots it used, so adding a packet allocates nothing.
 *
 * Addresses (sources and destinations alike) get a slot in one open-addressing
 * table; each slot keeps what its address sent and received in this window:
 * the per-source counters that culprit attribution ranks.
 */
export class WindowStats {
  readonly windowMs: number;
  readonly maxPackets: number;
  readonly minDurationMs: number;

  // Address table: key words (4 per slot), key length, slot -> dense index.
  private readonly addrCap: number;
  private readonly addrMask: number;
  private readonly addrKeys: Uint32Array;
  private readonly addrLen: Uint8Array;
  private readonly addrIndex: Int32Array;
  /** Dense index -> table slot, in order of first appearance. */
  readonly addrSlots: Int32Array;
  addrCount = 0;
  // Per address (dense index) counters.
  readonly sentPackets: Uint32Array;
  readonly sentBytes: Float64Array;
  /** Distinct (destination address, destination port) pairs this address sent to: ports touched (an echo request touches the echo "port"). */
  readonly sentPairs: Uint32Array;
  /** Of sentPairs, those a probe (TCP SYN or another segment without ACK or RST, UDP not from a lower port, echo request) opened, not our own: ports or hosts probed. */
  readonly sentProbes: Uint32Array;
  /** Distinct unicast addresses this address sent probes to (TCP without ACK or RST, UDP not from a lower port, ICMP echo requests). */
  readonly sentHosts: Uint32Array;
  /** ICMP destination-unreachable messages addressed to this address (not counted when it is local). */
  readonly recvUnreachables: Uint32Array;
  /** TCP connections this address began (first SYN or SYN-ACK) that carried no payload. */
  readonly halfOpen: Uint32Array;
  readonly sentFragments: Uint32Array;
  readonly sentNewTcp: Uint32Array;
  readonly recvPackets: Uint32Array;
  /** Distinct (source address, destination port) pairs that reached this address. */
  readonly recvPairs: Uint32Array;
  /** 1: seen as a local address (source of egress or destination of ingress traffic). */
  readonly isLocal: Uint8Array;

  // (source, destination, destination port) set.
  private readonly pairMask: number;
  private readonly pairA: Uint32Array;
  private readonly pairB: Int32Array;
  private readonly pairUsed: Int32Array;
  private pairCount = 0;

  // TCP flows: unordered pair of endpoints (dense address index << 16 | port).
  private readonly flowMask: number;
  private readonly flowA: Uint32Array;
  private readonly flowB: Int32Array;
  private readonly flowState: Uint8Array;
  private readonly flowOwner: Int32Array;
  private readonly flowUsed: Int32Array;
  private flowCount = 0;

  // Destination ports seen in this window (generation stamps avoid clearing), and their packet counts.
  private readonly portStamp = new Uint32Array(65536);
  readonly portPackets = new Uint32Array(65536);
  private readonly portsUsed = new Uint16Array(65536);
  private portGen = 1;
  distinctPorts = 0;

  // Window totals.
  start = 0;
  /** Capture time (ms) of the first and last packets of the window. */
  firstTs = 0;
  lastTs = 0;
  packets = 0;
  bytes = 0;
  small = 0;
  large = 0;
  newTcp = 0;
  udp = 0;
  icmp = 0;
  fragments = 0;
  distinctSources = 0;
  inactive = 0;
  /** ICMP destination-unreachable messages not addressed to a local address. */
  unreachables = 0;
  /** The most distinct hosts probed by one address other than the local one (final after finish()). */
  maxFanout = 0;
  /** Any address known local from frame directions (final after finish()). */
  anyLocal = false;
  /**
   * The attacked local address's dense index (final after finish()): the known local address receiving
   * the most packets, else the most contacted destination; -1 when none.
   */
  localIndex = -1;
  /** Dominant protocol bookkeeping for verdicts. */
  tcp = 0;
  /** True once the window has been closed by finish(): inactive counts are final. */
  finished = false;

  constructor(opts: WindowOptions) {
    if (!(opts.windowMs > 0)) throw new RangeError(`windowMs must be > 0, got ${opts.windowMs}`);
    if (!(opts.maxPackets >= 1 && opts.maxPackets <= MAX_WINDOW_PACKETS))
      throw new RangeError(`maxPackets must be 1..${MAX_WINDOW_PACKETS}, got ${opts.maxPackets}`);
    this.windowMs = opts.windowMs;
    this.maxPackets = opts.maxPackets;
    this.minDurationMs = opts.minDurationMs ?? 1;
    const n = opts.maxPackets;
    this.addrCap = nextPow2(4 * n);
    this.addrMask = this.addrCap - 1;
    this.addrKeys = new Uint32Array(this.addrCap * 4);
    this.addrLen = new Uint8Array(this.addrCap);
    this.addrIndex = new Int32Array(this.addrCap).fill(-1);
    const dense = 2 * n;
    this.addrSlots = new Int32Array(dense);
    this.sentPackets = new Uint32Array(dense);
    this.sentBytes = new Float64Array(dense);
    this.sentPairs = new Uint32Array(dense);
    this.sentHosts = new Uint32Array(dense);
    this.sentProbes = new Uint32Array(dense);
    this.recvUnreachables = new Uint32Array(dense);
    this.halfOpen = new Uint32Array(dense);
    this.sentFragments = new Uint32Array(dense);
    this.sentNewTcp = new Uint32Array(dense);
    this.recvPackets = new Uint32Array(dense);
    this.recvPairs = new Uint32Array(dense);
    this.isLocal = new Uint8Array(dense);
    // A packet adds at most two entries: its port (or echo) pair and its probed host.
    const pairCap = nextPow2(4 * n);
    this.pairMask = pairCap - 1;
    this.pairA = new Uint32Array(pairCap);
    this.pairB = new Int32Array(pairCap).fill(-1);
    this.pairUsed = new Int32Array(2 * n);
    const flowCap = nextPow2(2 * n);
    this.flowMask = flowCap - 1;
    this.flowA = new Uint32Array(flowCap);
    this.flowB = new Int32Array(flowCap).fill(-1);
    this.flowState = new Uint8Array(flowCap);
    this.flowOwner = new Int32Array(flowCap);
    this.flowUsed = new Int32Array(n);
  }

  get full(): boolean {
    return this.packets >= this.maxPackets;
  }

  /** Dense index of the address at buf[off..off+len), inserted when new (else -1 when `insert` is false). */
  private addressIndex(buf: Uint8Array, off: number, len: number, insert = true): number {
    let w0 = ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0;
    let w1 = 0;
    let w2 = 0;
    let w3 = 0;
    if (len === 16) {
      w1 = ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>> 0;
      w2 = ((buf[off + 8] << 24) | (buf[off + 9] << 16) | (buf[off + 10] << 8) | buf[off + 11]) >>> 0;
      w3 = ((buf[off + 12] << 24) | (buf[off + 13] << 16) | (buf[off + 14] << 8) | buf[off + 15]) >>> 0;
    }
    let slot = mix32(w0 ^ Math.imul(w1, 0x9e3779b1) ^ Math.imul(w2, 0x85ebca77) ^ Math.imul(w3, 0xc2b2ae3d) ^ len) & this.addrMask;
    const keys = this.addrKeys;
    for (;;) {
      const idx = this.addrIndex[slot];
      if (idx < 0) break;
      const k = slot << 2;
      if (this.addrLen[slot] === len && keys[k] === w0 && keys[k + 1] === w1 && keys[k + 2] === w2 && keys[k + 3] === w3) return idx;
      slot = (slot + 1) & this.addrMask;
    }
    if (!insert) return -1;
    const idx = this.addrCount++;
    const k = slot << 2;
    keys[k] = w0;
    keys[k + 1] = w1;
    keys[k + 2] = w2;
    keys[k + 3] = w3;
    this.addrLen[slot] = len;
    this.addrIndex[slot] = idx;
    this.addrSlots[idx] = slot;
    return idx;
  }

  /** Adds one decoded packet. The caller closes the window first when the packet falls outside it. */
  add(d: PacketDecoder, tsMs: number, direction: number): void {
    if (this.packets === 0) this.firstTs = this.lastTs = tsMs;
    else if (tsMs > this.lastTs) this.lastTs = tsMs;
    const size = d.ipLen;
    this.packets++;
    this.bytes += size;
    if (size <= SMALL_PACKET_BYTES) this.small++;
    else if (size >= LARGE_PACKET_BYTES) this.large++;
    const buf = d.buf;
    const src = this.addressIndex(buf, d.srcOff, d.addrLen);
    const dst = this.addressIndex(buf, d.dstOff, d.addrLen);
    if (this.sentPackets[src] === 0) this.distinctSources++;
    this.sentPackets[src]++;
    this.sentBytes[src] += size;
    this.recvPackets[dst]++;
    if (direction === DIR_INGRESS) this.isLocal[dst] = 1;
    else if (direction === DIR_EGRESS) this.isLocal[src] = 1;
    if (d.isFragment) {
      this.fragments++;
      this.sentFragments[src]++;
    }
    const proto = d.proto;
    if (proto === IPPROTO_UDP) this.udp++;
    else if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) this.icmp++;
    else if (proto === IPPROTO_TCP) this.tcp++;
    if (!d.hasL4) return;
    if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) {
      const v6 = proto === IPPROTO_ICMPV6;
      const type = d.icmpType;
      if (type === (v6 ? ICMPV6_ECHO_REQUEST : ICMP_ECHO_REQUEST)) {
        if (this.touchPair(src, dst, ECHO_KEY)) {
          this.sentPairs[src]++;
          if (direction !== DIR_EGRESS) this.sentProbes[src]++;
          this.recvPairs[dst]++;
        }
        this.touchHost(src, dst, buf, d.dstOff, d.addrLen);
      } else if (type === (v6 ? ICMPV6_UNREACHABLE : ICMP_UNREACHABLE) && direction !== DIR_INGRESS) {
        // What our side refuses (closed UDP ports, filtered hosts) is addressed to whoever probed it;
        // refusals arriving at a local address (our own failures, backscatter of a reflection) are not counted.
        this.unreachables++;
        this.recvUnreachables[dst]++;
      }
      return;
    }
    if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) return;
    const dport = d.dstPort;
    if (this.portStamp[dport] !== this.portGen) {
      this.portStamp[dport] = this.portGen;
      this.portPackets[dport] = 0;
      this.portsUsed[this.distinctPorts++] = dport;
    }
    this.portPackets[dport]++;
    // A UDP datagram from a lower port to a higher one is a service answering a client (DNS, NTP, QUIC
    // from a server talking to many clients of a protected network), not a probe. TCP without ACK or RST
    // is a SYN or a stealth probe (FIN, Xmas, NULL): every later segment of a real connection has ACK.
    const probe = proto === IPPROTO_UDP ? d.srcPort >= dport : (d.tcpFlags & (TCP_ACK | TCP_RST)) === 0;
    if (this.touchPair(src, dst, dport)) {
      this.sentPairs[src]++;
      this.recvPairs[dst]++;
      if (probe && direction !== DIR_EGRESS) this.sentProbes[src]++;
    }
    if (probe) this.touchHost(src, dst, buf, d.dstOff, d.addrLen);
    if (proto === IPPROTO_TCP) this.tcpFlow(src, d.srcPort, dst, dport, d.tcpFlags, d.payloadLen);
  }

  /** Inserts (src, dst, key) into the pair set; true when it is new. */
  private touchPair(src: number, dst: number, key: number): boolean {
    const a = ((src << 16) | dst) >>> 0;
    let slot = mix32(a ^ Math.imul(key + 1, 0x9e3779b1)) & this.pairMask;
    for (;;) {
      const b = this.pairB[slot];
      if (b < 0) break;
      if (b === key && this.pairA[slot] === a) return false;
      slot = (slot + 1) & this.pairMask;
    }
    this.pairA[slot] = a;
    this.pairB[slot] = key;
    this.pairUsed[this.pairCount++] = slot;
    return true;
  }

  /**
   * A probe (a packet that can open a conversation) from src to dst: counts dst among the hosts src
   * probed. Multicast and broadcast destinations are not hosts: service discovery sends to several.
   */
  private touchHost(src: number, dst: number, buf: Uint8Array, dstOff: number, addrLen: number): void {
    const first = buf[dstOff];
    if (addrLen === 4 ? first >= 224 : first === 0xff) return;
    if (this.touchPair(src, dst, HOST_KEY)) this.sentHosts[src]++;
  }

  /**
   * A segment the detector shed under overload (see shedsSegment in @vigil/frames): not counted in
   * any feature. Its flow, when this window has it (its SYN or SYN-ACK was here), is marked so that
   * it never counts as inactive: a sampled-out conversation must not look half-open.
   */
  shed(d: PacketDecoder): void {
    const src = this.addressIndex(d.buf, d.srcOff, d.addrLen, false);
    const dst = src < 0 ? -1 : this.addressIndex(d.buf, d.dstOff, d.addrLen, false);
    if (dst < 0) return;
    const slot = this.flowSlot(src, d.srcPort, dst, d.dstPort);
    if (this.flowB[slot] >= 0) this.flowState[slot] |= ST_SHED;
  }

  /** The flow table slot of a TCP flow (either direction): its own, or the empty one where it goes. */
  private flowSlot(src: number, sport: number, dst: number, dport: number): number {
    const e1 = ((src << 16) | sport) >>> 0;
    const e2 = ((dst << 16) | dport) >>> 0;
    const lo = e1 < e2 ? e1 : e2;
    const hi = e1 < e2 ? e2 : e1;
    let slot = mix32(lo ^ Math.imul(hi, 0x9e3779b1)) & this.flowMask;
    for (;;) {
      const b = this.flowB[slot];
      if (b < 0) break;
      if (b === (hi | 0) && this.flowA[slot] === lo) break;
      slot = (slot + 1) & this.flowMask;
    }
    return slot;
  }

  private tcpFlow(src: number, sport: number, dst: number, dport: number, flags: number, payload: number): void {
    const slot = this.flowSlot(src, sport, dst, dport);
    if (this.flowB[slot] < 0) {
      const e1 = ((src << 16) | sport) >>> 0;
      const e2 = ((dst << 16) | dport) >>> 0;
      const lo = e1 < e2 ? e1 : e2;
      const hi = e1 < e2 ? e2 : e1;
      this.flowA[slot] = lo;
      this.flowB[slot] = hi | 0;
      this.flowState[slot] = 0;
      this.flowOwner[slot] = -1;
      this.flowUsed[this.flowCount++] = slot;
    }
    let st = this.flowState[slot];
    const syn = (flags & (TCP_SYN | TCP_RST | TCP_FIN)) === TCP_SYN;
    if (syn && (flags & TCP_ACK) === 0) {
      if ((st & ST_SYN) === 0) {
        this.newTcp++;
        this.sentNewTcp[src]++;
        st |= ST_SYN;
        if (this.flowOwner[slot] < 0) this.flowOwner[slot] = src;
      }
    } else if (syn) {
      if ((st & (ST_SYN | ST_SYNACK)) === 0 && this.flowOwner[slot] < 0) this.flowOwner[slot] = src;
      st |= ST_SYNACK;
    }
    if (payload > 0) st |= ST_PAYLOAD;
    this.flowState[slot] = st;
  }

  /** Settles the counts that need the whole window (inactive connections). Idempotent. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    let inactive = 0;
    for (let i = 0; i < this.flowCount; i++) {
      const slot = this.flowUsed[i];
      const st = this.flowState[slot];
      if ((st & (ST_SYN | ST_SYNACK)) !== 0 && (st & (ST_PAYLOAD | ST_SHED)) === 0) {
        inactive++;
        const owner = this.flowOwner[slot];
        if (owner >= 0) this.halfOpen[owner]++;
      }
    }
    this.inactive = inactive;
    this.settleLocal();
    let maxFanout = 0;
    for (let i = 0; i < this.addrCount; i++) if (!this.isLocalIndex(i) && this.sentHosts[i] > maxFanout) maxFanout = this.sentHosts[i];
    this.maxFanout = maxFanout;
  }

  /**
   * Decides the local side. With frame directions, the known local addresses (the attacked one: the one
   * receiving the most packets). Without (a foreign capture replayed as is), the most contacted destination
   * — reached through the most distinct (source, port) pairs, then by packets — which is the victim of a
   * flood or scan, and keeps a scanned target's replies from framing it.
   */
  private settleLocal(): void {
    const n = this.addrCount;
    let anyLocal = false;
    for (let i = 0; i < n; i++) if (this.isLocal[i]) anyLocal = true;
    let localIndex = -1;
    if (anyLocal) {
      for (let i = 0; i < n; i++) if (this.isLocal[i] && (localIndex < 0 || this.recvPackets[i] > this.recvPackets[localIndex])) localIndex = i;
    } else {
      for (let i = 0; i < n; i++) {
        if (this.recvPackets[i] === 0) continue;
        if (
          localIndex < 0 ||
          this.recvPairs[i] > this.recvPairs[localIndex] ||
          (this.recvPairs[i] === this.recvPairs[localIndex] && this.recvPackets[i] > this.recvPackets[localIndex])
        )
          localIndex = i;
      }
    }
    this.anyLocal = anyLocal;
    this.localIndex = localIndex;
  }

  /** Whether the address of a dense index is on the local side (after finish()). */
  isLocalIndex(i: number): boolean {
    return this.anyLocal ? this.isLocal[i] === 1 : i === this.localIndex;
  }

  /** Formats the address of a dense index. */
  address(idx: number): string {
    const slot = this.addrSlots[idx];
    return formatAddressWords(this.addrKeys, slot << 2, this.addrLen[slot] === 4 ? FAMILY_IPV4 : FAMILY_IPV6);
  }

  /** Destination ports that carried at least minPackets packets of this window, most packets first. */
  busyPorts(minPackets: number, limit: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.distinctPorts; i++) {
      const p = this.portsUsed[i];
      if (this.portPackets[p] >= minPackets) out.push(p);
    }
    out.sort((a, b) => this.portPackets[b] - this.portPackets[a] || a - b);
    return out.slice(0, limit);
  }

  /**
   * Duration in seconds that rates are computed over. A window closed by the
   * clock (or by the end of the stream, after which the slot stayed silent)
   * spans to the end of its slot; one cut short by the packet limit spans to
   * its last packet, floored at minDurationMs.
   */
  durationSeconds(closedBy: "time" | "packets"): number {
    if (closedBy === "time") {
      const slotEnd = (Math.floor(this.start / this.windowMs) + 1) * this.windowMs;
      return Math.max(slotEnd - this.start, this.minDurationMs) / 1000;
    }
    return Math.max(this.lastTs - this.start, this.minDurationMs) / 1000;
  }

  /**
   * Writes the feature vector into out. Counts become per-second rates over the
   * window's duration, multiplied by `scale` (shard count / owned shards) so that
   * an instance that sees a share of the traffic estimates the host's totals.
   */
  features(out: Float64Array, closedBy: "time" | "packets", scale: number): void {
    this.finish();
    const k = scale / this.durationSeconds(closedBy);
    out[vector.F_AVG_SIZE] = this.packets > 0 ? this.bytes / this.packets : 0;
    out[vector.F_SMALL] = this.small * k;
    out[vector.F_LARGE] = this.large * k;
    out[vector.F_NEW_TCP] = this.newTcp * k;
    out[vector.F_UDP] = this.udp * k;
    out[vector.F_ICMP] = this.icmp * k;
    out[vector.F_FRAGMENTS] = this.fragments * k;
    out[vector.F_SOURCES] = this.distinctSources * k;
    out[vector.F_DST_PORTS] = this.distinctPorts * k;
    out[vector.F_INACTIVE] = this.inactive * k;
    out[vector.F_UNREACHABLES] = this.unreachables * k;
    // A count, not a rate: one host probed in the last 0.1 s of a slot cut short by the packet limit is
    // no sweep. Nor scaled by the shard share: one source's traffic lands whole on one instance.
    out[vector.F_FANOUT] = this.maxFanout;
  }

  /** Empties the window and starts the next one at `start` (ms). */
  reset(start: number): void {
    for (let i = 0; i < this.addrCount; i++) {
      this.addrIndex[this.addrSlots[i]] = -1;
      this.sentPackets[i] = 0;
      this.sentBytes[i] = 0;
      this.sentPairs[i] = 0;
      this.sentHosts[i] = 0;
      this.sentProbes[i] = 0;
      this.recvUnreachables[i] = 0;
      this.halfOpen[i] = 0;
      this.sentFragments[i] = 0;
      this.sentNewTcp[i] = 0;
      this.recvPackets[i] = 0;
      this.recvPairs[i] = 0;
      this.isLocal[i] = 0;
    }
    this.addrCount = 0;
    for (let i = 0; i < this.pairCount; i++) this.pairB[this.pairUsed[i]] = -1;
    this.pairCount = 0;
    for (let i = 0; i < this.flowCount; i++) this.flowB[this.flowUsed[i]] = -1;
    this.flowCount = 0;
    this.portGen = (this.portGen + 1) >>> 0 || 1;
    if (this.portGen === 1) this.portStamp.fill(0);
    this.distinctPorts = 0;
    this.start = start;
    this.firstTs = this.lastTs = start;
    this.packets = this.bytes = this.small = this.large = this.newTcp = 0;
    this.udp = this.icmp = this.fragments = this.distinctSources = this.inactive = this.tcp = 0;
    this.unreachables = this.maxFanout = 0;
    this.anyLocal = false;
    this.localIndex = -1;
    this.finished = false;
  }
}
