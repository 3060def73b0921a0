import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { libnftablesUnavailableReason, loadAddon, type NftContext } from "./addon.js";

export class NftError extends Error {
  readonly code = "VIGIL_ERR_NFT";
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(message);
  }
}

export interface NftRunnerOptions {
  /** Act inside this named network namespace (/run/netns/NAME). */
  netns?: string;
  nftPath?: string;
  /** "library": libnftables in-process (default when the addon is built); "process": run `nft`. */
  mode?: "library" | "process";
}

/**
 * Drives libnftables through its JSON interface: one JSON document is one
 * atomic transaction, and listings come back as JSON; text output is never
 * parsed. In-process through a small binding when it is built (no process
 * per change: a decision is enforced in about a millisecond), else by running
 * `nft -j -f FILE` (a private file, not stdin: nft reopens /dev/stdin, which
 * fails on the socket pairs Node uses for pipes).
 */
export class NftRunner {
  private dir: string | null = null;
  private seq = 0;
  private ctx: NftContext | null = null;
  readonly mode: "library" | "process";

  constructor(private readonly opts: NftRunnerOptions = {}) {
    const lib = loadAddon();
    this.mode = opts.mode ?? (lib ? "library" : "process");
    if (this.mode === "library" && !lib)
      throw Object.assign(new Error(libnftablesUnavailableReason() ?? "the libnftables binding is unavailable"), { code: "VIGIL_ERR_NFT" });
  }

  private context(): NftContext {
    if (!this.ctx) this.ctx = new (loadAddon()!.NftContext)(this.opts.netns ? `/run/netns/${this.opts.netns}` : undefined);
    return this.ctx;
  }

  close(): void {
    this.ctx?.close();
    this.ctx = null;
  }

  private scratch(): string {
    if (!this.dir) {
      this.dir = mkdtempSync(join(tmpdir(), "vigil-nft-"));
      const dir = this.dir;
      process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    }
    return join(this.dir, `doc-${process.pid}-${++this.seq}.json`);
  }

  private exec(args: string[], input?: string): Promise<string> {
    const nft = this.opts.nftPath ?? "nft";
    const [cmd, argv] = this.opts.netns ? ["ip", ["netns", "exec", this.opts.netns, nft, ...args]] : [nft, args];
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, argv, { stdio: ["pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (d: Buffer) => out.push(d));
      child.stderr.on("data", (d: Buffer) => err.push(d));
      child.once("error", (e) => reject(new NftError(`cannot run ${nft}: ${e.message}`, null, "")));
      child.once("close", (code) => {
        const stderr = Buffer.concat(err).toString("utf8").trim();
        if (code === 0) resolve(Buffer.concat(out).toString("utf8"));
        else reject(new NftError(`nft ${args.join(" ")} failed (exit ${code}): ${stderr.split("\n").slice(0, 4).join(" | ")}`, code, stderr));
      });
      child.stdin.on("error", () => undefined);
      child.stdin.end(input ?? "");
    });
  }

  /** Applies a list of JSON commands atomically. */
  async apply(commands: unknown[]): Promise<void> {
    if (commands.length === 0) return;
    await this.applyText(JSON.stringify({ nftables: commands }), true);
  }

  /** Applies a document already serialized: JSON, or nft's own syntax when `json` is false (benchmarks). */
  async applyText(doc: string, json: boolean): Promise<void> {
    if (this.mode === "library" && json) {
      await this.context().run(doc);
      return;
    }
    const file = this.scratch();
    await writeFile(file, doc, { mode: 0o600 });
    try {
      await this.exec(json ? ["-j", "-f", file] : ["-f", file]);
    } finally {
      await unlink(file).catch(() => undefined);
    }
  }

  /** `nft -j list ...` parsed; returns the array under "nftables". */
  async list(args: string[]): Promise<Array<Record<string, unknown>>> {
    const text = this.mode === "library" ? await this.context().run(`list ${args.join(" ")}`) : await this.exec(["-j", "list", ...args]);
    const doc = JSON.parse(text) as { nftables?: Array<Record<string, unknown>> };
    return doc.nftables ?? [];
  }

  async works(): Promise<string | null> {
    try {
      await this.list(["tables"]);
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }
}
