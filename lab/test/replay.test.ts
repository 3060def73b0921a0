import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { publicCapture, publicCapturesSkipReason, toolMissing } from "@vigil/testing";
import { LAB_DIR } from "../src/lab.js";
import { loadLabels } from "../src/labels.js";
import { inferLocal } from "../src/local.js";
import { Pipeline } from "../src/pipeline.js";
import { replayCapture, ruleLines } from "../src/replay.js";
import { Action, Origin, Rule, RuleEvent, RuleEvent_Kind } from "@vigil/proto";

const EVAL = join(LAB_DIR, "captures", "eval");

// The replay runs the built daemons; the PST service is left out here so the
// pipeline's own mechanics are tested whatever state the PST models are in.
const missing = Pipeline.missingServices(["rules", "som"]);
const pipelineSkip = toolMissing("nats-server") ?? (missing.length ? `not built: ${missing.join(", ")} (node scripts/build.mjs)` : null);
if (pipelineSkip) console.warn(`replay pipeline tests skipped: ${pipelineSkip}`);

describe("inferLocal", () => {
  it("finds the victim of a lab capture: the address in every packet of its family", async () => {
    const guess = await inferLocal(join(LAB_DIR, "captures", "train", "benign-2.pcap"));
    expect(guess.local).toEqual(["10.77.0.10/32", "fd77::10/128"]);
    for (const e of guess.evidence) expect(e.share).toBeGreaterThan(0.9);
  });

  const publicSkip = publicCapturesSkipReason();
  it.skipIf(publicSkip)(`finds the scanned host of a public SYN scan capture${publicSkip ? ` (skipped: ${publicSkip})` : ""}`, async () => {
    // Scanner and target are both in every packet: the target receives the probes.
    const guess = await inferLocal(publicCapture("chrissanders--synscan.pcapng"));
    expect(guess.local).toEqual(["64.13.134.52/32"]);
  });
});

describe("rule lines", () => {
  const rule = (p: Partial<Rule>) => Rule.fromPartial({ id: 7, action: Action.ACTION_DROP, origin: Origin.ORIGIN_DETECTOR, srcCidr: "10.0.0.66/32", createdAt: 100, ...p });
  const ev = (kind: RuleEvent_Kind, r: Rule) => RuleEvent.fromPartial({ kind, rule: r });

  it("gives a rule's final state with its earliest decision time, one line per rule", () => {
    const events = [
      ev(RuleEvent_Kind.KIND_ADDED, rule({ detector: "som", expiresAt: 700, decidedTs: 50.5, reason: "som score 12" })),
      ev(RuleEvent_Kind.KIND_ADDED, rule({ id: 8, srcCidr: "2001:db8::1/128", origin: Origin.ORIGIN_MANUAL, expiresAt: 0 })),
      ev(RuleEvent_Kind.KIND_UPDATED, rule({ detector: "pst+som", expiresAt: 2500, decidedTs: 50.7, reason: "pst+som agree" })),
    ];
    expect(ruleLines(events)).toEqual([{ type: "rule", action: "drop", address: "10.0.0.66", detector: "pst+som", ttl_s: 2400, ts: 50.5, reason: "pst+som agree" }]);
  });
});

describe.skipIf(pipelineSkip)(`vigil replay over the real pipeline${pipelineSkip ? ` (skipped: ${pipelineSkip})` : ""}`, () => {
  const labels = loadLabels(EVAL);
  const scan = labels.captures.find((c) => c.attack === "scan-xmas")!;

  it("replays a lab attack capture to the end of stream: every IP frame consumed, lines in capture-time order, deterministic", async () => {
    const file = join(EVAL, scan.file);
    const a = await replayCapture(file, { local: labels.local, detectors: ["som"] });
    const b = await replayCapture(file, { detectors: ["som"] });
    // Inferred local addresses match the labels.
    expect(b.local).toEqual(labels.local);
    expect(b.localSource).toBe("inferred");
    const ipFrames = Number(execFileSync("sh", ["-c", `tcpdump -r '${file}' -n 'ip or ip6' 2>/dev/null | wc -l`], { encoding: "utf8" }));
    expect(a.summary.frames).toBe(ipFrames);
    expect(a.lines).toEqual(b.lines);
    for (let i = 1; i < a.lines.length; i++) expect(a.lines[i]!.ts).toBeGreaterThanOrEqual(a.lines[i - 1]!.ts);
    expect(a.summary.verdicts).toBe(a.lines.filter((l) => l.type === "verdict").length);
    expect(a.summary.rules).toBe(a.lines.filter((l) => l.type === "rule").length);
    for (const l of a.lines) {
      expect(l.ts).toBeGreaterThanOrEqual(scan.first_ts!);
      expect(l.ts).toBeLessThanOrEqual(scan.last_ts!);
      if (l.type === "rule") expect(scan.benign).not.toContain(l.address);
    }
  }, 120_000);

  const pstMissing = Pipeline.missingServices(["pst"]);
  const pstSkip = pstMissing.length ? `not built: ${pstMissing.join(", ")}` : null;
  it.skipIf(pstSkip)(`gives the same rule line whichever detector's verdict reaches the rules service first, naming both${pstSkip ? ` (skipped: ${pstSkip})` : ""}`, async () => {
    const syn = labels.captures.find((c) => c.attack === "scan-syn")!;
    const file = join(EVAL, syn.file);
    const runs = [await replayCapture(file, { local: labels.local }), await replayCapture(file, { local: labels.local })];
    const [a, b] = runs.map((r) => ({ lines: r.lines, summary: { ...r.summary, wall_s: undefined } }));
    expect(b).toEqual(a);
    const verdicts = a!.lines.filter((l) => l.type === "verdict");
    expect(new Set(verdicts.map((v) => v.detector))).toEqual(new Set(["pst", "som"]));
    const rules = a!.lines.filter((l) => l.type === "rule");
    expect(rules).toHaveLength(1);
    const rule = rules[0]!;
    expect(syn.attackers).toContain(rule.address);
    expect(rule.detector).toBe("pst+som");
    expect(rule.reason).toMatch(/^pst\+som agree \(pst score [\d.]+, som score [\d.]+\); /);
    // The earliest capture time at which the policy blocked: the first flagging verdict of the scanner.
    expect(rule.ts).toBe(Math.min(...verdicts.filter((v) => v.address === rule.address).map((v) => v.ts)));
    expect(rule.ttl_s).toBe(600 * 4);
  }, 180_000);

  it("fails with a clear error for a missing file and an unknown detector", async () => {
    await expect(replayCapture("/nonexistent/x.pcap", { detectors: ["som"] })).rejects.toThrow(/x\.pcap: no such file/);
    await expect(replayCapture(join(EVAL, scan.file), { detectors: ["nope" as "som"] })).rejects.toThrow(/unknown detector "nope"/);
  });

  it.skipIf(!existsSync(join(EVAL, "benign-1.pcap")))("blocks nobody in a benign evaluation capture", async () => {
    const res = await replayCapture(join(EVAL, "benign-1.pcap"), { local: labels.local, detectors: ["som"] });
    expect(res.lines.filter((l) => l.type === "rule")).toEqual([]);
    const file = join(EVAL, "benign-1.pcap");
    const ipFrames = Number(execFileSync("sh", ["-c", `tcpdump -r '${file}' -n 'ip or ip6' 2>/dev/null | wc -l`], { encoding: "utf8" }));
    expect(res.summary.frames).toBe(ipFrames);
  }, 120_000);
});
