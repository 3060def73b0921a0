import "./styles.css";
import { connectLive } from "./live";
import { watchOutages } from "./outage";
import { modelsPage } from "./pages/models";
import { overviewPage } from "./pages/overview";
import { rulesPage } from "./pages/rules";
import { scoresPage } from "./pages/scores";
import { verdictsPage } from "./pages/verdicts";

type Page = (root: HTMLElement, params: URLSearchParams) => () => void;
const PAGES: Record<string, { title: string; render: Page }> = {
  overview: { title: "Overview", render: overviewPage },
  scores: { title: "Live scores", render: scoresPage },
  verdicts: { title: "Verdicts", render: verdictsPage },
  rules: { title: "Rules", render: rulesPage },
  models: { title: "Models", render: modelsPage },
};

const THEME_KEY = "vigil-console-theme";
function applyTheme(theme: string | null) {
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}
function currentTheme(): "light" | "dark" {
  const set = document.documentElement.dataset.theme;
  if (set === "light" || set === "dark") return set;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

const main = document.getElementById("page")!;
let cleanup: (() => void) | null = null;
let current = "";

function route(force = false) {
  const hash = location.hash.replace(/^#\/?/, "");
  const [name, query = ""] = hash.split("?");
  const page = PAGES[name] ? name : "overview";
  // The query counts too: #/rules?id=… and #/rules are different views of one page.
  if (!force && hash === current && name) return;
  current = hash;
  cleanup?.();
  main.replaceChildren();
  document.title = `${PAGES[page].title} · Vigil console`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>(".sidebar a")) a.classList.toggle("active", a.dataset.page === page);
  cleanup = PAGES[page].render(main, new URLSearchParams(query));
}

applyTheme(localStorage.getItem(THEME_KEY));
document.getElementById("theme")!.addEventListener("click", () => {
  const next = currentTheme() === "dark" ? "light" : "dark";
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
  route(true); // charts read their colours from the theme when built
});
window.addEventListener("hashchange", () => route());
const stream = connectLive(document.getElementById("conn")!);
watchOutages(document.getElementById("outage")!, stream);
route(true);
