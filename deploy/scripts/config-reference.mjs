#!/usr/bin/env node
// Generates the configuration reference (docs/config-reference.md) from the
// services' own zod schemas: every key of every section of /etc/vigil/vigil.yaml
// with its type, default, environment variable and the comment written next to
// it in the schema's source. Needs the services built (it imports
// services/<name>/dist/config.js) and TypeScript (to read the comments).
//
//   node deploy/scripts/config-reference.mjs [--out FILE] [--check]
//
// --check exits 1 when FILE is not what the schemas produce now.
import { writeOrCheckReference } from "./reference-file.mjs";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const { values } = parseArgs({ options: { out: { type: "string" }, check: { type: "boolean", default: false } } });
const out = values.out ?? join(root, "docs/config-reference.md");

/** Sections and where their schema lives; the shared "nats" section comes from @vigil/config. */
const SERVICES = ["capture", "pst", "som", "rules", "console", "notify"];

let ts = null;
try {
  ts = (await import("typescript")).default;
} catch {
  process.stderr.write("config-reference: typescript is not installed: keys are listed without their comments\n");
}

/** Comments written above each key in a schema source file, by dotted path inside the outermost object. */
function commentsOf(file) {
  const notes = new Map();
  if (!ts || !existsSync(file)) return notes;
  const text = readFileSync(file, "utf8");
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const pathOf = (node) => {
    const parts = [];
    for (let n = node; n; n = n.parent) if (ts.isPropertyAssignment(n) && n.name && ts.isIdentifier(n.name)) parts.unshift(n.name.text);
    return parts;
  };
  const visit = (node) => {
    if (ts.isPropertyAssignment(node) && ts.isIdentifier(node.name)) {
      const ranges = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
      const doc = ranges
        .map((r) => text.slice(r.pos, r.end))
        .filter((c) => c.startsWith("/**"))
        .map((c) => c.replace(/^\/\*\*|\*\/$/g, "").split("\n").map((l) => l.replace(/^\s*\*\s?/, "").trim()).filter(Boolean).join(" "))
        .join(" ");
      if (doc) notes.set(pathOf(node).join("."), doc);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return notes;
}

function isZodObject(v) {
  return v && typeof v === "object" && v.def?.type === "object" && v.shape && typeof v.shape === "object";
}

const envName = (path) => `VIGIL_${path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()).join("__")}`;

function typeOf(s) {
  if (!s || typeof s !== "object") return "any";
  if (s.enum) return s.enum.map((e) => JSON.stringify(e)).join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.anyOf || s.oneOf) return (s.anyOf ?? s.oneOf).map(typeOf).join(" | ");
  if (s.type === "array") return `list of ${typeOf(s.items)}`;
  if (s.type === "object" && s.additionalProperties && typeof s.additionalProperties === "object") return `map of name → ${typeOf(s.additionalProperties)}`;
  let t = Array.isArray(s.type) ? s.type.join(" | ") : (s.type ?? "any");
  const bounds = [];
  if (s.minimum !== undefined) bounds.push(`≥ ${s.minimum}`);
  if (s.exclusiveMinimum !== undefined) bounds.push(`> ${s.exclusiveMinimum}`);
  if (s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER) bounds.push(`≤ ${s.maximum}`);
  if (s.minLength) bounds.push(`non-empty`);
  if (s.pattern) bounds.push(`matches \`${s.pattern}\``);
  return bounds.length ? `${t} (${bounds.join(", ")})` : t;
}

// Defaults computed from the checkout's location are shown where install.sh puts it.
const fmtDefault = (v) => (v === undefined ? "—" : `\`${JSON.stringify(v).replaceAll(root, "/opt/vigil")}\``.replaceAll("|", "\\|"));
const esc = (s) => (s ?? "").replaceAll("|", "\\|");

/** Rows for every leaf key (objects are expanded; maps and lists of objects stay one row). */
function rows(schema, path, notes) {
  const out = [];
  const props = schema.properties ?? {};
  for (const [key, s] of Object.entries(props)) {
    const p = [...path, key];
    const note = notes.get(p.slice(1).join(".")) ?? notes.get(p.join(".")) ?? s.description ?? "";
    if (s.type === "object" && s.properties && !s.additionalProperties?.type) {
      out.push(...rows(s, p, notes));
      continue;
    }
    out.push({ key: p.join("."), type: typeOf(s), def: s.default, env: envName(p), note, required: (schema.required ?? []).includes(key) && s.default === undefined });
  }
  return out;
}

const { z, natsSchema } = await import(pathToFileURL(join(root, "packages/config/dist/index.js")).href);
const toJson = (schema) => z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });

