import { describe, expect, it } from "vitest";
import { publicCapture, publicCapturesSkipReason } from "@vigil/testing";
import { readPcapRecordsTs, PcapError } from "../src/pcap.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

async function all(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const b of it) parts.push(b);
  return Buffer.concat(parts);
}

let native: ((path: string, opts: { local?: string[] }) => AsyncIterable<Uint8Array>) | null = null;
let nativeSkip: string | null = publicCapturesSkipReason();
if (!nativeSkip) {
  try {
    const spec = "@vigil/packet-sources";
    native = ((await import(spec)) as { readPcapRecords: typeof native }).readPcapRecords;
  } catch (err) {
    nativeSkip = `@vigil/packet-sources is not built: ${(err as Error).message}`;
  }
}
if (nativeSkip) console.warn(`skipping the pcap reader cross-check: ${nativeSkip}`);

describe("fallback pcap reader", () => {
  it.skipIf(nativeSkip)("gives the same records as the capture addon (pcap and pcapng, local networks)", async () => {
    for (const [file, local] of [
      ["chrissanders--http_ip4and6.pcapng", []],
      ["chrissanders--synscan.pcapng", ["64.13.134.52/32"]],
      ["stratosphere--malicious-ssh-bruteforce.pcap", ["147.32.80.37/32"]],
    ] as const) {
      const ts = await all(readPcapRecordsTs(publicCapture(file), { local: [...local] }));
      const nat = await all(native!(publicCapture(file), { local: [...local] }));
      expect(ts.length, file).toBeGreaterThan(0);
      expect(ts.equals(nat), file).toBe(true);
    }
  }, 30_000);

  it("names the file and the offset of a corrupt capture", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-pst-pcap-"));
    const bad = join(dir, "bad.pcap");
    const hdr = Buffer.alloc(24 + 16);
    hdr.writeUInt32LE(0xa1b2c3d4, 0);
    hdr.writeUInt32LE(1, 20);
    hdr.writeUInt32LE(1000, 24 + 8);
    writeFileSync(bad, hdr);
    await expect(all(readPcapRecordsTs(bad))).rejects.toMatchObject({ code: "VIGIL_ERR_PCAP", file: bad, offset: 24 });
    writeFileSync(bad, Buffer.from("not a capture"));
    await expect(all(readPcapRecordsTs(bad))).rejects.toBeInstanceOf(PcapError);
  });
});
