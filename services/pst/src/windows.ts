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
  words: Uint32Array;
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
  /** Remote windows: connections per local address (by hash), and the local addresses' text. */
  peers: Map<number, number>;
  peerText: Map<number, string>;
  localPorts: Set<number>;
  models: Map<string, ModelTally>;
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
  recent: RecentConnections | null;
}

/**
 * A source seen with one suspicious connection so far. Most never get a second (each packet of a
 * spoofed flood comes from a new address), so a full window is only built on the second.
 */
export interface PendingSource {
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

export function newWindow(key: number, family: number, words: Uint32Array, lane: number, closeAt: number): Window {
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
 * the stored address words settle a collision, which moves the key forward (as a signed 32-bit
 * integer, like the hashes: see addressHash in judged.ts).
 * Map insertion order is opening order, hence closing order.
 */
export function findWindow<T extends { family: number; words: Uint32Array }>(map: Map<number, T>, hash: number, family: number, words: Uint32Array): T | undefined {
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
  for (const m of w.models.values()) if (best === null || m.count > best.count || (m.count === best.count && m.id < best.id)) best = m;
  return best;
}

export function addressOf(w: Window): string {
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
  let m = win.models.get(model.id);
  if (!m) {
    const th = model.threshold;
    m = { id: model.id, count: 0, threshold: th.value, suspicion: th.suspicion, rateAnomalous: 1 - th.percentile / 100, rateSuspicious: 1 - th.suspicionPercentile / 100 };
    win.models.set(model.id, m);
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
