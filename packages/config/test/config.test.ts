import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, natsSchema, z } from "../src/index.js";

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
