import { TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from "@vigil/frames";

/**
 * One symbol per TCP segment: (direction << 8) | flags byte. Direction 0 is
 * client to server ("C"), 1 is server to client ("S"). Two more symbols close
 * the alphabet: END (the connection ended without a FIN/RST handshake we saw
 * to completion: idle timeout or end of stream; also appended after teardown)
 * and BOS (start of connection), which is only ever a context, never predicted.
 */
export const DIR_CLIENT = 0;
export const DIR_SERVER = 1;
export const SYM_END = 512;
export const SYM_BOS = 513;
/** Symbols that can be predicted: 512 segment symbols plus END. */
export const PREDICT_SIZE = 513;
/** Symbols that can appear in a context: the predicted ones plus BOS. */
export const CONTEXT_SIZE = 514;

export function segmentSymbol(dir: number, flags: number): number {
  return (dir << 8) | (flags & 0xff);
}

// Letters in a fixed order that reads like tcpdump: SYN-ACK "SA", PSH-ACK "PA", FIN-ACK "FA", RST-ACK "RA",
// Xmas "FPU"; ECE is E and CWR is W.
const FLAG_ORDER: Array<[number, string]> = [
  [TCP_SYN, "S"],
  [TCP_FIN, "F"],
  [TCP_RST, "R"],
  [TCP_PSH, "P"],
  [TCP_ACK, "A"],
  [TCP_URG, "U"],
  [TCP_ECE, "E"],
  [TCP_CWR, "W"],
];

function flagsText(flags: number): string {
  if (flags === 0) return "0";
  let s = "";
  for (const [bit, letter] of FLAG_ORDER) if (flags & bit) s += letter;
  return s;
}

const SYMBOL_TEXT: string[] = [];
for (let dir = 0; dir < 2; dir++)
  for (let f = 0; f < 256; f++) SYMBOL_TEXT.push(`${dir === DIR_CLIENT ? "C" : "S"}:${flagsText(f)}`);
SYMBOL_TEXT.push("END", "BOS");

const TEXT_SYMBOL = new Map(SYMBOL_TEXT.map((t, i) => [t, i]));

export class SymbolError extends Error {
  readonly code = "VIGIL_ERR_PST_SYMBOL";
}

export function symbolText(sym: number): string {
  const t = SYMBOL_TEXT[sym];
  if (t === undefined) throw new SymbolError(`symbol ${sym} is outside the PST alphabet (0..${CONTEXT_SIZE - 1})`);
  return t;
}

/**
 * Evidence marks a remote segment with this when it looked like the completion of a handshake but
 * did not acknowledge our initial sequence number (see evidence.ts): "?C:A". The symbol is the same.
 */
export const UNPROVEN_MARK = "?";

/** Parses one token like "C:SA", "S:R", "END", "?C:A". Flag letters may come in any order. */
export function parseSymbol(token: string): number {
  if (token.startsWith(UNPROVEN_MARK)) token = token.slice(UNPROVEN_MARK.length);
  const direct = TEXT_SYMBOL.get(token);
  if (direct !== undefined) return direct;
  const m = /^([CS]):([SFRPAUEW]+|0)$/.exec(token);
  if (!m) throw new SymbolError(`"${token}" is not a symbol (expected e.g. C:S, S:SA, C:PA, END)`);
  let flags = 0;
  if (m[2] !== "0")
    for (const ch of m[2]) {
      const entry = FLAG_ORDER.find(([, l]) => l === ch)!;
      flags |= entry[0];
    }
  return segmentSymbol(m[1] === "C" ? DIR_CLIENT : DIR_SERVER, flags);
}

export const ELLIPSIS = "…";

/** "C:S S:SA C:A" for a list of symbols. */
export function formatSymbols(syms: ArrayLike<number>): string {
  const out: string[] = [];
  for (let i = 0; i < syms.length; i++) out.push(symbolText(syms[i]));
  return out.join(" ");
}

/**
 * A symbol sequence as written in evidence: the whole connection, or its head
 * and tail separated by "…" when it was longer than what is kept per
 * connection. Each part is learnable on its own.
 */
export interface SequenceParts {
  head: number[];
  tail: number[] | null;
}

export function parseSequence(text: string): SequenceParts {
  const tokens = text.trim().split(/\s+/).filter(Boolean);
  const cut = tokens.indexOf(ELLIPSIS);
  if (cut < 0) return { head: tokens.map(parseSymbol), tail: null };
  return { head: tokens.slice(0, cut).map(parseSymbol), tail: tokens.slice(cut + 1).map(parseSymbol) };
}
