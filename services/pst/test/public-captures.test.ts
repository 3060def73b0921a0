import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { publicCapture, publicCapturesSkipReason } from "@vigil/testing";
import type { Verdict } from "@vigil/proto";
import { scanCaptures } from "../src/cli.js";
import { DEFAULT_MODELS_DIR } from "../src/config.js";

const skip = publicCapturesSkipReason() ?? (existsSync(DEFAULT_MODELS_DIR) ? null : `no default models in ${DEFAULT_MODELS_DIR}`);
if (skip) console.warn(`skipping PST detection on public captures: ${skip}`);

interface Case {
  file: string;
  local: string[];
  /** Attackers that must get a host verdict; "aggregate" when the sources are forged. */
  expect: string[] | "aggregate" | "none";
}

// Protected addresses per capture as the lab's public-labels.json gives them (replays pass them as --local).
const CASES: Case[] = [
  { file: "chrissanders--synscan.pcapng", local: ["64.13.134.52/32"], expect: ["172.16.0.8"] },
  { file: "chrissanders--activeosfingerprinting.pcapng", local: ["172.16.16.150/32"], expect: ["172.16.16.128"] },
  { file: "stratosphere--malicious-ssh-bruteforce.pcap", local: ["147.32.80.37/32"], expect: ["147.32.80.40"] },
  { file: "stopddos--pkt.TCP.synflood.spoofed.pcap", local: ["10.10.10.10/32"], expect: "aggregate" },
  { file: "stopddos--pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng", local: ["10.10.10.10/32"], expect: "aggregate" },
  { file: "stopddos--amp.TCP.reflection.SYNACK.pcap", local: ["10.10.10.10/32"], expect: "aggregate" },
  { file: "chrissanders--http_espn.pcapng", local: [], expect: "none" },
  { file: "chrissanders--http_google.pcapng", local: [], expect: "none" },
  { file: "chrissanders--http_ip4and6.pcapng", local: [], expect: "none" },
  { file: "chrissanders--tcp_ports.pcapng", local: ["172.16.16.128/32"], expect: "none" },
  { file: "chrissanders--dns_tcp.pcapng", local: [], expect: "none" },
  { file: "chrissanders--tcp_retransmissions.pcapng", local: [], expect: "none" },
  { file: "chrissanders--tcp_handshake.pcapng", local: [], expect: "none" },
  { file: "chrissanders--tcp_teardown.pcapng", local: [], expect: "none" },
];

const brief = (v: Verdict) => `${v.label} ${v.address || "(aggregate)"} -> ${v.localAddress} x${v.connections}`;

describe.skipIf(skip)("detection on public captures (default models)", () => {
  for (const c of CASES) {
    it(`${c.file}: ${c.expect === "none" ? "no verdict" : c.expect === "aggregate" ? "aggregate verdicts only, no forged host blamed" : `a verdict for ${c.expect.join(", ")}`}`, async () => {
      const r = await scanCaptures([publicCapture(c.file)], { local: c.local, modelsDir: DEFAULT_MODELS_DIR });
      console.log(`${c.file}: ${r.frames} frames, ${r.connections} connections, ${r.anomalous} anomalous, ${r.verdicts.length} verdicts${r.verdicts.length ? ": " + r.verdicts.slice(0, 4).map(brief).join("; ") : ""}`);
      for (const v of r.verdicts) expect(v.score, brief(v)).toBeGreaterThan(v.threshold);
      if (c.expect === "none") expect(r.verdicts.map(brief)).toEqual([]);
      else if (c.expect === "aggregate") {
        expect(r.verdicts.length).toBeGreaterThan(0);
        expect(r.verdicts.filter((v) => !v.aggregate).map(brief)).toEqual([]);
      } else {
        const hosts = new Set(r.verdicts.filter((v) => !v.aggregate).map((v) => v.address));
        expect([...hosts].sort()).toEqual([...c.expect].sort());
      }
    }, 60_000);
  }
});
