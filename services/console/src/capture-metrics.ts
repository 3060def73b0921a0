/**
 * Sums Prometheus counters by name over every series (all label sets) in a
 * text exposition. Only what the overview needs: no histogram handling.
 */
export function sumCounters(text: string, names: string[]): Map<string, number> {
  const out = new Map<string, number>(names.map((n) => [n, 0]));
  for (const line of text.split("\n")) {
    if (!line || line.charCodeAt(0) === 35 /* # */) continue;
    const brace = line.indexOf("{");
    const space = line.indexOf(" ");
    const end = brace >= 0 && brace < space ? brace : space;
    if (end <= 0) continue;
    const name = line.slice(0, end);
    if (!out.has(name)) continue;
    const valueStart = brace >= 0 && brace < space ? line.indexOf("} ", brace) + 2 : space + 1;
    const value = Number.parseFloat(line.slice(valueStart).split(" ")[0]);
    if (Number.isFinite(value)) out.set(name, out.get(name)! + value);
  }
  return out;
}

/** Per-instance counter deltas, tolerant of restarts (a counter that goes down starts over). */
export class CounterRates {
  private last = new Map<string, number>();

  delta(key: string, value: number): number {
    const prev = this.last.get(key);
    this.last.set(key, value);
    if (prev === undefined) return 0;
    return value >= prev ? value - prev : value;
  }

  forget(keep: Set<string>): void {
    for (const k of this.last.keys()) if (!keep.has(k.split("|")[0])) this.last.delete(k);
  }
}
