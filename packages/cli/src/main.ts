#!/usr/bin/env node
import { EXIT, exitQuietlyOnBrokenPipe, reportFatal, type Command, type CommandModule } from "@vigil/lifecycle";
import { metricsCommand } from "./metrics.js";
import { reloadCommand } from "./reload.js";
import { upCommand } from "./up.js";

/**
 * Packages that contribute subcommands through their "./cli" export. A package
 * that is not built (or does not exist yet) simply contributes nothing.
 */
const PROVIDERS = [
  "@vigil/capture/cli",
  "@vigil/pst/cli",
  "@vigil/som/cli",
  "@vigil/rules/cli",
  "@vigil/lab/cli",
  "@vigil/console/cli",
  "@vigil/notify/cli",
];

async function loadCommands(): Promise<Command[]> {
  const commands: Command[] = [upCommand, reloadCommand, metricsCommand];
  for (const spec of PROVIDERS) {
    let mod: CommandModule;
    try {
      mod = (await import(spec)) as CommandModule;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ERR_MODULE_NOT_FOUND" || code === "ERR_PACKAGE_PATH_NOT_EXPORTED") {
        if (process.env.VIGIL_DEBUG) process.stderr.write(`vigil: ${spec} not available: ${(err as Error).message}\n`);
        continue;
      }
      throw err;
    }
    commands.push(...mod.commands);
  }
  return commands;
}

function help(commands: Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length), 4) + 2;
  const lines = [
    "usage: vigil <command> [options]",
    "",
    "commands:",
    ...[...commands, { name: "test", summary: "install what is missing, build, and run every test" }]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "Run `vigil <command> --help` for a command's options.",
  ];
  return lines.join("\n") + "\n";
}

async function main(argv: string[]): Promise<number> {
  const commands = await loadCommands();
  if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
    process.stdout.write(help(commands));
    return argv.length === 0 ? EXIT.USAGE : EXIT.OK;
  }
  const two = argv.length >= 2 ? `${argv[0]} ${argv[1]}` : "";
  const cmd = commands.find((c) => c.name === two) ?? commands.find((c) => c.name === argv[0]);
  if (!cmd) {
    const group = commands.filter((c) => c.name.startsWith(`${argv[0]} `));
    if (group.length) {
      process.stderr.write(`vigil ${argv[0]}: expected one of: ${group.map((c) => c.name.split(" ")[1]).join(", ")}\n`);
    } else {
      process.stderr.write(`vigil: unknown command "${argv[0]}"\n\n${help(commands)}`);
    }
    return EXIT.USAGE;
  }
  const rest = argv.slice(cmd.name.split(" ").length);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`${cmd.usage ?? `usage: vigil ${cmd.name}`}\n\n${cmd.summary}\n`);
    return EXIT.OK;
  }
  return cmd.run(rest);
}

// `vigil up` must stop the services it started when its output closes: it watches its pipes itself.
if (process.argv[2] !== "up") exitQuietlyOnBrokenPipe("vigil");
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = reportFatal("vigil", err);
  },
);
