import { beforeAll, describe, expect, it } from "vitest";
import { RecordWriter } from "@vigil/frames";
import { DIR_CLIENT, DIR_SERVER, SYM_END } from "@vigil/models";
import { Detector, type JudgedSequence } from "../src/detector.js";
import * as L from "../src/layout.js";
import type { ModelSet } from "../src/model.js";
import type { Step } from "../src/synthetic.js";
import { A, P, R, S, syntheticModels, writeConversation } from "./support/models.js";

let models: ModelSet;
beforeAll(async () => {
  models = await syntheticModels();
}, 60_000);

describe("connection records", () => {
  it("lay their fields out inside the record, aligned, without overlap", () => {
    const size = { U32: 4, F64: 8, F32: 4, I32: 4, U16: 2, U8: 1 } as const;
    const fields: Array<[string, number, number]> = [
      ["U32_PORTS", L.U32_PORTS * 4, 4],
      ["U32_ADDR_A", L.U32_ADDR_A * 4, 16],
      ["U32_ADDR_B", L.U32_ADDR_B * 4, 16],
      ["U32_ACKS", L.U32_ACKS * 4, 8],
      ["U16_RING", L.U16_RING * 2, L.RING_LEN * 2],
    ];
    for (const [name, value] of Object.entries(L)) {
      const type = name.split("_")[0] as keyof typeof size;
      if (!(type in size) || fields.some(([n]) => n === name)) continue;
      fields.push([name, value * size[type], size[type]]);
    }
    expect(fields.length).toBe(17);
    const used = new Array<string>(L.REC_BYTES).fill("");
    for (const [name, at, len] of fields) {
      const type = name.split("_")[0] as keyof typeof size;
      expect(at % size[type], `${name} aligned`).toBe(0);
      expect(at + len, `${name} inside the record`).toBeLessThanOrEqual(L.REC_BYTES);
      for (let b = at; b < at + len; b++) {
        expect(used[b], `${name} overlaps ${used[b]} at byte ${b}`).toBe("");
        used[b] = name;
      }
    }
    // The key (what a probe compares and a deletion rehashes) is in the first cache line.
    for (const name of ["U32_PORTS", "U32_ADDR_A", "U32_ADDR_B", "U8_FAMILY"]) expect(fields.find(([n]) => n === name)![1]).toBeLessThan(64);
  });

  it("keep the head and the tail of connections shorter, as long as, and longer than the ring", () => {
    const judged: JudgedSequence[] = [];
    const det = new Detector(models, { shardCount: 1, maxConnections: 64, minSymbols: 1000 }, { onJudged: (j) => judged.push(j) });
    const lengths = [4, 15, 16, 17, 18, 31, 32, 33, 34, 40, 100];
    const expected: number[][] = [];
    const w = new RecordWriter();
    let ts = 1_700_000_000;
    lengths.forEach((len, i) => {
      // len symbols in all: the handshake, data both ways, the client's RST, then END (judged only at its end: minSymbols).
      const steps: Step[] = [{ from: "c", flags: S }, { from: "s", flags: S | A }];
      while (steps.length < len - 2) steps.push(steps.length % 2 ? { from: "s", flags: A } : { from: "c", flags: P | A });
      steps.push({ from: "c", flags: R });
      expected.push([...steps.map((s) => ((s.from === "c" ? DIR_CLIENT : DIR_SERVER) << 8) | s.flags), SYM_END]);
      ts = writeConversation(w, { client: "10.0.0.1", server: "10.0.0.2", clientPort: 40000 + i, serverPort: 80, steps, startTs: ts, gap: 0.001 });
    });
    det.processRecords(0, "t", w.bytes());
    det.endOfStream(0);
    expect(judged.map((j) => j.clientPort).sort()).toEqual(lengths.map((_, i) => 40000 + i));
    for (const j of judged) {
      const all = expected[j.clientPort - 40000];
      expect(all.length).toBe(lengths[j.clientPort - 40000]);
      if (all.length <= L.HEAD_LEN + L.RING_LEN) expect({ head: j.head, tail: j.tail }).toEqual({ head: all, tail: null });
      else expect({ head: j.head, tail: j.tail }).toEqual({ head: all.slice(0, L.HEAD_LEN), tail: all.slice(-L.RING_LEN) });
    }
  });
});

describe("connection table", () => {
  it("forgets the slot of the last segment when it frees it: the same 5-tuple later is a new connection", () => {
    const det = new Detector(models, { shardCount: 1, maxConnections: 64, linger: 10 });
    const t0 = 1_700_000_000;
    const conv = (steps: Step[], startTs: number) => {
      const w = new RecordWriter();
      writeConversation(w, { client: "10.0.0.1", server: "10.0.0.2", clientPort: 40000, serverPort: 80, steps, startTs, gap: 0.001 });
      return w.bytes();
    };
    // Closed by a RST: its slot is the last one used.
    det.processRecords(0, "t", conv([{ from: "c", flags: S }, { from: "s", flags: S | A }, { from: "c", flags: R }], t0));
    expect(det.table.connectionsOpened).toBe(1);
    // A straggler past the linger: absorbed, then the sweep at the end of the batch frees the slot.
    det.processRecords(0, "t", conv([{ from: "c", flags: A }], t0 + 20));
    expect(det.table.size).toBe(0);
    // The same 5-tuple again: the freed record still holds its key, but it is no connection any more.
    det.processRecords(0, "t", conv([{ from: "c", flags: A }, { from: "s", flags: A }], t0 + 21));
    expect(det.table.connectionsOpened).toBe(2);
    expect(det.table.size).toBe(1);
    expect(det.table.shardSize(0)).toBe(1);
  });
});
