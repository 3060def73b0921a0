// Logs are JSON lines (pino) for journald, files and `jq`; on a terminal they
// are one readable line per event instead: local time, level, service,
// message, then the other fields as key=value.

export type LogFormat = "json" | "pretty";

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: "TRACE", color: "\x1b[90m" },
  20: { name: "DEBUG", color: "\x1b[34m" },
  30: { name: "INFO", color: "\x1b[32m" },
  40: { name: "WARN", color: "\x1b[33m" },
  50: { name: "ERROR", color: "\x1b[31m" },
  60: { name: "FATAL", color: "\x1b[35m" },
};
const RESET = "\x1b[0m";
const DIM = "\x1b[2m";
const BOLD = "\x1b[1m";

/** Fields every line has, shown in the line's head (or not at all) rather than as key=value. */
const HEAD = new Set(["level", "time", "msg", "service", "name", "pid", "hostname", "instance"]);

export class LogFormatError extends Error {
  readonly code = "VIGIL_ERR_CONFIG";
}

/**
 * The format a process logs in: `VIGIL_LOG_FORMAT` json, pretty or auto (the
 * default: pretty when stderr is a terminal, so journald and pipes get JSON).
 */
export function logFormatOf(env: NodeJS.ProcessEnv = process.env, isTTY = process.stderr.isTTY === true): LogFormat {
  const v = (env.VIGIL_LOG_FORMAT ?? "auto").trim().toLowerCase();
  if (v === "json" || v === "pretty") return v;
  if (v === "auto" || v === "") return isTTY ? "pretty" : "json";
  throw new LogFormatError(`VIGIL_LOG_FORMAT: "${env.VIGIL_LOG_FORMAT}" is not one of json, pretty, auto`);
}

/** Colours on a terminal, or when VIGIL_LOG_COLOR=1 (a launcher whose own stderr is one); never with NO_COLOR. */
export function logColorOf(env: NodeJS.ProcessEnv = process.env, isTTY = process.stderr.isTTY === true): boolean {
  if (env.NO_COLOR) return false;
  if (env.VIGIL_LOG_COLOR === "1") return true;
  if (env.VIGIL_LOG_COLOR === "0") return false;
  return isTTY;
}

function two(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

function value(v: unknown): string {
  if (typeof v === "string") return v === "" || /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (v && typeof v === "object" && typeof (v as { message?: unknown }).message === "string" && "stack" in (v as object))
    return JSON.stringify((v as { message: string }).message); // a serialized Error: its message, not its stack
  return JSON.stringify(v) ?? String(v);
}

/**
 * One pino JSON line as one readable line (without the newline). A line that is
 * not a JSON object (a stray print) comes back as it is.
 */
export function formatLogLine(line: string, opts: { color?: boolean } = {}): string {
  const text = line.replace(/\n$/, "");
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return text;
  }
  if (!rec || typeof rec !== "object" || Array.isArray(rec)) return text;
  const c = opts.color === true;
  const level = LEVELS[rec.level as number] ?? { name: String(rec.level ?? "?").toUpperCase(), color: "" };
  const t = typeof rec.time === "number" ? new Date(rec.time) : new Date();
  const time = `${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}.${two(t.getMilliseconds(), 3)}`;
  const service = String(rec.service ?? rec.name ?? "");
  const fields = Object.entries(rec)
    .filter(([k]) => !HEAD.has(k))
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(" ")
    .replace(/\n/g, "\\n");
  const msg = String(rec.msg ?? "").replace(/\n/g, "\\n");
  const lvl = level.name.padEnd(5);
  if (!c) return [time, lvl, service.padEnd(8), msg, fields].filter((s) => s !== "").join(" ").trimEnd();
  return `${DIM}${time}${RESET} ${level.color}${lvl}${RESET} ${BOLD}${service.padEnd(8)}${RESET} ${msg}${fields ? ` ${DIM}${fields}${RESET}` : ""}`;
}
