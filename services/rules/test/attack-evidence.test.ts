import { describe, expect, it } from "vitest";
import { Verdict } from "@vigil/proto";
import { Allowlist } from "../src/allowlist.js";
import { connectionKind, judgeEvidence } from "../src/attack-evidence.js";
import { Policy } from "../src/policy.js";
import { rulesDefaults } from "../src/config.js";

const REMOTE = "192.0.2.66";
const LOCAL = "10.0.0.1";
const ctx = { offences: 0, alreadyBlocked: false };

const conn = (symbols: string, serverPort = 80, client = REMOTE, server = LOCAL) => ({
  client, clientPort: 40000, server, serverPort, serviceClass: "web", symbols, score: 3, firstTs: 1_800_000_000, lastTs: 1_800_000_001,
});
const pstVerdict = (connections: ReturnType<typeof conn>[], extra: Partial<Verdict> = {}) =>
  Verdict.fromPartial({
    id: `pst-${Math.random()}`, detector: "pst", sourceId: "test", address: REMOTE, score: 3, threshold: 1.2, label: "brute-force",
    connections: connections.length, packets: 100, firstTs: 1_800_000_000, lastTs: 1_800_000_010, pst: { connections }, ...extra,
  });
const feature = (name: string, value: number) => ({ name, value, deviation: 0 });
const somVerdict = (source: { packets: number; ports?: number; halfOpen?: number; fragments?: number }, features: Record<string, number>, windowPackets: number, others: number[] = []) =>
  Verdict.fromPartial({
    id: `som-${Math.random()}`, detector: "som", sourceId: "test", address: REMOTE, score: 4, threshold: 3, packets: source.packets, firstTs: 1_800_000_000, lastTs: 1_800_000_001,
    som: {
      features: Object.entries(features).map(([n, v]) => feature(n, v)),
      sources: [{ address: REMOTE, share: 0.8, ports: 0, halfOpen: 0, fragments: 0, ...source }, ...others.map((p, i) => ({ address: `198.51.100.${i + 1}`, share: 0.01, packets: p, ports: 1, halfOpen: 0, fragments: 0 }))],
      windowPackets,
    },
  });

const HTTP10 = "C:S S:SA C:A C:PA S:A S:PA S:A S:PA S:FA C:A C:FA S:A END";
const SSH_FAIL = "C:S S:SA C:A C:PA S:A S:PA C:A C:PA S:PA C:A C:PA S:PA C:A C:PA S:A C:PA S:A S:PA C:A C:PA S:PA C:PA S:A S:PA C:FA S:FA C:A END";

describe("what a connection shows about the remote end", () => {
  it("tells probes (half-open, refused, no data, odd flags) from sessions, and ignores what we opened", () => {
    expect(connectionKind(conn("C:S S:SA C:R END"), REMOTE)).toBe("probe");
    expect(connectionKind(conn("C:S S:R END"), REMOTE)).toBe("probe");
    expect(connectionKind(conn("C:S END"), REMOTE)).toBe("probe");
    expect(connectionKind(conn("C:FPU S:R END"), REMOTE)).toBe("probe");
    expect(connectionKind(conn("C:S S:SA C:A C:FA S:FA C:A END"), REMOTE)).toBe("probe");
    // A forged completion ("?"): no proof the remote end saw our SYN-ACK.
    expect(connectionKind(conn("C:S S:SA ?C:FPUA S:R END"), REMOTE)).toBe("probe");
    expect(connectionKind(conn(HTTP10), REMOTE)).toBe("session");
    expect(connectionKind(conn("C:PA S:A S:PA END"), REMOTE)).toBe("midstream");
    expect(connectionKind(conn("C:S S:R END", 443, LOCAL, REMOTE), REMOTE)).toBe("theirs");
    expect(connectionKind(conn(SSH_FAIL, 22), REMOTE)).toBe("auth-short");
    expect(connectionKind(conn(SSH_FAIL, 8022), REMOTE)).toBe("session");
  });
});

