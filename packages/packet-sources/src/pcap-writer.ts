import { closeSync, openSync, writeSync } from "node:fs";

/** Link types (LINKTYPE_* of the pcap format) the sources read. */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  RAW: 101,
  LOOP: 108,
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

const PCAP_MAGIC_NS = 0xa1b23c4d;

/**
 * Writes a classic pcap file (nanosecond timestamps, little-endian) through a
 * 1 MiB buffer: generated traffic for tests, benchmarks and the lab.
 */
export class PcapWriter {
  private readonly fd: number;
  private readonly buf = Buffer.allocUnsafe(1 << 20);
  private len = 0;
  packets = 0;
  bytes = 0;

  constructor(
    readonly path: string,
    readonly linktype: number = LINKTYPE.ETHERNET,
    readonly snaplen = 262144,
  ) {
    this.fd = openSync(path, "w");
    const h = this.buf;
    h.writeUInt32LE(PCAP_MAGIC_NS, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8);
    h.writeUInt32LE(0, 12);
    h.writeUInt32LE(snaplen, 16);
    h.writeUInt32LE(linktype, 20);
    this.len = 24;
  }

  /** Appends one packet; origLen defaults to the bytes given (nothing cut). */
  write(tsNs: bigint, data: Uint8Array, origLen = data.byteLength): void {
    const need = 16 + data.byteLength;
    if (this.len + need > this.buf.length) this.flush();
    if (need > this.buf.length) throw new RangeError(`packet of ${data.byteLength} bytes is too large`);
    const b = this.buf;
    const sec = tsNs / 1_000_000_000n;
    b.writeUInt32LE(Number(sec), this.len);
    b.writeUInt32LE(Number(tsNs - sec * 1_000_000_000n), this.len + 4);
    b.writeUInt32LE(data.byteLength, this.len + 8);
    b.writeUInt32LE(origLen, this.len + 12);
    b.set(data, this.len + 16);
    this.len += need;
    this.packets++;
    this.bytes += need;
  }

  flush(): void {
    let off = 0;
    while (off < this.len) off += writeSync(this.fd, this.buf, off, this.len - off);
    this.len = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}
