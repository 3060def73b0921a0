import { api, type ModelDocument, type PstModelView, type PstNode, type ScorePoint, type SomModelView } from "../api";
import { cssVar } from "../charts";
import { h, s } from "../dom";
import { symbolChips } from "../evidence";
import { fmtCount, fmtScore, fmtTime } from "../format";
import { on } from "../live";

export function modelsPage(root: HTMLElement, params: URLSearchParams): () => void {
  const content = h("div");
  const tabPst = h("button", { type: "button", "data-tab": "pst" }, "PST (suffix trees)");
  const tabSom = h("button", { type: "button", "data-tab": "som" }, "SOM (U-matrix)");
  root.append(h("h1", null, "Models"), h("div", { class: "tabs", role: "tablist" }, tabPst, tabSom), content);
  let cleanup: (() => void) | null = null;
  const show = (tab: "pst" | "som") => {
    cleanup?.();
    cleanup = null;
    tabPst.classList.toggle("active", tab === "pst");
    tabSom.classList.toggle("active", tab === "som");
    content.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    if (tab === "pst") pstView(content);
    else cleanup = somView(content, Number(params.get("bmu") ?? -1));
  };
  tabPst.addEventListener("click", () => show("pst"));
  tabSom.addEventListener("click", () => show("som"));
  show(params.get("tab") === "som" ? "som" : "pst");
  return () => cleanup?.();
}

function loadError(content: HTMLElement, err: Error) {
  content.replaceChildren(h("div", { class: "notice", "data-testid": "model-error" }, err.message));
}

function pstView(content: HTMLElement): void {
  api.get<ModelDocument<PstModelView>>("/api/models/pst").then(
    (doc) => {
      if (!doc.models.length) return loadError(content, new Error("the PST export holds no model"));
      const sel = h("select", { "aria-label": "Service class" }, doc.models.map((m, i) => h("option", { value: i }, `${m.serviceClass}${m.version ? ` (${m.version})` : ""}`)));
      const meta = h("span", { class: "muted" });
      const tree = h("div", { class: "tree", "data-testid": "pst-tree" });
      content.replaceChildren(
        h(
          "section",
          { class: "panel" },
          h("div", { class: "toolbar" }, h("label", null, "Service class ", sel), meta),
          h(
            "p",
            { class: "muted" },
            "Each node is a context: the symbols just before the next one (read left to right, newest last). Its row shows how often the context was seen and the learned next-symbol probabilities. Children extend the context one symbol further into the past. Click ▸ to expand.",
          ),
          tree,
        ),
        h("p", { class: "muted" }, `Source: ${doc.origin}, loaded ${fmtTime(doc.loadedAt, true)}`),
      );
      const render = () => {
        const m = doc.models[Number(sel.value)];
        meta.textContent = `${fmtCount(m.nodes)} nodes, depth ${m.depth}${m.threshold !== null ? `, threshold ${fmtScore(m.threshold)}` : ""}`;
        tree.replaceChildren(h("ul", null, pstNodeEl(m.root, 0, true)));
      };
      sel.addEventListener("change", render);
      render();
    },
    (err: Error) => loadError(content, err),
  );
}

function pstNodeEl(node: PstNode, depth: number, open: boolean): HTMLElement {
  const li = h("li");
  const hasKids = node.children.length > 0;
  const toggle = h("button", { class: "toggle", type: "button", "aria-label": "expand", "aria-expanded": "false" }, hasKids ? "▸" : "·");
  const ctx = node.context.length ? h("span", null, node.context.length > 1 ? "" : "", symbolChips(node.context)) : h("span", { class: "muted" }, "(root: no context)");
  const nexts = h(
    "div",
    { class: "nexts" },
    node.next.slice(0, 6).map((n) => {
      const fill = h("span");
      fill.style.width = `${(n.p * 100).toFixed(1)}%`;
      return h("span", { class: "next", title: `${n.symbol}: p=${n.p.toFixed(4)}, count ${n.count}` }, symbolChips([n.symbol]), h("span", { class: "pbar" }, fill), `${(n.p * 100).toFixed(n.p < 0.1 ? 1 : 0)}%`);
    }),
    node.next.length > 6 ? h("span", { class: "muted" }, `+${node.next.length - 6} more`) : null,
  );
  li.append(h("div", { class: "node", "data-depth": depth }, toggle, ctx, h("span", { class: "count", title: "times this context was seen" }, fmtCount(node.count)), nexts));
  let kids: HTMLElement | null = null;
  const setOpen = (o: boolean) => {
    if (!hasKids) return;
    if (o && !kids) {
      // Children are built on first expansion: trees have thousands of nodes.
      kids = h("ul", null, node.children.slice(0, 200).map((c) => pstNodeEl(c, depth + 1, false)), node.children.length > 200 ? h("li", { class: "muted" }, `… ${node.children.length - 200} rarer contexts not shown`) : null);
      li.append(kids);
    }
    if (kids) kids.hidden = !o;
    toggle.textContent = o ? "▾" : "▸";
    toggle.setAttribute("aria-expanded", String(o));
  };
  toggle.addEventListener("click", () => setOpen(kids ? kids.hidden : true));
  if (open) setOpen(true);
  return li;
}

