import { Verdict } from "@vigil/proto";
import { uMatrixFromWeights } from "../../src/models.js";

export const ATTACKER = "203.0.113.66";
export const SCANNER = "198.51.100.23";
export const VICTIM = "10.20.0.5";

/** A PST verdict as the detector publishes it: a SYN scan answered with resets. */
export function pstVerdict(ts: number): Verdict {
  const conns = [22, 23, 80, 443, 3389, 8080].map((port, i) => ({
    client: ATTACKER,
    clientPort: 40000 + i,
    server: VICTIM,
    serverPort: port,
    serviceClass: port === 22 ? "ssh" : port === 80 || port === 8080 ? "web" : port === 443 ? "tls" : "other",
    symbols: port === 22 ? "C:S S:SA C:R END" : "C:S S:RA END",
    score: 6.1 + i * 0.2,
    firstTs: ts + i * 0.01,
    lastTs: ts + i * 0.01 + 0.002,
  }));
  return Verdict.fromPartial({
    id: `pst-${Math.round(ts)}-${ATTACKER}`,
    detector: "pst",
    instance: "pst-test-1",
    sourceId: "test/pcap:syn-scan",
    address: ATTACKER,
    localAddress: VICTIM,
    localPorts: conns.map((c) => c.serverPort),
    protocol: 6,
    score: 6.4,
    threshold: 3.2,
    model: "pst/ssh@1",
    label: "syn-scan",
    connections: 412,
    packets: 1236,
    firstTs: ts,
    lastTs: ts + 4.2,
    summary: `${ATTACKER} opened 412 TCP connections to ${VICTIM} that end in resets after the SYN (port scan)`,
    pst: { connections: conns },
  });
}

const FEATURES = ["packets", "bytes", "syn_ratio", "rst_ratio", "distinct_ports", "distinct_sources", "half_open", "fragments", "icmp_ratio", "udp_ratio"];

/** A SOM verdict: a window with many half-open connections from one source. */
export function somVerdict(ts: number): Verdict {
  const deviations = [4.8, 0.6, 5.9, 3.1, 4.2, 0.2, 6.3, 0, -0.4, -0.9];
  const values = [5120, 307200, 0.82, 0.4, 640, 3, 1900, 0, 0.01, 0.02];
  const features = FEATURES.map((name, i) => ({ name, value: values[i], deviation: deviations[i] }));
  return Verdict.fromPartial({
    id: `som-${Math.round(ts)}-${SCANNER}`,
    detector: "som",
    instance: "som-test-1",
    sourceId: "test/pcap:syn-flood",
    address: SCANNER,
    localAddress: VICTIM,
    localPorts: [80],
    protocol: 6,
    score: 9.7,
    threshold: 2.5,
    model: "som/default@1",
    label: "syn-flood",
    connections: 1900,
    packets: 5120,
    firstTs: ts,
    lastTs: ts + 10,
    summary: `window ${new Date(ts * 1000).toISOString()}: half-open connections far from every learned traffic pattern`,
    som: {
      features,
      deviations: [...features].sort((a, b) => Math.abs(b.deviation) - Math.abs(a.deviation)).slice(0, 4),
      sources: [
        { address: SCANNER, share: 0.91, packets: 4660, ports: 1, halfOpen: 1880, fragments: 0 },
        { address: "192.0.2.10", share: 0.06, packets: 310, ports: 2, halfOpen: 12, fragments: 0 },
        { address: "192.0.2.11", share: 0.03, packets: 150, ports: 1, halfOpen: 8, fragments: 0 },
      ],
      bmu: 5 * 12 + 9,
      quantizationError: 9.7,
      windowStart: ts,
      windowEnd: ts + 10,
      windowPackets: 5120,
    },
  });
}

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
