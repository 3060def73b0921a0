import { describe, expect, it } from "vitest";
import { EXIT, parseCommandArgs, parseCommandLine, progressBar } from "../src/command.js";
import { reportFatal, UserError } from "../src/errors.js";
import { controlSocket, instanceId, stateDir, VERSION } from "../src/identity.js";

describe("the command kit", () => {
  it("parses options strictly and turns a bad command line into a usage error naming the command", () => {
    expect(parseCommandArgs(["--out", "x", "--quiet"], { out: { type: "string" }, quiet: { type: "boolean" } })).toEqual({ out: "x", quiet: true });
    let err: unknown;
    try {
      parseCommandArgs(["--nope"], { out: { type: "string" } }, { command: "train som", usage: "usage: vigil train som --out DIR" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toMatch(/^vigil train som: Unknown option '--nope'.*\nusage: vigil train som --out DIR$/s);
    expect((err as UserError).exitCode).toBe(EXIT.USAGE);
    expect(() => parseCommandArgs(["stray"], {})).toThrow(UserError);
    expect(parseCommandLine(["203.0.113.7", "--json"], { json: { type: "boolean" } })).toEqual({ values: { json: true }, positionals: ["203.0.113.7"] });
  });

  it("maps errors to exit codes: expected ones to theirs, bugs to EXIT.SOFTWARE", () => {
    const write = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(reportFatal("t", new UserError("bad", "VIGIL_ERR_USAGE", EXIT.USAGE))).toBe(EXIT.USAGE);
      expect(reportFatal("t", Object.assign(new Error("down"), { code: "VIGIL_ERR_BUS" }))).toBe(EXIT.FAILURE);
      expect(reportFatal("t", new TypeError("oops"))).toBe(EXIT.SOFTWARE);
    } finally {
      process.stderr.write = write;
    }
  });

  it("draws progress as lines every 10% when not on a terminal", () => {
    const out: string[] = [];
    const bar = progressBar("train", { isTTY: false, write: (s: string) => out.push(s) } as unknown as NodeJS.WriteStream);
    for (let i = 0; i <= 100; i += 5) bar.update(i, 100, `${i}`);
    bar.finish("done");
    expect(out).toHaveLength(12);
    expect(out[1]).toBe("train  10% 10\n");
    expect(out[11]).toBe("train [##############################] 100% done\n");
  });

  it("names instances and state directories one way", () => {
    expect(instanceId("pst")).toMatch(new RegExp(`^[^/]+/pst/${process.pid}$`));
    expect(stateDir({}, "som", { VIGIL_STATE_DIR: "/srv/v" })).toBe("/srv/v/som");
    expect(stateDir({}, "som", {})).toBe("/var/lib/vigil/som");
    expect(stateDir({ stateDir: "/x" }, "som", {})).toBe("/x");
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("finds the control socket where the rules service, the console and the CLI all look (F17)", () => {
    // An install: the rules unit's RuntimeDirectory, not a state directory every service shares.
    expect(controlSocket({})).toBe("/run/vigil/control.sock");
    // `vigil up`, tests and containers name a state directory: the socket is in it, as before.
    expect(controlSocket({ VIGIL_STATE_DIR: "/srv/v" })).toBe("/srv/v/control.sock");
    expect(controlSocket({ VIGIL_STATE_DIR: "/srv/v", VIGIL_CONTROL_SOCKET: "/run/x.sock" })).toBe("/run/x.sock");
  });
});
