import { describe, expect, it } from "vitest";
import { formatSymbols, parseSequence, parseSymbol, segmentSymbol, SYM_END, symbolText, DIR_CLIENT, DIR_SERVER } from "@vigil/models";
import { CompiledPst, ContextCounter, DEFAULT_PST_PARAMS, exportTree, learnTree, percentile, treeToDot, type PstParams } from "../src/pst.js";
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG } from "@vigil/frames";

const seq = (text: string) => parseSequence(text).head;
const params: PstParams = { ...DEFAULT_PST_PARAMS, maxDepth: 4, pMin: 0.001 };

function train(texts: string[], p = params) {
  const counts = new ContextCounter(p.maxDepth);
  for (const t of texts) counts.add({ symbols: seq(t), fromStart: true });
  return new CompiledPst(learnTree(counts, p), p);
}

const HANDSHAKE = "C:S S:SA C:A C:PA S:A S:PA C:A C:FA S:FA END";
const SERVER_CLOSE = "C:S S:SA C:A C:PA S:PA S:FA C:A C:FA END";

describe("alphabet", () => {
  it("names symbols by direction and flag set, like tcpdump", () => {
    expect(symbolText(segmentSymbol(DIR_CLIENT, TCP_SYN))).toBe("C:S");
    expect(symbolText(segmentSymbol(DIR_SERVER, TCP_SYN | TCP_ACK))).toBe("S:SA");
    expect(symbolText(segmentSymbol(DIR_CLIENT, TCP_PSH | TCP_ACK))).toBe("C:PA");
    expect(symbolText(segmentSymbol(DIR_SERVER, TCP_RST | TCP_ACK))).toBe("S:RA");
    expect(symbolText(segmentSymbol(DIR_CLIENT, TCP_FIN | TCP_PSH | TCP_URG))).toBe("C:FPU");
    expect(symbolText(segmentSymbol(DIR_CLIENT, 0))).toBe("C:0");
    expect(symbolText(SYM_END)).toBe("END");
  });

  it("parses what it prints, in any flag order", () => {
    for (let s = 0; s <= SYM_END; s++) expect(parseSymbol(symbolText(s))).toBe(s);
    expect(parseSymbol("S:AS")).toBe(parseSymbol("S:SA"));
    expect(() => parseSymbol("X:S")).toThrow(/not a symbol/);
    expect(parseSequence("C:S S:SA … C:A END")).toEqual({ head: [parseSymbol("C:S"), parseSymbol("S:SA")], tail: [parseSymbol("C:A"), SYM_END] });
    expect(formatSymbols(seq(HANDSHAKE))).toBe(HANDSHAKE);
  });
});

