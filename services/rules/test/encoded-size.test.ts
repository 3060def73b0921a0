import { describe, expect, it } from "vitest";
import { Rule, Verdict } from "@vigil/proto";
import { SizeCounter } from "../src/encoded-size.js";

type Writer = Parameters<typeof Verdict.encode>[1];

/** The size the counter counts, or the error it throws. */
function counted<T>(encode: (m: T, w: Writer) => unknown, m: T): number | string {
  const c = new SizeCounter();
  try {
    encode(m, c as unknown as Writer);
    return c.size;
  } catch (err) {
    return `throws ${(err as Error).message}`;
  }
}

/** The length of the real encoding, or the error its writer throws. */
function written<T>(encode: (m: T) => { finish(): Uint8Array }, m: T): number | string {
  try {
    return encode(m).finish().length;
  } catch (err) {
    return `throws ${(err as Error).message}`;
  }
}

let seed = 11;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const pick = <T,>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
const texts = ["", "pst", "10.0.0.1", "2001:db8::1", "x".repeat(127), "y".repeat(128), "z".repeat(20000), "\u00e9t\u00e9", "\u4e2d\u6587", "\ud83d\ude00!", "lone \ud800 high", "lone \udc00 low", "end \ud83d"];
const counts = [0, 1, 127, 128, 16383, 16384, 2 ** 21, 2 ** 28, 2 ** 32 - 1];
const numbers = [0, -1, 0.5, 1e300, -0, Number.NaN, Number.POSITIVE_INFINITY, 1796668763.25];

function randomVerdict(): Verdict {
  const connections = Array.from({ length: Math.floor(random() * 4) }, () => ({
    client: pick(texts), clientPort: pick(counts.slice(0, 5)), server: pick(texts), serverPort: pick(counts.slice(0, 5)), serviceClass: pick(texts),
    symbols: pick(["C:S S:SA C:R", "C:S S:SA C:A C:PA S:PA C:FA S:FA C:A", ""]), score: pick(numbers), firstTs: pick(numbers), lastTs: pick(numbers),
  }));
  const feature = () => ({ name: pick(texts), value: pick(numbers), deviation: pick(numbers) });
  const som = {
    features: Array.from({ length: Math.floor(random() * 3) }, feature), deviations: Array.from({ length: Math.floor(random() * 3) }, feature),
    sources: Array.from({ length: Math.floor(random() * 3) }, () => ({ address: pick(texts), share: pick(numbers), packets: pick(counts), ports: pick(counts), halfOpen: pick(counts), fragments: pick(counts) })),
    bmu: pick(counts), quantizationError: pick(numbers), windowStart: pick(numbers), windowEnd: pick(numbers), windowPackets: pick(counts),
  };
  return Verdict.fromPartial({
    id: pick(texts), detector: pick(texts), instance: pick(texts), sourceId: pick(texts), address: pick(texts), aggregate: random() < 0.5,
    localAddress: pick(texts), localPorts: Array.from({ length: Math.floor(random() * 200) }, () => pick(counts)), protocol: pick(counts.slice(0, 3)),
    score: pick(numbers), threshold: pick(numbers), model: pick(texts), label: pick(texts), connections: pick(counts), packets: pick([...counts, 2 ** 40, 2 ** 53 - 1]),
    firstTs: pick(numbers), lastTs: pick(numbers), summary: pick(texts), pst: random() < 0.6 ? { connections } : undefined, som: random() < 0.4 ? som : undefined, replay: random() < 0.5,
  });
}

describe("the size of a message's encoding, counted", () => {
  it("is the length of the encoding, for verdicts of every field, size and text", () => {
    for (let n = 0; n < 3000; n++) {
      const v = randomVerdict();
      const size = counted(Verdict.encode, v);
      expect(typeof size).toBe("number");
      expect(size).toBe(written(Verdict.encode, v));
    }
  });

  it("refuses what the writer refuses: a verdict out of the protobuf ranges is never sized", () => {
    const bad: Array<Partial<Verdict>> = [
      { connections: -1 }, { connections: 1.5 }, { connections: Number.NaN }, { connections: 2 ** 32 }, { protocol: -6 },
      { localPorts: [80, -1] }, { localPorts: [0.25] }, { packets: -1 }, { packets: 0.5 }, { packets: Number.NaN }, { packets: Number.POSITIVE_INFINITY }, { packets: 2 ** 64 },
      { pst: { connections: [{ client: "a", clientPort: 70000.5, server: "b", serverPort: 22, serviceClass: "", symbols: "", score: 0, firstTs: 0, lastTs: 0 }] } },
    ];
    for (const partial of bad) {
      const v = { ...Verdict.fromPartial({ id: "v" }), ...partial } as Verdict;
      const reference = written(Verdict.encode, v);
      expect(reference, JSON.stringify(partial)).toMatch(/^throws /);
      expect(counted(Verdict.encode, v), JSON.stringify(partial)).toBe(reference);
    }
  });

  it("counts 64-bit and signed fields as the writer writes them (a rule's id, negative priorities)", () => {
    for (const id of [0, 1, 2 ** 31, 2 ** 53 - 1])
      for (const priority of [0, 5, -1, -(2 ** 31), 2 ** 31 - 1]) {
        const r = Rule.fromPartial({ id, priority, srcCidr: "10.0.0.0/8", reason: "r\u00e9ason", verdictIds: ["a", "b"], createdAt: 1.5, expiresAt: 2 });
        expect(counted(Rule.encode, r)).toBe(written(Rule.encode, r));
      }
  });

  it("starts each count afresh after one that threw", () => {
    const c = new SizeCounter();
    const good = Verdict.fromPartial({ id: "ok", pst: { connections: [{ client: "a", clientPort: 1 }] } });
    const badPort = Verdict.fromPartial({ id: "bad", pst: { connections: [{ client: "a", clientPort: 1 }, { client: "b", clientPort: 1 }] } });
    badPort.pst!.connections[1].clientPort = -1; // thrown inside the evidence's nested message, with a fork open
    expect(() => Verdict.encode(badPort, c.reset() as unknown as Writer)).toThrow(/invalid uint32/);
    Verdict.encode(good, c.reset() as unknown as Writer);
    expect(c.size).toBe(Verdict.encode(good).finish().length);
  });
});
