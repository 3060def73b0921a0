import { spawn, type ChildProcess } from "node:child_process";
import { fstatSync } from "node:fs";

/** Why a launcher stops what it started, and the exit status that says so (128 + signal, as a shell reports it). */
export interface StopReason {
  why: string;
  exitCode: number;
}

const SIGNALS = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
/** 128 + SIGPIPE: what a C program killed by the broken pipe would report. */
const BROKEN_PIPE = 141;

/**
 * Calls onStop once when the launcher must stop the processes it started:
 * SIGHUP, SIGINT or SIGTERM, a write to stdout or stderr failing (EPIPE:
 * `vigil up | head` after head is gone), or the reader of a piped stdout going
 * away while nothing is written. Node ignores SIGPIPE and only sees a closed
 * pipe on its next write, which may never come once the summary is printed:
 * `tail -f --pid` polls its output for the reader's end (GNU coreutils >= 8.28)
 * and dies of SIGPIPE when it is gone, and it also ends with the launcher.
 * Returns the function that removes every trigger again.
 */
export function onStopRequest(onStop: (reason: StopReason) => void): () => void {
  let fired = false;
  const fire = (reason: StopReason) => {
    if (fired) return;
    fired = true;
    onStop(reason);
  };
  const handlers = Object.entries(SIGNALS).map(([sig, exitCode]) => {
    const h = () => fire({ why: `received ${sig}`, exitCode });
    process.on(sig as NodeJS.Signals, h);
    return [sig, h] as const;
  });
  const streams = [
    ["stdout", process.stdout],
    ["stderr", process.stderr],
  ] as const;
  const onError = streams.map(([name, stream]) => {
    const h = (err: NodeJS.ErrnoException) => fire({ why: `its ${name} was closed (${err.code ?? err.message})`, exitCode: BROKEN_PIPE });
    stream.on("error", h);
    return [stream, h] as const;
  });
  const sentinel = watchPipeReader(() => fire({ why: "the reader of its output went away (closed pipe)", exitCode: BROKEN_PIPE }));
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
    for (const [stream, h] of onError) stream.off("error", h);
    if (sentinel && sentinel.exitCode === null && sentinel.signalCode === null) sentinel.kill();
  };
}

/** A `tail -f` sharing stdout when it is a pipe: its death by SIGPIPE means the reader is gone. */
function watchPipeReader(onGone: () => void): ChildProcess | null {
  try {
    if (!fstatSync(1).isFIFO()) return null;
  } catch {
    return null;
  }
  const tail = spawn("tail", ["-f", `--pid=${process.pid}`, "/dev/null"], { stdio: ["ignore", "inherit", "ignore"] });
  tail.on("error", () => undefined); // no tail: EPIPE on the next write is the only sign left
  tail.once("exit", (code, signal) => {
    if (signal === "SIGPIPE" || code === BROKEN_PIPE) onGone();
  });
  tail.unref();
  return tail;
}
