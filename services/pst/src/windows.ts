import { formatAddressWords } from "@vigil/frames";
import type { RawEvidence } from "./evidence.js";
import type { PstModel } from "./model.js";
import { SHAPE_COUNT, type Shape } from "./shape.js";

/** How many connections of one model a window holds, and that model's calibrated thresholds and rates. */
export interface ModelTally {
  id: string;
  count: number;
  threshold: number;
  suspicion: number;
  rateAnomalous: number;
  rateSuspicious: number;
}

/** Once published: last-packet times of the latest minConnections anomalous and minSuspicious suspicious connections. */
export interface RecentConnections {
  anomalous: Float64Array;
  suspicious: Float64Array;
  a: number;
  s: number;
}

/** Anomalous connections of one address (remote source, or local target) gathered over windowSeconds of capture time. */
export interface Window {
  /** Key in its map: the address hash, probed forward on a collision. */
  key: number;
  family: number;
  /** The address words: the first four (see addressWords; a pending source's are its evidence's, client first). */
  words: ArrayLike<number>;
  /** The lane (a capture source on a shard, see Lanes) the window belongs to. */
  lane: number;
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
  /**
   * Remote windows: connections per local address (by hash), and the local addresses' text; null
   * until the first (a local window has none).
   */
  peers: Map<number, number> | null;
  peerText: Map<number, string> | null;
  localPorts: Set<number>;
  /** In order of first use; a window sees one model or a few, so a list is cheaper than a Map. */
  models: ModelTally[];
  /** Connections per Shape. */
  shapes: number[];
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
  recent: RecentConnections | null;
}

/**
 * An address's first suspicious connection, held instead of a window: a scan or a spoofed flood
 * brings a new address with nearly every connection, and a window (maps of peers, ports and
 * models, evidence lists) costs ten objects. The window is built on the second (countHeld).
 */
export interface HeldConnection {
  key: number;
  family: number;
  words: ArrayLike<number>;
  closeAt: number;
  anomalous: boolean;
  score: number;
  model: PstModel;
  localPort: number;
  shape: Shape;
  hash: number;
  evidence: RawEvidence;
}

/** A remote source's first suspicious connection. Most never get a second (each packet of a spoofed flood comes from a new address). */
export interface PendingSource extends HeldConnection {
  /** The first four: the evidence's client words (a pending source is a remote client). */
  words: ArrayLike<number>;
  /** Connections judged normal since. */
  normal: number;
  localHash: number;
  /** The local address (its window, or its first connection): formatted only if the source gets a window of its own (most never do). */
  local: AddressHolder;
}

/**
 * A local address's first suspicious connection (many never get a second: a scan across a
 * router's networks). It sits in the local windows' map under the key and at the place its
 * window takes over (see promoteLocal in detector.ts), so windows still close in opening order.
 */
export interface FirstLocalConnection extends HeldConnection {
  first: true;
  lane: number;
  address: string;
  /** The remote address's hash (the window's first source). */
  source: number;
}

/** Counts a held connection into the window built for its address, as if the window had opened with it. */
export function countHeld(w: Window, h: HeldConnection): void {
  const e = h.evidence;
  count(w, h.anomalous, h.score, h.model, h.localPort, h.shape, e.packets, e.firstTs, e.lastTs);
  w.evidenceSeen.push(h.hash);
  w.evidence.push(e);
}

export function isFirstConnection(w: Window | FirstLocalConnection): w is FirstLocalConnection {
  return (w as FirstLocalConnection).first === true;
}

/** What a source's window needs of a local address: its text, formatted once. */
export interface AddressHolder {
  family: number;
  words: ArrayLike<number>;
  address: string;
}

/**
 * An address's words copied out of a view that the next judgement overwrites. A plain array: a
 * flood opens a window or a pending source per connection, and a typed array costs several times its size.
 */
export function addressWords(w: Uint32Array): number[] {
  return [w[0], w[1], w[2], w[3]];
}

