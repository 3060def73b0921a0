// The generated references (config, errors) end the same way: with --check, fail when the committed file differs
// from what the sources say; otherwise write it. One place, so both fail with the same message a CI log can act on.
import { existsSync, readFileSync, writeFileSync } from "node:fs";

/** Writes `text` to `out`, or with `check` exits 1 when `out` differs (naming the script that regenerates it). */
export function writeOrCheckReference({ name, out, text, check, summary }) {
  if (check) {
    const current = existsSync(out) ? readFileSync(out, "utf8") : "";
    if (current !== text) {
      process.stderr.write(`${name}: ${out} is out of date: run node deploy/scripts/${name}.mjs\n`);
      process.exit(1);
    }
    process.exit(0);
  }
  writeFileSync(out, text);
  process.stderr.write(`${name}: ${summary} in ${out}\n`);
}
