import { describe, expect, it } from "vitest";
import { parsePstExport, parseSymbol, type PstNode } from "@vigil/models";
import { ContextCounter, DEFAULT_PST_PARAMS, exportModelsJson, exportTree, PstModel } from "../src/index.js";

// The detector writes two documents the console reads through @vigil/models: the saved model
// file and the JSON export. Both must parse to the same tree.
describe("model export contract", () => {
  it("a saved model file and the detector's export parse to the same tree", () => {
    const counts = new ContextCounter(4);
    const seq = (s: string, n: number) => {
      for (let i = 0; i < n; i++) counts.add({ symbols: s.split(" ").map(parseSymbol), fromStart: true } as never, 1);
    };
    seq("C:S S:SA C:A C:PA S:PA S:A C:FA S:FA C:A", 50);
    seq("C:S S:SA C:A C:PA S:A C:FA S:FA C:A", 30);
    seq("C:S S:RA", 5);
    const model = new PstModel(
      "ssh", 1, { name: "ssh", ports: [22] }, { ...DEFAULT_PST_PARAMS, maxDepth: 4 }, counts,
      { value: 3, percentile: 99, suspicion: 2, suspicionPercentile: 95, heldOut: 0, minSymbols: 3 },
      { sequences: 85, symbols: 0, heldOut: 0, sha256: "", inputs: [], feedbackSequences: 0, learnedSequences: 0 } as never,
    );
    const fromFile = parsePstExport(JSON.parse(JSON.stringify(model.toFile())))[0];
    const fromExport = parsePstExport([{ name: "ssh", serviceClass: model.serviceClass, threshold: model.threshold, tree: exportTree(model.compiled, 1000) }])[0];
    expect(fromFile.nodes).toBe(fromExport.nodes);
    expect(fromFile.nodes).toBeGreaterThan(3);
    const flatten = (n: PstNode): string[] => [
      `${n.context.join(" ")}|${n.count}|${n.next.map((x) => `${x.symbol}:${x.count}:${x.p.toFixed(6)}`).sort().join(",")}`,
      ...n.children.flatMap(flatten),
    ];
    expect(flatten(fromFile.root).sort()).toEqual(flatten(fromExport.root).sort());

    // What vigil.models.pst answers parses as well, naming the model and its threshold.
    const [live] = parsePstExport(JSON.parse(JSON.stringify(exportModelsJson([model]))));
    expect(live).toMatchObject({ serviceClass: "ssh", threshold: 3, nodes: fromExport.nodes });
  });
});
