import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { repoRoot } from "@vigil/testing";
import { formatLogLine, logColorOf, logFormatOf } from "../src/index.js";

const at = new Date(2026, 11, 7, 9, 5, 3, 42).getTime(); // local time: the formatter prints local time
const line = (rec: Record<string, unknown>) => JSON.stringify({ level: 30, time: at, pid: 4242, service: "pst", name: "pst", instance: "h/pst/4242", msg: "models reloaded", ...rec }) + "\n";

describe("formatLogLine", () => {
  it("makes a pino JSON line one readable line: local time, level, service, message, the other fields as key=value", () => {
    expect(formatLogLine(line({ dir: "/srv/models", models: ["pst/web@2", "pst/other@1"], n: 3 }))).toBe(
      '09:05:03.042 INFO  pst      models reloaded dir=/srv/models models=["pst/web@2","pst/other@1"] n=3',
    );
  });

  it("quotes values with spaces, shows an error's message rather than its stack, and keeps it on one line", () => {
    const out = formatLogLine(line({ level: 50, msg: "reload failed\nbadly", reason: "not valid JSON", err: { type: "Error", message: "boom", stack: "Error: boom\n    at x" } }));
    expect(out).toBe('09:05:03.042 ERROR pst      reload failed\\nbadly reason="not valid JSON" err="boom"');
    expect(out).not.toContain("\n");
  });

  it("colours the level on a terminal: warn yellow, error red, info green", () => {
    expect(formatLogLine(line({ level: 40 }), { color: true })).toContain("\x1b[33mWARN ");
    expect(formatLogLine(line({ level: 50 }), { color: true })).toContain("\x1b[31mERROR");
    expect(formatLogLine(line({}), { color: true })).toContain("\x1b[32mINFO ");
    expect(formatLogLine(line({}), { color: false })).not.toContain("\x1b[");
  });

  it("passes a line that is not a JSON object through as it is", () => {
    expect(formatLogLine("[1] nats-server banner\n")).toBe("[1] nats-server banner");
    expect(formatLogLine("[1,2]")).toBe("[1,2]");
  });
});

describe("the log format switch", () => {
  it("VIGIL_LOG_FORMAT json or pretty wins; auto (the default) is pretty on a terminal only; anything else is named", () => {
    expect(logFormatOf({}, true)).toBe("pretty");
    expect(logFormatOf({}, false)).toBe("json");
    expect(logFormatOf({ VIGIL_LOG_FORMAT: "auto" }, false)).toBe("json");
    expect(logFormatOf({ VIGIL_LOG_FORMAT: "pretty" }, false)).toBe("pretty");
    expect(logFormatOf({ VIGIL_LOG_FORMAT: "JSON" }, true)).toBe("json");
    expect(() => logFormatOf({ VIGIL_LOG_FORMAT: "fancy" }, true)).toThrow('VIGIL_LOG_FORMAT: "fancy" is not one of json, pretty, auto');
    expect(logColorOf({}, true)).toBe(true);
    expect(logColorOf({ NO_COLOR: "1" }, true)).toBe(false);
    expect(logColorOf({ VIGIL_LOG_COLOR: "1" }, false)).toBe(true);
  });

  // A real process logging through the kit, its stderr a pipe or (through `script`) a terminal.
  const program = `import("@vigil/lifecycle").then((l) => l.createLogger("demo").warn({ port: 9470 }, "metrics listening"))`;
  const run = (env: Record<string, string>, tty = false) => {
    const node = [process.execPath, "--input-type=module", "-e", program];
    const [cmd, args] = tty ? ["script", ["-qec", node.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" "), "/dev/null"]] : [node[0], node.slice(1)];
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VIGIL_") && k !== "NO_COLOR"));
    const r = spawnSync(cmd, args, { cwd: repoRoot, encoding: "utf8", env: { ...clean, ...env }, timeout: 30_000 });
    return tty ? r.stdout : r.stderr;
  };

  it("a service's logger: JSON into a pipe, pretty with VIGIL_LOG_FORMAT=pretty, pretty and coloured on a terminal", () => {
    expect(JSON.parse(run({}).trim())).toMatchObject({ level: 40, service: "demo", msg: "metrics listening", port: 9470 });
    expect(run({ VIGIL_LOG_FORMAT: "pretty" }).trim()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  demo     metrics listening port=9470$/);
    const tty = run({}, true);
    expect(tty).toContain("\x1b[33mWARN ");
    expect(tty).toMatch(/metrics listening/);
    expect(tty).not.toContain('{"level"');
    expect(run({ VIGIL_LOG_FORMAT: "json" }, true)).toContain('"msg":"metrics listening"');
    const bad = run({ VIGIL_LOG_FORMAT: "fancy" });
    expect(bad).toContain('vigil-demo: VIGIL_LOG_FORMAT: "fancy" is not one of json, pretty, auto; logging JSON');
    expect(bad).toContain('"msg":"metrics listening"');
  });
});
