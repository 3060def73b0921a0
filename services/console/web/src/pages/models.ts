import { api, type ModelDocument, type PstModelView, type PstNode, type ScorePoint, type SomModelView } from "../api";
import { cssVar } from "../charts";
import { h, s } from "../dom";
import { symbolChips } from "../evidence";
import { fmtCount, fmtDate, fmtScore, fmtTime } from "../format";
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
    if (tab === "pst") pstView(content, params.get("class"), (params.get("context") ?? "").split(/\s+/).filter(Boolean));
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

/** The classes a sysadmin looks at first; the rest follow in the export's order. */
const PREFERRED_CLASSES = ["ssh", "web", "tls"];

/** What the symbols mean, for readers who do not speak TCP flags. */
function symbolLegend(): HTMLElement {
  return h(
    "p",
    { class: "muted legend-text", "data-testid": "symbol-legend" },
    "Symbols: ",
    symbolChips(["C:S"]),
    " the client sent, ",
    symbolChips(["S:SA"]),
    " the server sent; the letters are the TCP flags set: S = SYN, A = ACK, F = FIN, R = RST, P = PSH, U = URG (so C:S is the client's SYN, S:SA the server's SYN-ACK, S:RA a reset). ",
    symbolChips(["BOS"]),
    " marks the start of a connection, ",
    symbolChips(["END"]),
    " its end.",
  );
}

/** `klass` and `focus` (a context, oldest first) open the tree at the node that predicted a symbol, as the verdict's explain links do. */
function pstView(content: HTMLElement, klass: string | null, focus: string[]): void {
  api.get<ModelDocument<PstModelView>>("/api/models/pst").then(
    (doc) => {
      if (!doc.models.length) return loadError(content, new Error("the PST export holds no model"));
      const first = [klass, ...PREFERRED_CLASSES].map((c) => doc.models.findIndex((m) => m.serviceClass === c)).find((i) => i >= 0) ?? 0;
      const sel = h("select", { "aria-label": "Service class" }, doc.models.map((m, i) => h("option", { value: i, selected: i === first }, `${m.serviceClass}${m.version ? ` (${m.version})` : ""}`)));
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
          symbolLegend(),
          tree,
        ),
        h("p", { class: "muted" }, `Source: ${doc.origin}, loaded ${fmtTime(doc.loadedAt, true)}`),
      );
      const render = () => {
        const m = doc.models[Number(sel.value)];
        meta.textContent = `${fmtCount(m.nodes)} nodes, depth ${m.depth}${m.threshold !== null ? `, threshold ${fmtScore(m.threshold)}` : ""}`;
        const path = m.serviceClass === klass ? focus : [];
        tree.replaceChildren(h("ul", null, pstNodeEl(m.root, 0, true, path)));
        tree.querySelector(".node.target")?.scrollIntoView({ block: "center" });
      };
      sel.addEventListener("change", render);
      render();
    },
    (err: Error) => loadError(content, err),
  );
}

