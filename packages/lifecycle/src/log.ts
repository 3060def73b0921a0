import { writeSync } from "node:fs";
import { pino, type DestinationStream, type Logger } from "pino";
import { formatLogLine, logColorOf, logFormatOf, type LogFormat } from "./log-format.js";

export type { Logger };

/** Writes each log line as formatLogLine makes it, synchronously (as the JSON destination does). */
function prettyDestination(fd: number, color: boolean): DestinationStream {
  return {
    write(line: string) {
      try {
        writeSync(fd, `${formatLogLine(line, { color })}\n`);
      } catch {
        /* stderr is gone (a closed pipe): nothing left to tell */
      }
    },
  };
}

/** A bad VIGIL_LOG_FORMAT is said once and logging goes on in JSON: no log line is lost over it. */
function formatOrJson(service: string): LogFormat {
  try {
    return logFormatOf();
  } catch (err) {
    process.stderr.write(`vigil-${service}: ${(err as Error).message}; logging JSON\n`);
    return "json";
  }
}

/**
 * Structured logs on stderr, so stdout stays free for command output (--json):
 * JSON lines, or one readable line per event on a terminal (logFormatOf:
 * VIGIL_LOG_FORMAT json, pretty or auto).
 */
export function createLogger(service: string, level = process.env.VIGIL_LOG_LEVEL ?? "info", format: LogFormat = formatOrJson(service)): Logger {
  const dest = format === "pretty" ? prettyDestination(2, logColorOf()) : pino.destination({ fd: 2, sync: true });
  return pino({ name: service, level, base: { service, pid: process.pid } }, dest);
}
