import { EXIT } from "./command.js";

/** An error the user can act on: printed as one line, without a stack trace. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly code = "VIGIL_ERR_USAGE",
    readonly exitCode: number = EXIT.FAILURE,
  ) {
    super(message);
  }
}

/** Errors with a VIGIL_ERR_* code are expected failures: report the message, not the stack. */
export function isExpectedError(err: unknown): err is Error & { code: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === "string" && code.startsWith("VIGIL_ERR_");
}

export function reportFatal(prog: string, err: unknown): number {
  if (isExpectedError(err)) {
    process.stderr.write(`${prog}: ${err.message}\n`);
    return err instanceof UserError ? err.exitCode : EXIT.FAILURE;
  }
  process.stderr.write(`${prog}: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.SOFTWARE;
}
