/**
 * Ports a remote source probed, summed over the windows of a horizon: a scan spread over many
 * windows (slowed by the target's ICMP rate limit, or sent into silence) shows in none of them as
 * an anomaly of the whole window, but its sender keeps opening ports nobody answers from. Only
 * windows in which the source probed at least `minPerWindow` ports count, so a client talking to
 * the same one or two services all day never adds up. Counted from what the scanner sends, never
 * from our replies (ICMP unreachables are rate limited on real hosts).
 */
export interface ProbeOptions {
  /** Capture seconds over which probes add up. */
  horizonS: number;
  /** Ports (or hosts) probed in one window for the window to count. */
  minPerWindow: number;
  /** Probes within the horizon that make a scan. */
  minProbes: number;
  /** Sources tracked at once; the oldest go first. */
  maxSources: number;
}

export const DEFAULT_PROBES: ProbeOptions = { horizonS: 60, minPerWindow: 4, minProbes: 60, maxSources: 10_000 };

interface Tally {
  since: number;
  probes: number;
  windows: number;
  reported: boolean;
}

export class ProbeTracker {
  private readonly tallies = new Map<string, Tally>();

  constructor(readonly opts: ProbeOptions = DEFAULT_PROBES) {}

  /** Adds one window's probes of `address` (window start `ts`, seconds); returns its tally when it first makes a scan. */
  note(address: string, probes: number, ts: number): { probes: number; windows: number; since: number } | null {
    if (probes < this.opts.minPerWindow) return null;
    let t = this.tallies.get(address);
    if (t && ts - t.since > this.opts.horizonS) {
      this.tallies.delete(address);
      t = undefined;
    }
    if (!t) {
      if (this.tallies.size >= this.opts.maxSources) this.tallies.delete(this.tallies.keys().next().value as string);
      t = { since: ts, probes: 0, windows: 0, reported: false };
      this.tallies.set(address, t);
    }
    t.probes += probes;
    t.windows++;
    if (t.reported || t.probes < this.opts.minProbes) return null;
    t.reported = true;
    return { probes: t.probes, windows: t.windows, since: t.since };
  }
}
