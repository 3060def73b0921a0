import { Verdict } from "@vigil/proto";
import { FEATURES } from "../../../../packages/models/test/support/exports.js";

export { pstExport, somExport } from "../../../../packages/models/test/support/exports.js";

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
