import { EXIT } from "./command.js";

/**
 * A reader that goes away (`vigil rules ls | head -1`) is not an error: exit
 * quietly with 0 as other Unix tools do (they die of SIGPIPE, which Node
 * ignores). Any other write error on the stream ends the command with one line.
 */
export function exitQuietlyOnBrokenPipe(prog: string, stream: NodeJS.WriteStream = process.stdout): void {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(EXIT.OK);
    try {
      process.stderr.write(`${prog}: cannot write output: ${err.message}\n`);
    } finally {
      process.exit(EXIT.FAILURE);
    }
  });
}
