import { api, type ApiError, type RulesStatus } from "./api";
import { h, toast } from "./dom";
import { fmtDuration, fmtTime } from "./format";

/**
 * Whether detector verdicts block now, for the overview: the warm-up of a new
 * host (automatic blocks simulated until a time), blocking, or a dry run.
 */
export function phaseView(st: RulesStatus | null | undefined, nowS = Date.now() / 1000): HTMLElement {
  const phase = st?.phase ?? (st?.dryRun ? "dry-run" : "");
  const line = (badge: string, cls: string, ...rest: (string | HTMLElement)[]) =>
    h("p", { "data-testid": "phase", "data-phase": phase || "unknown" }, "Phase ", h("span", { class: `badge ${cls}` }, badge), " ", ...rest);
  if (phase === "warmup" && st?.warmupUntil)
    return line(
      "warm-up",
      "warn",
      `until ${fmtTime(st.warmupUntil, true)} (${fmtDuration(st.warmupUntil - nowS)} left): automatic blocks are simulated (verdict outcome "warmup-simulated"), manual rules are enforced. `,
      endButton(),
    );
  if (phase === "blocking")
    return line("blocking", "ok", st?.warmupUntil ? `automatic blocks are enforced (warm-up over since ${fmtTime(st.warmupUntil, true)})` : "automatic blocks are enforced");
  if (phase === "dry-run") return line("dry run", "info", "rules are decided and listed, nothing is enforced");
  return line("unknown", "info", "the rules service does not report its phase");
}

/** Ends the warm-up after a confirmation; the overview shows "blocking" from the next status poll. */
function endButton(): HTMLElement {
  const button = h("button", { type: "button", "data-testid": "end-warmup", title: "vigil warmup end" }, "End warm-up now");
  button.addEventListener("click", async () => {
    if (!confirm("End the warm-up now? Automatic blocks are enforced from then on (those simulated so far are not).")) return;
    button.setAttribute("disabled", "");
    try {
      await api.post("/api/warmup/end");
      toast("Warm-up ended: automatic blocks are enforced from now on");
    } catch (err) {
      button.removeAttribute("disabled");
      toast((err as ApiError).message, true);
    }
  });
  return button;
}
