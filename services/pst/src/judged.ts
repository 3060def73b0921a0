import type { ConnTable } from "./conntrack.js";
import { HEAD_LEN, RING_LEN } from "./layout.js";
import type { RawEvidence } from "./evidence.js";
import { shapeOf, type Shape } from "./shape.js";

/**
 * A judged connection as the detector sees it: one reusable view onto a slot of the connection
 * table (a flyweight), valid only during the judgement call, because the slot is reused after.
 * The detector reads connections through it and never indexes the table's arrays; the table keeps
 * its struct-of-arrays layout. Nothing is allocated per connection: the addresses are copied into
 * two fixed buffers, and only on first use, since most judgements (normal connections of sources
 * without a window) need none of it.
 */
export class JudgedConnection {
  /** The slot viewed. */
  slot = -1;
  private readonly remote = new Uint32Array(4);
  private readonly local = new Uint32Array(4);
  /** The head symbols, copied out of the table for each use. */
  private readonly headBuf = new Uint16Array(HEAD_LEN);
  private loaded = -1;
  private remoteAddrHash = 0;
  private localAddrHash = 0;

  constructor(readonly table: ConnTable) {}

  /** Points the view at a slot (the table does this before each judgement). */
  at(slot: number): this {
    this.slot = slot;
    this.loaded = -1;
    return this;
  }

  /** The lane (a capture source on a shard, see Lanes) the connection was tracked in. */
  get lane(): number {
    return this.table.shardOf(this.slot);
  }

  get family(): number {
    return this.table.familyOf(this.slot);
  }

  /** Service class index (into the model set's classes). */
  get serviceClass(): number {
    return this.table.classOf(this.slot);
  }

  /** Whether the remote end opened the connection: what counts against a remote address is what it started. */
  get remoteIsClient(): boolean {
    return this.table.remoteIsClient(this.slot);
  }

  /** Whether the remote end acknowledged our initial sequence number (see Handshakes): it is not a blind spoofer. */
  get handshakeVerified(): boolean {
    return this.table.handshakes.verified(this.slot);
  }

  get clientPort(): number {
    return this.table.port(this.slot, true);
  }

  get serverPort(): number {
    return this.table.port(this.slot, false);
  }

  get localPort(): number {
    return this.table.port(this.slot, !this.remoteIsClient);
  }

  get packets(): number {
    return this.table.packetsOf(this.slot);
  }

  get firstTs(): number {
    return this.table.firstTsOf(this.slot);
  }

  get lastTs(): number {
    return this.table.lastTsOf(this.slot);
  }

  /** The shard's capture clock. */
  get now(): number {
    return this.table.clock[this.table.shardOf(this.slot)];
  }

  /** The remote and the local end's address words (IPv4 in word 0); overwritten by the next judgement. */
  get remoteWords(): Uint32Array {
    this.load();
    return this.remote;
  }

  get localWords(): Uint32Array {
    this.load();
    return this.local;
  }

  /** Hashes of the remote and the local address (no allocation). */
  get remoteHash(): number {
    this.load();
    return this.remoteAddrHash;
  }

  get localHash(): number {
    this.load();
    return this.localAddrHash;
  }

  /** The attack shape of the connection's first symbols. */
  get shape(): Shape {
    const len = this.table.headInto(this.slot, this.headBuf);
    return shapeOf(this.headBuf, 0, len);
  }

  /** A hash of the kept symbols, to tell distinct sequences apart without formatting them. */
  get hash(): number {
    const t = this.table;
    const slot = this.slot;
    const n = t.symbolCount(slot);
    let h = Math.imul(n, 0x9e3779b1);
    const head = this.headBuf;
    const hl = t.headInto(slot, head);
    for (let i = 0; i < hl; i++) h = Math.imul(h ^ head[i], 0x85ebca6b) ^ (h >>> 13);
    if (n > HEAD_LEN) for (let j = Math.max(HEAD_LEN, n - RING_LEN); j < n; j++) h = Math.imul(h ^ t.ringSymbol(slot, j), 0xc2b2ae35) ^ (h >>> 16);
    return h >>> 0;
  }

  /** Every symbol when tracing (training), else undefined. */
  get trace(): number[] | undefined {
    return this.table.traces?.[this.slot];
  }

  /**
   * The kept symbols: all of them, or the head and the tail (the caller marks the gap). Plain
   * arrays sized up front: a spoofed flood copies out evidence for most of its connections, and
   * a typed array, or an array grown by push, costs several times the symbols' size.
   */
  symbols(): { head: number[]; tail: number[] | null } {
    const t = this.table;
    const slot = this.slot;
    const n = t.symbolCount(slot);
    const hl = t.headInto(slot, this.headBuf);
    const tailLen = n > HEAD_LEN ? Math.min(RING_LEN, n - HEAD_LEN) : 0;
    const whole = n <= HEAD_LEN + RING_LEN;
    const head = new Array<number>(whole ? hl + tailLen : hl);
    for (let i = 0; i < hl; i++) head[i] = this.headBuf[i];
    const tail = whole ? null : new Array<number>(tailLen);
    const into = tail ?? head;
    for (let k = tail ? 0 : hl, j = n - tailLen; j < n; j++, k++) into[k] = t.ringSymbol(slot, j);
    return { head, tail };
  }

  /** The connection copied out as evidence: it outlives the slot. */
  evidence(score: number, serviceClass: string): RawEvidence {
    const t = this.table;
    const slot = this.slot;
    const { head, tail } = this.symbols();
    return {
      family: t.familyOf(slot),
      words: t.endpointWords(slot),
      clientPort: t.port(slot, true),
      serverPort: t.port(slot, false),
      serviceClass,
      head,
      tail,
      score,
      packets: t.packetsOf(slot),
      firstTs: t.firstTsOf(slot),
      lastTs: t.lastTsOf(slot),
      remoteIsClient: t.remoteIsClient(slot),
      verified: t.handshakes.verified(slot),
    };
  }

  private load(): void {
    if (this.loaded === this.slot) return;
    const t = this.table;
    const slot = this.slot;
    const remoteIsClient = t.remoteIsClient(slot);
    const aIsRemote = t.isClientA(slot) === remoteIsClient;
    t.copyAddress(slot, aIsRemote, this.remote);
    t.copyAddress(slot, !aIsRemote, this.local);
    const fam = t.familyOf(slot);
    this.remoteAddrHash = addressHash(fam, this.remote);
    this.localAddrHash = addressHash(fam, this.local);
    this.loaded = slot;
  }
}

/**
 * A hash of an address (no allocation): the key of its window. Signed, so that it is a small
 * integer to V8 and the windows' Maps look it up without boxing it (an unsigned 32-bit value
 * above 2^31 is a heap number: an allocation per lookup, and a slower hash).
 */
function addressHash(family: number, w: Uint32Array): number {
  let h = Math.imul(family ^ w[0], 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ w[1], 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ w[2], 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ w[3], 0x9e3779b1);
  return h ^ (h >>> 15);
}
