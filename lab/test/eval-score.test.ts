import { describe, expect, it } from "vitest";
import { compareLines, scoreCapture, summarize, type RuleLine, type VerdictLine } from "../src/index.js";
import type { CaptureLabel } from "../src/labels.js";

const verdict = (address: string, ts: number, extra: Partial<VerdictLine> = {}): VerdictLine => ({
  type: "verdict", id: `v-${address}-${ts}`, detector: "som", address, aggregate: false, score: 5, threshold: 3,
  ts, first_ts: ts - 1, label: "", model: "som/default@1", connections: 0, packets: 100, summary: "", ...extra,
});
const rule = (address: string, ts: number): RuleLine => ({ type: "rule", action: "drop", address, detector: "som", ttl_s: 600, ts, reason: "r" });
const summary = (rules: number) => ({ type: "summary" as const, frames: 1000, verdicts: 0, rules, wall_s: 1 });

const attack: CaptureLabel = {
  file: "scan-syn.pcap", kind: "attack", packets: 1000, first_ts: 100, last_ts: 200, benign: ["10.77.0.21", "fd77::21"],
  attack: "scan-syn", expect: "block", attackers: ["10.77.0.66"], attack_start: 150,
};

describe("scoreCapture", () => {
  it("measures time to detect and to block from the first attack packet", () => {
    const ev = scoreCapture(attack, { lines: [verdict("10.77.0.66", 150.4), rule("10.77.0.66", 150.6)], summary: summary(1) });
    expect(ev.attackers_blocked).toEqual(["10.77.0.66"]);
    expect(ev.attackers_missed).toEqual([]);
    expect(ev.detected).toBe(true);
    expect(ev.time_to_detect_s).toBe(0.4);
    expect(ev.time_to_block_s).toBe(0.6);
    expect(ev.benign_blocked).toEqual([]);
  });

  it("counts a blocked benign client and a blocked stranger as false positives, and a missed attacker as missed", () => {
    const ev = scoreCapture(attack, { lines: [verdict("10.77.0.21", 120), rule("10.77.0.21", 120), rule("192.0.2.9", 160)], summary: summary(2) });
    expect(ev.attackers_missed).toEqual(["10.77.0.66"]);
    expect(ev.benign_blocked).toEqual(["10.77.0.21"]);
    expect(ev.others_blocked).toEqual(["192.0.2.9"]);
    expect(ev.detected).toBe(false);
    expect(ev.time_to_block_s).toBeNull();
    const s = summarize([ev]);
    expect(s.false_positive_blocks).toBe(2);
    expect(s.detection_rate).toBe(0);
  });

  it("calls a forged-source attack detected by an aggregate verdict after it began, not before", () => {
    const forged: CaptureLabel = { ...attack, expect: "detect", attackers: [], spoofed: true };
    expect(scoreCapture(forged, { lines: [verdict("", 149, { aggregate: true })], summary: summary(0) }).detected).toBe(false);
    const ev = scoreCapture(forged, { lines: [verdict("", 151.5, { aggregate: true })], summary: summary(0) });
    expect(ev.detected).toBe(true);
    expect(ev.time_to_detect_s).toBe(1.5);
  });

  it("does not count blocked reflectors of a reflection attack as false positives", () => {
    const reflection: CaptureLabel = { ...attack, expect: "detect", attackers: [], reflected: true };
    const ev = scoreCapture(reflection, { lines: [verdict("198.51.100.7", 151), rule("198.51.100.7", 151)], summary: summary(1) });
    expect(ev.reflectors_blocked).toEqual(["198.51.100.7"]);
    expect(ev.others_blocked).toEqual([]);
    expect(summarize([ev]).false_positive_blocks).toBe(0);
  });

  it("summarizes medians over the attack captures only", () => {
    const a = scoreCapture(attack, { lines: [verdict("10.77.0.66", 151), rule("10.77.0.66", 151)], summary: summary(1) });
    const b = scoreCapture(attack, { lines: [verdict("10.77.0.66", 153), rule("10.77.0.66", 154)], summary: summary(1) });
    const benign = scoreCapture({ file: "benign-1.pcap", kind: "benign", packets: 10, first_ts: 1, last_ts: 2, benign: ["10.77.0.21"] }, { lines: [], summary: summary(0) });
    const s = summarize([a, b, benign]);
    expect(s.median_time_to_detect_s).toBe(2);
    expect(s.median_time_to_block_s).toBe(2.5);
    expect(s.attackers_blocked).toBe(2);
    expect(s.benign_captures_with_verdicts).toBe(0);
  });
});

describe("compareLines", () => {
  it("orders by capture time, verdicts before the rules they cause, then by content", () => {
    const lines = [rule("10.0.0.2", 5), verdict("10.0.0.2", 5), verdict("10.0.0.1", 3), rule("10.0.0.1", 5)];
    expect(lines.sort(compareLines).map((l) => `${l.type}:${l.address}:${l.ts}`)).toEqual([
      "verdict:10.0.0.1:3", "verdict:10.0.0.2:5", "rule:10.0.0.1:5", "rule:10.0.0.2:5",
    ]);
  });
});
