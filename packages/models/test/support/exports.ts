import { uMatrixFromWeights } from "../../src/index.js";

export const FEATURES = ["packets", "bytes", "syn_ratio", "rst_ratio", "distinct_ports", "distinct_sources", "half_open", "fragments", "icmp_ratio", "udp_ratio"];

/** A PST export in the detector's JSON export shape (exportTree: flat nodes with parents, contexts oldest first). */
export function pstExport(): unknown {
  const node = (id: number, context: string, parent: number | null, count: number, next: Array<[string, number]>) => {
    const total = next.reduce((s, [, c]) => s + c, 0);
    return { id, context, depth: context === "ε" ? 0 : context.split(" ").length, parent, count, next: next.map(([symbol, c]) => ({ symbol, count: c, probability: c / total })) };
  };
  return {
    models: [
      {
        name: "ssh",
        serviceClass: { name: "ssh", ports: [22] },
        version: 3,
        threshold: { value: 3.2, percentile: 99.5, heldOut: 400, minSymbols: 4 },
        tree: {
          params: { maxDepth: 6, pMin: 0.001, gammaMin: 0.0001, alpha: 0, ratio: 1.05 },
          nodes: [
            node(0, "ε", null, 52000, [["C:A", 21000], ["C:PA", 14000], ["S:PA", 9000], ["C:S", 4000], ["S:SA", 3900], ["C:FA", 100]]),
            node(1, "BOS", 0, 4000, [["C:S", 4000]]),
            node(2, "C:S", 0, 4000, [["S:SA", 3900], ["S:RA", 100]]),
            node(3, "BOS C:S", 2, 4000, [["S:SA", 3900], ["S:RA", 100]]),
            node(4, "S:SA", 0, 3900, [["C:A", 3880], ["C:R", 20]]),
            node(5, "C:S S:SA", 4, 3900, [["C:A", 3880], ["C:R", 20]]),
            node(6, "C:A", 0, 21000, [["C:PA", 9000], ["S:PA", 8000], ["C:FA", 2000], ["END", 2000]]),
            node(7, "S:SA C:A", 6, 3880, [["C:PA", 3000], ["S:PA", 880]]),
            node(8, "C:PA", 0, 14000, [["S:A", 7000], ["S:PA", 7000]]),
            node(9, "S:PA C:PA", 8, 7000, [["S:PA", 6000], ["S:A", 1000]]),
            node(10, "C:S S:SA C:A", 7, 3880, [["C:PA", 3100], ["S:PA", 780]]),
          ],
        },
      },
      {
        name: "web",
        serviceClass: { name: "web", ports: [80, 8080] },
        version: 2,
        threshold: { value: 2.9, percentile: 99.5, heldOut: 900, minSymbols: 4 },
        tree: {
          params: { maxDepth: 6, pMin: 0.001, gammaMin: 0.0001, alpha: 0, ratio: 1.05 },
          nodes: [
            node(0, "ε", null, 90000, [["C:A", 30000], ["S:A", 25000], ["C:PA", 15000], ["S:PA", 12000], ["C:S", 8000]]),
            node(1, "C:S", 0, 8000, [["S:SA", 7950], ["S:RA", 50]]),
            node(2, "S:SA", 0, 7950, [["C:A", 7950]]),
          ],
        },
      },
    ],
  };
}

/** A SOM export in the detector's exportMap() shape: a hexagonal map with two clusters of benign traffic. */
export function somExport(): unknown {
  const rows = 10;
  const cols = 12;
  const dim = FEATURES.length;
  const weights: number[][] = [];
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const left = c < 6 ? 1 : 0;
      weights.push(Array.from({ length: dim }, (_, k) => (left ? 0.2 : 1.4) + 0.05 * Math.sin(r * 0.7 + c * 0.3 + k) + (r > 7 && c > 8 ? 2.5 : 0)));
    }
  const hits = weights.map((_, u) => ((u * 37) % 11) * ((u % cols) > 8 && u / cols > 8 ? 0 : 7));
  return {
    model: "som/default@1",
    rows,
    cols,
    topology: "hexagonal",
    features: FEATURES,
    threshold: 2.5,
    uMatrix: uMatrixFromWeights(weights, rows, cols, "hexagonal"),
    hits,
    labels: [
      { unit: 9 * cols + 10, label: "syn-flood", counts: { "syn-flood": 12 } },
      { unit: 9 * cols + 11, label: "syn-scan", counts: { "syn-scan": 7, benign: 1 } },
      { unit: 2 * cols + 2, label: "benign", counts: { benign: 40 } },
    ],
    feedback: 0,
  };
}
