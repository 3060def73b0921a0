import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, subjects } from "@vigil/bus";
import { disposeNatsServer, startNatsServer, type NatsServerHandle } from "@vigil/testing";
import { ModelError, parsePstExport, parseSomExport, serveModelExport, symbolText, uMatrixFromWeights } from "../src/index.js";
import { pstExport, somExport } from "./support/exports.js";

describe("PST model views", () => {
  it("builds the tree from the detector's flat JSON export", () => {
    const [ssh, web] = parsePstExport(pstExport());
    expect(ssh.serviceClass).toBe("ssh");
    expect(ssh.threshold).toBe(3.2);
    expect(ssh.nodes).toBe(11);
    expect(ssh.root.context).toEqual([]);
    const ctxCs = ssh.root.children.find((c) => c.context.join(" ") === "C:S")!;
    expect(ctxCs.next[0]).toMatchObject({ symbol: "S:SA", count: 3900 });
    expect(ctxCs.children[0].context).toEqual(["BOS", "C:S"]);
    expect(web.nodes).toBe(3);
  });

  it("names the node when a parent is missing", () => {
    expect(() => parsePstExport({ models: [{ name: "x", tree: { nodes: [{ id: 0, context: "ε", parent: null, count: 1, next: [] }, { id: 1, context: "C:S", parent: 7, count: 1, next: [] }] } }] })).toThrow(
      /node 1 names parent 7/,
    );
    expect(() => parsePstExport({ nope: 1 })).toThrow(/PST export: expected/);
    expect(() => parsePstExport({ nope: 1 })).toThrow(ModelError);
  });

  it("names the field holding a symbol outside the alphabet in a saved model file", () => {
    expect(() => parsePstExport({ models: [{ name: "x", tree: [[], [600]], counts: [] }] })).toThrow(/models\[0\]\.tree\[1\]: symbol 600 is outside the PST alphabet/);
  });

  it("formats symbols as the detector's alphabet does", () => {
    expect(symbolText(0x02)).toBe("C:S");
    expect(symbolText(0x100 | 0x12)).toBe("S:SA");
    expect(symbolText(0x18)).toBe("C:PA");
    expect(symbolText(512)).toBe("END");
    expect(() => symbolText(600)).toThrow(/outside the PST alphabet/);
  });
});

describe("SOM model views", () => {
  it("takes the detector's exportMap shape", () => {
    const [m] = parseSomExport(somExport());
    expect(m).toMatchObject({ rows: 10, cols: 12, topology: "hexagonal", version: "som/default@1", threshold: 2.5 });
    expect(m.umatrix).toHaveLength(120);
    expect(m.labels[9 * 12 + 10]).toBe("syn-flood");
    expect(m.labels[9 * 12 + 11]).toBe("syn-scan");
  });

  it("rejects a grid whose size does not match", () => {
    expect(() => parseSomExport({ rows: 2, cols: 2, umatrix: [1, 2, 3] })).toThrow(/expected 4 cells \(2x2\), got 3/);
    expect(() => parseSomExport({ rows: 2, cols: 2 })).toThrow(/neither umatrix nor weights/);
  });

  it("rectangular U-matrix: mean distance to the 4 neighbours", () => {
    const u = uMatrixFromWeights([[0], [1], [0], [3]], 2, 2);
    expect(u).toEqual([(1 + 0) / 2, (1 + 2) / 2, (0 + 3) / 2, (2 + 3) / 2]);
  });
});

describe("model export over the bus", () => {
  let nats: NatsServerHandle;
  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => disposeNatsServer(nats));

  it("answers model requests with the export, and an export that fails with its error", async () => {
    const nc = await connectBus({ servers: [nats.url], name: "t" });
    const sub = serveModelExport(nc, "pst", () => ({ models: [{ name: "web" }] }));
    const reply = await nc.request(subjects.models("pst"), new Uint8Array(0), { timeout: 2000 });
    expect(JSON.parse(reply.string())).toEqual({ models: [{ name: "web" }] });
    sub.unsubscribe();
    const failing = serveModelExport(nc, "som", () => {
      throw new Error("no map yet");
    });
    const err = await nc.request(subjects.models("som"), new Uint8Array(0), { timeout: 2000 });
    expect(JSON.parse(err.string())).toEqual({ error: "no map yet" });
    failing.unsubscribe();
    await nc.close();
  });
});
