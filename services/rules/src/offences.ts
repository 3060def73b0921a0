import type { Offence } from "./store.js";

/**
 * How often each address was blocked, remembered for `memoryS` after its last
 * block. Reads never write: an offence past its memory counts 0 until
 * forgetExpired() drops it.
 */
export class Offences {
  private map = new Map<string, Offence>();

  constructor(private readonly memoryS: number) {}

  get size(): number {
    return this.map.size;
  }

  /** Every offence remembered, as the store should hold them. */
  get all(): Map<string, Offence> {
    return new Map(this.map);
  }

  load(map: Map<string, Offence>): void {
    this.map = map;
  }

  /** Offences that still count at `now` (0 = none). */
  count(address: string, now: number): number {
    const o = this.map.get(address);
    return o && now - o.lastAt <= this.memoryS ? o.count : 0;
  }

  /** The capture-time window of the address's last block, if known and remembered. */
  lastBlock(address: string, now: number): { from: number; until: number } | null {
    const o = this.map.get(address);
    return o && now - o.lastAt <= this.memoryS && o.from && o.until ? { from: o.from, until: o.until } : null;
  }

  /** Moves the window of the address's last block (an agreement extended it); returns the offence, or null. */
  extendBlock(address: string, from: number, until: number): Offence | null {
    const o = this.map.get(address);
    if (!o) return null;
    o.from = from;
    o.until = until;
    return o;
  }

  set(address: string, o: Offence): void {
    this.map.set(address, o);
  }

  forget(address: string): void {
    this.map.delete(address);
  }

  /** Drops offences past their memory; returns their addresses (for the store). */
  forgetExpired(now: number): string[] {
    const cutoff = now - this.memoryS;
    const gone: string[] = [];
    for (const [address, o] of this.map)
      if (o.lastAt < cutoff) {
        this.map.delete(address);
        gone.push(address);
      }
    return gone;
  }
}
