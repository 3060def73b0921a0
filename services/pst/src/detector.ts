import { createHash } from "node:crypto";
import { IPPROTO_TCP, MALFORMED_NAMES, PacketDecoder, RecordCursor, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from "@vigil/frames";
import { ConnectionEvidence, Verdict } from "@vigil/proto";
import { ELLIPSIS, SYM_END, formatSymbols } from "@vigil/models";
import { ConnTable, HEAD_LEN, END_REASON_NAMES, EndReason, LEVEL_ANOMALOUS, LEVEL_NORMAL, type JudgementSink } from "./conntrack.js";
import type { ModelSet, PstModel } from "./model.js";

export interface DetectorOptions {
  detector: string;
  instance: string;
  shardCount: number;
  maxConnections: number;
  idleTimeout: number;
  linger: number;
  minSymbols: number;
  /** Seconds of capture time anomalous connections of one remote address are gathered into one verdict. */
  windowSeconds: number;
  /**
   * After its verdict, a source's window publishes a renewed verdict (new id, counts so far) when
   * more suspicious connections arrive at least this many capture seconds later; 0: never.
   */
  verdictUpdateSeconds: number;
  /** A remote address needs at least this many anomalous connections in a window for a verdict... */
  minConnections: number;
  /** ...or at least this many suspicious ones (above the lower, suspicion threshold)... */
  minSuspicious: number;
  /**
   * ...and that many must be improbable for benign traffic: the binomial tail of seeing so many
   * among the connections judged in the window, at the rates the thresholds were calibrated for,
   * must be below alpha.
   */
  alpha: number;
  /** Without a dominant source (spoofed floods): anomalous connections and distinct sources towards one local address. */
  floodMinConnections: number;
  floodMinSources: number;
  /** Connection sequences kept as evidence per verdict (distinct sequences first). */
  evidenceMax: number;
  /** Open windows per shard; beyond it new sources are only counted in the flood aggregate. */
  maxWindowsPerShard: number;
}

export const DEFAULT_DETECTOR_OPTIONS: DetectorOptions = {
  detector: "pst",
  instance: "pst",
  shardCount: 16,
  maxConnections: 1_000_000,
  idleTimeout: 120,
  linger: 10,
  minSymbols: 8,
  windowSeconds: 60,
  verdictUpdateSeconds: 5,
  minConnections: 5,
  minSuspicious: 12,
  alpha: 1e-6,
  floodMinConnections: 50,
  floodMinSources: 20,
  evidenceMax: 20,
  maxWindowsPerShard: 20_000,
};

/** What an anomalous connection looked like, from its first symbols; decides the verdict's label. */
export const enum Shape {
  HalfOpen = 0,
  Refused = 1,
  SynProbe = 2,
  ConnectProbe = 3,
  Session = 4,
  Backscatter = 5,
  RstOnly = 6,
  Xmas = 7,
  Null = 8,
  Fin = 9,
  Midstream = 10,
}
const SHAPE_COUNT = 11;

export function shapeOf(head: ArrayLike<number>, off = 0, len = head.length): Shape {
  const first = head[off];
  const dir = first >> 8;
  const f = first & 0xff;
  if (dir === 0 && (f & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN) {
    let synAck = false;
    let reply = false;
    let clientAck = false;
    let clientData = false;
    for (let i = 1; i < len; i++) {
      const s = head[off + i];
      if (s === SYM_END) break;
      const sf = s & 0xff;
      if (s >> 8 === 1) {
        reply = true;
        if ((sf & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) synAck = true;
        else if (sf & TCP_RST && !synAck) return Shape.Refused;
      } else {
        if (sf & TCP_RST && synAck && !clientAck) return Shape.SynProbe;
        if (sf & TCP_ACK && synAck) clientAck = true;
        if (sf & TCP_PSH) clientData = true;
      }
    }
    if (!reply) return Shape.HalfOpen;
    if (synAck && !clientAck) return Shape.HalfOpen;
    return clientData ? Shape.Session : Shape.ConnectProbe;
  }
  if ((f & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) return Shape.Backscatter;
  if (f & TCP_RST) return Shape.RstOnly;
  if (dir === 0 && (f & (TCP_SYN | TCP_ACK)) === 0) {
    if (f === 0) return Shape.Null;
    if ((f & (TCP_FIN | TCP_PSH | TCP_URG)) === (TCP_FIN | TCP_PSH | TCP_URG)) return Shape.Xmas;
    if (f & TCP_FIN) return Shape.Fin;
    return Shape.Xmas;
  }
  return Shape.Midstream;
}

function labelFor(shapes: Uint32Array, distinctPorts: number, connections: number): string {
  let best = 0;
  for (let i = 1; i < SHAPE_COUNT; i++) if (shapes[i] > shapes[best]) best = i;
  const manyPorts = distinctPorts > 5;
  switch (best as Shape) {
    case Shape.HalfOpen:
    case Shape.Refused:
    case Shape.SynProbe:
    case Shape.ConnectProbe:
      if (manyPorts) return shapes[Shape.ConnectProbe] > shapes[Shape.SynProbe] ? "connect-scan" : "syn-scan";
      if (best === Shape.ConnectProbe) return "brute-force";
      return connections >= 100 ? "syn-flood" : "half-open";
    case Shape.Session:
      return manyPorts ? "connect-scan" : "brute-force";
    case Shape.Backscatter:
      return "syn-ack-reflection";
    case Shape.RstOnly:
      return "rst-flood";
    case Shape.Xmas:
      return "xmas-scan";
    case Shape.Null:
      return "null-scan";
    case Shape.Fin:
      return "fin-scan";
    default:
      return "anomalous-tcp";
  }
}

export function wordsToAddress(words: Uint32Array, family: number): string {
  if (family === 4) {
    const w = words[0];
    return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
  }
  const parts: number[] = [];
  for (let i = 0; i < 4; i++) parts.push(words[i] >>> 16, words[i] & 0xffff);
  // RFC 5952: compress the longest run of two or more zero groups.
  let bs = -1;
  let bl = 0;
  for (let i = 0; i < 8; ) {
    if (parts[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === 0) j++;
    if (j - i > bl && j - i >= 2) {
      bs = i;
      bl = j - i;
    }
    i = j;
  }
  const hex = parts.map((p) => p.toString(16));
  if (bs < 0) return hex.join(":");
  return `${hex.slice(0, bs).join(":")}::${hex.slice(bs + bl).join(":")}`;
}

interface Window {
  /** Key in its map: the address hash, probed forward on a collision. */
  key: number;
  family: number;
  words: Uint32Array;
  shard: number;
  address: string;
  closeAt: number;
  judged: number;
  /** Judged connections above the suspicion threshold (the anomalous ones included). */
  suspicious: number;
  anomalous: number;
  packets: number;
  scoreSum: number;
  /** Sum of the scores of the connections above the threshold (not just the suspicion threshold). */
  anomalousScoreSum: number;
  firstTs: number;
  lastTs: number;
  /** Remote windows: connections per local address (by hash), and the local addresses' text. */
  peers: Map<number, number>;
  peerText: Map<number, string>;
  localPorts: Set<number>;
  models: Map<string, { count: number; threshold: number; suspicion: number; rateAnomalous: number; rateSuspicious: number }>;
  shapes: Uint32Array;
  /** Raw until the window turns into a verdict: most windows never do, and formatting is the costly part. */
  evidence: RawEvidence[];
  /** Hashes of the symbol sequences already in evidence (at most evidenceMax). */
  evidenceSeen: number[];
  /** Local windows only: anomalous connections per remote source (by address hash). */
  sources?: Map<number, number>;
  /**
   * Set once the window has become a verdict. It stays open until closeAt so the source's
   * further connections are absorbed into it instead of raising one verdict each.
   */
  published: boolean;
  /** Capture time of the last verdict published from the window, and how many renewed ones followed the first. */
  publishedAt: number;
  updates: number;
  /** Once published: last-packet times of the latest minConnections anomalous and minSuspicious suspicious connections. */
  recent: { anomalous: Float64Array; suspicious: Float64Array; a: number; s: number } | null;
}

/**
 * A source seen with one suspicious connection so far. Most never get a second (each packet of a
 * spoofed flood comes from a new address), so a full window is only built on the second.
 */
interface PendingSource {
  key: number;
  family: number;
  words: Uint32Array;
  closeAt: number;
  /** Connections judged normal since. */
  normal: number;
  anomalous: boolean;
  score: number;
  model: PstModel;
  localPort: number;
  shape: Shape;
  hash: number;
  localHash: number;
  localText: string;
  evidence: RawEvidence;
}

/** One connection's evidence as copied out of the table: formatted only if a verdict needs it. */
interface RawEvidence {
  family: number;
  /** Client address words then server address words. */
  words: Uint32Array;
  clientPort: number;
  serverPort: number;
  serviceClass: string;
  head: Uint16Array;
  tail: Uint16Array | null;
  score: number;
  /** The connection's packets (counted into a window that starts from a pending source). */
  packets: number;
  firstTs: number;
  lastTs: number;
}

function formatEvidence(e: RawEvidence): ConnectionEvidence {
  return ConnectionEvidence.fromPartial({
    client: wordsToAddress(e.words.subarray(0, 4), e.family),
    clientPort: e.clientPort,
    server: wordsToAddress(e.words.subarray(4, 8), e.family),
    serverPort: e.serverPort,
    serviceClass: e.serviceClass,
    symbols: e.tail ? `${formatSymbols(e.head)} ${ELLIPSIS} ${formatSymbols(e.tail)}` : formatSymbols(e.head),
    score: e.score,
    firstTs: e.firstTs,
    lastTs: e.lastTs,
  });
}

function newWindow(key: number, family: number, words: Uint32Array, shard: number, closeAt: number): Window {
  return {
    key,
    family,
    words,
    shard,
    address: "",
    closeAt,
    judged: 0,
    suspicious: 0,
    anomalous: 0,
    packets: 0,
    scoreSum: 0,
    anomalousScoreSum: 0,
    firstTs: Infinity,
    lastTs: -Infinity,
    peers: new Map(),
    peerText: new Map(),
    localPorts: new Set(),
    models: new Map(),
    shapes: new Uint32Array(SHAPE_COUNT),
    evidence: [],
    evidenceSeen: [],
    published: false,
    publishedAt: 0,
    updates: 0,
    recent: null,
  };
}

/**
 * Windows keyed by address hash without building strings per connection:
 * the stored address words settle a collision, which moves the key forward.
 * Map insertion order is opening order, hence closing order.
 */
function dominantModel(w: Window): { id: string; threshold: number; suspicion: number; rateAnomalous: number; rateSuspicious: number } | null {
  let best: { id: string; threshold: number; suspicion: number; rateAnomalous: number; rateSuspicious: number } | null = null;
  let bestCount = -1;
  for (const [id, m] of w.models)
    if (m.count > bestCount || (m.count === bestCount && best !== null && id < best.id)) {
      bestCount = m.count;
      best = { id, ...m };
    }
  return best;
}

function addressOf(w: Window): string {
  if (!w.address) w.address = wordsToAddress(w.words, w.family);
  return w.address;
}

function findWindow<T extends { family: number; words: Uint32Array }>(map: Map<number, T>, hash: number, family: number, arr: Uint32Array, off: number): T | undefined {
  for (let k = hash; ; k = (k + 1) >>> 0) {
    const w = map.get(k);
    if (!w) return undefined;
    const ws = w.words;
    if (w.family === family && ws[0] === arr[off] && ws[1] === arr[off + 1] && ws[2] === arr[off + 2] && ws[3] === arr[off + 3]) return w;
  }
}

function freeKey(map: Map<number, unknown>, hash: number): number {
  let k = hash;
  while (map.has(k)) k = (k + 1) >>> 0;
  return k;
}

/** One judged connection as a training sequence, with its class. */
export interface JudgedSequence {
  serviceClass: string;
  /** Full when tracing, else head (+ tail) as kept per connection. */
  head: number[];
  tail: number[] | null;
  anomalous: boolean;
  score: number;
  /** Why it was judged: "threshold", "fin", "rst", "idle", "evicted", "end-of-stream". */
  reason: string;
  clientPort: number;
  serverPort: number;
}

export interface DetectorHooks {
  onVerdict?(v: Verdict): void;
  /** Every judgement, for training collection and learning mode. */
  onJudged?(j: JudgedSequence): void;
  /** Every judgement, raw (the table slot is valid only during the call): for the live score stream. */
  onScore?(t: ConnTable, slot: number, score: number, model: PstModel): void;
}

const MAX_SOURCES_TRACKED = 100_000;

/** P(X ≥ k) for X ~ Binomial(n, p), summed in log space. */
export function binomialTail(n: number, k: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const lp = Math.log(p);
  const lq = Math.log1p(-p);
  // log C(n, k) by summation; n is a window's connection count, so this stays cheap.
  let logC = 0;
  for (let i = 1; i <= k; i++) logC += Math.log(n - k + i) - Math.log(i);
  let term = logC + k * lp + (n - k) * lq;
  let sum = 0;
  for (let i = k; i <= n; i++) {
    sum += Math.exp(term);
    term += Math.log(n - i) - Math.log(i + 1) + lp - lq;
    if (term < -745) break;
  }
  return Math.min(1, sum);
}

/**
 * The detector without the bus: frames in, verdicts out. Tracks connections,
 * scores them, gathers anomalous ones per remote address and window, and
 * emits verdicts. Time is capture time per shard throughout.
 */
export class Detector implements JudgementSink {
  readonly table: ConnTable;
  readonly opts: DetectorOptions;
  private readonly cursor = new RecordCursor();
  private readonly decoder = new PacketDecoder();
  /** Malformed frames by Malformed reason; the last slot counts record-format errors (a batch cut short). */
  readonly malformed = new Float64Array(MALFORMED_NAMES.length + 1);
  frames = 0;
  nonTcp = 0;
  fragments = 0;
  verdicts = 0;
  private readonly windows: Array<Map<number, Window>>;
  private readonly localWindows: Array<Map<number, Window>>;
  private readonly pending: Array<Map<number, PendingSource>>;
  private readonly sourceId: string[];
  private pendingEvidence: RawEvidence | null = null;
  judgedAnomalous = 0;
  judgedNormal = 0;
  windowsRefused = 0;

  constructor(
    public models: ModelSet,
    opts: Partial<DetectorOptions>,
    public hooks: DetectorHooks = {},
  ) {
    this.opts = { ...DEFAULT_DETECTOR_OPTIONS, ...opts };
    const o = this.opts;
    this.table = new ConnTable(
      { capacity: o.maxConnections, shardCount: o.shardCount, idleTimeout: o.idleTimeout, linger: o.linger, minSymbols: o.minSymbols },
      models,
      this,
    );
    this.windows = Array.from({ length: o.shardCount }, () => new Map());
    this.localWindows = Array.from({ length: o.shardCount }, () => new Map());
    this.pending = Array.from({ length: o.shardCount }, () => new Map());
    this.sourceId = new Array<string>(o.shardCount).fill("");
  }

  setModels(models: ModelSet): void {
    this.models = models;
    this.table.models = models;
  }

  /** Processes one batch of packed frame records of a shard. Returns the number of frames. */
  processRecords(shard: number, sourceId: string, records: Uint8Array): number {
    if (shard < 0 || shard >= this.opts.shardCount) throw new RangeError(`shard ${shard} is outside 0..${this.opts.shardCount - 1}`);
    this.sourceId[shard] = sourceId;
    const c = this.cursor.reset(records);
    const d = this.decoder;
    const table = this.table;
    let n = 0;
    try {
      while (c.next()) {
        n++;
        if (!d.decode(c.buf, c.dataOffset, c.capLen, c.family, c.origLen)) {
          this.malformed[d.malformed]++;
          continue;
        }
        if (d.proto !== IPPROTO_TCP) {
          this.nonTcp++;
          continue;
        }
        if (!d.hasL4) {
          this.fragments++;
          continue;
        }
        table.segment(shard, c.tsSeconds, d, c.direction);
      }
    } catch (err) {
      if ((err as { code?: string }).code !== "VIGIL_ERR_RECORD_FORMAT") throw err;
      this.malformed[MALFORMED_NAMES.length]++;
    }
    this.frames += n;
    table.sweep(shard);
    this.closeDueWindows(shard, table.clock[shard]);
    return n;
  }

  /** Judges everything pending in a shard (its stream ended) and emits the verdicts. */
  endOfStream(shard: number): void {
    this.table.flushShard(shard);
    this.closeDueWindows(shard, Infinity);
  }

  /** Forgets a shard that moved to another instance. */
  dropShard(shard: number): void {
    this.table.dropShard(shard);
    this.windows[shard].clear();
    this.localWindows[shard].clear();
    this.pending[shard].clear();
  }

  pendingWindows(): number {
    let n = 0;
    for (const m of this.windows) n += m.size;
    for (const m of this.localWindows) n += m.size;
    for (const m of this.pending) n += m.size;
    return n;
  }

  onJudged(t: ConnTable, slot: number, level: number, score: number, reason: EndReason): void {
    const anomalous = level === LEVEL_ANOMALOUS;
    if (anomalous) this.judgedAnomalous++;
    else this.judgedNormal++;
    const model = this.models.byClass[t.cls[slot]];
    this.hooks.onScore?.(t, slot, score, model);
    if (this.hooks.onJudged) {
      const trace = t.traces?.[slot];
      const kept = trace ? { head: trace.slice(), tail: null } : t.symbols(slot);
      this.hooks.onJudged({
        serviceClass: this.models.classMap.classes[t.cls[slot]].name,
        head: kept.head,
        tail: kept.tail,
        anomalous,
        score,
        reason: END_REASON_NAMES[reason],
        clientPort: t.port(slot, true),
        serverPort: t.port(slot, false),
      });
    }
    const shard = t.shard[slot];
    // Only what the remote end started counts against it: a local client's odd outbound
    // connection, or unsolicited SYN-ACKs reflected from a forged source, go to the local window.
    const remoteIsClient = t.remoteIsClient(slot);
    const windows = this.windows[shard];
    const pending = this.pending[shard];
    if (level === LEVEL_NORMAL && ((windows.size === 0 && pending.size === 0) || !remoteIsClient)) return;
    const fam = t.family[slot];
    const rArr = t.isClientA(slot) === remoteIsClient ? t.addrA : t.addrB;
    const lArr = rArr === t.addrA ? t.addrB : t.addrA;
    const off = slot * 4;
    const rHash = t.addressHash(slot, remoteIsClient);
    let w = remoteIsClient && windows.size ? findWindow(windows, rHash, fam, rArr, off) : undefined;
    const first = remoteIsClient && !w && pending.size ? findWindow(pending, rHash, fam, rArr, off) : undefined;
    if (level === LEVEL_NORMAL) {
      if (w) w.judged++;
      else if (first) first.normal++;
      return;
    }
    const now = t.clock[shard];
    const o = this.opts;
    let defer = false;
    if (!w && remoteIsClient) {
      if (first) {
        pending.delete(first.key);
        w = newWindow(freeKey(windows, rHash), fam, first.words, shard, now + o.windowSeconds);
        windows.set(w.key, w);
        this.addPending(w, first);
      } else if (o.minConnections > 1 && o.minSuspicious > 1) {
        if (pending.size < o.maxWindowsPerShard) defer = true;
        else this.windowsRefused++;
      } else if (windows.size < o.maxWindowsPerShard) {
        w = newWindow(freeKey(windows, rHash), fam, rArr.slice(off, off + 4), shard, now + o.windowSeconds);
        windows.set(w.key, w);
      } else this.windowsRefused++;
    }
    const lHash = t.addressHash(slot, !remoteIsClient);
    const locals = this.localWindows[shard];
    let lw = findWindow(locals, lHash, fam, lArr, off);
    if (!lw) {
      lw = newWindow(freeKey(locals, lHash), fam, lArr.slice(off, off + 4), shard, now + o.windowSeconds);
      lw.sources = new Map();
      locals.set(lw.key, lw);
    }
    const shape = shapeOf(t.head, slot * HEAD_LEN, Math.min(HEAD_LEN, t.nsym[slot]));
    const localPort = remoteIsClient ? t.port(slot, false) : t.port(slot, true);
    const hash = t.symbolHash(slot);
    this.pendingEvidence = null;
    if (w) {
      this.addTo(w, t, slot, anomalous, score, model, localPort, shape, hash);
      if (!w.peerText.has(lHash)) w.peerText.set(lHash, addressOf(lw));
      w.peers.set(lHash, (w.peers.get(lHash) ?? 0) + 1);
    }
    this.addTo(lw, t, slot, anomalous, score, model, localPort, shape, hash);
    if (defer) {
      const key = freeKey(pending, rHash);
      pending.set(key, {
        key,
        family: fam,
        words: rArr.slice(off, off + 4),
        closeAt: now + o.windowSeconds,
        normal: 0,
        anomalous,
        score,
        model,
        localPort,
        shape,
        hash,
        localHash: lHash,
        localText: addressOf(lw),
        evidence: (this.pendingEvidence ??= this.evidenceOf(t, slot, score, model.name)),
      });
    }
    const sources = lw.sources!;
    if (sources.size < MAX_SOURCES_TRACKED || sources.has(rHash)) sources.set(rHash, (sources.get(rHash) ?? 0) + 1);
    // Blocking should not wait for the window to close: the verdict goes out with the connection
    // that makes the evidence significant. Re-testing on every suspicious connection is a
    // sequential test; by the union bound m looks keep the false-alarm rate below m·alpha.
    if (w && !w.published) {
      const tier = this.significant(w);
      if (tier) {
        w.published = true;
        w.publishedAt = now;
        if (o.verdictUpdateSeconds > 0)
          w.recent = { anomalous: new Float64Array(o.minConnections).fill(-Infinity), suspicious: new Float64Array(o.minSuspicious).fill(-Infinity), a: 0, s: 0 };
        this.emit(w, false, 1, tier);
      }
    } else if (w?.recent) {
      const r = w.recent;
      const lastTs = t.lastTs[slot];
      if (anomalous && r.anomalous.length) r.anomalous[r.a++ % r.anomalous.length] = lastTs;
      if (r.suspicious.length) r.suspicious[r.s++ % r.suspicious.length] = lastTs;
    }
    // The attack goes on: a renewed verdict lets the rules service block the source again if its
    // rule has expired meanwhile (a TTL shorter than the window); it attaches to a live rule. The
    // window as a whole stays significant, so the renewal needs as many fresh connections as a
    // first verdict, within the last verdictUpdateSeconds: one odd connection of a source that has
    // stopped (a SYN retransmitted because our block dropped the first) must not block it again.
    if (w?.recent && now - w.publishedAt >= o.verdictUpdateSeconds && this.attackGoesOn(w.recent, now - o.verdictUpdateSeconds)) {
      const tier = this.significant(w);
      if (tier) {
        w.publishedAt = now;
        w.updates++;
        this.emit(w, false, 1, tier);
      }
    }
  }

  /** The source's second suspicious connection: its window starts with the first one, as if it had always been there. */
  private addPending(w: Window, p: PendingSource): void {
    const e = p.evidence;
    this.count(w, p.anomalous, p.score, p.model, p.localPort, p.shape, e.packets, e.firstTs, e.lastTs);
    w.judged += p.normal;
    w.evidenceSeen.push(p.hash);
    w.evidence.push(e);
    w.peerText.set(p.localHash, p.localText);
    w.peers.set(p.localHash, 1);
  }

  private count(win: Window, anomalous: boolean, score: number, model: PstModel, localPort: number, shape: Shape, packets: number, firstTs: number, lastTs: number): void {
    win.judged++;
    win.suspicious++;
    if (anomalous) {
      win.anomalous++;
      win.anomalousScoreSum += score;
    }
    win.packets += packets;
    win.scoreSum += score;
    if (firstTs < win.firstTs) win.firstTs = firstTs;
    if (lastTs > win.lastTs) win.lastTs = lastTs;
    if (win.localPorts.size < 1024) win.localPorts.add(localPort);
    let m = win.models.get(model.id);
    if (!m) {
      const th = model.threshold;
      m = { count: 0, threshold: th.value, suspicion: th.suspicion, rateAnomalous: 1 - th.percentile / 100, rateSuspicious: 1 - th.suspicionPercentile / 100 };
      win.models.set(model.id, m);
    }
    m.count++;
    win.shapes[shape]++;
  }

  private addTo(win: Window, t: ConnTable, slot: number, anomalous: boolean, score: number, model: PstModel, localPort: number, shape: Shape, hash: number): void {
    this.count(win, anomalous, score, model, localPort, shape, t.packets[slot], t.firstTs[slot], t.lastTs[slot]);
    if (win.evidence.length < this.opts.evidenceMax && !win.evidenceSeen.includes(hash)) {
      win.evidenceSeen.push(hash);
      // One copy per connection, shared by its source and local windows.
      this.pendingEvidence ??= this.evidenceOf(t, slot, score, model.name);
      win.evidence.push(this.pendingEvidence);
    }
  }

  /** Whether the latest minConnections anomalous, or minSuspicious suspicious, connections all ended after `since`. */
  private attackGoesOn(r: NonNullable<Window["recent"]>, since: number): boolean {
    const all = (times: Float64Array) => times.length > 0 && times.every((ts) => ts >= since);
    return all(r.anomalous) || all(r.suspicious);
  }

  /**
   * Whether a source's window holds more anomalous or suspicious connections than benign traffic
   * plausibly would: 2 on the anomalous count, 1 on the suspicious count, 0 when neither.
   */
  private significant(w: Window): number {
    const m = dominantModel(w);
    if (!m) return 0;
    const o = this.opts;
    if (w.anomalous >= o.minConnections && binomialTail(w.judged, w.anomalous, m.rateAnomalous) < o.alpha) return 2;
    if (w.suspicious >= o.minSuspicious && binomialTail(w.judged, w.suspicious, m.rateSuspicious) < o.alpha) return 1;
    return 0;
  }

  private evidenceOf(t: ConnTable, slot: number, score: number, serviceClass: string): RawEvidence {
    const words = t.endpointWords(slot);
    const n = t.nsym[slot];
    let head: Uint16Array;
    let tail: Uint16Array | null = null;
    if (n <= HEAD_LEN) head = t.head.slice(slot * HEAD_LEN, slot * HEAD_LEN + n);
    else {
      const kept = t.symbols(slot);
      head = Uint16Array.from(kept.head);
      if (kept.tail) tail = Uint16Array.from(kept.tail);
    }
    return {
      family: t.family[slot],
      words,
      clientPort: t.port(slot, true),
      serverPort: t.port(slot, false),
      serviceClass,
      head,
      tail,
      score,
      packets: t.packets[slot],
      firstTs: t.firstTs[slot],
      lastTs: t.lastTs[slot],
    };
  }

  private closeDueWindows(shard: number, now: number): void {
    const windows = this.windows[shard];
    for (const [key, w] of windows) {
      if (w.closeAt > now) break;
      windows.delete(key);
      // A window that did not become a verdict while open cannot become one now: nothing was added since.
    }
    const pending = this.pending[shard];
    for (const [key, p] of pending) {
      if (p.closeAt > now) break;
      pending.delete(key);
    }
    const locals = this.localWindows[shard];
    for (const [key, lw] of locals) {
      if (lw.closeAt > now) break;
      locals.delete(key);
      // Sources with enough anomalies of their own get their own verdict; the rest may be a spoofed flood.
      let rest = 0;
      let sources = 0;
      for (const count of lw.sources!.values()) {
        if (count >= this.opts.minConnections) continue;
        rest += count;
        sources++;
      }
      if (rest >= this.opts.floodMinConnections && sources >= this.opts.floodMinSources) this.emit(lw, true, sources, 1, rest);
    }
  }

  /**
   * Publishes a window as a verdict. Its score is the mean score of the connections that made the
   * tier (all above the tier's threshold), and its threshold is that tier's: the threshold for the
   * anomalous count, the suspicion threshold otherwise, so score > threshold always holds.
   */
  private emit(w: Window, aggregate: boolean, sources: number, tier: number, connections?: number): void {
    const m = dominantModel(w)!;
    const model = m.id;
    const threshold = tier === 2 ? m.threshold : m.suspicion;
    const score = tier === 2 ? w.anomalousScoreSum / Math.max(1, w.anomalous) : w.scoreSum / Math.max(1, w.suspicious);
    // Every connection above the suspicion threshold is part of the verdict; score and threshold are the tier's.
    const counted = connections ?? w.suspicious;
    addressOf(w);
    let other = "";
    let otherCount = -1;
    for (const [h, c] of w.peers) {
      const text = w.peerText.get(h)!;
      if (c > otherCount || (c === otherCount && text < other)) {
        other = text;
        otherCount = c;
      }
    }
    const ports = [...w.localPorts].sort((a, b) => a - b);
    const label = aggregate ? labelFor(w.shapes, ports.length, w.suspicious).replace("half-open", "syn-flood") : labelFor(w.shapes, ports.length, w.suspicious);
    const sourceId = this.sourceId[w.shard];
    const idInput = `${this.opts.detector}|${sourceId}|${w.shard}|${aggregate ? "aggregate" : "source"}|${w.address}|${w.firstTs.toFixed(6)}${w.updates ? `|update ${w.updates}` : ""}`;
    const id = `${this.opts.detector}-${createHash("sha256").update(idInput).digest("hex").slice(0, 24)}`;
    const tierName = tier === 2 ? "threshold" : "suspicion threshold";
    const portText = ports.length === 0 ? "" : ports.length <= 5 ? ` port${ports.length > 1 ? "s" : ""} ${ports.join(",")}` : ` ${ports.length} ports`;
    const summary = aggregate
      ? `${label}: ${counted} anomalous TCP connections from ${sources} sources to ${w.address}${portText} (mean score ${score.toFixed(2)} > ${tierName} ${threshold.toFixed(2)}, ${model})`
      : `${label}: ${counted} of ${w.judged} TCP connections from ${w.address} to ${other}${portText} anomalous, ${tier === 2 ? w.anomalous : w.suspicious} above the ${tierName} (mean score ${score.toFixed(2)} > ${threshold.toFixed(2)}, ${model})`;
    this.verdicts++;
    this.hooks.onVerdict?.(
      Verdict.fromPartial({
        id,
        detector: this.opts.detector,
        instance: this.opts.instance,
        sourceId,
        address: aggregate ? "" : w.address,
        aggregate,
        localAddress: aggregate ? w.address : other,
        localPorts: ports,
        protocol: IPPROTO_TCP,
        score,
        threshold,
        model,
        label,
        connections: counted,
        packets: w.packets,
        firstTs: w.firstTs,
        lastTs: w.lastTs,
        summary,
        pst: { connections: w.evidence.map(formatEvidence) },
      }),
    );
  }
}

