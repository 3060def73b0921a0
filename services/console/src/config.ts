import { DEFAULT_PORTS, loadConfig, natsSchema, z, type LoadOptions } from "@vigil/config";
import { controlSocket, stateRoot } from "@vigil/lifecycle";

export const consoleSchema = z.strictObject({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(DEFAULT_PORTS.console),
  /** "token" (default, on loopback too): every request carries the token (header, or the session cookie the login sets). "none": open to anyone who reaches it, for labs only. */
  auth: z.enum(["token", "none"]).default("token"),
  /** The login token; absent: read from tokenFile, else made once in the state directory (console-login.token). */
  token: z.string().min(12, "must be at least 12 characters").optional(),
  /** Seconds a login lasts: the session cookie's Max-Age and the expiry the server signs into it. */
  sessionTtlS: z.number().int().min(60).max(30 * 86400).default(12 * 3600),
  /** Failed logins (wrong token at /login, in the header or the URL) allowed per client address per minute before 429. */
  loginAttemptsPerMinute: z.number().int().min(1).max(10_000).default(10),
  /** A file holding the login token (what `vigil up` and install.sh write, mode 0600). */
  tokenFile: z.string().min(1).optional(),
  /**
   * Host header names accepted besides the bound address, localhost and loopback literals:
   * refusing other names defeats DNS rebinding against a loopback console.
   */
  allowedHosts: z.array(z.string().min(1)).default([]),
  rules: z
    .strictObject({
      /** gRPC target of the rules service's Control API: "unix:/path" or "host:port". Default: $VIGIL_CONTROL_SOCKET, else control.sock in $VIGIL_STATE_DIR, else /run/vigil/control.sock (never TCP unless named). */
      address: z.string().min(1).optional(),
      /** The rules service's token (rules.grpc.token), sent on every call; needed when it has one. */
      token: z.string().min(1).optional(),
      timeoutMs: z.number().int().positive().default(3000),
    })
    .prefault({}),
  models: z
    .strictObject({
      /** Detector model exports (JSON) read when the detector does not answer on vigil.models.<detector>. */
      pstDir: z.string().min(1).optional(),
      somDir: z.string().min(1).optional(),
      requestTimeoutMs: z.number().int().positive().default(2000),
    })
    .prefault({}),
  captureMetrics: z
    .strictObject({
      /** Counters summed over the capture instances announced by heartbeat, scraped from their metrics port. */
      frames: z.array(z.string().min(1)).min(1).default(["vigil_capture_frames_captured_total"]),
      /** Lost before capture saw them (ring full) plus captured but not published. */
      drops: z.array(z.string().min(1)).default(["vigil_capture_ring_drops_total", "vigil_capture_frames_dropped_total"]),
      /** Where local instances' metrics ports are reached. */
      host: z.string().default("127.0.0.1"),
    })
    .prefault({}),
  /** Seconds of 1 s samples kept for the overview charts. */
  historySeconds: z.number().int().min(30).max(86_400).default(900),
  /** Heartbeats older than this mark an instance stale. */
  staleAfterMs: z.number().int().positive().default(5000),
});

export const configSchema = z.object({
  console: consoleSchema.prefault({}),
  nats: natsSchema.prefault({}),
});

export type ConsoleConfig = z.infer<typeof consoleSchema>;
export type FullConfig = z.infer<typeof configSchema>;

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return stateRoot(env);
}

/** Where the rules service listens unless console.rules.address says otherwise (the CLI looks there too). */
export function defaultControlSocket(env: NodeJS.ProcessEnv = process.env): string {
  return controlSocket(env);
}

export function loadConsoleConfig(opts: LoadOptions = {}): FullConfig {
  return loadConfig(configSchema, opts);
}