const sections = [];
const problems = [];
sections.push({ name: "nats", origin: "packages/config/src/index.ts (shared by every service)", rows: rows(toJson(z.object({ nats: natsSchema })), [], commentsOf(join(root, "packages/config/src/index.ts"))) });
for (const svc of SERVICES) {
  const dist = join(root, "services", svc, "dist/config.js");
  if (!existsSync(dist)) {
    problems.push(`${svc}: ${dist} is missing (not built)`);
    continue;
  }
  const mod = await import(pathToFileURL(dist).href);
  const holder = Object.values(mod).find((v) => isZodObject(v) && isZodObject(unwrap(v.shape[svc])));
  if (!holder) {
    problems.push(`${svc}: no exported schema in ${dist} has a "${svc}" section`);
    continue;
  }
  const section = unwrap(holder.shape[svc]);
  sections.push({
    name: svc,
    origin: `services/${svc}/src/config.ts`,
    rows: rows(toJson(z.object({ [svc]: section })), [], prefixed(svc, commentsOf(join(root, "services", svc, "src/config.ts")))),
  });
}

/** The object inside default()/prefault()/optional() wrappers. */
function unwrap(s) {
  let cur = s;
  for (let i = 0; i < 10 && cur && !isZodObject(cur); i++) cur = cur.def?.innerType ?? cur.def?.in ?? cur.def?.schema;
  return cur;
}

/** Comments keyed relative to the section's own object also answer for "<section>.<key>". */
function prefixed(section, notes) {
  const out = new Map(notes);
  for (const [k, v] of notes) {
    if (!k.startsWith(`${section}.`)) out.set(`${section}.${k}`, v);
  }
  return out;
}

const lines = [
  "# Configuration reference",
  "",
  "<!-- Generated by deploy/scripts/config-reference.mjs from the services' schemas: do not edit by hand. -->",
  "",
  "Vigil reads one YAML file, `$VIGIL_CONFIG` (default `/etc/vigil/vigil.yaml`), with one top-level section per",
  "service. Each service validates its own section strictly (a misspelt key is an error naming the key and the file)",
  "and ignores the others'. Every key can be overridden by an environment variable `VIGIL_<SECTION>__<KEY>`, nested",
  "keys joined by `__`, camelCase written as SNAKE_CASE: `VIGIL_CAPTURE__FLUSH_MS=2` sets `capture.flushMs`. Values are",
  "parsed as YAML scalars or flow lists (`VIGIL_NATS__SERVERS='[nats://10.0.0.1:4222]'`).",
  "",
  "Besides the file, two variables matter to every service: `VIGIL_CONFIG` (the file) and `VIGIL_STATE_DIR`",
  "(default `/var/lib/vigil`: learned models, each service in its own directory below it), and for the rules service,",
  "the console and the CLI `VIGIL_CONTROL_SOCKET` (default: `control.sock` in `VIGIL_STATE_DIR` when that is set, else",
  "`/run/vigil/control.sock`).",
  "",
];
for (const s of sections) {
  lines.push(`## \`${s.name}\``, "", `Schema: \`${s.origin}\`.`, "", "| key | type | default | environment variable | meaning |", "| --- | --- | --- | --- | --- |");
  for (const r of s.rows) lines.push(`| \`${r.key}\` | ${esc(r.type)} | ${r.required ? "required" : fmtDefault(r.def)} | \`${r.env}\` | ${esc(r.note)} |`);
  lines.push("");
}
if (problems.length) lines.push("## Not covered", "", ...problems.map((p) => `- ${p}`), "");
const text = lines.join("\n");

writeOrCheckReference({ name: "config-reference", out, text, check: values.check, summary: `${sections.length} sections, ${sections.reduce((n, s) => n + s.rows.length, 0)} keys${problems.length ? `; not covered: ${problems.join("; ")}` : ""}` });
