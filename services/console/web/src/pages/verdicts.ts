import { api, ApiError, type ModelDocument, type PstModelView, type Verdict, type VerdictEntry } from "../api";
import { coalesce, h, toast } from "../dom";
import { bar, explainSequence, symbolChips } from "../evidence";
import { fmtCount, fmtDate, fmtEndpoint, fmtNum, fmtScore, fmtTime, isReplayed, PROTOCOLS } from "../format";
import { on } from "../live";

const OUTCOME_CLASS: Record<string, string> = { blocked: "bad", "false-alarm": "ok", allowlisted: "info", "below-threshold": "warn", capped: "warn", aggregate: "info", "warmup-simulated": "info", "replay-simulated": "info" };

export function verdictsPage(root: HTMLElement, params: URLSearchParams): () => void {
  const detectorSel = h("select", { "aria-label": "Detector" }, h("option", { value: "" }, "all detectors"));
  const outcomeSel = h("select", { "aria-label": "Outcome" }, h("option", { value: "" }, "any outcome"));
  // Replayed pcaps and live traffic interleave in one list: either can be shown alone.
  const originSel = h(
    "select",
    { "aria-label": "Live or replayed", "data-testid": "origin-filter" },
    h("option", { value: "" }, "live and replayed"),
    h("option", { value: "live" }, "live only"),
    h("option", { value: "replay" }, "replayed only"),
  );
  const addressIn = h("input", { type: "search", placeholder: "address", "aria-label": "Address", size: 18 });
  const textIn = h("input", { type: "search", placeholder: "label, summary, model…", "aria-label": "Text", size: 22 });
  const count = h("span", { class: "muted" });
  const body = h("tbody");
  const detail = h("section", { class: "panel", "data-testid": "verdict-detail" }, h("div", { class: "empty" }, "Select a verdict to see its evidence."));
  const notice = h("div");
  root.append(
    h("h1", null, "Verdicts"),
    notice,
    h("div", { class: "toolbar" }, detectorSel, outcomeSel, originSel, addressIn, textIn, count),
    h(
      "div",
      { class: "split" },
      h(
        "section",
        { class: "panel" },
        scroll(h("table", { "data-testid": "verdict-list", class: "verdict-list" }, h("thead", null, h("tr", null, ["Capture time (UTC)", "Detector / label", "Address", "Score / threshold", "Outcome"].map((t) => h("th", null, t)))), body)),
      ),
      detail,
    ),
  );

  let entries: VerdictEntry[] = [];
  // The rules active now: a verdict's block rule may since have been removed (a false alarm on a sibling verdict) or expired.
  let activeRules: Set<number> | null = null;
  const ruleGone = (e: VerdictEntry) => /blocked/.test(e.outcome) && !!e.ruleId && !!activeRules && !activeRules.has(e.ruleId);
  const outcomeText = (e: VerdictEntry) => e.outcome || "pending";
  let selected = params.get("id");
  // What "false alarm" answered, kept across the re-renders that rule events cause.
  const falseAlarmResults = new Map<string, HTMLElement>();

  const matches = (e: VerdictEntry) => {
    const v = e.verdict;
    if (detectorSel.value && v.detector !== detectorSel.value) return false;
    if (outcomeSel.value && (e.outcome || "pending") !== outcomeSel.value) return false;
    if (originSel.value && isReplayed(v.firstTs, e.receivedAt) !== (originSel.value === "replay")) return false;
    if (addressIn.value && !(v.address ?? "").includes(addressIn.value.trim())) return false;
    const q = textIn.value.trim().toLowerCase();
    if (q && ![v.label, v.summary, v.model, v.id, v.localAddress].some((s) => (s ?? "").toLowerCase().includes(q))) return false;
    return true;
  };

  const refreshFilters = () => {
    const fill = (sel: HTMLSelectElement, values: string[]) => {
      const have = new Set([...sel.options].map((o) => o.value));
      for (const v of values) if (!have.has(v)) sel.append(h("option", { value: v }, v));
    };
    fill(detectorSel, [...new Set(entries.map((e) => e.verdict.detector))].sort());
    fill(outcomeSel, [...new Set(entries.map((e) => e.outcome || "pending"))].sort());
  };

  const renderList = () => {
    refreshFilters();
    const shown = entries.filter(matches);
    count.textContent = `${shown.length} of ${entries.length}`;
    body.replaceChildren(
      ...(shown.length
        ? shown.slice(0, 500).map((e) => {
            const v = e.verdict;
            const tr = h(
              "tr",
              { class: `clickable${v.id === selected ? " selected" : ""}`, "data-verdict-id": v.id, tabindex: 0 },
              // Dated, and replayed captures marked: a pcap from last week and live traffic interleave in this list.
              h(
                "td",
                { class: "nowrap", "data-testid": "verdict-time" },
                h("div", { class: "sub" }, fmtDate(v.firstTs)),
                fmtTime(v.firstTs),
                isReplayed(v.firstTs, e.receivedAt) ? h("span", { class: "tag", title: `replayed capture: received ${fmtDate(e.receivedAt)} ${fmtTime(e.receivedAt)} UTC` }, "replay") : "",
              ),
              h("td", null, v.detector, h("div", { class: "sub" }, v.label || "–")),
              h("td", { class: "mono addr" }, v.aggregate ? "(aggregate)" : v.address || "–"),
              h("td", { class: "nowrap" }, fmtScore(v.score), h("div", { class: "sub" }, `/ ${fmtScore(v.threshold)}`)),
              h("td", null, h("span", { class: `badge ${OUTCOME_CLASS[e.outcome] ?? "info"}` }, outcomeText(e)), ruleGone(e) ? h("div", { class: "sub", "data-testid": "rule-gone" }, "rule lifted") : ""),
            );
            const open = () => select(v.id);
            tr.addEventListener("click", open);
            tr.addEventListener("keydown", (ev) => (ev.key === "Enter" ? open() : undefined));
            return tr;
          })
        : [h("tr", null, h("td", { colspan: 5, class: "empty" }, entries.length ? "No verdict matches the filters." : "No verdicts yet."))]),
    );
  };

  const select = (id: string) => {
    selected = id;
    history.replaceState(null, "", `#/verdicts?id=${encodeURIComponent(id)}`);
    for (const tr of body.querySelectorAll("tr")) tr.classList.toggle("selected", tr.dataset.verdictId === id);
    const e = entries.find((x) => x.verdict.id === id);
    if (e) renderDetail(e);
    else
      api.get<VerdictEntry>(`/api/verdicts/${encodeURIComponent(id)}`).then(renderDetail, (err: Error) =>
        detail.replaceChildren(h("div", { class: "error" }, err.message)),
      );
  };

  const renderDetail = (e: VerdictEntry) => {
    const v = e.verdict;
    const fa = h("button", { class: "danger", type: "button", "data-testid": "false-alarm" }, "False alarm");
    const result = h("div", { "data-testid": "false-alarm-result" }, falseAlarmResults.get(v.id) ?? "");
    if (e.outcome === "false-alarm") fa.setAttribute("disabled", "");
    fa.addEventListener("click", async () => {
      if (!confirm(`Mark verdict ${v.id} as a false alarm? Its block rules are removed, ${v.address || "the source"} is allowed for a while, and ${v.detector} learns from it.`)) return;
      fa.setAttribute("disabled", "");
      try {
        const r = await api.post<{ removedRuleIds: number[]; allowRuleId: number }>(`/api/verdicts/${encodeURIComponent(v.id)}/false-alarm`, { comment: "marked in the console" });
        const text = h("p", null, `Removed rule${r.removedRuleIds.length === 1 ? "" : "s"}: ${r.removedRuleIds.join(", ") || "none"}`, r.allowRuleId ? `; temporary allow rule ${r.allowRuleId}` : "");
        falseAlarmResults.set(v.id, text);
        document.querySelector("[data-testid=false-alarm-result]")?.replaceChildren(text.cloneNode(true));
        e.outcome = "false-alarm";
        renderList();
        toast(`Verdict ${v.id} marked as a false alarm`);
      } catch (err) {
        fa.removeAttribute("disabled");
        result.replaceChildren(h("p", { class: "error" }, (err as ApiError).message));
      }
    });
    detail.replaceChildren(
      h("h2", null, `${v.detector.toUpperCase()} verdict `, h("span", { class: "mono muted" }, v.id)),
      v.summary ? h("p", null, v.summary) : "",
      h(
        "dl",
        { class: "kv" },
        kv("Outcome", h("span", { class: `badge ${OUTCOME_CLASS[e.outcome] ?? "info"}` }, e.outcome || "pending")),
        e.ruleId
          ? kv(
              "Rule",
              h("span", null, h("a", { href: `#/rules?id=${e.ruleId}` }, String(e.ruleId)), ruleGone(e) ? h("span", { class: "muted", "data-testid": "detail-rule-gone" }, " — no longer active (expired, deleted or lifted by a false alarm)") : ""),
            )
          : null,
        kv("Address", v.aggregate ? "aggregate (no dominant source: never a host block)" : v.address || "–"),
        kv(v.detector === "som" ? "Local side" : "Attacked", `${v.localAddress || "–"}${portsText(v.localPorts)}`),
        kv("Protocol", PROTOCOLS[v.protocol ?? 0] ?? String(v.protocol)),
        kv("Score", `${fmtScore(v.score)} (${thresholdText(v)} ${fmtScore(v.threshold)})`),
        kv("Model", v.model || "–"),
        kv("Label", v.label || "–"),
        kv("Evidence", v.detector === "som" ? `${fmtCount(v.packets)} packets in the window, ${fmtCount(v.connections)} flows` : `${fmtCount(v.connections)} connections, ${fmtCount(v.packets)} packets`),
        kv("Capture time", `${fmtTime(v.firstTs, true)} → ${fmtTime(v.lastTs)}`),
        isReplayed(v.firstTs, e.receivedAt) ? kv("Received", `${fmtTime(e.receivedAt, true)} (a replayed capture)`) : null,
        kv("Source", v.sourceId || "–"),
        kv("Instance", v.instance || "–"),
      ),
      h("div", { class: "toolbar" }, fa),
      result,
      v.pst ? pstEvidence(v) : "",
      v.som ? somEvidence(v) : "",
    );
  };

  const load = async () => {
    try {
      const [r, rules] = await Promise.all([
        api.get<{ verdicts: VerdictEntry[]; rulesError: string | null }>("/api/verdicts?limit=1000"),
        api.get<{ rules: { id: number }[] }>("/api/rules").catch(() => null),
      ]);
      entries = r.verdicts;
      activeRules = rules ? new Set(rules.rules.map((x) => Number(x.id))) : null;
      notice.replaceChildren(r.rulesError ? h("div", { class: "notice" }, `Showing verdicts seen by this console only: ${r.rulesError}`) : "");
      renderList();
      if (selected) select(selected);
    } catch (err) {
      notice.replaceChildren(h("div", { class: "notice" }, (err as Error).message));
    }
  };
  const reload = coalesce(() => void load(), 1000);
  for (const el of [detectorSel, outcomeSel, originSel]) el.addEventListener("change", renderList);
  for (const el of [addressIn, textIn]) el.addEventListener("input", renderList);
  void load();
  const offV = on("verdict", (lv) => {
    const v = (lv as unknown as { verdict: Verdict; receivedAt: number }).verdict;
    if (entries.some((e) => e.verdict.id === v.id)) return;
    entries.unshift({ verdict: v, outcome: "", ruleId: 0, receivedAt: lv.receivedAt });
    renderList();
    // The rules service decides the outcome a moment later.
    reload();
  });
  const offR = on("rule", reload);
  return () => {
    reload.cancel();
    offV();
    offR();
  };
}

