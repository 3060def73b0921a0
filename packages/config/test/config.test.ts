import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, durationSchema, loadConfig, natsSchema, parseConfigDuration, z } from "../src/index.js";

const schema = z.object({
  nats: natsSchema.default({ servers: ["nats://127.0.0.1:4222"] }),
  capture: z
    .strictObject({
      shards: z.number().int().min(1).max(1024).default(16),
      interface: z.string().optional(),
      flushMs: z.number().positive().default(5),
    })
    .default({ shards: 16, flushMs: 5 }),
});

function file(text: string): string {
  const p = join(mkdtempSync(join(tmpdir(), "vigil-cfg-")), "vigil.yaml");
  writeFileSync(p, text);
  return p;
}

describe("config", () => {
  it("applies defaults, the file, then environment overrides", () => {
    const f = file("capture:\n  shards: 8\n  interface: eth0\nrules:\n  whatever: 1\n");
    const cfg = loadConfig(schema, { file: f, env: { VIGIL_CAPTURE__FLUSH_MS: "2.5", VIGIL_NATS__SERVERS: "[nats://10.0.0.1:4222, nats://10.0.0.2:4222]" } });
    expect(cfg.capture).toEqual({ shards: 8, interface: "eth0", flushMs: 2.5 });
    expect(cfg.nats.servers).toEqual(["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]);
  });

  it("names the key, the problem and where the bad value came from", () => {
    const f = file("capture:\n  shards: 0\n");
    expect(() => loadConfig(schema, { file: f, env: {} })).toThrowError(ConfigError);
    expect(() => loadConfig(schema, { file: f, env: {} })).toThrow(new RegExp(`capture\\.shards: .*>=1.*in ${f}`));
    expect(() => loadConfig(schema, { file: f, env: { VIGIL_CAPTURE__SHARDS: "many" } })).toThrow(
      /capture\.shards: .*expected number.*environment variable VIGIL_CAPTURE__SHARDS/,
    );
    expect(() => loadConfig(schema, { file: file("capture:\n  shard: 3\n"), env: {} })).toThrow(/capture: Unrecognized key: "shard"/);
  });

  it("reports unreadable and invalid YAML with the path", () => {
    expect(() => loadConfig(schema, { file: "/nonexistent/vigil.yaml", env: {} })).toThrow(/cannot read \/nonexistent\/vigil.yaml/);
    const bad = file("capture:\n  shards: [1,\n");
    expect(() => loadConfig(schema, { file: bad, env: {} })).toThrow(/is not valid YAML/);
  });
});

describe("durations", () => {
  const withWarmup = z.object({ rules: z.strictObject({ warmup: durationSchema("24h") }).default({ warmup: 86_400 }) });

  it("reads text, seconds and off, from the file and the environment, to whole seconds", () => {
    expect(parseConfigDuration("1d2h3m4s")).toBe(93_784);
    expect(parseConfigDuration(" 30M ")).toBe(1800);
    expect(parseConfigDuration(false)).toBe(0);
    expect(parseConfigDuration("1.5h")).toBeNull();
    expect(parseConfigDuration("")).toBeNull();
    expect(parseConfigDuration(367 * 86_400)).toBeNull();
    expect(loadConfig(withWarmup, { file: file("nats: {}\n"), env: {} }).rules.warmup).toBe(86_400);
    expect(loadConfig(withWarmup, { file: file("rules:\n  warmup: 90m\n"), env: {} }).rules.warmup).toBe(5400);
    expect(loadConfig(withWarmup, { file: file("rules:\n  warmup: 90m\n"), env: { VIGIL_RULES__WARMUP: "off" } }).rules.warmup).toBe(0);
    expect(loadConfig(withWarmup, { file: file("rules: {}\n"), env: { VIGIL_RULES__WARMUP: "120" } }).rules.warmup).toBe(120);
  });

  it("names the key, the value and where it came from when it is no duration", () => {
    expect(() => loadConfig(withWarmup, { file: file("rules:\n  warmup: tomorrow\n"), env: {} })).toThrow(/rules\.warmup: "tomorrow" is not a duration: .* \(in .*vigil\.yaml\)/);
    expect(() => loadConfig(withWarmup, { file: file("rules: {}\n"), env: { VIGIL_RULES__WARMUP: "-5" } })).toThrow(/rules\.warmup: -5 is not a duration.*from environment variable VIGIL_RULES__WARMUP/);
  });
});
