import { parseArgs } from "node:util";
import { EXIT, reportFatal, type Command } from "@vigil/lifecycle";
import { runConsole } from "./run.js";

export const commands: Command[] = [
  {
    name: "console",
    summary: "serve the web console (live traffic, scores, verdicts, rules, models)",
    usage: "usage: vigil console [--host ADDR] [--port N] [--token TOKEN] [--rules unix:/path|host:port]\n\nWith a token, open http://HOST:PORT/?token=TOKEN once: the browser keeps a session cookie.\nPrefer VIGIL_CONSOLE__TOKEN or console.token in the configuration to --token: a command line is visible to every user.",
    async run(args) {
      let values;
      try {
        ({ values } = parseArgs({
          args,
          options: { host: { type: "string" }, port: { type: "string" }, token: { type: "string" }, rules: { type: "string" } },
        }));
      } catch (err) {
        process.stderr.write(`vigil console: ${(err as Error).message}\n`);
        return EXIT.USAGE;
      }
      const overrides: Record<string, unknown> = {};
      if (values.host) overrides["console.host"] = values.host;
      if (values.port) {
        const port = Number(values.port);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          process.stderr.write(`vigil console: --port "${values.port}" is not a port number\n`);
          return EXIT.USAGE;
        }
        overrides["console.port"] = port;
      }
      if (values.token) overrides["console.token"] = values.token;
      if (values.rules) overrides["console.rules.address"] = values.rules;
      try {
        await runConsole(overrides);
      } catch (err) {
        process.exit(reportFatal("vigil console", err));
      }
      await new Promise<never>(() => undefined);
      return EXIT.OK;
    },
  },
];