function portsText(ports: number[] | undefined): string {
  if (!ports?.length) return "";
  const n = ports.length;
  return ` ${n === 1 ? "port" : `${n} ports:`} ${ports.slice(0, 12).join(", ")}${n > 12 ? ", …" : ""}`;
}

/** A PST verdict rests on its class's anomaly threshold, or on the lower suspicion threshold when many connections were merely suspicious. */
function thresholdText(v: Verdict): string {
  if (v.detector !== "pst") return "threshold";
  return /suspicion threshold/.test(v.summary ?? "") ? "suspicion threshold of the class, the lower tier:" : "anomaly threshold of the class:";
}

function scroll(el: HTMLElement): HTMLElement {
  return h("div", { class: "scroll" }, el);
}

function kv(k: string, v: Node | string): HTMLElement[] {
  return [h("dt", null, k), h("dd", null, v)];
}

let pstModels: Promise<ModelDocument<PstModelView>> | null = null;

/** A sub-row: each symbol of the connection with the context the tree used and its cost. */
async function explainRow(c: { symbols?: string; serviceClass?: string; score?: number }, cell: HTMLElement): Promise<void> {
  pstModels ??= api.get<ModelDocument<PstModelView>>("/api/models/pst");
  pstModels.catch(() => (pstModels = null));
  try {
    const doc = await pstModels;
    const model = doc.models.find((m) => m.serviceClass === c.serviceClass);
    if (!model) throw new Error(`no PST model for service class "${c.serviceClass}" (have ${doc.models.map((m) => m.serviceClass).join(", ")})`);
    const symbols = (c.symbols ?? "").split(/\s+/).filter(Boolean);
    const costs = explainSequence(model, symbols);
    const mean = costs.reduce((s, x) => s + -Math.log(Math.max(x.p, 1e-300)), 0) / Math.max(1, costs.length);
    cell.replaceChildren(
      h(
        "table",
        { class: "explain", "data-testid": "pst-explain" },
        h("thead", null, h("tr", null, ["#", "Symbol", "Context used (oldest first)", "P", "−ln P"].map((t) => h("th", null, t)))),
        h(
          "tbody",
          null,
          costs.map((x, i) =>
            h(
              "tr",
              null,
              h("td", null, String(i + 1)),
              h("td", null, symbolChips([x.symbol])),
              h(
                "td",
                null,
                x.context.length ? symbolChips(x.context) : h("span", { class: "muted" }, "(root)"),
                " ",
                h("a", { href: `#/models?tab=pst&class=${encodeURIComponent(model.serviceClass)}&context=${encodeURIComponent(x.context.join(" "))}`, class: "tree-link", title: "Open this context in the model's tree" }, "tree ›"),
              ),
              h("td", null, x.seen ? x.p.toFixed(4) : h("span", { title: "never seen after this context: the smoothing floor" }, `${x.p.toExponential(1)} (floor)`)),
              h("td", null, bar(-Math.log(Math.max(x.p, 1e-300)) / 10, -Math.log(x.p) > (model.threshold ?? Infinity) ? "hot" : ""), (-Math.log(Math.max(x.p, 1e-300))).toFixed(2)),
            ),
          ),
        ),
      ),
      h(
        "p",
        { class: "muted" },
        `Mean −ln P over ${costs.length} symbols: ${mean.toFixed(3)} nats (detector's score ${fmtScore(c.score)}, threshold ${fmtScore(model.threshold)}; the detector judges the largest running mean once a connection has enough symbols). Model ${model.serviceClass}${model.version ? ` v${model.version}` : ""} from ${doc.origin}.`,
      ),
    );
  } catch (err) {
    cell.replaceChildren(h("p", { class: "error" }, (err as Error).message));
  }
}

