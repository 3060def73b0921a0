import { readPcapRecords } from "@vigil/packet-sources";

export interface PcapReadOptions {
  /** Local networks: frames from them are egress, to them ingress. */
  local?: string[];
  /** Bytes kept from the IP header on (default 128, as the capture service). */
  snaplen?: number;
}

/**
 * Reads a capture as packed frame records through the capture addon, so that
 * training and offline scoring decode what the capture service publishes. The
 * records keep payload up to the snaplen, where capture keeps only the headers
 * (capture.headersOnly): the decoded fields are the same, and the training
 * data's hash, which names the shipped models' data, stays as it was.
 */
export async function* readCaptureRecords(path: string, opts: PcapReadOptions = {}): AsyncIterable<Uint8Array> {
  yield* readPcapRecords(path, { local: opts.local, snaplen: opts.snaplen });
}
