import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { LabHost } from "./topology.js";

const run = promisify(execFile);

export const LAB_DIR = fileURLToPath(new URL("..", import.meta.url));
export const LAB_SCRIPT = `${LAB_DIR}lab.sh`;
export const RECORD_SCRIPT = `${LAB_DIR}record.sh`;

export interface LabOptions {
  /** Namespace prefix: labs with different prefixes coexist. */
  prefix?: string;
  /** Keys, configs, web root and pid files. Default /run/vigil-lab/<prefix>. */
  stateDir?: string;
}

export class LabError extends Error {
  readonly code = "VIGIL_ERR_LAB";
  constructor(message: string, readonly stderr = "") {
    super(message);
  }
}

/** Drives lab.sh: the namespaces, the victim's services, the generators. */
export class Lab {
  readonly prefix: string;
  readonly stateDir: string;

  constructor(opts: LabOptions = {}) {
    this.prefix = opts.prefix ?? "vlab";
    this.stateDir = opts.stateDir ?? `/run/vigil-lab/${this.prefix}`;
  }

  namespace(host: LabHost | "sw"): string {
    return `${this.prefix}-${host}`;
  }

  private async script(args: string[], timeoutMs = 120_000): Promise<string> {
    try {
      const { stdout } = await run(LAB_SCRIPT, args, {
        env: { ...process.env, VLAB: this.prefix, VLAB_STATE: this.stateDir },
        timeout: timeoutMs,
        maxBuffer: 16 << 20,
      });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new LabError(`lab.sh ${args[0]} failed: ${(e.stderr || e.message).trim()}`, e.stderr);
    }
  }

  up(): Promise<string> {
    return this.script(["up"]);
  }

  down(): Promise<string> {
    return this.script(["down"]);
  }

  /** Runs a command in a host's namespace and returns its stdout. */
  exec(host: LabHost | "sw", cmd: string[], timeoutMs = 60_000): Promise<string> {
    return this.script(["exec", host, ...cmd], timeoutMs);
  }

  attack(name: string, timeoutMs = 200_000): Promise<string> {
    return this.script(["attack", name], timeoutMs);
  }

  async attacks(): Promise<string[]> {
    return (await this.script(["attacks"])).split("\n").filter(Boolean);
  }

  benign(seconds: number, seed = 1): Promise<string> {
    return this.script(["benign", String(seconds), String(seed)], (seconds + 60) * 1000);
  }
}
