import { pino, type Logger } from "pino";

export type { Logger };

/** Structured logs on stderr, so stdout stays free for command output (--json). */
export function createLogger(service: string, level = process.env.VIGIL_LOG_LEVEL ?? "info"): Logger {
  return pino({ name: service, level, base: { service, pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}
