/**
 * How every live scenario script ends (live-main, forged-main, blocked-retry-main): its report as
 * one JSON line on stdout and exit 0, or its error on one line of stderr and exit 1. The tests run
 * these inside the victim's namespace and parse that line.
 */
export function reportScenario<R>(name: string, run: Promise<R>): void {
  run.then(
    (report) => {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      process.exit(0);
    },
    (err: Error) => {
      process.stderr.write(`${name}: ${err.message}\n`);
      process.exit(1);
    },
  );
}
