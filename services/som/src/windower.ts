import { FLOW_BUCKETS, PacketDecoder, RecordCursor, shedsSegment, type Malformed } from "@vigil/frames";
import { WindowStats, type WindowOptions } from "./features.js";

export type ClosedBy = "time" | "packets" | "end";

/**
 * Decodes frame records and cuts them into windows aligned to multiples of
 * windowMs of capture time (so that every instance cuts at the same instants),
 * also closing a window after maxPackets. Empty slots produce no window.
 */
export class Windower {
  readonly stats: WindowStats;
  private readonly decoder = new PacketDecoder();
  private readonly cursor = new RecordCursor();
  private open = false;
  /** End (ms) of the time slot of the open window. */
  slotEnd = 0;
  frames = 0;
  packets = 0;
  malformed = 0;
  late = 0;
  lastTs = 0;
  /** Under overload, established segments of flows of buckets at or above this are shed (see shedsSegment). */
  keep = FLOW_BUCKETS;
  shed = 0;

  constructor(
    opts: WindowOptions,
    private readonly onClose: (stats: WindowStats, closedBy: ClosedBy, slotEnd: number) => void,
    private readonly onMalformed?: (reason: Malformed) => void,
  ) {
    this.stats = new WindowStats(opts);
  }

  ingestRecords(records: Uint8Array): void {
    const c = this.cursor.reset(records);
    while (c.next()) this.ingest(c);
  }

  ingest(c: RecordCursor): void {
    this.frames++;
    const d = this.decoder;
    if (!d.decode(c.buf, c.dataOffset, c.capLen, c.family, c.origLen)) {
      this.malformed++;
      this.onMalformed?.(d.malformed);
      return;
    }
    this.packets++;
    const ts = c.tsMs;
    const w = this.stats;
    const T = w.windowMs;
    if (!this.open) {
      this.startWindow(Math.floor(ts / T) * T);
      this.open = true;
    } else if (ts >= this.slotEnd) {
      this.onClose(w, "time", this.slotEnd);
      this.startWindow(Math.floor(ts / T) * T);
    } else if (w.full) {
      this.onClose(w, "packets", this.slotEnd);
      this.startWindow(Math.max(ts, w.start));
    }
    if (ts < w.start) this.late++;
    if (ts > this.lastTs) this.lastTs = ts;
    if (shedsSegment(d, this.keep)) {
      this.shed++;
      w.shed(d);
    } else w.add(d, ts, c.direction);
  }

  /** End of the stream: the partial window is closed as if its slot stayed silent (it did). */
  finish(): void {
    if (this.open && this.stats.packets > 0) this.onClose(this.stats, "end", this.slotEnd);
    this.open = false;
  }

  private startWindow(start: number): void {
    this.stats.reset(start);
    const T = this.stats.windowMs;
    this.slotEnd = (Math.floor(start / T) + 1) * T;
  }
}
