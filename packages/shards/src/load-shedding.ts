import { DEFAULT_SHEDDING, MAX_SHED_LEVEL, type SheddingConfig } from "@vigil/config";
import { FLOW_BUCKETS, RecordCursor } from "@vigil/frames";
import type { FrameBatch } from "@vigil/proto";

export { DEFAULT_SHEDDING, MAX_SHED_LEVEL };

/** Flow buckets a detector keeps at a level: all at 0, then half per level (1/16 at 4). */
export function keepOfLevel(level: number): number {
  return FLOW_BUCKETS >> level;
}

interface SourceLoad {
  level: number;
  /** Wall ms of the last level change. */
  changedAt: number;
  /** Wall ms since which the excess lag stayed above the high mark (below the low one); -1: it does not. */
  aboveSince: number;
  belowSince: number;
  /** Smallest lag (ms) of the current and of the previous baseline period, and when the current one began. */
  minNow: number;
  minBefore: number;
  periodStart: number;
}

/**
 * Decides per capture source how much of the established traffic a detector keeps (see
 * shedsSegment in @vigil/frames), from how far behind live traffic it is.
 *
 * The lag of a batch is the wall time since the capture of its newest frame. Hosts' clocks differ,
 * and a detector's usual lag includes the capture's batching, so what counts is the excess over the
 * smallest lag seen lately for the source. While shedding the baseline is not renewed: an overload
 * that lasts must not become the new normal and end the shedding it needs.
 *
 * Levels move one step at a time, each after a mark stayed crossed for a step period: up above the
 * high mark, down below the low one, held between them. A replayed capture is never shed (its frames
 * are old by nature and nothing is lost by reading it slower) unless a level is forced.
 */
export class LoadShedder {
  private readonly sources = new Map<string, SourceLoad>();
  private readonly cursor = new RecordCursor();
  private readonly highMs: number;
  private readonly lowMs: number;
  private readonly stepMs: number;
  private readonly baselineMs: number;

  constructor(readonly opts: SheddingConfig) {
    if (opts.force !== undefined && !(Number.isInteger(opts.force) && opts.force >= 0 && opts.force <= MAX_SHED_LEVEL))
      throw new RangeError(`shedding.force must be an integer 0..${MAX_SHED_LEVEL}, got ${opts.force}`);
    if (!(opts.lowLagSeconds >= 0 && opts.lowLagSeconds < opts.highLagSeconds))
      throw new RangeError(`shedding.lowLagSeconds (${opts.lowLagSeconds}) must be 0 or more and below highLagSeconds (${opts.highLagSeconds})`);
    this.highMs = opts.highLagSeconds * 1000;
    this.lowMs = opts.lowLagSeconds * 1000;
    this.stepMs = opts.stepSeconds * 1000;
    this.baselineMs = opts.baselineSeconds * 1000;
  }

  /** The level for this batch, given the wall time (ms) it arrived at. */
  observe(batch: FrameBatch, nowMs: number): number {
    if (this.opts.force !== undefined) return this.opts.force;
    if (batch.replay) return 0;
    const s = this.sources.get(batch.sourceId);
    const newest = this.newestMs(batch.records);
    if (newest < 0) return s?.level ?? 0;
    const lag = nowMs - newest;
    if (!s) {
      this.sources.set(batch.sourceId, { level: 0, changedAt: nowMs, aboveSince: -1, belowSince: -1, minNow: lag, minBefore: lag, periodStart: nowMs });
      return 0;
    }
    if (s.level === 0 && nowMs - s.periodStart >= this.baselineMs) {
      s.minBefore = s.minNow;
      s.minNow = lag;
      s.periodStart = nowMs;
    } else if (lag < s.minNow) s.minNow = lag;
    const excess = lag - Math.min(s.minNow, s.minBefore);
    if (excess > this.highMs) {
      s.belowSince = -1;
      if (s.aboveSince < 0) s.aboveSince = nowMs;
      if (s.level < MAX_SHED_LEVEL && this.held(s, s.aboveSince, nowMs)) s.level++;
    } else if (excess < this.lowMs) {
      s.aboveSince = -1;
      if (s.belowSince < 0) s.belowSince = nowMs;
      if (s.level > 0 && this.held(s, s.belowSince, nowMs)) s.level--;
    } else s.aboveSince = s.belowSince = -1;
    return s.level;
  }

  /** The current level of a source (0 for one not seen). */
  level(sourceId: string): number {
    return this.opts.force ?? this.sources.get(sourceId)?.level ?? 0;
  }

  /** The highest level over the sources: what the gauge shows. */
  get maxLevel(): number {
    if (this.opts.force !== undefined) return this.opts.force;
    let max = 0;
    for (const s of this.sources.values()) if (s.level > max) max = s.level;
    return max;
  }

  /** A source that ended (a replay) or went away. */
  forget(sourceId: string): void {
    this.sources.delete(sourceId);
  }

  /** A mark crossed since `since` for a step period, and no step within the last one: step now. */
  private held(s: SourceLoad, since: number, nowMs: number): boolean {
    if (nowMs - since < this.stepMs || nowMs - s.changedAt < this.stepMs) return false;
    s.changedAt = nowMs;
    return true;
  }

  /** Capture time (ms) of the newest frame of a batch; -1 when it has none readable. */
  private newestMs(records: Uint8Array): number {
    let newest = -1;
    const c = this.cursor.reset(records);
    try {
      while (c.next()) if (c.tsMs > newest) newest = c.tsMs;
    } catch {
      // A batch cut short: the detector counts it as malformed; the frames read so far still tell the lag.
    }
    return newest;
  }
}