function pstEvidence(v: Verdict): HTMLElement {
  const conns = v.pst?.connections ?? [];
  return h(
    "section",
    { "data-testid": "pst-evidence" },
    h("h2", null, `Anomalous connections (${conns.length}${v.connections && v.connections > conns.length ? ` of ${v.connections}` : ""})`),
    h("p", { class: "muted" }, "Each connection as its TCP flag sequence: C = client to server, S = server to client. The score is the average negative log-likelihood per symbol under the service class's suffix tree; \"explain\" shows how the tree predicted each symbol."),
    conns.length
      ? scroll(h(
          "table",
          null,
          h("thead", null, h("tr", null, ["Connection", "Class", "Score", "Symbols", ""].map((t) => h("th", null, t)))),
          h(
            "tbody",
            null,
            conns.flatMap((c) => {
              const detailCell = h("td", { colspan: 5 });
              const detail = h("tr", { hidden: true }, detailCell);
              const button = h("button", { type: "button", class: "ghost", "data-testid": "explain", title: "How the suffix tree predicts each symbol" }, "explain");
              button.addEventListener("click", () => {
                detail.hidden = !detail.hidden;
                if (!detail.hidden && !detailCell.childElementCount) {
                  detailCell.append(h("span", { class: "muted" }, "loading the model…"));
                  void explainRow(c, detailCell);
                }
              });
              return [
                h(
                  "tr",
                  null,
                  h("td", { class: "mono" }, `${fmtEndpoint(c.client, c.clientPort)} → ${fmtEndpoint(c.server, c.serverPort)}`),
                  h("td", null, c.serviceClass || "–"),
                  h("td", null, fmtScore(c.score)),
                  h("td", null, symbolChips(c.symbols ?? "")),
                  h("td", null, button),
                ),
                detail,
              ];
            }),
          ),
        ))
      : h("p", { class: "empty" }, "No connection sample in this verdict."),
  );
}

