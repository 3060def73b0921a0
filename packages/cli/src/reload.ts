import { join, resolve } from "node:path";
import { EXIT, parseCommandArgs, type Command } from "@vigil/lifecycle";
import { REPO_ROOT, runningServices } from "@vigil/stack";

export function defaultStateDir(given?: string): string {
  return resolve(given ?? process.env.VIGIL_STATE_DIR ?? join(REPO_ROOT, ".vigil"));
}

/** What SIGHUP does in each service, for the printout. */
const RELOADS: Record<string, string> = {
  rules: ": configuration re-read, allowlist re-discovered",
  pst: ": models re-read from pst.modelsDir (its log says loaded, unchanged or refused)",
  som: ": model re-read from som.model (its log says loaded, unchanged or refused)",
};

export const reloadCommand: Command = {
  name: "reload",
  summary: "send SIGHUP to the services `vigil up` started: rules re-reads its configuration and allowlist, pst and som their models",
  usage:
    "usage: vigil reload [--state-dir DIR]\n\n" +
    "  Signals the services whose pid files `vigil up` wrote in DIR/run (default .vigil or $VIGIL_STATE_DIR).\n" +
    "  Under systemd: systemctl kill -s HUP vigil-rules (and the other units).\n" +
    "exit codes: 0 signalled, 1 a service could not be signalled, 69 no running service found",
  async run(args) {
    const values = parseCommandArgs(args, { "state-dir": { type: "string" } }, { command: "reload" });
    const stateDir = defaultStateDir(values["state-dir"]);
    const services = runningServices(stateDir);
    const alive = services.filter((s) => s.alive);
    if (!alive.length) {
      process.stderr.write(`vigil reload: no running service found in ${join(stateDir, "run")} (is \`vigil up\` running with this state directory?)\n`);
      return EXIT.UNAVAILABLE;
    }
    let failed = false;
    for (const s of services) {
      if (!s.alive) {
        process.stdout.write(`${s.name.padEnd(10)} not running (stale pid ${s.pid})\n`);
        continue;
      }
      try {
        process.kill(s.pid, "SIGHUP");
        process.stdout.write(`${s.name.padEnd(10)} SIGHUP sent (pid ${s.pid})${RELOADS[s.name] ?? ": logged"}\n`);
      } catch (err) {
        failed = true;
        process.stderr.write(`vigil reload: ${s.name} (pid ${s.pid}): ${(err as Error).message}\n`);
      }
    }
    return failed ? EXIT.FAILURE : EXIT.OK;
  },
};
