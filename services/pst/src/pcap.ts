import { readPcapRecords } from "@vigil/packet-sources";

export interface PcapReadOptions {
  /** Local networks: frames from them are egress, to them ingress. */
  local?: string[];
  /** Bytes kept from the IP header on (default 128, as the capture service). */
  snaplen?: number;
}

/**
 * Reads a capture as packed frame records through the capture addon, so that
 * training and offline scoring see exactly what the capture service publishes.
 */
export async function* readCaptureRecords(path: string, opts: PcapReadOptions = {}): AsyncIterable<Uint8Array> {
  yield* readPcapRecords(path, { local: opts.local, snaplen: opts.snaplen });
}