describe("probabilistic suffix tree", () => {
  it("counts every context up to the maximum depth, BOS before the first symbol", () => {
    const c = new ContextCounter(2);
    c.add({ symbols: seq("C:S S:SA C:A"), fromStart: true });
    expect(c.root.total).toBe(3);
    expect(c.get([parseSymbol("C:S")])!.next.get(parseSymbol("S:SA"))).toBe(1);
    // Contexts are nearest first: "S:SA" preceded by "C:S".
    expect(c.get([parseSymbol("S:SA"), parseSymbol("C:S")])!.total).toBe(1);
    expect(c.get([513])!.next.get(parseSymbol("C:S"))).toBe(1);
    const again = ContextCounter.fromJSON(2, JSON.parse(JSON.stringify(c.toJSON())), "test");
    expect(again.toJSON()).toEqual(c.toJSON());
  });

  it("keeps a context only where it changes the prediction", () => {
    // After C:A the next symbol depends on what came before it (C:S S:SA → C:PA; S:PA → C:FA): depth 2 is needed.
    const tree = learnTree(
      (() => {
        const c = new ContextCounter(4);
        for (let i = 0; i < 50; i++) c.add({ symbols: seq(HANDSHAKE), fromStart: true });
        return c;
      })(),
      params,
    );
    const contexts = tree.map((n) => formatSymbols([...n.ctx].reverse()));
    expect(contexts).toContain("S:SA C:A");
    expect(contexts).toContain("S:PA C:A");
    // Every node's suffixes are in the tree (a suffix tree, not a bag of contexts).
    const keys = new Set(tree.map((n) => n.ctx.join(",")));
    for (const n of tree) for (let l = 0; l < n.ctx.length; l++) expect(keys.has(n.ctx.slice(0, l).join(","))).toBe(true);
  });

  it("scores seen sequences low and unseen ones high, but finitely", () => {
    const pst = train([...Array(200).fill(HANDSHAKE), ...Array(100).fill(SERVER_CLOSE)]);
    const benign = pst.score(seq(HANDSHAKE));
    const serverClose = pst.score(seq(SERVER_CLOSE));
    const synScan = pst.score(seq("C:S S:RA END"));
    const halfOpen = pst.score(seq("C:S END"));
    const xmas = pst.score(seq("C:FPU END"));
    expect(benign).toBeLessThan(0.5);
    expect(serverClose).toBeLessThan(1.2);
    for (const bad of [synScan, halfOpen, xmas]) {
      expect(bad).toBeGreaterThan(3);
      expect(Number.isFinite(bad)).toBe(true);
    }
    // An unseen symbol costs about -ln(γ_min), never more.
    expect(pst.cost(seq("C:FPU"), 0, true)).toBeCloseTo(-Math.log(params.gammaMin), 0);
    expect(xmas).toBeLessThanOrEqual(-Math.log(params.gammaMin) + 1e-6);
  });

  it("scores per symbol: repeating a benign conversation does not raise its score", () => {
    const keepAlive = (n: number) => "C:S S:SA C:A " + "C:PA S:A S:PA C:A ".repeat(n) + "C:FA S:FA END";
    const pst = train([...Array(50).fill(keepAlive(1)), ...Array(50).fill(keepAlive(2)), ...Array(50).fill(keepAlive(3))]);
    const one = pst.score(seq(keepAlive(1)));
    const long = pst.score(seq("C:S S:SA C:A " + "C:PA S:A S:PA C:A ".repeat(20) + "C:FA S:FA END"));
    expect(long).toBeLessThan(one + 0.5);
  });

  it("the judge statistic is the worst running average after k symbols, or the final one", () => {
    const pst = train(Array(100).fill(HANDSHAKE));
    const s = seq("C:S S:SA C:A C:PA S:R END");
    expect(pst.judgeStatistic(s, 100)).toBeCloseTo(pst.score(s), 6);
    expect(pst.judgeStatistic(s, 1)).toBeGreaterThanOrEqual(pst.score(s));
  });

  it("validates its parameters with a clear error", () => {
    expect(() => train([HANDSHAKE], { ...params, gammaMin: 0.01 })).toThrow(/gammaMin/);
    expect(() => train([HANDSHAKE], { ...params, ratio: 1 })).toThrow(/ratio/);
  });

  it("exports the tree as JSON and DOT", () => {
    const pst = train(Array(20).fill(HANDSHAKE));
    const t = exportTree(pst);
    expect(t.nodes[0].context).toBe("ε");
    expect(t.nodes.every((n) => n.parent === null || n.parent < n.id)).toBe(true);
    const sa = t.nodes.find((n) => n.context === "C:S")!;
    expect(sa.next[0].symbol).toBe("S:SA");
    expect(sa.next[0].probability).toBeGreaterThan(0.9);
    const dot = treeToDot("pst/web@1", t);
    expect(dot).toMatch(/^digraph "pst\/web@1" \{/);
    expect(dot.match(/->/g)!.length).toBe(t.nodes.length - 1);
  });

  it("percentile takes the nearest rank", () => {
    expect(percentile([5, 1, 4, 2, 3], 100)).toBe(5);
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile(Array.from({ length: 1000 }, (_, i) => i), 99.5)).toBe(994);
  });
});
