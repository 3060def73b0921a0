import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// `vigil up` notes each service's pid in <state dir>/run/<name>.pid so that
// `vigil reload` can signal exactly the processes it started (never by name).

export function pidDir(stateDir: string): string {
  return join(stateDir, "run");
}

export function writePid(stateDir: string, name: string, pid: number): void {
  mkdirSync(pidDir(stateDir), { recursive: true, mode: 0o750 });
  writeFileSync(join(pidDir(stateDir), `${name}.pid`), `${pid}\n`, { mode: 0o640 });
}

export function removePid(stateDir: string, name: string): void {
  rmSync(join(pidDir(stateDir), `${name}.pid`), { force: true });
}

export interface RunningService {
  name: string;
  pid: number;
  /** False when the pid file is stale (no such process, or another program now has the pid). */
  alive: boolean;
}

/** The services a `vigil up` in stateDir started, checked against /proc: a pid that is no longer a Vigil service is stale. */
export function runningServices(stateDir: string): RunningService[] {
  let files: string[];
  try {
    files = readdirSync(pidDir(stateDir)).filter((f) => f.endsWith(".pid"));
  } catch {
    return [];
  }
  return files.sort().map((f) => {
    const name = f.slice(0, -4);
    const pid = Number(readFileSync(join(pidDir(stateDir), f), "utf8").trim());
    let alive = false;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      alive = Number.isInteger(pid) && pid > 0 && /services\/[\w-]+\/(dist|src)\/main\.[jt]s/.test(cmdline);
    } catch {
      /* gone */
    }
    return { name, pid, alive };
  });
}
