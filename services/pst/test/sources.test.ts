import { beforeAll, describe, expect, it } from "vitest";
import { DIR_INGRESS, RecordWriter, TCP_ACK, TCP_RST, TCP_SYN } from "@vigil/frames";
import type { Verdict } from "@vigil/proto";
import { DEFAULT_MODELS_DIR } from "../src/config.js";
import { Detector, type JudgedSequence } from "../src/detector.js";
import { ModelSet, readModelDir, ServiceClassMap } from "../src/model.js";
import { writeConversation, type Step } from "../src/synthetic.js";

const T0 = 1_700_000_000;
const S = TCP_SYN;
const A = TCP_ACK;
const R = TCP_RST;

let models: ModelSet;
beforeAll(() => {
  models = new ModelSet(new ServiceClassMap(), readModelDir(DEFAULT_MODELS_DIR));
});

function detector() {
  const judged: JudgedSequence[] = [];
  const verdicts: Verdict[] = [];
  const det = new Detector(models, { shardCount: 2, maxConnections: 10_000 }, { onJudged: (j) => judged.push(j), onVerdict: (v) => verdicts.push(v) });
  return { det, judged, verdicts };
}

/** Connections left open after their handshake (a live capture's sessions in progress). */
function openSessions(n: number, ts: number): Uint8Array {
  const w = new RecordWriter();
  for (let i = 0; i < n; i++)
    ts = writeConversation(w, {
      client: `192.0.2.${10 + i}`,
      server: "10.0.0.1",
      clientPort: 50000 + i,
      serverPort: 443,
      steps: [{ from: "c", flags: S }, { from: "s", flags: S | A }, { from: "c", flags: A }],
      startTs: ts,
      clientDirection: DIR_INGRESS,
    });
  return w.bytes();
}

/** A scan from one address, refused probes or unanswered SYNs: enough for a verdict. */
function scan(from: string, ts: number, probes = 30, answered = true): Uint8Array {
  const w = new RecordWriter(1 << 20);
  const steps: Step[] = answered ? [{ from: "c", flags: S }, { from: "s", flags: R | A }] : [{ from: "c", flags: S }];
  for (let p = 1; p <= probes; p++) ts = writeConversation(w, { client: from, server: "10.0.0.1", clientPort: 61000, serverPort: p, steps, startTs: ts + 0.01, clientDirection: DIR_INGRESS });
  return w.bytes();
}

/** One frame with the given capture time. */
function frameAt(ts: number, client = "198.51.100.99"): Uint8Array {
  const w = new RecordWriter();
  writeConversation(w, { client, server: "10.0.0.1", clientPort: 40000, serverPort: 80, steps: [{ from: "c", flags: S }], startTs: ts, clientDirection: DIR_INGRESS });
  return w.bytes();
}

describe("capture sources on one shard (F11)", () => {
  it("a replay beside live capture keeps its own clock: its far-future frame does not judge the live sessions idle", () => {
    const { det, judged } = detector();
    det.processRecords(0, "live", openSessions(10, T0));
    const liveClock = det.table.clock[0];
    det.processRecords(0, "replay", frameAt(2 ** 62 / 1e9));
    det.processRecords(0, "replay", frameAt(2 ** 62 / 1e9 + 1));
    det.processRecords(0, "live", openSessions(1, T0 + 1));
    expect(det.table.clock[0]).toBeLessThan(liveClock + 10);
    expect(judged.filter((j) => j.reason === "idle")).toEqual([]);
    // The live sessions are still open: only the replay's lane ends with its stream.
    det.endOfStream(0, "replay");
    expect(judged.filter((j) => j.clientPort >= 50000)).toEqual([]);
    det.endOfStream(0, "live");
    expect(judged.filter((j) => j.clientPort >= 50000)).toHaveLength(10);
  });

  it("verdicts carry the id of the source whose connections made them, with both attacks interleaved on the shard", () => {
    const { det, verdicts } = detector();
    // The live scan's unanswered SYNs are judged when they go idle: after the replay's batch, whose
    // frames are later than the idle timeout. Sharing a clock, they were judged in that batch, as "replay".
    const live = scan("203.0.113.1", T0, 30, false);
    const replay = scan("203.0.113.2", T0 + 300);
    // Batches of both sources on one shard, as the bus delivers them.
    det.processRecords(1, "live", live);
    det.processRecords(1, "replay", replay);
    det.processRecords(1, "live", openSessions(1, T0 + 5));
    det.endOfStream(1);
    const by = new Map(verdicts.filter((v) => !v.aggregate).map((v) => [v.address, v.sourceId]));
    expect(by.get("203.0.113.1")).toBe("live");
    expect(by.get("203.0.113.2")).toBe("replay");
  });

  it("further sources share the shard's lane once its lanes are taken, and are counted", () => {
    const { det } = detector();
    for (let i = 0; i < 4; i++) det.processRecords(0, `src${i}`, frameAt(T0 + i));
    expect(det.sharedLaneBatches).toBe(0);
    det.processRecords(0, "src4", frameAt(T0 + 5));
    expect(det.sharedLaneBatches).toBe(1);
    // A lane freed by an ended stream is taken again.
    det.endOfStream(0, "src2");
    det.processRecords(0, "src5", frameAt(T0 + 6));
    expect(det.sharedLaneBatches).toBe(1);
  });
});

describe("a frame with a future timestamp (F11)", () => {
  it("does not move the clock on its own, so later connections are not judged idle as soon as seen", () => {
    const { det, judged } = detector();
    det.processRecords(0, "live", openSessions(5, T0));
    det.processRecords(0, "live", frameAt(T0 + 10 * 365 * 86_400, "198.51.100.7"));
    expect(det.table.clock[0]).toBeLessThan(T0 + 60);
    expect(det.table.clockJumpsHeld).toBe(1);
    det.processRecords(0, "live", openSessions(5, T0 + 2));
    expect(judged.filter((j) => j.reason === "idle")).toEqual([]);
  });

  it("a real gap in the capture (confirmed by the next frame) does move it", () => {
    const { det, judged } = detector();
    det.processRecords(0, "pcap", openSessions(5, T0));
    const w = new RecordWriter();
    writeConversation(w, { client: "198.51.100.8", server: "10.0.0.1", clientPort: 40001, serverPort: 80, steps: [{ from: "c", flags: S }, { from: "c", flags: S }], startTs: T0 + 3600, clientDirection: DIR_INGRESS });
    det.processRecords(0, "pcap", w.bytes());
    expect(det.table.clock[0]).toBeGreaterThanOrEqual(T0 + 3600);
    // The sessions before the gap are idle now.
    expect(judged.filter((j) => j.reason === "idle")).toHaveLength(5);
  });
});
