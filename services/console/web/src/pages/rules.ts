import { api, ApiError, type Rule } from "../api";
import { lockoutConfirm } from "../lockout-confirm";
import { coalesce, h, toast } from "../dom";
import { enumText, fmtCount, fmtDate, fmtDuration, fmtTime, PROTOCOLS } from "../format";
import { on } from "../live";

export function rulesPage(root: HTMLElement, params: URLSearchParams): () => void {
  // Opened from a verdict's rule link: that rule is marked, or said to be gone.
  const target = Number(params.get("id") ?? 0);
  const body = h("tbody");
  const notice = h("div");
  const count = h("span", { class: "muted" });
  const form = addForm(() => void load());
  root.append(
    h("h1", null, "Rules ", count),
    notice,
    h("section", { class: "panel" }, h("h2", null, "Add a rule"), form),
    h(
      "section",
      { class: "panel" },
      h(
        "table",
        { "data-testid": "rules-table" },
        h("thead", null, h("tr", null, ["ID", "Action", "Match", "Origin", "Reason", "Created", "Expires in", "Hits", ""].map((t) => h("th", null, t)))),
        body,
      ),
    ),
  );
  let rules: Rule[] = [];
  let skew = 0;

  const render = () => {
    count.textContent = `(${rules.length} active)`;
    body.replaceChildren(
      ...(rules.length
        ? rules.map((r) => {
            const extend = h("select", { "aria-label": `Extend rule ${r.id}` },
              h("option", { value: "" }, "extend…"),
              h("option", { value: "600" }, "+10 min"),
              h("option", { value: "3600" }, "+1 h"),
              h("option", { value: "86400" }, "+1 day"),
            );
            extend.addEventListener("change", async () => {
              const seconds = Number(extend.value);
              if (!seconds) return;
              try {
                await api.post(`/api/rules/${r.id}/extend`, { seconds });
                toast(`Rule ${r.id} extended by ${fmtDuration(seconds)}`);
                void load();
              } catch (err) {
                toast((err as Error).message, true);
              }
            });
            const del = h("button", { class: "danger", type: "button", "data-testid": "delete-rule" }, "Delete");
            del.addEventListener("click", async () => {
              if (!confirm(`Delete rule ${r.id} (${r.srcCidr})?`)) return;
              try {
                await api.del(`/api/rules/${r.id}`);
                toast(`Rule ${r.id} deleted`);
                void load();
              } catch (err) {
                toast((err as Error).message, true);
              }
            });
            const action = enumText(r.action, "ACTION_");
            return h(
              "tr",
              { "data-rule-id": r.id, "data-src": r.srcCidr ?? "", class: r.id === target ? "target" : null },
              h("td", { class: "mono" }, String(r.id)),
              h("td", null, h("span", { class: `badge ${action === "drop" ? "bad" : "ok"}` }, action || "?"), r.enforced === false ? h("div", { class: "muted" }, "not enforced") : null),
              h("td", { class: "mono" }, matchText(r)),
              h("td", null, enumText(r.origin, "ORIGIN_"), r.detector ? h("div", { class: "muted" }, r.detector) : null),
              h("td", null, r.reason || "–", r.verdictIds?.length ? h("div", null, r.verdictIds.slice(0, 3).map((id) => h("a", { href: `#/verdicts?id=${encodeURIComponent(id)}`, class: "mono" }, `${id} `))) : null),
              h("td", null, h("div", { class: "sub" }, fmtDate(r.createdAt)), fmtTime(r.createdAt), r.createdBy ? h("div", { class: "muted" }, r.createdBy) : null),
              h("td", { class: "countdown", "data-expires": r.expiresAt ?? 0 }, ""),
              h("td", null, fmtCount(r.hits), r.offences ? h("div", { class: "muted" }, `offence ${r.offences}`) : null),
              // A configured rule's life is the configuration's, a permanent one has none to extend.
              h("td", null, h("div", { class: "toolbar" }, enumText(r.origin, "ORIGIN_") === "config" || !r.expiresAt ? null : extend, del)),
            );
          })
        : [h("tr", null, h("td", { colspan: 9, class: "empty" }, "No active rules."))]),
    );
    tickCountdowns();
  };

  const tickCountdowns = () => {
    const now = Date.now() / 1000 + skew;
    for (const td of body.querySelectorAll<HTMLElement>("td.countdown")) {
      const exp = Number(td.dataset.expires);
      if (!exp) td.textContent = "never";
      else {
        const left = exp - now;
        td.textContent = left > 0 ? fmtDuration(left) : "expiring…";
        td.classList.toggle("soon", left < 60);
      }
    }
  };

  const load = async () => {
    try {
      const r = await api.get<{ now: number; rules: Rule[] }>("/api/rules");
      skew = r.now - Date.now() / 1000;
      rules = r.rules.sort((a, b) => (b.createdAt ?? 0) - (a.createdAt ?? 0));
      notice.replaceChildren(
        target && !rules.some((r) => Number(r.id) === target)
          ? h("div", { class: "notice", "data-testid": "rule-not-active" }, `Rule ${target} is not active any more: it expired, was deleted, or was lifted by a false alarm on one of its verdicts.`)
          : "",
      );
      render();
      if (target) body.querySelector(`tr[data-rule-id="${target}"]`)?.scrollIntoView({ block: "center" });
    } catch (err) {
      notice.replaceChildren(h("div", { class: "notice" }, (err as Error).message));
    }
  };
  void load();
  const timer = setInterval(tickCountdowns, 1000);
  const reload = coalesce(() => void load(), 500);
  const off = on("rule", reload);
  return () => {
    reload.cancel();
    clearInterval(timer);
    off();
  };
}

