import { FLOW_BUCKETS, FRAME_F_DROPPED, IPPROTO_TCP, MALFORMED_NAMES, PacketDecoder, RecordCursor, shedsSegment } from "@vigil/frames";
import type { Verdict } from "@vigil/proto";
import { ConnTable, END_REASON_NAMES, EndReason, LEVEL_ANOMALOUS, LEVEL_NORMAL, type JudgementSink } from "./conntrack.js";
import { AUTH_PORTS, AuthSessions } from "./auth-sessions.js";
import type { RawEvidence } from "./evidence.js";
import type { JudgedConnection } from "./judged.js";
import type { ModelSet, PstModel } from "./model.js";
import type { Shape } from "./shape.js";
import { TIER_NONE, TIER_SUSPICION, significant } from "./significance.js";
import { Lanes } from "./lanes.js";
import { composeVerdict } from "./verdict.js";
import {
  addressWords,
  attackGoesOn,
  count,
  countHeld,
  dominantModel,
  findWindow,
  freeKey,
  isFirstConnection,
  newRecent,
  newLocalWindow,
  newWindow,
  notePeer,
  noteRecent,
  type AddressHolder,
  type FirstLocalConnection,
  type PendingSource,
  type Window,
} from "./windows.js";

export { Shape, shapeOf } from "./shape.js";
export { binomialTail } from "./significance.js";

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
  /** Whether the remote end acknowledged our initial sequence number. */
  handshakeVerified: boolean;
}

export interface DetectorHooks {
  onVerdict?(v: Verdict): void;
  /** Every judgement, for training collection and learning mode. */
  onJudged?(j: JudgedSequence): void;
  /** Every judgement, raw (the table slot is valid only during the call): for the live score stream. */
  onScore?(t: ConnTable, slot: number, score: number, model: PstModel): void;
}

