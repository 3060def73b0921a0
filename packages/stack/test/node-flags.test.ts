import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { FRAME_PATH_NODE_FLAGS, mainOf, nodeFlagsOf, spawnService } from "../src/index.js";

describe("the daemons' heap flags", () => {
  it("are node options this node takes, and give the young generation its 16 MiB at start", () => {
    const out = execFileSync(process.execPath, [...FRAME_PATH_NODE_FLAGS, "-e", 'console.log(require("v8").getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size)'], { encoding: "utf8" });
    expect(Number(out)).toBe(16 << 20);
  });

  it("start the frame path's daemons from spawnService, before the caller's own node options and the script", async () => {
    for (const service of ["capture", "pst", "som", "rules"]) {
      const svc = spawnService(`${service}-1`, { service, configFile: "/nonexistent/vigil.yaml", nodeArgs: ["--stack-size=900"] });
      try {
        expect(svc.child.spawnargs.slice(1), service).toEqual([...FRAME_PATH_NODE_FLAGS, "--stack-size=900", mainOf(service)]);
      } finally {
        svc.child.kill("SIGKILL");
        await once(svc.child, "exit");
      }
    }
    expect(nodeFlagsOf("console")).toEqual([]);
    const console = spawnService("console", { configFile: "/nonexistent/vigil.yaml" });
    expect(console.child.spawnargs.slice(1)).toEqual([mainOf("console")]);
    console.child.kill("SIGKILL");
    await once(console.child, "exit");
  });
});
