import { execFile } from "node:child_process";
import { unwatchFile, watchFile } from "node:fs";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { cidrContains, parseAddress, parseCidr, type Cidr } from "@vigil/frames";
import type { Logger } from "@vigil/lifecycle";
import { InvalidArgumentError } from "./errors.js";

const run = promisify(execFile);

/** Never blocked whatever the detectors say: loopback and link-local. */
export const STATIC_DEFAULTS = ["127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10"];

export interface AllowEntry {
  cidr: string;
  why: string;
}

async function ipJson(args: string[]): Promise<unknown[]> {
  const { stdout } = await run("ip", ["-j", ...args], { timeout: 5000 });
  const parsed: unknown = JSON.parse(stdout || "[]");
  return Array.isArray(parsed) ? parsed : [];
}

function hostPrefix(addr: string): string | null {
  try {
    return `${addr}/${parseAddress(addr).length * 8}`;
  } catch {
    return null;
  }
}

/**
 * Where DNS servers are read: the classic file, and systemd-resolved's list of
 * upstream servers (on resolved hosts /etc/resolv.conf names only the
 * 127.0.0.53 stub).
 */
export const RESOLV_CONF_PATHS = ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"];

/** The host's own addresses, default gateways (`ip -j`) and DNS servers (every readable resolv.conf of `resolvConfs`). */
export async function discoverHostAllowlist(log?: Logger, resolvConfs: string | string[] = RESOLV_CONF_PATHS): Promise<AllowEntry[]> {
  const out: AllowEntry[] = [];
  try {
    for (const link of (await ipJson(["addr", "show"])) as Array<{ addr_info?: Array<{ local?: string }> }>)
      for (const a of link.addr_info ?? []) {
        const c = a.local ? hostPrefix(a.local.split("%")[0]) : null;
        if (c) out.push({ cidr: c, why: "own address" });
      }
    for (const fam of ["-4", "-6"]) {
      for (const r of (await ipJson([fam, "route", "show", "default"])) as Array<{ gateway?: string; nexthops?: Array<{ gateway?: string }> }>) {
        for (const gw of [r.gateway, ...(r.nexthops ?? []).map((n) => n.gateway)]) {
          const c = gw ? hostPrefix(gw.split("%")[0]) : null;
          if (c) out.push({ cidr: c, why: "default gateway" });
        }
      }
    }
  } catch (err) {
    log?.warn({ err }, "cannot list own addresses and gateways with `ip -j`; they are not allowlisted");
  }
  const files = typeof resolvConfs === "string" ? [resolvConfs] : resolvConfs;
  let read = 0;
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
      read++;
    } catch (err) {
      // systemd-resolved's file is absent on hosts without it: only other errors are news.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") log?.warn({ err, file }, "cannot read DNS servers from this file");
      continue;
    }
    for (const line of text.split("\n")) {
      const m = /^\s*nameserver\s+(\S+)/.exec(line);
      const c = m ? hostPrefix(m[1].split("%")[0]) : null;
      if (c) out.push({ cidr: c, why: "DNS server" });
    }
  }
  if (read === 0) log?.warn({ files }, "cannot read DNS servers; they are not allowlisted");
  const seen = new Set<string>();
  return out.filter((e) => !seen.has(e.cidr) && seen.add(e.cidr));
}

/** Addresses that are never blocked automatically (manual rules may still block them explicitly). */
export class Allowlist {
  private parsed: Array<{ cidr: Cidr; why: string }> = [];
  private current: AllowEntry[] = [];
  constructor(entries: AllowEntry[]) {
    this.update(entries);
  }

  get entries(): AllowEntry[] {
    return this.current;
  }

  /** Replaces the entries in place (a re-discovery): holders of this allowlist see the new ones. */
  update(entries: AllowEntry[]): void {
    this.parsed = entries.map((e) => ({ cidr: parseCidr(e.cidr), why: e.why }));
    this.current = entries;
  }

  static fromConfig(cidrs: string[], extra: AllowEntry[] = [], withStatic = true, session: string[] = []): Allowlist {
    const entries: AllowEntry[] = [];
    const add = (list: string[], field: string, why: string) =>
      list.forEach((c, i) => {
        try {
          parseCidr(c);
        } catch (err) {
          throw new InvalidArgumentError(`rules.${field}[${i}]`, (err as Error).message);
        }
        entries.push({ cidr: c, why });
      });
    add(cidrs, "allowlist", "configuration");
    add(session, "sessionAllowlist", "the admin's SSH session (vigil up)");
    if (withStatic) for (const c of STATIC_DEFAULTS) entries.push({ cidr: c, why: "loopback/link-local" });
    return new Allowlist([...entries, ...extra]);
  }

  contains(address: string): boolean {
    return this.why(address) !== null;
  }

  /** Why the address is allowlisted, or null. */
  why(address: string): string | null {
    let b: Uint8Array;
    try {
      b = parseAddress(address);
    } catch {
      return null;
    }
    for (const e of this.parsed) if (cidrContains(e.cidr, b, 0, b.length)) return e.why;
    return null;
  }
}

export interface AllowlistWatchOptions {
  /** rules.allowlist */
  configured: string[];
  /** rules.sessionAllowlist */
  session?: string[];
  /** rules.allowlistDefaults: loopback, link-local and the discovered entries. */
  defaults: boolean;
  resolvConfs: string[];
  /** Full re-discovery period (addresses and gateways change without a file to watch). */
  refreshS: number;
  log?: Logger;
  /** For tests: the discovery itself. */
  discover?: (log: Logger | undefined, resolvConfs: string[]) => Promise<AllowEntry[]>;
}

/**
 * Keeps an allowlist current: re-discovers when a resolv.conf changes
 * (DHCP, resolved picking new upstreams) and every `refreshS` seconds.
 */
export function watchAllowlist(allowlist: Allowlist, opts: AllowlistWatchOptions): { refresh(): Promise<void>; close(): void } {
  const discover = opts.discover ?? discoverHostAllowlist;
  let running: Promise<void> | null = null;
  const refresh = (): Promise<void> =>
    (running ??= (async () => {
      try {
        const found = opts.defaults ? await discover(opts.log, opts.resolvConfs) : [];
        const next = Allowlist.fromConfig(opts.configured, found, opts.defaults, opts.session).entries;
        const key = (l: AllowEntry[]) => l.map((e) => `${e.cidr} ${e.why}`).join("|");
        if (key(next) !== key(allowlist.entries)) {
          allowlist.update(next);
          opts.log?.info({ entries: next.length }, "allowlist re-discovered");
        }
      } catch (err) {
        opts.log?.warn({ err }, "allowlist re-discovery failed; keeping the previous entries");
      } finally {
        running = null;
      }
    })());
  const onChange = () => void refresh();
  if (opts.defaults) for (const f of opts.resolvConfs) watchFile(f, { interval: 1000, persistent: false }, onChange);
  const timer = opts.defaults ? setInterval(onChange, opts.refreshS * 1000) : null;
  timer?.unref();
  return {
    refresh,
    close() {
      if (timer) clearInterval(timer);
      if (opts.defaults) for (const f of opts.resolvConfs) unwatchFile(f, onChange);
    },
  };
}
