import type { ListVerdictsRequest, VerdictRecord } from "@vigil/proto";

/**
 * The last decided verdicts, oldest first, with an index by verdict id:
 * at most `size` of them and `maxBytes` of encoded verdicts, whichever
 * comes first, so that large verdicts cannot fill the memory. Records before
 * `head` are gone; the arrays are compacted once that prefix is as long as
 * the log, so dropping the oldest costs no copy per verdict.
 */
export class VerdictLog {
  private log: VerdictRecord[] = [];
  private sizes: number[] = [];
  private head = 0;
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
    // The newest record always stays, whatever its size.
    while (this.log.length - this.head > this.size || (this.bytes > this.maxBytes && this.log.length - this.head > 1)) {
      const old = this.log[this.head];
      this.bytes -= this.sizes[this.head];
      this.head++;
      if (this.byId.get(old.verdict!.id) === old) this.byId.delete(old.verdict!.id);
    }
    if (this.head >= 1024 && this.head * 2 >= this.log.length) {
      this.log = this.log.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  get(id: string): VerdictRecord | undefined {
    return this.byId.get(id);
  }

  /** Newest first, filtered as the API asks. */
  list(req: Partial<ListVerdictsRequest>): VerdictRecord[] {
    const out: VerdictRecord[] = [];
    for (let i = this.log.length - 1; i >= this.head; i--) {
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
