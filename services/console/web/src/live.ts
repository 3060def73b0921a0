import type { ScorePoint, Tick, VerdictEntry } from "./api";

type Handlers = {
  tick: (t: Tick) => void;
  verdict: (v: VerdictEntry) => void;
  rule: (r: unknown) => void;
  scores: (s: Record<string, ScorePoint[]>) => void;
};
type Name = keyof Handlers;

const listeners: { [K in Name]: Set<Handlers[K]> } = { tick: new Set(), verdict: new Set(), rule: new Set(), scores: new Set() };

/** Subscribes for the lifetime of the current page; the router clears page subscriptions on navigation. */
export function on<K extends Name>(name: K, fn: Handlers[K]): () => void {
  listeners[name].add(fn);
  return () => listeners[name].delete(fn);
}

/** Opens the event stream; returns its state for the outage banner. */
export function connectLive(statusEl: HTMLElement): () => "live" | "reconnecting" | "down" {
  const es = new EventSource("/api/events");
  const set = (cls: string, text: string) => {
    statusEl.className = `conn ${cls}`;
    statusEl.textContent = text;
  };
  es.onopen = () => set("live", "live");
  es.onerror = () => set(es.readyState === EventSource.CLOSED ? "down" : "", es.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…");
  for (const name of Object.keys(listeners) as Name[])
    es.addEventListener(name, (ev) => {
      const data = JSON.parse((ev as MessageEvent<string>).data);
      for (const fn of listeners[name]) (fn as (d: unknown) => void)(data);
    });
  return () => (es.readyState === EventSource.OPEN ? "live" : es.readyState === EventSource.CLOSED ? "down" : "reconnecting");
}
