import { formatAddressWords } from "@vigil/frames";
import { ConnectionEvidence } from "@vigil/proto";
import { ELLIPSIS, formatSymbols } from "./alphabet.js";

/** One connection's evidence as copied out of the table: formatted only if a verdict needs it. */
export interface RawEvidence {
  family: number;
  /** Client address words then server address words. */
  words: Uint32Array;
  clientPort: number;
  serverPort: number;
  serviceClass: string;
  head: Uint16Array;
  tail: Uint16Array | null;
  score: number;
  /** The connection's packets (counted into a window that starts from a pending source). */
  packets: number;
  firstTs: number;
  lastTs: number;
}

export function formatEvidence(e: RawEvidence): ConnectionEvidence {
  return ConnectionEvidence.fromPartial({
    client: formatAddressWords(e.words, 0, e.family),
    clientPort: e.clientPort,
    server: formatAddressWords(e.words, 4, e.family),
    serverPort: e.serverPort,
    serviceClass: e.serviceClass,
    symbols: e.tail ? `${formatSymbols(e.head)} ${ELLIPSIS} ${formatSymbols(e.tail)}` : formatSymbols(e.head),
    score: e.score,
    firstTs: e.firstTs,
    lastTs: e.lastTs,
  });
}
