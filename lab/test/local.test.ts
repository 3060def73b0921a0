import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { craftPacket, TCP_ACK, TCP_PSH, TCP_SYN } from "@vigil/frames";
import { inferLocal, isPrivate } from "../src/local.js";

const dir = mkdtempSync(join(tmpdir(), "vigil-local-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A classic Ethernet pcap of one short TCP conversation per (client, server) pair. */
function conversations(name: string, pairs: [string, string][]): string {
  const hdr = Buffer.alloc(24);
  hdr.writeUInt32LE(0xa1b2c3d4, 0);
  hdr.writeUInt16LE(2, 4);
  hdr.writeUInt16LE(4, 6);
  hdr.writeUInt32LE(65535, 16);
  hdr.writeUInt32LE(1, 20);
  const out: Buffer[] = [hdr];
  let t = 1_700_000_000;
  for (const [i, [client, server]] of pairs.entries()) {
    const steps: [boolean, number, number][] = [[true, TCP_SYN, 0], [false, TCP_SYN | TCP_ACK, 0], [true, TCP_ACK, 0], [true, TCP_PSH | TCP_ACK, 100], [false, TCP_PSH | TCP_ACK, 900]];
    for (const [fromClient, flags, payloadLen] of steps) {
      const ip = craftPacket({ src: fromClient ? client : server, dst: fromClient ? server : client, proto: "tcp", srcPort: fromClient ? 40000 + i : 443, dstPort: fromClient ? 443 : 40000 + i, flags, payloadLen });
      const frame = Buffer.concat([Buffer.alloc(12), Buffer.from([0x08, 0x00]), Buffer.from(ip)]);
      const rec = Buffer.alloc(16);
      rec.writeUInt32LE(Math.floor(t), 0);
      rec.writeUInt32LE(Math.round((t % 1) * 1e6), 4);
      rec.writeUInt32LE(frame.length, 8);
      rec.writeUInt32LE(frame.length, 12);
      out.push(rec, frame);
      t += 0.01;
    }
  }
  const file = join(dir, name);
  writeFileSync(file, Buffer.concat(out));
  return file;
}

describe("local addresses of a capture with no dominant host", () => {
  it("takes the private addresses that open conversations with public ones (several clients behind one gateway)", async () => {
    const file = conversations("clients.pcap", [
      ["192.168.1.7", "46.44.253.187"], ["192.168.1.128", "89.96.108.170"], ["192.168.1.192", "185.157.229.246"],
      ["192.168.1.7", "104.16.209.12"], ["192.168.1.128", "46.44.253.187"], ["192.168.1.192", "89.96.108.170"],
    ]);
    const guess = await inferLocal(file);
    expect(guess.method).toBe("private");
    expect(guess.local).toEqual(["192.168.1.128/32", "192.168.1.192/32", "192.168.1.7/32"]);
  });

  it("without private addresses, takes the addresses that open conversations", async () => {
    const file = conversations("public.pcap", [["198.51.100.1", "203.0.113.5"], ["198.51.100.2", "203.0.113.6"], ["198.51.100.3", "203.0.113.7"]]);
    const guess = await inferLocal(file);
    expect(guess.method).toBe("initiators");
    expect(guess.local).toEqual(["198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"]);
  });

  it("still prefers the one host in most packets", async () => {
    const file = conversations("host.pcap", [["192.168.1.7", "46.44.253.187"], ["192.168.1.7", "89.96.108.170"], ["192.168.1.7", "185.157.229.246"]]);
    expect(await inferLocal(file)).toMatchObject({ method: "dominant", local: ["192.168.1.7/32"] });
  });

  it("knows private ranges", () => {
    for (const a of ["10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.0.1", "169.254.1.1", "100.64.0.1", "fd00::1", "fe80::1"]) expect(isPrivate(a), a).toBe(true);
    for (const a of ["172.32.0.1", "8.8.8.8", "192.169.0.1", "2001:db8::1", "100.128.0.1"]) expect(isPrivate(a), a).toBe(false);
  });
});
