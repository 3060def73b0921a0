/**
 * A lane is the tracking state of one capture source on one shard: its connections, its capture
 * clock and its windows. Sources that share a shard (live capture, and a `vigil capture --pcap`
 * replay beside it) must not share them: a replay's connections and timestamps would be judged
 * against the live clock (or move it), and its verdicts would carry the other source's id, which
 * decides whose block budget they spend.
 *
 * Each shard has its own lane (the lane number is the shard number, so a single source sees no
 * difference) and `extra` more for further sources. When all are taken, a further source shares
 * the shard's own lane, as every source did before lanes (`shared` counts its batches).
 */
export class Lanes {
  readonly count: number;
  private readonly owner: string[];
  /** Batches that had to share a lane with another source. */
  shared = 0;

  constructor(
    readonly shardCount: number,
    readonly extra = 3,
  ) {
    this.count = shardCount * (1 + extra);
    this.owner = new Array<string>(this.count).fill("");
  }

  shardOf(lane: number): number {
    return lane < this.shardCount ? lane : Math.floor((lane - this.shardCount) / this.extra);
  }

  /** The capture source a lane tracks ("" while free). */
  sourceOf(lane: number): string {
    return this.owner[lane];
  }

  /** The lane of a source on a shard, claimed on first use. */
  claim(shard: number, sourceId: string): number {
    const own = this.owner[shard];
    if (own === sourceId) return shard;
    const base = this.shardCount + shard * this.extra;
    let free = own === "" ? shard : -1;
    for (let k = 0; k < this.extra; k++) {
      const o = this.owner[base + k];
      if (o === sourceId) return base + k;
      if (o === "" && free < 0) free = base + k;
    }
    if (free < 0) {
      this.shared++;
      this.owner[shard] = sourceId;
      return shard;
    }
    this.owner[free] = sourceId;
    return free;
  }

  /** The lanes of a shard in use: all of them, or the one of a source. */
  of(shard: number, sourceId?: string): number[] {
    const out: number[] = [];
    const want = (lane: number) => this.owner[lane] !== "" && (sourceId === undefined || this.owner[lane] === sourceId);
    if (want(shard) || (sourceId === undefined && shard < this.shardCount)) out.push(shard);
    for (let k = 0; k < this.extra; k++) if (want(this.shardCount + shard * this.extra + k)) out.push(this.shardCount + shard * this.extra + k);
    return out;
  }

  release(lane: number): void {
    this.owner[lane] = "";
  }
}
