import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { publicCapture, publicCapturesSkipReason, toolMissing } from "@vigil/testing";
import { LAB_DIR } from "../src/lab.js";
import { loadLabels, LabelsError } from "../src/labels.js";
import { BENIGN_HOSTS, labAddress4, labAddress6, labMac } from "../src/topology.js";

const CAPTURES = join(LAB_DIR, "captures");

const skipReason = toolMissing("tcpdump", "scripts/deps/lab.apt");
if (skipReason) console.warn(`lab capture checks skipped: ${skipReason}`);

/** One line per packet matching the filter: "<epoch seconds> ...". */
function read(file: string, filter = "", max?: number): string[] {
  const args = ["-r", file, "-n", "-q", "-tt", ...(max ? ["-c", String(max)] : []), ...(filter ? [filter] : [])];
  return execFileSync("tcpdump", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], maxBuffer: 256 << 20 })
    .split("\n")
    .filter(Boolean);
}

const attackerMacs = [labMac("atk"), labMac("atk2")];
// heldout: one capture per benign style; eval-default-icmp: attacks with the kernel's ICMP rate limit.
const SETS = ["train", "eval", "heldout", "eval-default-icmp"];

/** The benign styles (lab/tools/styles.py list): the held-out set has one capture of each. */
function styles(): string[] {
  return execFileSync("/usr/bin/python3", [join(LAB_DIR, "tools", "styles.py"), "list"], { encoding: "utf8" })
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split("\t")[0]!);
}

