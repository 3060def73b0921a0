import { h } from "./dom";

/** "C:S S:SA C:A" as chips coloured by direction; END and BOS as outlined chips. */
export function symbolChips(symbols: string[] | string): HTMLElement {
  const list = typeof symbols === "string" ? symbols.split(/\s+/).filter(Boolean) : symbols;
  return h(
    "span",
    { class: "syms" },
    list.map((sym) => {
      const cls = sym.startsWith("C:") ? "c" : sym.startsWith("S:") ? "s" : "x";
      const title = sym.startsWith("C:") ? "client → server" : sym.startsWith("S:") ? "server → client" : sym === "END" ? "end of connection" : sym === "BOS" ? "start of connection" : "";
      return h("span", { class: `sym ${cls}`, title }, sym);
    }),
  );
}

export function bar(fraction: number, cls = ""): HTMLElement {
  const pct = Math.max(0, Math.min(1, Math.abs(fraction))) * 100;
  const span = h("span");
  span.style.width = `${pct.toFixed(1)}%`;
  return h("div", { class: `bar ${cls}` }, span);
}
