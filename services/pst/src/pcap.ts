import { readFile } from "node:fs/promises";
import { CidrSet, DIR_EGRESS, DIR_INGRESS, DIR_UNKNOWN, FAMILY_IPV4, FAMILY_IPV6, RecordWriter } from "@vigil/frames";

export interface PcapReadOptions {
  /** Local networks: frames from them are egress, to them ingress. */
  local?: string[];
  /** Bytes kept from the IP header on (default 128, as the capture addon). */
  snaplen?: number;
  /** Frames per yielded batch. */
  batchFrames?: number;
}

export class PcapError extends Error {
  readonly code = "VIGIL_ERR_PCAP";
  constructor(
    message: string,
    readonly file: string,
    readonly offset: number,
  ) {
    super(`${file}: ${message} at byte ${offset}`);
  }
}

type Reader = (path: string, opts: { local?: string[]; snaplen?: number }) => AsyncIterable<Buffer>;

let nativeReader: Reader | null | undefined;

/**
 * Reads a capture as packed frame records: through the capture addon
 * (@vigil/packet-sources) when it is built, else with the small reader below
 * (classic pcap and pcapng, Ethernet, Linux cooked, raw IP, BSD loopback).
 */
export async function* readCaptureRecords(path: string, opts: PcapReadOptions = {}): AsyncIterable<Uint8Array> {
  if (nativeReader === undefined) {
    const spec = "@vigil/packet-sources";
    try {
      const mod = (await import(spec)) as { readPcapRecords?: Reader };
      nativeReader = typeof mod.readPcapRecords === "function" && !process.env.VIGIL_PST_TS_PCAP ? mod.readPcapRecords : null;
    } catch {
      nativeReader = null;
    }
  }
  if (nativeReader) {
    yield* nativeReader(path, { local: opts.local, snaplen: opts.snaplen });
    return;
  }
  yield* readPcapRecordsTs(path, opts);
}

const LINK_NULL = 0;
const LINK_ETHERNET = 1;
const LINK_RAW = 101;
const LINK_RAW_ALT = 12;
const LINK_LOOP = 108;
const LINK_SLL = 113;
const LINK_IPV4 = 228;
const LINK_IPV6 = 229;
const LINK_SLL2 = 276;

/** Offset of the IP header in a link-layer frame and its family, or null for non-IP frames. */
function l3Of(link: number, b: Uint8Array, off: number, len: number): { off: number; family: number } | null {
  let p = off;
  const end = off + len;
  let etherType = -1;
  switch (link) {
    case LINK_ETHERNET: {
      if (len < 14) return null;
      etherType = (b[p + 12] << 8) | b[p + 13];
      p += 14;
      while ((etherType === 0x8100 || etherType === 0x88a8) && end - p >= 4) {
        etherType = (b[p + 2] << 8) | b[p + 3];
        p += 4;
      }
      break;
    }
    case LINK_SLL:
      if (len < 16) return null;
      etherType = (b[p + 14] << 8) | b[p + 15];
      p += 16;
      break;
    case LINK_SLL2:
      if (len < 20) return null;
      etherType = (b[p] << 8) | b[p + 1];
      p += 20;
      break;
    case LINK_NULL:
    case LINK_LOOP: {
      if (len < 4) return null;
      p += 4;
      break;
    }
    case LINK_RAW:
    case LINK_RAW_ALT:
    case LINK_IPV4:
    case LINK_IPV6:
      break;
    default:
      return null;
  }
  if (etherType === 0x0800) return { off: p, family: FAMILY_IPV4 };
  if (etherType === 0x86dd) return { off: p, family: FAMILY_IPV6 };
  if (etherType !== -1) return null;
  if (p >= end) return null;
  const v = b[p] >> 4;
  if (v === 4) return { off: p, family: FAMILY_IPV4 };
  if (v === 6) return { off: p, family: FAMILY_IPV6 };
  return null;
}