describe.skipIf(skipReason)(`the recorded captures${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
  for (const set of SETS) {
    describe(set, () => {
      const labels = loadLabels(join(CAPTURES, set));

      it("lists every capture in the folder, and only those", () => {
        const files = readdirSync(labels.dir).filter((f) => /\.pcap(ng)?$/.test(f)).sort();
        expect(labels.captures.map((c) => c.file).sort()).toEqual(files);
        expect(files.length).toBeGreaterThan(0);
        if (set === "train") expect(labels.captures.every((c) => c.kind === "benign")).toBe(true);
        if (set === "eval") {
          expect(labels.captures.some((c) => c.kind === "benign")).toBe(true);
          expect(labels.captures.some((c) => c.kind === "attack")).toBe(true);
        }
        if (set === "heldout") expect(labels.captures.map((c) => `${c.kind}:${c.file}`).sort()).toEqual(styles().map((s) => `benign:${s}.pcap`).sort());
        if (set === "eval-default-icmp") {
          expect(labels.captures.every((c) => c.kind === "attack")).toBe(true);
          expect(labels.description).toMatch(/ICMP rate limit: default/);
        }
      });

      it("protects the victim's addresses", () => {
        expect(labels.local).toEqual([`${labAddress4("victim")}/32`, `${labAddress6("victim")}/128`]);
      });

      for (const c of labels.captures) {
        const file = join(labels.dir, c.file);
        it(`${c.file}: packet count, time span and benign addresses match the pcap`, () => {
          const lines = read(file);
          expect(lines.length).toBe(c.packets);
          expect(Number(lines[0]!.split(" ")[0])).toBeCloseTo(c.first_ts!, 5);
          expect(Number(lines.at(-1)!.split(" ")[0])).toBeCloseTo(c.last_ts!, 5);
          const benign = BENIGN_HOSTS.flatMap((h) => [labAddress4(h), labAddress6(h)]);
          expect(c.benign.length).toBeGreaterThan(0);
          for (const a of c.benign) {
            expect(benign).toContain(a);
            expect(read(file, `src host ${a}`, 1).length, `${a} sends in ${c.file}`).toBe(1);
          }
        });

        if (c.kind === "benign") {
          it(`${c.file}: holds no packet from an attacker`, () => {
            expect(read(file, attackerMacs.map((m) => `ether src ${m}`).join(" or "))).toEqual([]);
          });
        } else {
          it(`${c.file}: the attackers appear, and the attack starts where the labels say`, () => {
            expect(c.attackers!.every((a) => !c.benign.includes(a))).toBe(true);
            for (const a of c.attackers!) expect(read(file, `src host ${a}`, 1).length, `${a} sends in ${c.file}`).toBe(1);
            if (c.expect === "block") expect(c.attackers!.length).toBeGreaterThan(0);
            else expect(c.forged_sources).toBeGreaterThan(100);
            const first = read(file, `ether src ${c.sender_mac} and (ip or ip6)`, 1);
            expect(first.length).toBe(1);
            expect(Number(first[0]!.split(" ")[0])).toBeCloseTo(c.attack_start!, 5);
            expect(c.attack_start!).toBeGreaterThan(c.first_ts!);
            // Benign background before the attack: detectors see normal traffic first.
            const before = read(file, `not ether src ${c.sender_mac}`, 20).filter((l) => Number(l.split(" ")[0]) < c.attack_start!);
            expect(before.length).toBe(20);
          });
        }
      }
    });
  }

  it("stays within the commit budget (36 MB for all captures)", () => {
    let total = 0;
    for (const set of SETS) {
      for (const f of readdirSync(join(CAPTURES, set))) total += statSync(join(CAPTURES, set, f)).size;
    }
    expect(total).toBeLessThan(36 << 20);
  });
});

const publicSkip = publicCapturesSkipReason();
describe.skipIf(skipReason ?? publicSkip)(`the public captures' labels${(skipReason ?? publicSkip) ? ` (skipped: ${skipReason ?? publicSkip})` : ""}`, () => {
  const labels = loadLabels(join(CAPTURES, "public-labels.json"));

  it("labels every public capture", () => {
    const files = readdirSync(publicCapture("")).filter((f) => /\.pcap(ng)?$/.test(f)).sort();
    expect(labels.captures.map((c) => c.file).sort()).toEqual(files);
  });

  for (const c of labels.captures) {
    if (c.kind !== "attack") continue;
    it(`${c.file}: the attackers appear from the labelled start on`, () => {
      const file = publicCapture(c.file);
      expect(read(file).length).toBe(c.packets);
      for (const a of c.attackers!) {
        const first = read(file, `src host ${a}`, 1);
        expect(first.length).toBe(1);
        expect(Number(first[0]!.split(" ")[0])).toBeCloseTo(c.attack_start!, 5);
      }
    });
  }
});

describe("loadLabels", () => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-labels-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("names the file and the missing folder", () => {
    expect(() => loadLabels(join(dir, "nowhere"))).toThrow(/nowhere\/labels.json: no labels file here/);
  });

  it("names the file and the field that is wrong", () => {
    const file = join(dir, "labels.json");
    writeFileSync(file, JSON.stringify({ version: 1, local: ["10.77.0.10/32"], captures: [{ file: "x.pcap", kind: "attack", packets: -1 }] }));
    let err: unknown;
    try {
      loadLabels(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LabelsError);
    expect((err as LabelsError).code).toBe("VIGIL_ERR_LABELS");
    expect((err as Error).message).toMatch(/labels\.json: captures\.0\.packets/);
  });

  it("requires an attack's start time and attackers", () => {
    const file = join(dir, "labels.json");
    writeFileSync(file, JSON.stringify({ version: 1, local: ["10.77.0.10/32"], captures: [{ file: "x.pcap", kind: "attack", packets: 1, first_ts: 1, last_ts: 2, benign: [] }] }));
    expect(() => loadLabels(file)).toThrow(/captures\.0 \(x\.pcap\): an attack needs attack_start/);
  });

  it("rejects invalid JSON with the parser's message", () => {
    const file = join(dir, "bad.json");
    writeFileSync(file, "{ version: 1");
    expect(() => loadLabels(file)).toThrow(/bad\.json: not valid JSON/);
  });
});
