import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseSomExport } from "@vigil/models";
import { SomModel } from "../src/index.js";
import { DEFAULT_MODEL } from "./support/scenarios.js";

// The console reads the saved model file and the export through @vigil/models: both must give
// the detector's own U-matrix.
describe("model export contract", () => {
  it("computes the U-matrix of the shipped model file as the detector does", () => {
    const file = join(DEFAULT_MODEL, "som-model.json");
    if (!existsSync(file)) return console.warn(`skipping: ${file} not present`);
    const json = JSON.parse(readFileSync(file, "utf8"));
    const [m] = parseSomExport(json);
    expect(m.rows * m.cols).toBe(json.hits.length);
    const model = SomModel.load(file);
    const exported = model.exportMap();
    m.umatrix.forEach((u, i) => expect(u).toBeCloseTo(exported.uMatrix[i], 4));
    const [live] = parseSomExport(JSON.parse(JSON.stringify(model.exportMap())));
    expect(live).toMatchObject({ rows: m.rows, cols: m.cols, topology: m.topology, umatrix: exported.uMatrix });
  });
});