export async function* readPcapRecordsTs(path: string, opts: PcapReadOptions = {}): AsyncIterable<Uint8Array> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new PcapError(`cannot read: ${(err as Error).message}`, path, 0);
  }
  const local = new CidrSet(opts.local ?? []);
  const snaplen = opts.snaplen ?? 128;
  const batchFrames = opts.batchFrames ?? 4096;
  const w = new RecordWriter(1 << 20);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const emit = (tsNs: bigint, link: number, off: number, capLen: number, wireLen: number): void => {
    const l3 = l3Of(link, buf, off, capLen);
    if (!l3) return;
    const hdr = l3.off - off;
    const data = buf.subarray(l3.off, l3.off + Math.min(capLen - hdr, snaplen));
    let direction = DIR_UNKNOWN;
    if (local.size > 0 && data.length >= (l3.family === FAMILY_IPV4 ? 20 : 40)) {
      const alen = l3.family === FAMILY_IPV4 ? 4 : 16;
      const so = l3.family === FAMILY_IPV4 ? 12 : 8;
      const doff = so + alen;
      const srcLocal = local.contains(data, so, alen);
      const dstLocal = local.contains(data, doff, alen);
      if (srcLocal && !dstLocal) direction = DIR_EGRESS;
      else if (dstLocal && !srcLocal) direction = DIR_INGRESS;
    }
    w.append({ tsNs, ifindex: 0, origLen: Math.max(0, wireLen - hdr), direction, family: l3.family, flags: 0, data });
  };
  const flush = (): Uint8Array | null => {
    if (w.count === 0) return null;
    const out = w.bytes().slice();
    w.clear();
    return out;
  };
  if (buf.length < 4) throw new PcapError("too short to be a capture", path, 0);
  const magic = view.getUint32(0, false);
  if (magic === 0x0a0d0d0a) {
    yield* readPcapng(buf, view, path, emit, flush, batchFrames, w);
    return;
  }
  let le: boolean;
  let nano: boolean;
  if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) le = true;
  else if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = false;
  else throw new PcapError(`unknown capture format (magic 0x${magic.toString(16)})`, path, 0);
  nano = magic === 0x4d3cb2a1 || magic === 0xa1b23c4d;
  if (buf.length < 24) throw new PcapError("truncated pcap header", path, 0);
  const link = view.getUint32(20, le) & 0xffff;
  let p = 24;
  while (p < buf.length) {
    if (buf.length - p < 16) throw new PcapError("truncated record header", path, p);
    const sec = view.getUint32(p, le);
    const frac = view.getUint32(p + 4, le);
    const incl = view.getUint32(p + 8, le);
    const orig = view.getUint32(p + 12, le);
    if (incl > 262144 || p + 16 + incl > buf.length) throw new PcapError(`record of ${incl} bytes overruns the file`, path, p);
    emit(BigInt(sec) * 1_000_000_000n + BigInt(nano ? frac : frac * 1000), link, p + 16, incl, orig);
    p += 16 + incl;
    if (w.count >= batchFrames) yield flush()!;
  }
  const last = flush();
  if (last) yield last;
}

function* readPcapng(
  buf: Buffer,
  view: DataView,
  path: string,
  emit: (tsNs: bigint, link: number, off: number, capLen: number, wireLen: number) => void,
  flush: () => Uint8Array | null,
  batchFrames: number,
  w: RecordWriter,
): Generator<Uint8Array> {
  let p = 0;
  let le = true;
  let ifaces: Array<{ link: number; tsDiv: bigint; tsMul: bigint }> = [];
  while (p < buf.length) {
    if (buf.length - p < 12) throw new PcapError("truncated block header", path, p);
    const type = view.getUint32(p, le);
    if (type === 0x0a0d0d0a) {
      const bom = view.getUint32(p + 8, true);
      if (bom === 0x1a2b3c4d) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else throw new PcapError("bad pcapng byte-order magic", path, p);
      ifaces = [];
    }
    const len = view.getUint32(p + 4, le);
    if (len < 12 || len % 4 !== 0 || p + len > buf.length) throw new PcapError(`block of ${len} bytes overruns the file`, path, p);
    if (type === 1) {
      const link = view.getUint16(p + 8, le);
      // if_tsresol option (9): default microseconds.
      let tsDiv = 1n;
      let tsMul = 1000n;
      let o = p + 16;
      while (o + 4 <= p + len - 4) {
        const code = view.getUint16(o, le);
        const olen = view.getUint16(o + 2, le);
        if (code === 0) break;
        if (code === 9 && olen >= 1) {
          const r = buf[o + 4];
          if (r & 0x80) {
            const units = 2n ** BigInt(r & 0x7f);
            tsMul = 1_000_000_000n;
            tsDiv = units;
          } else {
            const exp = r & 0x7f;
            if (exp <= 9) {
              tsMul = 10n ** BigInt(9 - exp);
              tsDiv = 1n;
            } else {
              tsMul = 1n;
              tsDiv = 10n ** BigInt(exp - 9);
            }
          }
        }
        o += 4 + ((olen + 3) & ~3);
      }
      ifaces.push({ link, tsDiv, tsMul });
    } else if (type === 6) {
      const ifid = view.getUint32(p + 8, le);
      const iface = ifaces[ifid];
      if (!iface) throw new PcapError(`packet on undeclared interface ${ifid}`, path, p);
      const ts = (BigInt(view.getUint32(p + 12, le)) << 32n) | BigInt(view.getUint32(p + 16, le));
      const cap = view.getUint32(p + 20, le);
      const orig = view.getUint32(p + 24, le);
      if (28 + cap > len) throw new PcapError(`packet of ${cap} bytes overruns its block`, path, p);
      emit((ts * iface.tsMul) / iface.tsDiv, iface.link, p + 28, cap, orig);
    } else if (type === 3) {
      const iface = ifaces[0];
      if (!iface) throw new PcapError("simple packet block before any interface", path, p);
      const orig = view.getUint32(p + 8, le);
      emit(0n, iface.link, p + 12, Math.min(orig, len - 16), orig);
    }
    p += len;
    if (w.count >= batchFrames) yield flush()!;
  }
  const last = flush();
  if (last) yield last;
}
