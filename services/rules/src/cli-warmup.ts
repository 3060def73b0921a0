import { EXIT, type Command } from "@vigil/lifecycle";
import { Status } from "@vigil/proto";
import { CONNECTION_USAGE, guarded, json, left, out, parse, usageError, when, withApi } from "./cli-kit.js";

// The blocking phase in words: `vigil status` shows it, `vigil warmup` shows it and ends a warm-up early.

/** One line on the phase of a GetStatus: warm-up until when, blocking, or dry run. */
export function phaseText(s: Pick<Status, "phase" | "warmupStartedAt" | "warmupUntil" | "dryRun">, now = Date.now() / 1000): string {
  if (s.phase === "dry-run" || (!s.phase && s.dryRun)) return "dry run: rules are decided, nothing is enforced";
  if (s.phase === "warmup")
    return `warm-up until ${when(s.warmupUntil)} (${left(s.warmupUntil)} left): automatic blocks are simulated, manual rules enforced; \`vigil warmup end\` starts blocking now`;
  if (s.phase === "blocking") return s.warmupUntil && s.warmupUntil <= now ? `blocking (warm-up over since ${when(s.warmupUntil)})` : "blocking";
  return "unknown (the rules service does not report its phase)";
}

export const warmupCommand: Command = {
  name: "warmup",
  summary: "show the warm-up (automatic blocks simulated on a new host), or end it now: vigil warmup end",
  usage: `usage: vigil warmup [end] [--json]\n  end: automatic blocks are enforced from now on (those simulated so far are not)\n${CONNECTION_USAGE}`,
  run: (args) =>
    guarded("warmup", async () => {
      const { values, positionals } = parse(args);
      const [sub, extra] = positionals;
      if (extra !== undefined || (sub !== undefined && sub !== "end")) throw usageError(`unexpected argument "${extra ?? sub}" (vigil warmup [end])`);
      const s = await withApi(values, (c) => c.call<object, Status>(sub === "end" ? "endWarmup" : "getStatus", {}));
      if (values.json) json(Status.toJSON(s));
      else out(`phase: ${phaseText(s)}\n`);
      return EXIT.OK;
    }),
};
