import type { ListVerdictsRequest, VerdictRecord } from "@vigil/proto";

/** The last `size` decided verdicts, oldest first, with an index by verdict id. */
export class VerdictLog {
  private log: VerdictRecord[] = [];
  private byId = new Map<string, VerdictRecord>();

  constructor(private readonly size: number) {}

  add(record: VerdictRecord): void {
    this.log.push(record);
    this.byId.set(record.verdict!.id, record);
    const excess = this.log.length - this.size;
    if (excess > 0) for (const old of this.log.splice(0, excess)) if (this.byId.get(old.verdict!.id) === old) this.byId.delete(old.verdict!.id);
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
