import { beforeAll, describe, expect, it } from "vitest";
import { DIR_EGRESS, DIR_INGRESS, FRAME_F_DROPPED, RecordWriter, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from "@vigil/frames";
import type { Verdict } from "@vigil/proto";
// The rules service decides what "verified" means for a block: these tests judge PST's evidence with it.
import { completedHandshakes, handshakeCompleted } from "../../rules/src/policy.js";
import { parseSequence } from "@vigil/models";
import { scanCaptures } from "../src/cli.js";
import { DEFAULT_MODELS_DIR } from "../src/config.js";
import { Detector, type JudgedSequence } from "../src/detector.js";
import { formatEvidenceSymbols, type RawEvidence } from "../src/evidence.js";
import { Handshakes } from "../src/handshake.js";
import { ModelSet, readModelDir, ServiceClassMap } from "../src/model.js";
import { benignExchange, writeConversation, type Step } from "../src/synthetic.js";
import { writeTempRecords } from "./support/models.js";

const S = TCP_SYN;
const A = TCP_ACK;
const R = TCP_RST;
const FPUA = TCP_FIN | TCP_PSH | TCP_URG | TCP_ACK;
const T0 = 1_700_000_000;
/** Our ISN in the crafted conversations, and a client's. */
const OURS = 5555;
const THEIRS = 1000;
const WRONG = 424242;

let models: ModelSet;
beforeAll(() => {
  models = new ModelSet(new ServiceClassMap(), readModelDir(DEFAULT_MODELS_DIR));
});

interface Spec {
  steps: Step[];
  /** "in": the remote end is the client (our server answers); "out": our client connects to the remote server. */
  way?: "in" | "out";
  v6?: boolean;
  clientIsn?: number;
  serverIsn?: number;
}

/** Runs conversations through a detector and returns, per connection, whether its handshake was verified. */
function judge(...specs: Spec[]): JudgedSequence[] {
  const judged: JudgedSequence[] = [];
  const det = new Detector(models, { shardCount: 1, maxConnections: 1000 }, { onJudged: (j) => judged.push(j) });
  const w = new RecordWriter();
  let ts = T0;
  specs.forEach((s, i) => {
    const local = s.v6 ? "2001:db8::1" : "10.0.0.1";
    const remote = s.v6 ? "2001:db8:66::53" : "192.0.2.53";
    const inbound = (s.way ?? "in") === "in";
    ts = writeConversation(w, {
      client: inbound ? remote : local,
      server: inbound ? local : remote,
      clientPort: 40000 + i,
      serverPort: 443,
      steps: s.steps,
      startTs: ts,
      clientIsn: s.clientIsn ?? THEIRS,
      serverIsn: s.serverIsn ?? OURS,
      clientDirection: inbound ? DIR_INGRESS : DIR_EGRESS,
    });
  });
  det.processRecords(0, "test", w.bytes());
  det.endOfStream(0);
  expect(judged).toHaveLength(specs.length);
  return judged;
}

const verified = (...specs: Spec[]) => judge(...specs).map((j) => j.handshakeVerified);

describe("handshake verification: the remote end must acknowledge our initial sequence number", () => {
  it("verifies honest inbound handshakes, IPv4 and IPv6", () => {
    expect(verified({ steps: benignExchange(2) }, { steps: benignExchange(2), v6: true })).toEqual([true, true]);
    // Just the handshake, then the client resets: it did receive our SYN-ACK.
    expect(verified({ steps: [{ from: "c", flags: S }, { from: "s", flags: S | A }, { from: "c", flags: A }, { from: "c", flags: R | A }] })).toEqual([true]);
  });

  it("verifies honest outbound handshakes (the remote server's SYN-ACK acknowledges our SYN), IPv4 and IPv6", () => {
    const refusedAfterSynAck: Step[] = [{ from: "c", flags: S }, { from: "s", flags: S | A }, { from: "c", flags: R }];
    expect(verified({ steps: benignExchange(2), way: "out" }, { steps: benignExchange(2), way: "out", v6: true }, { steps: refusedAfterSynAck, way: "out" })).toEqual([
      true,
      true,
      true,
    ]);
  });

  it("handles sequence numbers that wrap around 2^32", () => {
    // ISN 0xffffffff: ISN + 1 is 0.
    expect(verified({ steps: benignExchange(2), serverIsn: 0xffffffff }, { steps: benignExchange(2), way: "out", clientIsn: 0xffffffff })).toEqual([true, true]);
    const isnOnly: Step[] = [{ from: "c", flags: S }, { from: "s", flags: S | A }, { from: "c", flags: A, ack: 0xffffffff }];
    expect(verified({ steps: isnOnly, serverIsn: 0xffffffff })).toEqual([false]);
  });

  it("verifies an ACK of data we sent before the client's first ACK (the acknowledgement is beyond ISN + 1, within what we sent)", () => {
    const early: Step[] = [
      { from: "c", flags: S },
      { from: "s", flags: S | A },
      { from: "s", flags: TCP_PSH | A, payload: 100 },
      { from: "c", flags: A, ack: OURS + 1 + 100 },
      { from: "c", flags: R | A },
    ];
    expect(verified({ steps: early, serverIsn: 0xffffffc0 - 1 })).toEqual([false]); // its ack (OURS + 101) was never sent
    expect(verified({ steps: early.map((s) => (s.ack ? { ...s, ack: undefined } : s)) })).toEqual([true]);
    const beyond: Step[] = [...early.slice(0, 3), { from: "c", flags: A, ack: OURS + 1 + 101 }];
    expect(verified({ steps: beyond })).toEqual([false]);
  });

  describe("forged by a blind spoofer: never verified", () => {
    const synSynAck: Step[] = [
      { from: "c", flags: S },
      { from: "s", flags: S | A },
    ];

    it("forged: ACK with a wrong ack number, our RST", () => {
      expect(verified({ steps: [...synSynAck, { from: "c", flags: A, ack: WRONG }, { from: "s", flags: R, seq: WRONG }] })).toEqual([false]);
    });

    it("forged: FIN|PSH|URG|ACK with a wrong ack number (C:S S:SA C:FPUA S:R), then the owner's late RST", () => {
      const steps: Step[] = [...synSynAck, { from: "c", flags: FPUA, ack: WRONG }, { from: "s", flags: R, seq: WRONG }, { from: "c", flags: R, seq: THEIRS + 1 }];
      expect(verified({ steps })).toEqual([false]);
    });

    it("forged: acknowledges our ISN instead of ISN + 1, or ISN + 2", () => {
      expect(verified({ steps: [...synSynAck, { from: "c", flags: A, ack: OURS }] }, { steps: [...synSynAck, { from: "c", flags: A, ack: OURS + 2 }] })).toEqual([false, false]);
    });

    it("forged: a racing RST (the owner's RST before the forged ACK, or the forged ACK followed by a RST)", () => {
      const ownerFirst: Step[] = [...synSynAck, { from: "c", flags: R, seq: THEIRS + 1 }, { from: "c", flags: A, ack: WRONG }];
      const ackThenRst: Step[] = [...synSynAck, { from: "c", flags: A, ack: WRONG }, { from: "c", flags: R, seq: THEIRS + 1 }];
      expect(verified({ steps: ownerFirst }, { steps: ackThenRst })).toEqual([false, false]);
    });

    it("forged: a RST-ACK, even with the right acknowledgement number, is a refusal, not a handshake", () => {
      // The real owner of a spoofed address saw our SYN-ACK and refuses it: that must not make it the attacker.
      expect(verified({ steps: [...synSynAck, { from: "c", flags: R | A, ack: OURS + 1 }] })).toEqual([false]);
    });

    it("forged: duplicate SYNs (another ISN) before and after our SYN-ACK, then an ACK with a wrong number", () => {
      const before: Step[] = [{ from: "c", flags: S }, { from: "c", flags: S, seq: 77 }, { from: "s", flags: S | A }, { from: "c", flags: A, ack: 78 }];
      const after: Step[] = [...synSynAck, { from: "c", flags: S, seq: 77 }, { from: "c", flags: FPUA, ack: 78 }];
      expect(verified({ steps: before }, { steps: after })).toEqual([false, false]);
    });

    it("forged: an ACK before any SYN-ACK of ours (nothing to acknowledge yet; ack 1 is not 'ISN 0 + 1')", () => {
      const early: Step[] = [{ from: "c", flags: S }, { from: "c", flags: A, ack: 1 }, { from: "c", flags: A, ack: OURS + 1 }, { from: "s", flags: S | A }];
      expect(verified({ steps: early })).toEqual([false]);
    });

    it("forged: a SYN-ACK from the client side acknowledging our SYN-ACK", () => {
      expect(verified({ steps: [...synSynAck, { from: "c", flags: S | A, ack: OURS + 1 }] })).toEqual([false]);
    });

    it("forged: a SYN-ACK acknowledging the wrong number (outbound), or our ISN instead of ISN + 1", () => {
      const wrong: Step[] = [{ from: "c", flags: S }, { from: "s", flags: S | A, ack: WRONG }, { from: "c", flags: R, seq: WRONG }];
      const isn: Step[] = [{ from: "c", flags: S }, { from: "s", flags: S | A, ack: THEIRS }, { from: "c", flags: R, seq: THEIRS }];
      expect(verified({ steps: wrong, way: "out" }, { steps: isn, way: "out" }, { steps: wrong, way: "out", v6: true })).toEqual([false, false, false]);
    });

    it("forged: IPv6 FIN|PSH|URG|ACK with a wrong ack number", () => {
      expect(verified({ steps: [...synSynAck, { from: "c", flags: FPUA, ack: WRONG }, { from: "s", flags: R, seq: WRONG }], v6: true })).toEqual([false]);
    });
  });

  it("our RST, which carries the forged ACK's number as its sequence number, does not make that number acceptable", () => {
    const state = new Uint16Array(1);
    const h = new Handshakes(1, state);
    h.local(0, S | A, OURS, 0);
    h.local(0, R, WRONG, 0);
    h.remote(0, A, WRONG, true);
    expect(h.verified(0)).toBe(false);
    h.remote(0, A, OURS + 1, true);
    expect(h.verified(0)).toBe(true);
    // Data we send near the wrap extends what may be acknowledged, across zero.
    state[0] = 0;
    h.local(0, S | A, 0xfffffff0, 0);
    h.local(0, A | TCP_PSH, 0xfffffff1, 0x40);
    h.remote(0, A, 0x31, true);
    expect(h.verified(0)).toBe(true);
    state[0] = 0;
    h.local(0, S | A, 0xfffffff0, 0);
    h.remote(0, A, 0x31, true);
    expect(h.verified(0)).toBe(false);
  });
});

describe("verdicts: what the rules service counts as completed handshakes", () => {
  /** A forged (or honest) brute-force-like pattern from many sources, as a pcap, scanned like `vigil pst scan --local 10.0.0.1/32`. */
  async function scan(sources: number, perSource: number, ack: (i: number) => number | undefined, flags = FPUA): Promise<Verdict[]> {
    const w = new RecordWriter();
    let ts = T0;
    for (let x = 0; x < sources; x++)
      for (let i = 0; i < perSource; i++) {
        const steps: Step[] = [
          { from: "c", flags: S },
          { from: "s", flags: S | A },
          { from: "c", flags: flags, ack: ack(x * perSource + i) },
          { from: "s", flags: R, seq: ack(x * perSource + i) },
          { from: "c", flags: R, seq: THEIRS + 1 },
        ];
        ts = writeConversation(w, {
          client: `198.${18 + (x >> 16)}.${(x >> 8) & 255}.${x & 255}`,
          server: "10.0.0.1",
          clientPort: 40000 + i,
          serverPort: 443,
          steps,
          startTs: ts,
          gap: 0.001,
          clientIsn: THEIRS,
          serverIsn: (OURS + x * 7919 + i * 104729) >>> 0,
        });
        ts += 0.05;
      }
    const file = await writeTempRecords(w.bytes());
    const r = await scanCaptures([file], { modelsDir: DEFAULT_MODELS_DIR, local: ["10.0.0.1/32"], shardCount: 4 });
    return r.verdicts;
  }

  it("a replay of 1000 spoofed sources doing forged handshakes: every source gets a verdict, none with a verified connection", async () => {
    const verdicts = await scan(1000, 6, (n) => (n % 2 ? WRONG : (OURS ^ 0xdead) >>> 0), FPUA);
    const sources = verdicts.filter((v) => !v.aggregate);
    expect(new Set(sources.map((v) => v.address)).size).toBe(1000);
    for (const v of sources) {
      expect(completedHandshakes(v)).toBe(0);
      for (const c of v.pst!.connections) {
        expect(c.symbols).toMatch(/^C:S S:SA \?C:FPAU S:R END$/);
        expect(handshakeCompleted(c.symbols, true)).toBe(false);
        // The mark is evidence text only: the symbols stay the same for feedback and training.
        expect(parseSequence(c.symbols).head).toEqual(parseSequence("C:S S:SA C:FPUA S:R END").head);
      }
    }
  }, 120_000);

  it("a plain ACK with a wrong number is no handshake either", async () => {
    const verdicts = (await scan(20, 8, () => WRONG, A)).filter((v) => !v.aggregate);
    for (const v of verdicts) expect(completedHandshakes(v)).toBe(0);
  }, 60_000);

  it("control: the same pattern from sources that do acknowledge our ISN + 1 is verified", async () => {
    // The same segments with the honest acknowledgement (writeConversation's default): these sources receive our packets.
    const verdicts = (await scan(20, 6, () => undefined, FPUA)).filter((v) => !v.aggregate);
    expect(verdicts.length).toBe(20);
    for (const v of verdicts) {
      expect(completedHandshakes(v)).toBeGreaterThanOrEqual(1);
      for (const c of v.pst!.connections) expect(c.symbols).not.toContain("?");
    }
  }, 60_000);
});

describe("evidence text", () => {
  const raw = (text: string, remoteIsClient: boolean, verified: boolean, tail?: string): RawEvidence => ({
    family: 4,
    words: new Uint32Array(8),
    clientPort: 40000,
    serverPort: 443,
    serviceClass: "https",
    head: Uint16Array.from(parseSequence(text).head),
    tail: tail ? Uint16Array.from(parseSequence(tail).head) : null,
    score: 3,
    packets: 4,
    firstTs: T0,
    lastTs: T0,
    remoteIsClient,
    verified,
  });

  it("marks the remote's unproven claims of completion, and nothing in a verified connection", () => {
    expect(formatEvidenceSymbols(raw("C:S S:SA C:FPAU S:R END", true, false))).toBe("C:S S:SA ?C:FPAU S:R END");
    expect(formatEvidenceSymbols(raw("C:S S:SA C:A C:PA S:A", true, true))).toBe("C:S S:SA C:A C:PA S:A");
    // A remote server's SYN-ACK that did not acknowledge our SYN.
    const out = formatEvidenceSymbols(raw("C:S S:SA C:R END", false, false));
    expect(out).toBe("C:S ?S:SA C:R END");
    expect(handshakeCompleted(out, false)).toBe(false);
    expect(handshakeCompleted(formatEvidenceSymbols(raw("C:S S:SA C:R END", false, true)), false)).toBe(true);
    // Before our SYN-ACK nothing reads as completion; RSTs are no claim.
    expect(formatEvidenceSymbols(raw("C:S C:A S:SA C:RA", true, false))).toBe("C:S C:A S:SA C:RA");
  });

  it("marks claims in the tail of a long connection too", () => {
    const head = Array(16).fill("C:S").join(" ");
    const out = formatEvidenceSymbols(raw(`${head}`, true, false, "C:S S:SA C:A S:R END"));
    expect(out).toBe(`${head} … C:S S:SA ?C:A S:R END`);
    expect(handshakeCompleted(out, true)).toBe(false);
  });
});

describe("frames the kernel dropped are no evidence against their source", () => {
  /** A blocked source's retries: half-open SYNs (and one retransmission each) to one port, every frame dropped or not. */
  function retries(frameFlags: number) {
    const verdicts: Verdict[] = [];
    const det = new Detector(models, { shardCount: 1, maxConnections: 1000 }, { onVerdict: (v) => verdicts.push(v) });
    const w = new RecordWriter(1 << 20);
    let ts = T0;
    for (let i = 0; i < 40; i++)
      ts = writeConversation(w, {
        client: "192.0.2.77",
        server: "10.0.0.1",
        clientPort: 41000 + i,
        serverPort: 443,
        steps: [{ from: "c", flags: S }, { from: "c", flags: S }],
        startTs: ts + 0.2,
        gap: 1,
        clientDirection: DIR_INGRESS,
        frameFlags,
      });
    det.processRecords(0, "live", w.bytes());
    det.endOfStream(0);
    return { det, verdicts };
  }

  it("a blocked source's retried SYNs, dropped by the kernel, produce no verdict; the same SYNs not dropped do", () => {
    const dropped = retries(FRAME_F_DROPPED);
    expect(dropped.det.droppedFrames).toBe(80);
    expect(dropped.det.table.connectionsOpened).toBe(0);
    expect(dropped.verdicts.filter((v) => v.address === "192.0.2.77")).toEqual([]);
    // Control: the detector does judge this traffic when it was not dropped.
    const passed = retries(0);
    expect(passed.det.droppedFrames).toBe(0);
    expect(passed.verdicts.filter((v) => v.address === "192.0.2.77").length).toBeGreaterThan(0);
  });
});