/** Viridis-like ramp, readable on both themes. */
const RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
function ramp(t: number): string {
  const x = Math.max(0, Math.min(1, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const a = RAMP[i].match(/\w\w/g)!.map((c) => parseInt(c, 16));
  const b = RAMP[i + 1].match(/\w\w/g)!.map((c) => parseInt(c, 16));
  return `rgb(${a.map((v, k) => Math.round(v + (b[k] - v) * f)).join(",")})`;
}

function somView(content: HTMLElement, focusBmu: number): () => void {
  let off: (() => void) | null = null;
  let disposed = false;
  api.get<ModelDocument<SomModelView>>("/api/models/som").then(
    (doc) => {
      if (disposed) return;
      const m = doc.models[0];
      if (!m) return loadError(content, new Error("the SOM export holds no map"));
      const recent: ScorePoint[] = [...(doc.recent ?? [])];
      const tooltip = h("div", { class: "tooltip", hidden: true });
      const svgHolder = h("div", { class: "som", "data-testid": "som-map" });
      const recentBody = h("tbody");
      const showLabels = h("input", { type: "checkbox", checked: true });
      const showHits = h("input", { type: "checkbox", checked: true });
      content.replaceChildren(
        h(
          "section",
          { class: "panel" },
          h(
            "div",
            { class: "toolbar" },
            h("span", { class: "muted" }, `${m.rows} × ${m.cols} neurons (${m.topology})${m.version ? `, ${m.version}` : ""}${m.threshold !== null ? `, threshold ${fmtScore(m.threshold)}` : ""}`),
            h("label", null, showLabels, "labels"),
            h("label", null, showHits, "hit counts"),
            h("span", { class: "legend" }, "U-matrix: near", h("span", { class: "ramp", style: `background:linear-gradient(90deg,${RAMP.join(",")})` }), "far"),
          ),
          h(
            "p",
            { class: "muted" },
            "Colour is each neuron's mean distance to its neighbours (dark valleys are clusters of similar traffic, bright ridges separate them). Dot size shows how many training windows the neuron won; rings mark the best-matching units of recent windows (red: anomalous).",
          ),
          h(
            "div",
            { class: "som-wrap" },
            svgHolder,
            h(
              "div",
              null,
              h("h2", null, "Recent windows"),
              h("table", null, h("thead", null, h("tr", null, ["Capture time", "BMU", "Score", ""].map((t) => h("th", null, t)))), recentBody),
              labelsTable(m),
            ),
          ),
        ),
        h("p", { class: "muted" }, `Source: ${doc.origin}, loaded ${fmtTime(doc.loadedAt, true)}. Features: ${m.features.join(", ") || "not listed"}.`),
        tooltip,
      );
      const draw = () => {
        const hex = m.topology === "hexagonal";
        const cell = Math.max(14, Math.min(44, Math.floor(640 / Math.max(m.cols + (hex ? 0.5 : 0), m.rows))));
        const rowH = hex ? (cell * Math.sqrt(3)) / 2 : cell;
        const W = (m.cols + (hex ? 0.5 : 0)) * cell;
        const H = (m.rows - 1) * rowH + cell;
        // Centre of a unit, laid out as the SOM detector does: odd hexagonal rows shift half a unit.
        const centre = (i: number): [number, number] => {
          const r = Math.floor(i / m.cols);
          const c = i % m.cols;
          return [(c + 0.5 + (hex && r & 1 ? 0.5 : 0)) * cell, r * rowH + cell / 2];
        };
        const shape = (i: number, inset: number, attrs: Record<string, string | number>) => {
          const [x, y] = centre(i);
          if (!hex) return s("rect", { x: x - cell / 2 + inset, y: y - cell / 2 + inset, width: cell - 2 * inset, height: cell - 2 * inset, ...attrs });
          const rad = cell / Math.sqrt(3) - inset;
          const pts = Array.from({ length: 6 }, (_, k) => {
            const a = (Math.PI / 3) * k + Math.PI / 6;
            return `${(x + rad * Math.cos(a)).toFixed(2)},${(y + rad * Math.sin(a)).toFixed(2)}`;
          });
          return s("polygon", { points: pts.join(" "), ...attrs });
        };
        const umin = Math.min(...m.umatrix);
        const umax = Math.max(...m.umatrix);
        const hmax = Math.max(1, ...m.hits);
        const pad = Math.ceil(cell * 0.1) + 1;
        const svg = s("svg", { viewBox: `${-pad} ${-pad} ${W + 2 * pad} ${H + 2 * pad}`, width: W + 2 * pad, height: H + 2 * pad, role: "img", "aria-label": "SOM U-matrix" });
        const text = cssVar("--text");
        for (let i = 0; i < m.rows * m.cols; i++) {
          const r = Math.floor(i / m.cols);
          const c = i % m.cols;
          const [x, y] = centre(i);
          const u = m.umatrix[i];
          const cellEl = shape(i, 0, { fill: ramp((u - umin) / (umax - umin || 1)), class: "cell", "data-neuron": i, stroke: "#0002", "stroke-width": 0.5 });
          cellEl.addEventListener("mousemove", (ev) => {
            const e = ev as MouseEvent;
            tooltip.hidden = false;
            tooltip.style.left = `${e.clientX + 14}px`;
            tooltip.style.top = `${e.clientY + 10}px`;
            tooltip.replaceChildren(
              h("div", null, h("strong", null, `neuron ${i}`), ` (row ${r}, col ${c})`),
              h("div", null, `U = ${u.toFixed(4)}`),
              h("div", null, `hits ${fmtCount(m.hits[i])}`),
              m.labels[i] ? h("div", null, `label: ${m.labels[i]}`) : "",
            );
          });
          cellEl.addEventListener("mouseleave", () => (tooltip.hidden = true));
          svg.append(cellEl);
          if (showHits.checked && m.hits[i] > 0)
            svg.append(s("circle", { cx: x, cy: y, r: Math.max(1.2, (cell / 2.8) * Math.sqrt(m.hits[i] / hmax)), fill: "#ffffff", "fill-opacity": 0.55, "pointer-events": "none" }));
          if (showLabels.checked && m.labels[i] && cell >= 22) {
            // Fit the label inside its cell (the whole name is in the tooltip).
            const fontSize = Math.min(9, cell / 4.2);
            const maxChars = Math.max(3, Math.floor((cell * 0.92) / (fontSize * 0.6)));
            const label = m.labels[i]!.length > maxChars ? `${m.labels[i]!.slice(0, maxChars - 1)}…` : m.labels[i]!;
            svg.append(s("text", { x, y: y + cell * 0.34, "text-anchor": "middle", "font-size": fontSize, fill: "#ffffff", "pointer-events": "none", "paint-order": "stroke", stroke: "#000", "stroke-width": 2 }, label));
          }
        }
        const seen = new Map<number, ScorePoint>();
        for (const p of recent.slice(-30)) seen.set(p.bmu, p);
        for (const [bmu, p] of seen) {
          if (bmu < 0 || bmu >= m.rows * m.cols) continue;
          svg.append(shape(bmu, 2, { fill: "none", stroke: p.verdict || p.score >= p.threshold ? "#ef4444" : "#ffffff", "stroke-width": 3, class: "bmu", "data-bmu": bmu, "pointer-events": "none" }));
        }
        if (focusBmu >= 0 && focusBmu < m.rows * m.cols) {
          const [x, y] = centre(focusBmu);
          svg.append(s("circle", { cx: x, cy: y, r: cell * 0.75, fill: "none", stroke: text, "stroke-width": 2, "stroke-dasharray": "4 3", "pointer-events": "none" }));
        }
        svgHolder.replaceChildren(svg);
        recentBody.replaceChildren(
          ...(recent.length
            ? recent.slice(-12).reverse().map((p) =>
                h("tr", null, h("td", null, fmtTime(p.t)), h("td", null, `#${p.bmu}`), h("td", null, `${fmtScore(p.score)} / ${fmtScore(p.threshold)}`), h("td", null, p.verdict ? h("span", { class: "badge bad" }, "verdict") : "")),
              )
            : [h("tr", null, h("td", { colspan: 4, class: "empty" }, "No windows seen yet."))]),
        );
      };
      showLabels.addEventListener("change", draw);
      showHits.addEventListener("change", draw);
      draw();
      off = on("scores", (batch) => {
        const pts = (batch.som ?? []).filter((p) => p.bmu >= 0);
        if (!pts.length) return;
        recent.push(...pts);
        if (recent.length > 100) recent.splice(0, recent.length - 100);
        draw();
      });
    },
    (err: Error) => loadError(content, err),
  );
  return () => {
    disposed = true;
    off?.();
  };
}

/** The labelled neurons, readable in full (the map can only show their first letters). */
function labelsTable(m: SomModelView): HTMLElement | string {
  const labelled = m.labels.map((label, unit) => ({ unit, label })).filter((x) => x.label);
  if (!labelled.length) return "";
  return h(
    "div",
    { "data-testid": "som-labels" },
    h("h2", { style: "margin-top:14px" }, "Labelled neurons"),
    h(
      "table",
      null,
      h("thead", null, h("tr", null, ["Neuron", "Label", "Hits"].map((t) => h("th", null, t)))),
      h("tbody", null, labelled.map((x) => h("tr", null, h("td", null, `#${x.unit}`), h("td", null, x.label!), h("td", null, fmtCount(m.hits[x.unit]))))),
    ),
  );
}
