import { spawn } from "node:child_process";
import type { Target } from "./config.js";
import { emailMessage, slackBody, webhookBody } from "./format.js";
import type { Notification } from "./notification.js";

/**
 * A delivery attempt that failed. The message names the target and what went
 * wrong (status, error code), never the URL or headers: they carry tokens.
 * permanent: retrying cannot help (HTTP 4xx, no sendmail program).
 */
export class DeliveryError extends Error {
  readonly code = "VIGIL_ERR_NOTIFY_DELIVERY";
  constructor(message: string, readonly permanent: boolean) {
    super(message);
  }
}

export interface Sender {
  readonly target: Target;
  /** Resolves once the target accepted the notification; throws DeliveryError. */
  send(n: Notification, signal: AbortSignal): Promise<void>;
}

const RETRYABLE_STATUS = new Set([408, 425, 429]);

/** The error code of a failed fetch (ECONNREFUSED, ETIMEDOUT, ...) without its text, which may quote the URL. */
function failureCode(err: unknown): string {
  const e = err as { name?: string; code?: string; cause?: { code?: string; name?: string; message?: string } };
  if (e?.name === "TimeoutError" || e?.cause?.name === "TimeoutError") return "timed out";
  if (e?.name === "AbortError") return "aborted";
  const code = e?.cause?.code ?? e?.code;
  if (code) return code;
  // A short reason ("bad port") is kept; anything that could quote the URL is not.
  const reason = e?.cause?.message;
  return reason && reason.length < 60 && !/[/:@?=]/.test(reason) ? reason : "failed";
}

function httpSender(target: Extract<Target, { type: "webhook" | "slack" }>, timeoutMs: number): Sender {
  const body = target.type === "slack" ? slackBody : webhookBody;
  // fetch refuses URLs with credentials: user:password@ becomes basic authentication.
  const url = new URL(target.url);
  const auth: Record<string, string> = {};
  if (url.username || url.password) {
    auth.authorization = `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`;
    url.username = "";
    url.password = "";
  }
  return {
    target,
    async send(n, signal) {
      let res: Response;
      try {
        res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", "user-agent": "vigil-notify", ...auth, ...target.headers },
          body: body(n),
          // A redirect would resend the body (and the headers' tokens) somewhere the configuration does not name.
          redirect: "manual",
          signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
        });
      } catch (err) {
        throw new DeliveryError(`${target.name}: request ${failureCode(err)}`, false);
      }
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return;
      const retryable = res.status >= 500 || RETRYABLE_STATUS.has(res.status);
      const what = res.status >= 300 && res.status < 400 ? "redirected (webhooks must answer themselves)" : "answered";
      throw new DeliveryError(`${target.name}: ${what} HTTP ${res.status}`, !retryable);
    },
  };
}

/** sendmail's "try again later" (sysexits.h EX_TEMPFAIL). */
const EX_TEMPFAIL = 75;

function emailSender(target: Extract<Target, { type: "email" }>, timeoutMs: number): Sender {
  return {
    target,
    send(n, signal) {
      const message = emailMessage(n, target);
      return new Promise<void>((resolve, reject) => {
        const child = spawn(target.sendmail, ["-t", "-i"], { stdio: ["pipe", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-300)));
        const kill = () => child.kill("SIGKILL");
        const timer = setTimeout(kill, timeoutMs);
        signal.addEventListener("abort", kill, { once: true });
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", kill);
        };
        child.once("error", (err: NodeJS.ErrnoException) => {
          done();
          reject(new DeliveryError(`${target.name}: cannot run ${target.sendmail} (${err.code ?? err.message})`, err.code === "ENOENT" || err.code === "EACCES"));
        });
        child.once("close", (code, sig) => {
          done();
          if (code === 0) return resolve();
          const why = sig ? `killed (${signal.aborted ? "stopping" : "timed out"})` : `exited ${code}`;
          reject(new DeliveryError(`${target.name}: ${target.sendmail} ${why}${stderr.trim() ? `: ${stderr.trim()}` : ""}`, code !== null && code !== EX_TEMPFAIL && code >= 64 && code <= 68));
        });
        // EPIPE when sendmail exits before reading everything: its exit status tells why.
        child.stdin.on("error", () => undefined);
        child.stdin.end(message);
      });
    },
  };
}

export function createSender(target: Target, timeoutMs: number): Sender {
  return target.type === "email" ? emailSender(target, timeoutMs) : httpSender(target, timeoutMs);
}
