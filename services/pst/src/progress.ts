import type { Progress } from "./training.js";

/** A one-line progress bar on stderr, redrawn at most every 100 ms; plain lines when stderr is not a terminal. */
export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  let last = 0;
  const tty = stream.isTTY === true;
  let lastPct = -1;
  return {
    update(done, total, text) {
      const now = Date.now();
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const pct = Math.floor(frac * 100);
      if (tty) {
        if (now - last < 100) return;
        last = now;
        const width = 30;
        const fill = Math.round(frac * width);
        stream.write(`\r${label} [${"#".repeat(fill)}${"-".repeat(width - fill)}] ${String(pct).padStart(3)}% ${text}\x1b[K`);
      } else if (pct >= lastPct + 10) {
        lastPct = pct - (pct % 10);
        stream.write(`${label} ${String(pct).padStart(3)}% ${text}\n`);
      }
    },
    finish(text) {
      stream.write(`${tty ? "\r" : ""}${label} [${"#".repeat(30)}] 100% ${text}${tty ? "\x1b[K" : ""}\n`);
    },
  };
}
