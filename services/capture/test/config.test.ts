import { describe, expect, it, vi } from "vitest";
import { loadCaptureConfig } from "../src/config.js";

describe("capture configuration", () => {
  it("takes shardCount, and the old capture.shards as a deprecated alias with a warning", () => {
    expect(loadCaptureConfig({ file: undefined, env: { VIGIL_CONFIG: "/dev/null", VIGIL_CAPTURE__SHARD_COUNT: "8" } }).capture.shardCount).toBe(8);
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    try {
      const cfg = loadCaptureConfig({ env: { VIGIL_CONFIG: "/dev/null", VIGIL_CAPTURE__SHARDS: "32" } });
      expect(cfg.capture.shardCount).toBe(32);
      expect("shards" in cfg.capture).toBe(false);
      expect(String(warn.mock.calls[0]?.[0])).toMatch(/capture\.shards is deprecated, use capture\.shardCount/);
    } finally {
      warn.mockRestore();
    }
  });

  it("shares one maximum with the detectors", () => {
    expect(() => loadCaptureConfig({ env: { VIGIL_CONFIG: "/dev/null", VIGIL_CAPTURE__SHARD_COUNT: "5000" } })).toThrow(/capture\.shardCount: .*4096/);
  });
});
