import * as grpc from "@grpc/grpc-js";
import { EXIT, parseCommandLine, UserError, type CommandOptions } from "@vigil/lifecycle";
import { Rule, VerdictRecord, actionToJSON, directionToJSON, originToJSON } from "@vigil/proto";
import { ControlApi } from "./client.js";
import { PROTOCOLS, protocolName, protocolNumber } from "./model.js";

// What every `vigil` command of the rules service shares: options, the
// connection, tables, and one clear line per error with its exit code.
export function usageError(message: string): UserError {
  return new UserError(message, "VIGIL_ERR_USAGE", EXIT.USAGE);
}

export const CONNECTION_USAGE = `connection: [--socket PATH | --addr HOST:PORT] [--token TOKEN] [--tls-ca FILE [--tls-cert FILE --tls-key FILE]]
output:     --json   machine-readable output
exit codes: 0 ok, 1 failure (refused, not found), 2 usage or invalid argument, 69 service unavailable`;

export const common = {
  json: { type: "boolean" },
  socket: { type: "string" },
  addr: { type: "string" },
  token: { type: "string" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies CommandOptions;

export type Values = Record<string, string | boolean | undefined>;

/** The connection and output options every command takes, plus its own; operands allowed. */
export function parse(args: string[], options: CommandOptions = {}): { values: Values; positionals: string[] } {
  const r = parseCommandLine(args, { ...common, ...options });
  return { values: r.values as Values, positionals: r.positionals };
}

export function api(v: Values): ControlApi {
  const token = (v.token as string | undefined) ?? process.env.VIGIL_TOKEN;
  const tls = v["tls-ca"] || v["tls-cert"] ? { ca: v["tls-ca"] as string, cert: v["tls-cert"] as string, key: v["tls-key"] as string } : undefined;
  return new ControlApi({ socket: v.socket as string | undefined, addr: v.addr as string | undefined, token, tls });
}

/** "90" | "90s" | "10m" | "2h" | "1d" -> seconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(text.trim());
  if (!m) throw usageError(`${what}: "${text}" is not a duration (e.g. 90, 90s, 10m, 2h, 1d)`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s") as "s"];
}

export function parseProtocol(text: string): number {
  const n = protocolNumber(text);
  if (n === null) throw usageError(`--proto: "${text}" is not a protocol name (${Object.keys(PROTOCOLS).join(", ")}) or number 0..255`);
  return n;
}

export function parsePorts(text: string): [number, number] {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) throw usageError(`--port: "${text}" is not a port or range (e.g. 22 or 6000-6100)`);
  return [Number(m[1]), Number(m[2] ?? m[1])];
}


export function when(ts: number): string {
  if (!ts) return "-";
  return new Date(ts * 1000).toISOString().replace(/\.\d+Z$/, "Z");
}

export function left(expiresAt: number): string {
  if (!expiresAt) return "never";
  const s = Math.max(0, Math.round(expiresAt - Date.now() / 1000));
  if (s >= 86400) return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${s}s`;
}

// C0, DEL, C1 and the bidi embeddings, overrides and isolates: what a terminal obeys or reorders rather than shows.
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text from the bus or the store (labels, reasons, instances, summaries) as
 * the terminal should show it: whoever can publish a verdict or a heartbeat
 * chooses it, so an escape sequence or a bidi override appears as `\x1b` or
 * `\u202e` instead of clearing the screen, retitling the window or
 * reordering the line. Every human-readable line of the rules CLI passes
 * through here (table and watch cells, messages); JSON output is escaped by JSON.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16).padStart(4, "0")}`;
  });
}

export function table(headers: string[], rows: string[][]): string {
  const shown = rows.map((r) => r.map(printable));
  const widths = headers.map((h, i) => Math.max(h.length, ...shown.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(headers), ...shown.map(line)].join("\n") + "\n";
}

export function out(text: string): void {
  process.stdout.write(text);
}

export function json(value: unknown): void {
  out(JSON.stringify(value) + "\n");
}

export function short(enumText: string, prefix: string): string {
  return enumText.replace(prefix, "").toLowerCase();
}

export function ruleRow(r: Rule): string[] {
  const ports = r.dportMin || r.dportMax ? (r.dportMin === r.dportMax ? String(r.dportMin) : `${r.dportMin}-${r.dportMax}`) : "*";
  return [
    String(r.id),
    short(actionToJSON(r.action), "ACTION_"),
    r.srcCidr,
    r.dstCidr || "*",
    r.protocol ? protocolName(r.protocol) : "*",
    ports,
    short(directionToJSON(r.direction), "DIRECTION_"),
    short(originToJSON(r.origin), "ORIGIN_"),
    left(r.expiresAt),
    r.enforced ? "yes" : "no",
    r.hits ? String(r.hits) : "-",
    r.reason,
  ];
}

export const RULE_HEADERS = ["ID", "ACTION", "SOURCE", "DEST", "PROTO", "PORTS", "DIR", "ORIGIN", "EXPIRES", "ENFORCED", "HITS", "REASON"];

/** Runs a command body; maps gRPC and usage errors to exit codes with one clear line. */
export async function guarded(name: string, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UserError) {
      process.stderr.write(`vigil ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    const code = (err as grpc.ServiceError).code;
    // The service's message may quote what the bus or the store holds.
    const details = printable(String((err as grpc.ServiceError).details ?? (err as Error).message).replace(/\s*Resolution note:.*$/s, ""));
    if (code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED) {
      const target = (err as { target?: string }).target;
      const why = details.replace(/^No connection established\. Last error: (Error: )?/, "").replace(/\.$/, "");
      // A socket this user may not open is not a service that is down: say who may.
      const hint = /EACCES/.test(why) ? "only root and members of its group (vigil-control on an install) may connect: usermod -aG vigil-control NAME" : "is it running? `vigil up` starts it";
      process.stderr.write(`vigil ${name}: cannot reach the rules service${target ? ` at ${target}` : ""}: ${why} (${hint})\n`);
      return EXIT.UNAVAILABLE;
    }
    if (code === grpc.status.INVALID_ARGUMENT) {
      process.stderr.write(`vigil ${name}: invalid argument: ${details}\n`);
      return EXIT.USAGE;
    }
    if (code === grpc.status.UNAUTHENTICATED || code === grpc.status.PERMISSION_DENIED) {
      process.stderr.write(`vigil ${name}: refused: ${details}\n`);
      return EXIT.FAILURE;
    }
    if (code === grpc.status.FAILED_PRECONDITION) {
      process.stderr.write(`vigil ${name}: refused: ${details}\n`);
      return EXIT.FAILURE;
    }
    if (code === grpc.status.NOT_FOUND) {
      process.stderr.write(`vigil ${name}: not found: ${details}\n`);
      return EXIT.FAILURE;
    }
    process.stderr.write(`vigil ${name}: ${details}\n`);
    return EXIT.FAILURE;
  }
}

export async function withApi<T>(v: Values, fn: (c: ControlApi) => Promise<T>): Promise<T> {
  const c = api(v);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}


export function verdictRow(r: VerdictRecord): string[] {
  const v = r.verdict!;
  return [
    when(r.receivedAt),
    v.id,
    v.detector,
    v.aggregate ? "(aggregate)" : v.address,
    v.score.toFixed(3),
    v.label || "-",
    r.outcome,
    r.ruleId ? String(r.ruleId) : "-",
  ];
}

export const VERDICT_HEADERS = ["RECEIVED", "VERDICT", "DETECTOR", "SOURCE", "SCORE", "LABEL", "OUTCOME", "RULE"];
