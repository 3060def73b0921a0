import { pino, type Logger } from "pino";

export type { Logger };

/** Structured logs on stderr, so stdout stays free for command output (--json). */
export function createLogger(service: string, level = process.env.VIGIL_LOG_LEVEL ?? "info"): Logger {
  return pino({ name: service, level, base: { service, pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

/** An error the user can act on: printed as one line, without a stack trace. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly code = "VIGIL_ERR_USAGE",
    readonly exitCode = 1,
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
    return err instanceof UserError ? err.exitCode : 1;
  }
  process.stderr.write(`${prog}: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 70;
}

type Hook = { name: string; fn: () => Promise<void> | void };

/**
 * Runs registered shutdown hooks in reverse order on SIGTERM or SIGINT (flush
 * batches, drain the bus, close servers), each bounded by a timeout, then exits.
 */
export class Shutdown {
  private hooks: Hook[] = [];
  private running: Promise<void> | null = null;

  constructor(
    private readonly log: Logger,
    private readonly timeoutMs = 10_000,
  ) {}

  add(name: string, fn: () => Promise<void> | void): void {
    this.hooks.push({ name, fn });
  }

  installSignalHandlers(): void {
    const onSignal = (sig: NodeJS.Signals) => {
      this.log.info({ signal: sig }, "shutting down");
      void this.run().then(() => process.exit(0));
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  }

  run(): Promise<void> {
    if (!this.running) this.running = this.runHooks();
    return this.running;
  }

  private async runHooks(): Promise<void> {
    for (const hook of [...this.hooks].reverse()) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(hook.fn),
          new Promise<void>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
          }),
        ]);
      } catch (err) {
        this.log.error({ err, hook: hook.name }, "shutdown step failed");
      } finally {
        clearTimeout(timer);
      }
    }
  }
}