const MAX_SOURCES_TRACKED = 100_000;

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
  /** Frames the kernel dropped (a drop rule matched): not evidence, see processRecords. */
  droppedFrames = 0;
  nonTcp = 0;
  fragments = 0;
  verdicts = 0;
  private readonly windows: Array<Map<number, Window>>;
  /** Per local address: its window, or its first connection until a second comes. */
  private readonly localWindows: Array<Map<number, Window | FirstLocalConnection>>;
  private readonly pending: Array<Map<number, PendingSource>>;
  /** Per shard, one lane per capture source: connections, clock and windows are per lane. */
  private readonly lanes: Lanes;
  private pendingEvidence: RawEvidence | null = null;
  /** Short sessions to login services, per source: guessing too slow or too ordinary for the windows. */
  private readonly auth = new AuthSessions();
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
    this.lanes = new Lanes(o.shardCount);
    const n = this.lanes.count;
    this.table = new ConnTable(
      { capacity: o.maxConnections, shardCount: n, idleTimeout: o.idleTimeout, linger: o.linger, minSymbols: o.minSymbols },
      models,
      this,
    );
    this.windows = Array.from({ length: n }, () => new Map());
    this.localWindows = Array.from({ length: n }, () => new Map());
    this.pending = Array.from({ length: n }, () => new Map());
  }

  setModels(models: ModelSet): void {
    this.models = models;
    this.table.models = models;
  }

  /**
   * Processes one batch of packed frame records of a shard from one capture source (its lane). Returns
   * the number of frames. `keep`: under overload, established segments of flows of buckets at or
   * above it are shed (see shedsSegment); their connections are then never judged.
   */
  processRecords(shard: number, sourceId: string, records: Uint8Array, keep = FLOW_BUCKETS): number {
    if (shard < 0 || shard >= this.opts.shardCount) throw new RangeError(`shard ${shard} is outside 0..${this.opts.shardCount - 1}`);
    const lane = this.lanes.claim(shard, sourceId);
    const c = this.cursor.reset(records);
    const d = this.decoder;
    const table = this.table;
    let n = 0;
    try {
      while (c.next()) {
        n++;
        // What a drop rule stopped is no evidence against its source: a blocked host's retries
        // (or a busy NAT's users) would otherwise renew the block that dropped them.
        if (c.flags & FRAME_F_DROPPED) {
          this.droppedFrames++;
          continue;
        }
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
        table.segment(lane, c, d, shedsSegment(d, keep));
      }
    } catch (err) {
      if ((err as { code?: string }).code !== "VIGIL_ERR_RECORD_FORMAT") throw err;
      this.malformed[MALFORMED_NAMES.length]++;
    }
    this.frames += n;
    table.sweep(lane);
    this.closeDueWindows(lane, table.clock[lane]);
    return n;
  }

  /**
   * Judges everything pending in a shard (its stream ended) and emits the verdicts: the lane of
   * `sourceId` when given (a replay ended, the live capture beside it goes on), else every lane.
   */
  endOfStream(shard: number, sourceId?: string): void {
    for (const lane of this.lanes.of(shard, sourceId)) {
      this.table.flushShard(lane);
      this.closeDueWindows(lane, Infinity);
      this.lanes.release(lane);
    }
  }

  /** Forgets a shard that moved to another instance. */
  dropShard(shard: number): void {
    for (const lane of this.lanes.of(shard)) {
      this.table.dropShard(lane);
      this.windows[lane].clear();
      this.localWindows[lane].clear();
      this.pending[lane].clear();
      this.lanes.release(lane);
    }
  }

  /** Batches whose source had to share a lane with another source on the shard (all lanes taken). */
  get sharedLaneBatches(): number {
    return this.lanes.shared;
  }

  pendingWindows(): number {
    let n = 0;
    for (const m of this.windows) n += m.size;
    for (const m of this.localWindows) n += m.size;
    for (const m of this.pending) n += m.size;
    return n;
  }

  onJudged(c: JudgedConnection, level: number, score: number, reason: EndReason): void {
    const anomalous = level === LEVEL_ANOMALOUS;
    if (anomalous) this.judgedAnomalous++;
    else this.judgedNormal++;
    const model = this.models.byClass[c.serviceClass];
    this.hooks.onScore?.(c.table, c.slot, score, model);
    if (this.hooks.onJudged) {
      const trace = c.trace;
      const kept = trace ? { head: trace.slice(), tail: null } : c.symbols();
      this.hooks.onJudged({
        serviceClass: this.models.classMap.classes[c.serviceClass].name,
        head: kept.head,
        tail: kept.tail,
        anomalous,
        score,
        reason: END_REASON_NAMES[reason],
        clientPort: c.clientPort,
        serverPort: c.serverPort,
        handshakeVerified: c.handshakeVerified,
      });
    }
    const lane = c.lane;
    if (reason !== EndReason.Flagged) this.noteLogin(c, reason, score, model?.name ?? "");
    // Only what the remote end started counts against it: a local client's odd outbound
    // connection, or unsolicited SYN-ACKs reflected from a forged source, go to the local window.
    const remoteIsClient = c.remoteIsClient;
    const windows = this.windows[lane];
    const pending = this.pending[lane];
    if (level === LEVEL_NORMAL && ((windows.size === 0 && pending.size === 0) || !remoteIsClient)) return;
    const fam = c.family;
    const remote = c.remoteWords;
    const rHash = c.remoteHash;
    let w = remoteIsClient && windows.size ? findWindow(windows, rHash, fam, remote) : undefined;
    const first = remoteIsClient && !w && pending.size ? findWindow(pending, rHash, fam, remote) : undefined;
    if (level === LEVEL_NORMAL) {
      if (w) w.judged++;
      else if (first) first.normal++;
      return;
    }
    const now = c.now;
    const o = this.opts;
    let defer = false;
    if (!w && remoteIsClient) {
      if (first) {
        pending.delete(first.key);
        w = newWindow(freeKey(windows, rHash), fam, first.words, lane, now + o.windowSeconds);
        windows.set(w.key, w);
        this.addPending(w, first);
      } else if (o.minConnections > 1 && o.minSuspicious > 1) {
        if (pending.size < o.maxWindowsPerShard) defer = true;
        else this.windowsRefused++;
      } else if (windows.size < o.maxWindowsPerShard) {
        w = newWindow(freeKey(windows, rHash), fam, addressWords(remote), lane, now + o.windowSeconds);
        windows.set(w.key, w);
      } else this.windowsRefused++;
    }
    const lHash = c.localHash;
    const locals = this.localWindows[lane];
    const shape = c.shape;
    const localPort = c.localPort;
    const hash = c.hash;
    this.pendingEvidence = null;
    const found = findWindow(locals, lHash, fam, c.localWords);
    let lw: Window | undefined;
    let local: AddressHolder;
    if (found === undefined && (o.floodMinConnections > 1 || o.floodMinSources > 1)) {
      // One connection from one source never makes a flood: the window waits for a second.
      const key = freeKey(locals, lHash);
      const evidence = (this.pendingEvidence = c.evidence(score, model.name));
      const first: FirstLocalConnection = {
        first: true,
        key,
        family: fam,
        words: addressWords(c.localWords),
        lane,
        address: "",
        closeAt: now + o.windowSeconds,
        anomalous,
        score,
        model,
        localPort,
        shape,
        hash,
        source: rHash,
        evidence,
      };
      locals.set(key, first);
      local = first;
    } else {
      if (found === undefined) {
        lw = newLocalWindow(freeKey(locals, lHash), fam, addressWords(c.localWords), lane, now + o.windowSeconds);
        locals.set(lw.key, lw);
      } else lw = isFirstConnection(found) ? this.promoteLocal(found) : found;
      local = lw;
    }
    if (w) {
      this.addTo(w, c, anomalous, score, model, localPort, shape, hash);
      notePeer(w, lHash, local);
    }
    if (lw) this.addTo(lw, c, anomalous, score, model, localPort, shape, hash);
    if (defer) {
      const key = freeKey(pending, rHash);
      const evidence = (this.pendingEvidence ??= c.evidence(score, model.name));
      pending.set(key, {
        key,
        family: fam,
        // A pending source is a remote client: its address is the evidence's first (the client's) words.
        words: evidence.words,
        closeAt: now + o.windowSeconds,
        normal: 0,
        anomalous,
        score,
        model,
        localPort,
        shape,
        hash,
        localHash: lHash,
        local,
        evidence,
      });
    }
    if (lw) {
      const sources = lw.sources!;
      if (sources.size < MAX_SOURCES_TRACKED || sources.has(rHash)) sources.set(rHash, (sources.get(rHash) ?? 0) + 1);
    }
    // Blocking should not wait for the window to close: the verdict goes out with the connection
    // that makes the evidence significant. Re-testing on every suspicious connection is a
    // sequential test; by the union bound m looks keep the false-alarm rate below m·alpha.
    if (w && !w.published) {
      const tier = this.significant(w);
      if (tier) {
        w.published = true;
        w.publishedAt = now;
        if (o.verdictUpdateSeconds > 0) w.recent = newRecent(o.minConnections, o.minSuspicious);
        this.emit(w, false, 1, tier);
      }
    } else if (w?.recent) noteRecent(w.recent, anomalous, c.lastTs);
    // The attack goes on: a renewed verdict lets the rules service block the source again if its
    // rule has expired meanwhile (a TTL shorter than the window); it attaches to a live rule. The
    // window as a whole stays significant, so the renewal needs as many fresh connections as a
    // first verdict, within the last verdictUpdateSeconds: one odd connection of a source that has
    // stopped (a SYN retransmitted because our block dropped the first) must not block it again.
    if (w?.recent && now - w.publishedAt >= o.verdictUpdateSeconds && attackGoesOn(w.recent, now - o.verdictUpdateSeconds)) {
      const tier = this.significant(w);
      if (tier) {
        w.publishedAt = now;
        w.updates++;
        this.emit(w, false, 1, tier);
      }
    }
  }

  /** A connection flagged on its first symbols has ended: whether it was a short login session shows only now. */
  onEnded(c: JudgedConnection, reason: EndReason): void {
    this.noteLogin(c, reason, 0, this.models.byClass[c.serviceClass]?.name ?? "");
  }

  private noteLogin(c: JudgedConnection, reason: EndReason, score: number, modelName: string): void {
    if (!c.remoteIsClient || !AUTH_PORTS.has(c.localPort)) return;
    const origin = { detector: this.opts.detector, instance: this.opts.instance, sourceId: this.lanes.sourceOf(c.lane) };
    const v = this.auth.note(c, reason === EndReason.Fin || reason === EndReason.Rst, score, modelName, origin);
    if (v) {
      this.verdicts++;
      this.hooks.onVerdict?.(v);
    }
  }

  /** The source's second suspicious connection: its window starts with the first one, as if it had always been there. */
  private addPending(w: Window, p: PendingSource): void {
    countHeld(w, p);
    w.judged += p.normal;
    notePeer(w, p.localHash, p.local);
  }

  /** A local address's second suspicious connection: its window starts with the first, in the first's place in the map. */
  private promoteLocal(f: FirstLocalConnection): Window {
    const lw = newLocalWindow(f.key, f.family, f.words, f.lane, f.closeAt);
    lw.address = f.address;
    lw.sources!.set(f.source, 1);
    countHeld(lw, f);
    // Same key: the map keeps its place, so windows still close in the order they opened.
    this.localWindows[f.lane].set(f.key, lw);
    return lw;
  }

  private addTo(win: Window, c: JudgedConnection, anomalous: boolean, score: number, model: PstModel, localPort: number, shape: Shape, hash: number): void {
    count(win, anomalous, score, model, localPort, shape, c.packets, c.firstTs, c.lastTs);
    if (win.evidence.length < this.opts.evidenceMax && !win.evidenceSeen.includes(hash)) {
      win.evidenceSeen.push(hash);
      // One copy per connection, shared by its source and local windows.
      this.pendingEvidence ??= c.evidence(score, model.name);
      win.evidence.push(this.pendingEvidence);
    }
  }

  /** Whether a source's window holds more anomalous or suspicious connections than benign traffic plausibly would (its tier). */
  private significant(w: Window): number {
    const m = dominantModel(w);
    return m ? significant(w.judged, w.anomalous, w.suspicious, m.rateAnomalous, m.rateSuspicious, this.opts) : TIER_NONE;
  }

  private closeDueWindows(lane: number, now: number): void {
    const windows = this.windows[lane];
    // By value, deleting by the entry's own key: an iterator of [key, value] pairs allocates a pair per entry.
    for (const w of windows.values()) {
      if (w.closeAt > now) break;
      windows.delete(w.key);
      // A window that did not become a verdict while open cannot become one now: nothing was added since.
    }
    const pending = this.pending[lane];
    for (const p of pending.values()) {
      if (p.closeAt > now) break;
      pending.delete(p.key);
    }
    const locals = this.localWindows[lane];
    for (const lw of locals.values()) {
      if (lw.closeAt > now) break;
      locals.delete(lw.key);
      // Held only where one connection from one source cannot make a flood.
      if (isFirstConnection(lw)) continue;
      // Sources with enough anomalies of their own get their own verdict; the rest may be a spoofed flood.
      let rest = 0;
      let sources = 0;
      for (const count of lw.sources!.values()) {
        if (count >= this.opts.minConnections) continue;
        rest += count;
        sources++;
      }
      if (rest >= this.opts.floodMinConnections && sources >= this.opts.floodMinSources) this.emit(lw, true, sources, TIER_SUSPICION, rest);
    }
  }

  private emit(w: Window, aggregate: boolean, sources: number, tier: number, connections?: number): void {
    const origin = { detector: this.opts.detector, instance: this.opts.instance, sourceId: this.lanes.sourceOf(w.lane), shard: this.lanes.shardOf(w.lane) };
    this.verdicts++;
    this.hooks.onVerdict?.(composeVerdict(w, origin, aggregate, sources, tier, connections));
  }
}
