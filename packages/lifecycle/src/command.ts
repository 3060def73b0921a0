import { parseArgs } from "node:util";
import { UserError } from "./errors.js";

/**
 * A `vigil` subcommand. Service packages export a list of these from their
 * "./cli" entry; @vigil/cli collects them. It lives here, not in @vigil/cli,
 * because @vigil/cli imports the services.
 */
export interface Command {
  /** One or two words: "capture", "train pst", "rules". */
  name: string;
  summary: string;
  usage?: string;
  /** Returns the process exit code (EXIT). */
  run(args: string[]): Promise<number>;
}

export interface CommandModule {
  commands: Command[];
}

/** Process exit codes (BSD sysexits where one fits). */
export const EXIT = {
  OK: 0,
  /** The command ran but found a problem (e.g. a check failed). */
  FAILURE: 1,
  /** The command line was wrong. */
  USAGE: 2,
  /** A service the command needs cannot be reached, or is not built. */
  UNAVAILABLE: 69,
  /** A bug. */
  SOFTWARE: 70,
} as const;

export type CommandOptions = Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }>;

export type CommandValues<T extends CommandOptions> = {
  [K in keyof T]?: T[K] extends { multiple: true }
    ? T[K] extends { type: "boolean" }
      ? boolean[]
      : string[]
    : T[K] extends { type: "boolean" }
      ? boolean
      : string;
};

/**
 * Parses a subcommand's options strictly (no positionals). A bad command line
 * throws a UserError with exit code EXIT.USAGE, prefixed with `vigil <command>:`
 * when the command is named, followed by the usage when one is given.
 */
export function parseCommandArgs<const T extends CommandOptions>(
  args: string[],
  options: T,
  context: { command?: string; usage?: string } = {},
): CommandValues<T> {
  return parseCommandLine(args, options, { ...context, positionals: false }).values;
}

/** parseCommandArgs for commands that take operands too ("vigil block 203.0.113.7"). */
export function parseCommandLine<const T extends CommandOptions>(
  args: string[],
  options: T,
  context: { command?: string; usage?: string; positionals?: boolean } = {},
): { values: CommandValues<T>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, allowPositionals: context.positionals ?? true, strict: true });
    return { values: r.values as CommandValues<T>, positionals: r.positionals };
  } catch (err) {
    const prefix = context.command ? `vigil ${context.command}: ` : "";
    throw new UserError(`${prefix}${oneLine(err as Error, args)}${context.usage ? `\n${context.usage}` : ""}`, "VIGIL_ERR_USAGE", EXIT.USAGE);
  }
}

/** parseArgs's messages, in one line; "argument is ambiguous" (a value starting with "-") says which value. */
function oneLine(err: Error, args: string[]): string {
  const ambiguous = /^Option '(-[^']+)' argument is ambiguous/.exec(err.message);
  if (ambiguous) {
    const name = ambiguous[1]!.replace(/^.*, /, "");
    const value = args[args.indexOf(name) + 1];
    if (value !== undefined) return `${name}: "${value}" starts with "-" and is taken for an option (write ${name}=${value} if it is meant as the value)`;
  }
  return err.message.split("\n").join(" ");
}

/** Reports progress of a long job (training, reading captures). */
export interface Progress {
  update(done: number, total: number, text: string): void;
  finish(text: string): void;
}

const BAR_WIDTH = 30;

/** A one-line progress bar on stderr, redrawn at most every 100 ms; plain lines every 10% when stderr is not a terminal. */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  let last = 0;
  let lastPct = -10;
  const tty = stream.isTTY === true;
  return {
    update(done, total, text) {
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const pct = Math.floor(frac * 100);
      if (tty) {
        const now = Date.now();
        if (now - last < 100) return;
        last = now;
        const fill = Math.round(frac * BAR_WIDTH);
        stream.write(`\r${label} [${"#".repeat(fill)}${"-".repeat(BAR_WIDTH - fill)}] ${String(pct).padStart(3)}% ${text}\x1b[K`);
      } else if (pct >= lastPct + 10) {
        lastPct = pct - (pct % 10);
        stream.write(`${label} ${String(pct).padStart(3)}% ${text}\n`);
      }
    },
    finish(text) {
      stream.write(`${tty ? "\r" : ""}${label} [${"#".repeat(BAR_WIDTH)}] 100% ${text}${tty ? "\x1b[K" : ""}\n`);
    },
  };
}
