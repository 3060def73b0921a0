import { readFileSync } from "node:fs";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";

export { z };

/** A configuration problem: names the key, the problem and where the value came from. */
export class ConfigError extends Error {
  readonly code = "VIGIL_ERR_CONFIG";
}

export const DEFAULT_CONFIG_PATH = "/etc/vigil/vigil.yaml";
export const ENV_PREFIX = "VIGIL_";

/** Default listening ports; every control and metrics endpoint binds to loopback unless configured. */
export const DEFAULT_PORTS = {
  nats: 4222,
  natsMonitor: 8222,
  captureMetrics: 9470,
  pstMetrics: 9471,
  somMetrics: 9472,
  rulesMetrics: 9473,
  rulesGrpc: 9479,
  console: 9480,
} as const;

/** The bus connection, shared by every service. */
export const natsSchema = z.strictObject({
  servers: z.array(z.string().min(1)).min(1).default([`nats://127.0.0.1:${DEFAULT_PORTS.nats}`]),
  name: z.string().optional(),
  token: z.string().optional(),
  /** A NATS user (install.sh and `vigil up` generate one per service, each limited to its subjects). */
  user: z.string().min(1).optional(),
  /** The file holding that user's password (mode 0600), read at start. */
  passwordFile: z.string().min(1).optional(),
  /** A NATS credentials file (JWT and nkey seed), as `nsc` writes them. */
  credsFile: z.string().min(1).optional(),
});

export const metricsSchema = z.strictObject({
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65535),
});

export interface LoadOptions {
  /** Path to the YAML file; absent means $VIGIL_CONFIG, else DEFAULT_CONFIG_PATH when it exists. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Dotted-path overrides from the command line, applied last. */
  overrides?: Record<string, unknown>;
}

type Origin = { kind: "file"; path: string } | { kind: "env"; name: string } | { kind: "flag" };

function describe(origin: Origin | undefined): string {
  if (!origin) return "default";
  if (origin.kind === "file") return `in ${origin.path}`;
  if (origin.kind === "env") return `from environment variable ${origin.name}`;
  return "from the command line";
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

/** VIGIL_CAPTURE__SHARDS=32 -> ["capture", "shards"]; segments are camel-cased (BATCH_BYTES -> batchBytes). */
export function envKeyToPath(name: string): string[] {
  return name
    .slice(ENV_PREFIX.length)
    .split("__")
    .map((seg) => seg.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()));
}

function readFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`config: cannot read ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    const pos = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : "";
    throw new ConfigError(`config: ${path}${pos} is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError(`config: ${path} must hold a mapping of sections`);
  return doc as Record<string, unknown>;
}

/**
 * Loads the configuration: the YAML file, then VIGIL_<SECTION>__<KEY> environment
 * variables (values parsed as YAML scalars or flow lists), then overrides, and
 * validates the result against the schema. Sections the schema does not know
 * (other services') are ignored; the service's own sections should be strict
 * objects so that a misspelt key is an error.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, opts: LoadOptions = {}): z.infer<S> {
  const env = opts.env ?? process.env;
  const origins = new Map<string, Origin>();
  const file = opts.file ?? env.VIGIL_CONFIG ?? DEFAULT_CONFIG_PATH;
  let doc: Record<string, unknown> = {};
  const explicit = opts.file !== undefined || env.VIGIL_CONFIG !== undefined;
  let exists = true;
  try {
    readFileSync(file);
  } catch {
    exists = false;
  }
  if (explicit || exists) {
    doc = readFile(file);
    const walk = (node: unknown, path: string[]): void => {
      origins.set(path.join("."), { kind: "file", path: file });
      if (node && typeof node === "object" && !Array.isArray(node))
        for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
    };
    walk(doc, []);
  }
  const known = new Set(Object.keys(schema.shape));
  const input: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (known.has(k)) input[k] = v;
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || !name.includes("__") || raw === undefined) continue;
    const path = envKeyToPath(name);
    if (!known.has(path[0])) continue;
    let value: unknown;
    try {
      value = parseYaml(raw);
    } catch {
      value = raw;
    }
    setPath(input, path, value);
    origins.set(path.join("."), { kind: "env", name });
  }
  for (const [dotted, value] of Object.entries(opts.overrides ?? {})) {
    const path = dotted.split(".");
    if (!known.has(path[0])) throw new ConfigError(`config: unknown section "${path[0]}" in override ${dotted}`);
    setPath(input, path, value);
    origins.set(dotted, { kind: "flag" });
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const key = issue.path.map(String).join(".");
    let origin: Origin | undefined;
    for (let n = issue.path.length; n >= 0 && !origin; n--) origin = origins.get(issue.path.slice(0, n).map(String).join("."));
    return `${key || "(root)"}: ${issue.message} (${describe(origin)})`;
  });
  throw new ConfigError(`config: ${problems.join("; ")}`);
}

export * from "./duration.js";
export * from "./shards.js";
export * from "./deprecated.js";
export * from "./shedding.js";