function somEvidence(v: Verdict): HTMLElement {
  const som = v.som!;
  const deviating = new Set((som.deviations ?? []).slice(0, 5).map((d) => d.name));
  const maxDev = Math.max(1e-9, ...(som.features ?? []).map((f) => Math.abs(f.deviation ?? 0)));
  return h(
    "section",
    { "data-testid": "som-evidence" },
    h("h2", null, "Traffic window"),
    h(
      "dl",
      { class: "kv" },
      kv("Window", `${fmtTime(som.windowStart, true)} → ${fmtTime(som.windowEnd)}, ${fmtCount(som.windowPackets)} packets`),
      kv("Best-matching unit", h("a", { href: `#/models?tab=som&bmu=${som.bmu ?? 0}` }, `#${som.bmu ?? 0}`)),
      kv("Quantization error", fmtScore(som.quantizationError)),
    ),
    h("h2", null, "Feature vector"),
    h("p", { class: "muted" }, "Deviation: scaled distance from the best-matching unit's weights, signed; the most deviating features are marked."),
    h(
      "table",
      { "data-testid": "som-features" },
      h("thead", null, h("tr", null, ["Feature", "Value", "Deviation", ""].map((t) => h("th", null, t)))),
      h(
        "tbody",
        null,
        (som.features ?? []).map((f) =>
          h(
            "tr",
            { class: deviating.has(f.name) ? "selected" : "" },
            h("td", null, deviating.has(f.name) ? h("strong", null, f.name, " ⚑") : f.name),
            h("td", null, fmtNum(f.value ?? 0)),
            h("td", null, fmtScore(f.deviation ?? 0)),
            h("td", null, bar((f.deviation ?? 0) / maxDev, deviating.has(f.name) ? "hot" : (f.deviation ?? 0) < 0 ? "neg" : "")),
          ),
        ),
      ),
    ),
    h("h2", null, "Sources' shares"),
    h("p", { class: "muted" }, "Share: each source's part of what deviates in this window (its weighted contribution to the deviating features), not its part of the packets."),
    scroll(h(
      "table",
      { "data-testid": "som-sources" },
      h("thead", null, h("tr", null, ["Source", "Share of deviation", "", "Packets", "Ports", "Half-open", "Fragments"].map((t) => h("th", null, t)))),
      h(
        "tbody",
        null,
        (som.sources ?? []).map((s) =>
          h(
            "tr",
            null,
            h("td", { class: "mono" }, s.address),
            h("td", { class: "nowrap" }, `${((s.share ?? 0) * 100).toFixed(1)} %`),
            h("td", null, bar(s.share ?? 0)),
            h("td", null, fmtCount(s.packets ?? 0)),
            h("td", null, fmtCount(s.ports ?? 0)),
            h("td", null, fmtCount(s.halfOpen ?? 0)),
            h("td", null, fmtCount(s.fragments ?? 0)),
          ),
        ),
      ),
    )),
  );
}
