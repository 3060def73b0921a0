/**
 * Failed logins per client address in a sliding minute. Past the limit every attempt from that
 * address is answered 429, the right token too: otherwise guessing would simply go on.
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly perMinute: number,
    private readonly windowMs = 60_000,
    private readonly maxAddresses = 10_000,
  ) {}

  /** Seconds until this address may try again; 0 when it may now. */
  retryAfterS(addr: string, now = Date.now()): number {
    const recent = this.recent(addr, now);
    if (recent.length < this.perMinute) return 0;
    return Math.max(1, Math.ceil((recent[recent.length - this.perMinute] + this.windowMs - now) / 1000));
  }

  fail(addr: string, now = Date.now()): void {
    const recent = this.recent(addr, now);
    recent.push(now);
    this.failures.delete(addr);
    this.failures.set(addr, recent.slice(-this.perMinute));
    // Bounded: a spray of addresses forgets the oldest, never grows without limit.
    if (this.failures.size > this.maxAddresses) this.failures.delete(this.failures.keys().next().value as string);
  }

  private recent(addr: string, now: number): number[] {
    return (this.failures.get(addr) ?? []).filter((t) => t > now - this.windowMs);
  }
}