export function newWindow(key: number, family: number, words: ArrayLike<number>, lane: number, closeAt: number): Window {
  return {
    key,
    family,
    words,
    lane,
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
    peers: null,
    peerText: null,
    localPorts: new Set(),
    models: [],
    shapes: new Array<number>(SHAPE_COUNT).fill(0),
    evidence: [],
    evidenceSeen: [],
    published: false,
    publishedAt: 0,
    updates: 0,
    recent: null,
  };
}

/** A local address's window: it also counts the anomalous connections of each remote source (flood aggregation). */
export function newLocalWindow(key: number, family: number, words: ArrayLike<number>, lane: number, closeAt: number): Window {
  const w = newWindow(key, family, words, lane, closeAt);
  w.sources = new Map();
  return w;
}

/**
 * Windows keyed by address hash without building strings per connection:
 * the stored address words settle a collision, which moves the key forward (as a signed 32-bit
 * integer, like the hashes: see addressHash in judged.ts).
 * Map insertion order is opening order, hence closing order.
 */
export function findWindow<T extends { family: number; words: ArrayLike<number> }>(map: Map<number, T>, hash: number, family: number, words: ArrayLike<number>): T | undefined {
  for (let k = hash; ; k = (k + 1) | 0) {
    const w = map.get(k);
    if (!w) return undefined;
    const ws = w.words;
    if (w.family === family && ws[0] === words[0] && ws[1] === words[1] && ws[2] === words[2] && ws[3] === words[3]) return w;
  }
}

export function freeKey(map: Map<number, unknown>, hash: number): number {
  let k = hash;
  while (map.has(k)) k = (k + 1) | 0;
  return k;
}

/** The model most of the window's connections were judged by (ties: the lower id). */
export function dominantModel(w: Window): ModelTally | null {
  let best: ModelTally | null = null;
  for (const m of w.models) if (best === null || m.count > best.count || (m.count === best.count && m.id < best.id)) best = m;
  return best;
}

/** Counts a connection of a source's window to a local address (its window). */
export function notePeer(w: Window, localHash: number, local: AddressHolder): void {
  const texts = (w.peerText ??= new Map());
  if (!texts.has(localHash)) texts.set(localHash, addressOf(local));
  const peers = (w.peers ??= new Map());
  peers.set(localHash, (peers.get(localHash) ?? 0) + 1);
}

export function addressOf(w: AddressHolder): string {
  if (!w.address) w.address = formatAddressWords(w.words, 0, w.family);
  return w.address;
}

/** Counts one suspicious (or anomalous) connection into a window. */
export function count(win: Window, anomalous: boolean, score: number, model: PstModel, localPort: number, shape: Shape, packets: number, firstTs: number, lastTs: number): void {
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
  const id = model.id;
  let m: ModelTally | undefined;
  for (const t of win.models)
    if (t.id === id) {
      m = t;
      break;
    }
  if (!m) {
    const th = model.threshold;
    m = { id, count: 0, threshold: th.value, suspicion: th.suspicion, rateAnomalous: 1 - th.percentile / 100, rateSuspicious: 1 - th.suspicionPercentile / 100 };
    win.models.push(m);
  }
  m.count++;
  win.shapes[shape]++;
}

export function newRecent(minConnections: number, minSuspicious: number): RecentConnections {
  return { anomalous: new Float64Array(minConnections).fill(-Infinity), suspicious: new Float64Array(minSuspicious).fill(-Infinity), a: 0, s: 0 };
}

/** Remembers when a published window's latest suspicious (and anomalous) connection ended. */
export function noteRecent(r: RecentConnections, anomalous: boolean, lastTs: number): void {
  if (anomalous && r.anomalous.length) r.anomalous[r.a++ % r.anomalous.length] = lastTs;
  if (r.suspicious.length) r.suspicious[r.s++ % r.suspicious.length] = lastTs;
}

/** Whether the latest minConnections anomalous, or minSuspicious suspicious, connections all ended after `since`. */
export function attackGoesOn(r: RecentConnections, since: number): boolean {
  const all = (times: Float64Array) => times.length > 0 && times.every((ts) => ts >= since);
  return all(r.anomalous) || all(r.suspicious);
}