function matchText(r: Rule): string {
  const parts = [r.srcCidr || "any"];
  if (r.dstCidr) parts.push(`→ ${r.dstCidr}`);
  if (r.protocol) parts.push(PROTOCOLS[r.protocol] ?? `proto ${r.protocol}`);
  if (r.dportMin || r.dportMax) parts.push(r.dportMin === r.dportMax ? `port ${r.dportMin}` : `ports ${r.dportMin}-${r.dportMax}`);
  const dir = enumText(r.direction, "DIRECTION_");
  if (dir && dir !== "unspecified" && dir !== "both") parts.push(dir);
  return parts.join(" ");
}

function addForm(done: () => void): HTMLFormElement {
  const src = h("input", { name: "srcCidr", required: true, placeholder: "203.0.113.7/32", size: 20, "aria-label": "Source address or CIDR" });
  const action = h("select", { name: "action" }, h("option", { value: "drop" }, "drop"), h("option", { value: "accept" }, "accept"));
  const proto = h("select", { name: "protocol" }, h("option", { value: "0" }, "any"), h("option", { value: "6" }, "tcp"), h("option", { value: "17" }, "udp"), h("option", { value: "1" }, "icmp"));
  const port = h("input", { name: "port", type: "number", min: 0, max: 65535, placeholder: "any", style: "width:7em" });
  const ttl = h("select", { name: "ttl" }, h("option", { value: "600" }, "10 min"), h("option", { value: "3600", selected: true }, "1 hour"), h("option", { value: "86400" }, "1 day"), h("option", { value: "0" }, "never"));
  const reason = h("input", { name: "reason", required: true, placeholder: "why", size: 24, "aria-label": "Reason" });
  const submit = h("button", { class: "primary", type: "submit" }, "Add rule");
  const fieldError = h("div", { class: "field-error", "data-testid": "field-error", role: "alert" });
  const label = (text: string, el: HTMLElement) => h("label", null, text, el);
  const confirmSlot = h("div", { class: "confirm-slot" });
  const form = h("form", { class: "inline", "data-testid": "add-rule" }, label("Source", src), label("Action", action), label("Protocol", proto), label("Port", port), label("Expires after", ttl), label("Reason", reason), submit, fieldError, confirmSlot);
  // The service names the field it refused ("rule.src_cidr: …"): that input is marked, with the message under the form.
  const fields: [RegExp, HTMLInputElement][] = [
    [/src_?cidr/i, src],
    [/dport|port/i, port],
    [/reason/i, reason],
  ];
  const clearInvalid = () => {
    for (const [, el] of fields) {
      el.classList.remove("invalid");
      el.removeAttribute("aria-invalid");
    }
    fieldError.textContent = "";
    confirmSlot.replaceChildren();
  };
  for (const [, el] of fields) el.addEventListener("input", clearInvalid);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.setAttribute("disabled", "");
    const p = port.value ? Number(port.value) : 0;
    const body = {
      srcCidr: src.value.trim(),
      action: action.value,
      protocol: Number(proto.value),
      dportMin: p,
      dportMax: p,
      ttlS: Number(ttl.value),
      reason: reason.value.trim(),
    };
    const added = (rule: Rule) => {
      clearInvalid();
      toast(`Rule ${rule.id} added`);
      form.reset();
      done();
    };
    try {
      added(await api.post<Rule>("/api/rules", body));
    } catch (err) {
      const message = (err as Error).message;
      if (err instanceof ApiError && err.code === "VIGIL_ERR_LOCKOUT" && err.forceable) {
        // Sent again with force only after the operator typed the address.
        const force = async () => {
          try {
            added(await api.post<Rule>("/api/rules", { ...body, force: true }));
          } catch (e) {
            toast((e as Error).message, true);
          }
        };
        confirmSlot.replaceChildren(lockoutConfirm(body.srcCidr, message.replace(/^.*?VIGIL_ERR_LOCKOUT: /, ""), force, () => confirmSlot.replaceChildren()));
        return;
      }
      const field = fields.find(([re]) => re.test(message))?.[1];
      if (field) {
        field.classList.add("invalid");
        field.setAttribute("aria-invalid", "true");
        fieldError.textContent = message;
        field.focus();
      } else toast(message, true);
    } finally {
      submit.removeAttribute("disabled");
    }
  });
  return form;
}
