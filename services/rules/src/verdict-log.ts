import type { ListVerdictsRequest, VerdictRecord } from "@vigil/proto";

/**
 * The last decided verdicts, oldest first, with an index by verdict id:
 * at most `size` of them and `maxBytes` of encoded verdicts, whichever
 * comes first, so that large verdicts cannot fill the memory.
 */
export class VerdictLog {
  private log: VerdictRecord[] = [];
  private sizes: number[] = [];
  private bytes = 0;
  private byId = new Map<string, VerdictRecord>();

  constructor(
    private readonly size: number,
    private readonly maxBytes = Infinity,
  ) {}

  /** `bytes`: the verdict's encoded size (what it costs to keep, roughly). */
  add(record: VerdictRecord, bytes = 0): void {
    this.log.push(record);
    this.sizes.push(bytes);
    this.bytes += bytes;
    this.byId.set(record.verdict!.id, record);
    let drop = Math.max(0, this.log.length - this.size);
    let kept = this.bytes;
    for (let i = 0; i < drop; i++) kept -= this.sizes[i];
    // The newest record always stays, whatever its size.
    while (kept > this.maxBytes && drop < this.log.length - 1) kept -= this.sizes[drop++];
    if (drop === 0) return;
    this.sizes.splice(0, drop);
    this.bytes = kept;
    for (const old of this.log.splice(0, drop)) if (this.byId.get(old.verdict!.id) === old) this.byId.delete(old.verdict!.id);
  }

  get(id: string): VerdictRecord | undefined {
    return this.byId.get(id);
  }

  /** Newest first, filtered as the API asks. */
  list(req: Partial<ListVerdictsRequest>): VerdictRecord[] {
    const out: VerdictRecord[] = [];
    for (let i = this.log.length - 1; i >= 0; i--) {
      const rec = this.log[i];
      const v = rec.verdict!;
      if (req.detector && v.detector !== req.detector) continue;
      if (req.address && v.address !== req.address) continue;
      if (req.since && rec.receivedAt < req.since) continue;
      out.push(rec);
      if (req.limit && out.length >= req.limit) break;
    }
    return out;
  }
}
