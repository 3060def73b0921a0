import { randomBytes } from "node:crypto";

/**
 * Login links that carry a fresh code instead of the token: each works once and for minutes,
 * so a link left in a log, a history or a chat is worth nothing soon after. Bounded: past
 * `max` outstanding codes the oldest is dropped.
 */
export class LoginCodes {
  private readonly codes = new Map<string, number>();

  constructor(private readonly max = 100) {}

  mint(ttlS: number, now = Date.now()): { code: string; expiresAt: number } {
    const code = randomBytes(24).toString("base64url");
    const expiresAt = Math.floor(now / 1000) + ttlS;
    this.codes.set(code, expiresAt);
    if (this.codes.size > this.max) this.codes.delete(this.codes.keys().next().value as string);
    return { code, expiresAt };
  }

  /** True once for a code that has not expired; the code is gone afterwards either way. */
  redeem(code: string, now = Date.now()): boolean {
    const exp = this.codes.get(code);
    if (exp === undefined) return false;
    this.codes.delete(code);
    return exp > now / 1000;
  }
}
