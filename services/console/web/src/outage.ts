import { h } from "./dom";
import { fmtTime } from "./format";

interface Health {
  rules: boolean;
  rulesAddress?: string;
  rulesError?: string | null;
  nats: boolean;
}

type Problem = "console" | "bus" | "rules";

/**
 * The banner over every page when something the console depends on is gone: the console server
 * itself (the page is frozen), the NATS bus (no verdicts, scores or heartbeats arrive) or the rules
 * service (enforcement unknown). A stale page must not pass for a quiet one.
 */
export function watchOutages(banner: HTMLElement, streamState: () => "live" | "reconnecting" | "down", intervalMs = 2000): void {
  const since = new Map<Problem, number>();
  let last: Health | null = null;
  let reachable = true;

  const mark = (p: Problem, on: boolean) => {
    if (!on) since.delete(p);
    else if (!since.has(p)) since.set(p, Date.now() / 1000);
  };

  const render = () => {
    const items: HTMLElement[] = [];
    const at = (p: Problem) => ` (since ${fmtTime(since.get(p))} UTC)`;
    if (since.has("console"))
      items.push(
        h("p", { "data-problem": "console" }, h("strong", null, "The console server is not answering"), at("console"), ": everything on this page is frozen at that time. The rest of Vigil (detectors, rules, enforcement) may be down too; check `vigil status`."),
      );
    else {
      if (since.has("bus"))
        items.push(h("p", { "data-problem": "bus" }, h("strong", null, "The console is cut off from the NATS bus"), at("bus"), ": no heartbeats, verdicts, scores or rule events arrive, and the charts have stopped."));
      if (since.has("rules"))
        items.push(
          h(
            "p",
            { "data-problem": "rules" },
            h("strong", null, `The rules service is unreachable${last?.rulesAddress ? ` at ${last.rulesAddress}` : ""}`),
            at("rules"),
            ": the rules shown may be out of date and nothing can be added or removed; whether blocks are still enforced is unknown.",
            last?.rulesError ? h("span", { class: "muted" }, ` ${last.rulesError}`) : "",
          ),
        );
    }
    banner.hidden = !items.length;
    banner.replaceChildren(...items);
  };

  const poll = async () => {
    try {
      const res = await fetch("/healthz", { credentials: "same-origin", headers: { accept: "application/json" }, signal: AbortSignal.timeout(3000) });
      if (res.status === 401) return; // signed out: the next API call shows the login form
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      last = (await res.json()) as Health;
      reachable = true;
    } catch {
      reachable = false;
    }
    mark("console", !reachable || streamState() === "down");
    if (reachable && last) {
      mark("bus", !last.nats);
      mark("rules", !last.rules);
    }
    render();
  };
  void poll();
  window.setInterval(() => void poll(), intervalMs);
}
