import type { PstModelView, PstNode } from "./api";
import { h } from "./dom";

/**
 * The detector marks a segment "?C:A" when it looked like the completion of a handshake but did not
 * acknowledge our initial sequence number (a blind spoofer's guess): the symbol is the same.
 */
const UNPROVEN = "?";
const unmarked = (sym: string): string => (sym.startsWith(UNPROVEN) ? sym.slice(UNPROVEN.length) : sym);

/** "C:S S:SA C:A" as chips coloured by direction; END and BOS as outlined chips; unproven completions dashed. */
export function symbolChips(symbols: string[] | string): HTMLElement {
  const list = typeof symbols === "string" ? symbols.split(/\s+/).filter(Boolean) : symbols;
  return h(
    "span",
    { class: "syms" },
    list.map((marked) => {
      const unproven = marked.startsWith(UNPROVEN);
      const sym = unmarked(marked);
      const cls = sym.startsWith("C:") ? "c" : sym.startsWith("S:") ? "s" : "x";
      let title = sym.startsWith("C:") ? "client → server" : sym.startsWith("S:") ? "server → client" : sym === "END" ? "end of connection" : sym === "BOS" ? "start of connection" : "";
      if (unproven) title += ": did not acknowledge our sequence number, so the handshake is not verified";
      return h("span", { class: `sym ${cls}${unproven ? " unproven" : ""}`, title }, unproven ? `${sym}?` : sym);
    }),
  );
}

export function bar(fraction: number, cls = ""): HTMLElement {
  const pct = Math.max(0, Math.min(1, Math.abs(fraction))) * 100;
  const span = h("span");
  span.style.width = `${pct.toFixed(1)}%`;
  return h("div", { class: `bar ${cls}` }, span);
}

export interface SymbolCost {
  symbol: string;
  context: string[];
  p: number;
  seen: boolean;
}

/**
 * How the suffix tree predicts each symbol of a connection, as the detector
 * walks it: the deepest context matching the symbols before (BOS before the
 * first), then -ln P(symbol | context). Symbols the context never saw get the
 * smoothing floor gammaMin.
 */
export function explainSequence(model: PstModelView, marked: string[]): SymbolCost[] {
  const symbols = marked.map(unmarked);
  return symbols.map((symbol, i) => {
    const history = ["BOS", ...symbols.slice(0, i)];
    let node: PstNode = model.root;
    for (let d = 1; d <= history.length; d++) {
      const c = history[history.length - d];
      const child = node.children.find((k) => k.context.length === d && k.context[0] === c);
      if (!child) break;
      node = child;
      if (c === "BOS") break;
    }
    const e = node.next.find((n) => n.symbol === symbol);
    return { symbol, context: node.context, p: e ? e.p : (model.gammaMin ?? 0), seen: !!e };
  });
}
