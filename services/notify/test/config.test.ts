import { describe, expect, it } from "vitest";
import { loadNotifyConfig } from "../src/config.js";
import { backoff } from "../src/worker.js";

const load = (env: Record<string, string>) => loadNotifyConfig({ env: { VIGIL_CONFIG: "/dev/null", ...env } });

describe("notify configuration", () => {
  it("has defaults that notify nobody and listen on 9474", () => {
    const c = load({}).notify;
    expect(c.targets).toEqual([]);
    expect(c.metrics).toEqual({ host: "127.0.0.1", port: 9474 });
    expect(c.queueSize).toBeGreaterThan(0);
  });

  it("takes targets from the environment as YAML", () => {
    const c = load({ VIGIL_NOTIFY__TARGETS: '[{name: chat, type: slack, url: "https://hooks.example.org/services/T/B/x"}]' }).notify;
    expect(c.targets[0]).toMatchObject({ name: "chat", type: "slack", headers: {} });
  });

  it("names what is wrong and where, without quoting a webhook URL", () => {
    const secret = "ftp://hooks.example.org/s3cr3t";
    let message = "";
    try {
      load({ VIGIL_NOTIFY__TARGETS: `[{name: a, type: webhook, url: "${secret}"}]` });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/notify\.targets\.0\.url: must be http: or https:, not ftp:/);
    expect(message).not.toContain("s3cr3t");
    expect(() => load({ VIGIL_NOTIFY__TARGETS: "[{name: a, type: email, to: [ops@example.org]}, {name: a, type: email, to: [x@example.org]}]" })).toThrow(/notify\.targets\.1\.name: two targets are named "a"/);
    expect(() => load({ VIGIL_NOTIFY__TARGETS: "[{name: a, type: pager}]" })).toThrow(/notify\.targets\.0\.type/);
    expect(() => load({ VIGIL_NOTIFY__TARGETS: '[{name: a, type: email, to: ["ops@example.org\\nBcc: x@y"]}]' })).toThrow(/notify\.targets\.0\.to\.0/);
    expect(() => load({ VIGIL_NOTIFY__BACKOFF_MS: "5000", VIGIL_NOTIFY__MAX_BACKOFF_MS: "1000" })).toThrow(/notify\.maxBackoffMs: must be at least backoffMs/);
  });

  it("backs off exponentially with jitter, up to the cap", () => {
    expect(backoff(1, 1000, 60_000, () => 0.5)).toBe(1000);
    expect(backoff(3, 1000, 60_000, () => 0.5)).toBe(4000);
    expect(backoff(20, 1000, 60_000, () => 0.5)).toBe(60_000);
    expect(backoff(1, 1000, 60_000, () => 0)).toBe(800);
    expect(backoff(1, 1000, 60_000, () => 1)).toBe(1200);
  });
});
