import type { Logger } from "./log.js";

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