/** A tree node; `path` (a context, oldest first) expands the branch down to the node whose context it is, marked as the target. */
function pstNodeEl(node: PstNode, depth: number, open: boolean, path: string[] = []): HTMLElement {
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
  const isTarget = path.length > 0 && node.context.length === path.length && node.context.join(" ") === path.join(" ");
  // The child on the way to the target: its context is one symbol longer, a suffix of the path.
  const onPath = (c: PstNode) => path.length > c.context.length - 1 && c.context.join(" ") === path.slice(path.length - c.context.length).join(" ");
  li.append(h("div", { class: isTarget ? "node target" : "node", "data-depth": depth, "data-context": node.context.join(" ") }, toggle, ctx, h("span", { class: "count", title: "times this context was seen" }, fmtCount(node.count)), nexts));
  let kids: HTMLElement | null = null;
  const setOpen = (o: boolean) => {
    if (!hasKids) return;
    if (o && !kids) {
      // Children are built on first expansion: trees have thousands of nodes.
      kids = h("ul", null, node.children.slice(0, 200).map((c) => (path.length > node.context.length && onPath(c) ? pstNodeEl(c, depth + 1, true, path) : pstNodeEl(c, depth + 1, false))), node.children.length > 200 ? h("li", { class: "muted" }, `… ${node.children.length - 200} rarer contexts not shown`) : null);
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
      const showNumbers = h("input", { type: "checkbox", checked: true, "data-testid": "show-numbers" });
      let hovered = -1;
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
            h("label", null, showNumbers, "neuron numbers"),
            h("span", { class: "legend" }, "U-matrix: near", h("span", { class: "ramp", style: `background:linear-gradient(90deg,${RAMP.join(",")})` }), "far"),
          ),
          h(
            "p",
            { class: "muted" },
            "Colour is each neuron's mean distance to its neighbours (dark valleys are clusters of similar traffic, bright ridges separate them). Dot size shows how many training windows the neuron won; rings mark the best-matching units of recent windows (white: the last 30, red: every anomalous one of the last 300); hovering a row of the tables marks its neuron.",
          ),
          h(
            "div",
            { class: "som-wrap" },
            svgHolder,
            h(
              "div",
              null,
              h("h2", null, "Recent windows"),
              h("table", { "data-testid": "som-recent" }, h("thead", null, h("tr", null, ["Capture time (UTC)", "BMU", "Score", ""].map((t) => h("th", null, t)))), recentBody),
              labelsTable(m, (unit) => {
                hovered = unit;
                draw();
              }),
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
          if (showNumbers.checked && cell >= 18)
            svg.append(s("text", { x, y: y - cell * 0.2, "text-anchor": "middle", "font-size": Math.min(8, cell / 4.5), fill: "#ffffff", "fill-opacity": 0.8, "pointer-events": "none", class: "neuron-no" }, String(i)));
          if (showLabels.checked && m.labels[i] && cell >= 22) {
            // A label is set in up to two lines, split at its hyphen ("icmp-flood"), each fitted to the cell (the whole name is in the tooltip and the table).
            const fontSize = Math.min(8.5, cell / 4.4);
            const maxChars = Math.max(3, Math.floor((cell * 0.95) / (fontSize * 0.58)));
            const fit = (t: string) => (t.length > maxChars ? `${t.slice(0, maxChars - 1)}…` : t);
            const full = m.labels[i]!;
            const cut = full.indexOf("-");
            const lines = full.length > maxChars && cut > 0 ? [full.slice(0, cut), full.slice(cut + 1)] : [full];
            lines.forEach((line, k) =>
              svg.append(s("text", { x, y: y + cell * (lines.length > 1 ? 0.12 + k * 0.24 : 0.3), "text-anchor": "middle", "font-size": fontSize, fill: "#ffffff", "pointer-events": "none", "paint-order": "stroke", stroke: "#000", "stroke-width": 2, class: "neuron-label" }, fit(line))),
            );
          }
        }
        const seen = new Map<number, ScorePoint>();
        // Anomalous windows stay marked much longer than ordinary ones: an attack's ring must not vanish within seconds.
        for (const p of recent) if (p.verdict || p.score >= p.threshold) seen.set(p.bmu, p);
        for (const p of recent.slice(-30)) if (!seen.has(p.bmu)) seen.set(p.bmu, p);
        for (const [bmu, p] of seen) {
          if (bmu < 0 || bmu >= m.rows * m.cols) continue;
          svg.append(shape(bmu, 2, { fill: "none", stroke: p.verdict || p.score >= p.threshold ? "#ef4444" : "#ffffff", "stroke-width": 3, class: "bmu", "data-bmu": bmu, "pointer-events": "none" }));
        }
        if (hovered >= 0 && hovered < m.rows * m.cols)
          svg.append(shape(hovered, 1, { fill: "none", stroke: text, "stroke-width": 3, class: "hover-ring", "data-hovered": hovered, "pointer-events": "none" }));
        if (focusBmu >= 0 && focusBmu < m.rows * m.cols) {
          const [x, y] = centre(focusBmu);
          svg.append(s("circle", { cx: x, cy: y, r: cell * 0.75, fill: "none", stroke: text, "stroke-width": 2, "stroke-dasharray": "4 3", "pointer-events": "none" }));
        }
        svgHolder.replaceChildren(svg);
        recentBody.replaceChildren(
          ...(recent.length
            ? recent.slice(-15).reverse().map((p) => {
                const tr = h("tr", { "data-bmu": p.bmu }, h("td", { class: "nowrap" }, h("span", { class: "muted" }, fmtDate(p.t), " "), fmtTime(p.t)), h("td", null, `#${p.bmu}`), h("td", null, `${fmtScore(p.score)} / ${fmtScore(p.threshold)}`), h("td", null, p.verdict ? h("span", { class: "badge bad" }, "verdict") : p.score >= p.threshold ? h("span", { class: "badge warn" }, "above") : ""));
                hoverMarks(tr, p.bmu);
                return tr;
              })
            : [h("tr", null, h("td", { colspan: 4, class: "empty" }, "No windows seen yet."))]),
        );
      };
      showLabels.addEventListener("change", draw);
      showHits.addEventListener("change", draw);
      showNumbers.addEventListener("change", draw);
      function hoverMarks(tr: HTMLElement, unit: number) {
        tr.addEventListener("mouseenter", () => {
          hovered = unit;
          draw();
        });
        tr.addEventListener("mouseleave", () => {
          hovered = -1;
          draw();
        });
      }
      draw();
      off = on("scores", (batch) => {
        const pts = (batch.som ?? []).filter((p) => p.bmu >= 0);
        if (!pts.length) return;
        recent.push(...pts);
        if (recent.length > 300) recent.splice(0, recent.length - 300);
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
function labelsTable(m: SomModelView, hover: (unit: number) => void): HTMLElement | string {
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
      h(
        "tbody",
        null,
        labelled.map((x) => {
          const tr = h("tr", { "data-bmu": x.unit }, h("td", null, `#${x.unit}`), h("td", null, x.label!), h("td", null, fmtCount(m.hits[x.unit])));
          tr.addEventListener("mouseenter", () => hover(x.unit));
          tr.addEventListener("mouseleave", () => hover(-1));
          return tr;
        }),
      ),
    ),
  );
}
