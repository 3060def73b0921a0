import { h } from "./dom";

/**
 * The rules service refused a manual drop rule because it would cut this host or this session off.
 * The reason is shown and the rule is sent again with force only once the operator has typed its
 * address (or "force"): one click must never lock the operator out.
 */
export function lockoutConfirm(srcCidr: string, reason: string, onForce: () => Promise<void>, onCancel: () => void): HTMLElement {
  const typed = h("input", { name: "confirm", autocomplete: "off", spellcheck: "false", size: 20, "aria-label": `Type ${srcCidr} to add the rule anyway` });
  const anyway = h("button", { class: "danger", type: "button", disabled: true }, "Add anyway");
  const cancel = h("button", { type: "button" }, "Cancel");
  typed.addEventListener("input", () => anyway.toggleAttribute("disabled", !matches(typed.value, srcCidr)));
  typed.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      if (!anyway.hasAttribute("disabled")) anyway.click();
    }
  });
  anyway.addEventListener("click", async () => {
    anyway.setAttribute("disabled", "");
    await onForce();
    anyway.toggleAttribute("disabled", !matches(typed.value, srcCidr));
  });
  cancel.addEventListener("click", onCancel);
  const box = h(
    "div",
    { class: "notice lockout", role: "alertdialog", "aria-label": "Confirm a rule that would cut this host off", "data-testid": "lockout-confirm" },
    h("p", null, h("strong", null, "Refused: "), reason),
    h("p", null, "To add it anyway, type ", h("code", null, srcCidr), " (or ", h("code", null, "force"), "):"),
    h("div", { class: "toolbar" }, typed, anyway, cancel),
  );
  queueMicrotask(() => typed.focus());
  return box;
}

function matches(typed: string, srcCidr: string): boolean {
  const t = typed.trim();
  return t === srcCidr || t.toLowerCase() === "force";
}
