// The addon checks what it is given itself, not only through the TypeScript
// wrapper's validation (security review §5): a snaplen above 65535 would
// desynchronise records (cap_len is 16 bits, so packet bytes would be read as
// record headers), and a local-network prefix above the address width made
// isLocal() read past the address.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { addon } from "../src/index.js";
import { conversationPackets, tempDir, writeCapture } from "./support/gen.js";

const dir = tempDir("vigil-ps-opts-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pcap = writeCapture(join(dir, "small.pcap"), conversationPackets(10));

function open(options: object): unknown {
  try {
    const source = new (addon().NativeSource)("pcap", pcap, options, () => undefined);
    source.close();
    return null;
  } catch (err) {
    return err;
  }
}

describe("native source options checked in C++", () => {
  it("refuses a snaplen outside 1..65535, naming it", () => {
    for (const snaplen of [70_000, 65_536, 0])
      expect(open({ snaplen }), `snaplen ${snaplen}`).toMatchObject({ code: "VIGIL_ERR_OPTIONS", message: expect.stringMatching(/snaplen/) });
    expect(open({ snaplen: 65_535 })).toBeNull();
  });

  it("refuses a local network whose prefix exceeds its address or whose bytes are not an address", () => {
    const v4 = Buffer.from([10, 0, 0, 0]);
    const v6 = Buffer.alloc(16);
    expect(open({ local: [{ bytes: v4, prefix: 33 }] })).toMatchObject({ code: "VIGIL_ERR_OPTIONS", message: expect.stringMatching(/local\[0\].*prefix/) });
    expect(open({ local: [{ bytes: v6, prefix: 64 }, { bytes: v6, prefix: 200 }] })).toMatchObject({ message: expect.stringMatching(/local\[1\].*prefix/) });
    expect(open({ local: [{ bytes: Buffer.alloc(5), prefix: 8 }] })).toMatchObject({ code: "VIGIL_ERR_OPTIONS", message: expect.stringMatching(/local\[0\].*4 or 16/) });
    expect(open({ local: ["10.0.0.0/8"] })).toMatchObject({ code: "VIGIL_ERR_OPTIONS", message: expect.stringMatching(/local\[0\]/) });
    expect(open({ local: [{ bytes: v4, prefix: 32 }, { bytes: v6, prefix: 128 }] })).toBeNull();
  });
});