describe("attack evidence of a verdict", () => {
  it("calls repeated complete sessions with data both ways to a web server normal use", () => {
    const j = judgeEvidence(pstVerdict(Array.from({ length: 12 }, () => conn(HTTP10))));
    expect(j).toMatchObject({ specific: false });
    expect(j!.why).toContain("12 of 12 connections complete");
  });

  it("finds refused probes, many ports, and repeated short login sessions specific", () => {
    expect(judgeEvidence(pstVerdict([conn(HTTP10), conn(HTTP10), conn("C:S S:SA C:R END")]))).toMatchObject({ specific: true });
    expect(judgeEvidence(pstVerdict([21, 22, 25, 80, 443, 8080].map((p) => conn(HTTP10, p))))!.why).toContain("6 local ports");
    expect(judgeEvidence(pstVerdict(Array.from({ length: 5 }, () => conn(SSH_FAIL, 22))))!.why).toContain("5 short sessions");
    expect(judgeEvidence(pstVerdict(Array.from({ length: 4 }, () => conn(SSH_FAIL, 22))))).toMatchObject({ specific: false });
    // What our own clients opened proves nothing against the server they talked to.
    expect(judgeEvidence(pstVerdict(Array.from({ length: 5 }, () => conn("C:S S:R END", 443, LOCAL, REMOTE))))).toMatchObject({ specific: false });
  });

  it("calls a transfer of large packets and an answered burst unspecific, a scan or an unanswered flood specific", () => {
    // A download: 3000 large segments from the server, our ACKs for every second one.
    expect(judgeEvidence(somVerdict({ packets: 3000 }, { avg_packet_size: 1100, large_packets: 3000 }, 4500))).toMatchObject({ specific: false });
    // SNMP polling: 200 requests, 200 answers.
    expect(judgeEvidence(somVerdict({ packets: 200 }, { udp_packets: 400 }, 400))).toMatchObject({ specific: false });
    expect(judgeEvidence(somVerdict({ packets: 900 }, { udp_packets: 900 }, 920, [15]))!.why).toContain("a flood");
    // A flood our host answers with port-unreachables (no rate limit) is still unanswered.
    expect(judgeEvidence(somVerdict({ packets: 900 }, { udp_packets: 900, icmp_unreachables: 900 }, 1800))).toMatchObject({ specific: true });
    expect(judgeEvidence(somVerdict({ packets: 2000 }, { icmp_packets: 4000 }, 4000))!.why).toContain("ping flood");
    expect(judgeEvidence(somVerdict({ packets: 100, ports: 100 }, { udp_packets: 100 }, 100))!.why).toContain("100 ports or hosts probed");
    expect(judgeEvidence(somVerdict({ packets: 1000, halfOpen: 500 }, {}, 1000))!.why).toContain("500 half-open");
    // A ping sweep: 12 hosts probed, and host fan-out is what the map found unusual.
    const sweep = somVerdict({ packets: 14, ports: 12 }, { source_fanout: 12 }, 30);
    expect(judgeEvidence(sweep)).toMatchObject({ specific: false });
    sweep.som!.deviations = [{ name: "source_fanout", value: 12, deviation: 3.5 }];
    expect(judgeEvidence(sweep)!.why).toContain("12 ports or hosts probed, the window's largest deviation");
    // A server's answers to 15 of our ports, and our unreachables for its leftovers: no probe of its own.
    expect(judgeEvidence(somVerdict({ packets: 15, ports: 0 }, { icmp_unreachables: 4, udp_packets: 32 }, 60))).toMatchObject({ specific: false });
  });

  it("leaves a verdict without detector evidence to its score", () => {
    expect(judgeEvidence(Verdict.fromPartial({ address: REMOTE, detector: "other", score: 5, threshold: 1 }))).toBeNull();
  });
});

describe("the policy with attack evidence", () => {
  const policy = () => new Policy(rulesDefaults({}), Allowlist.fromConfig([]));

  it("records an unspecific verdict without blocking, and it does not count towards agreement", () => {
    const p = policy();
    const d = p.decide(pstVerdict(Array.from({ length: 12 }, () => conn(HTTP10))), ctx);
    expect(d.outcome).toBe("unspecific");
    expect(d.reason).toContain("normal use");
    const som = somVerdict({ packets: 3000 }, { avg_packet_size: 1100 }, 4500);
    expect(p.decide(som, ctx).outcome).toBe("unspecific");
  });

  it("blocks a source whose evidence is specific", () => {
    expect(policy().decide(pstVerdict(Array.from({ length: 5 }, () => conn("C:S S:SA C:R END"))), ctx).outcome).toBe("blocked");
  });
});
