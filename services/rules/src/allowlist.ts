import { execFile } from "node:child_process";
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

/** The host's own addresses, default gateways (`ip -j`) and DNS servers (/etc/resolv.conf). */
export async function discoverHostAllowlist(log?: Logger, resolvConf = "/etc/resolv.conf"): Promise<AllowEntry[]> {
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
  try {
    const text = await readFile(resolvConf, "utf8");
    for (const line of text.split("\n")) {
      const m = /^\s*nameserver\s+(\S+)/.exec(line);
      const c = m ? hostPrefix(m[1].split("%")[0]) : null;
      if (c) out.push({ cidr: c, why: "DNS server" });
    }
  } catch (err) {
    log?.warn({ err, file: resolvConf }, "cannot read DNS servers; they are not allowlisted");
  }
  return out;
}

/** Addresses that are never blocked automatically (manual rules may still block them explicitly). */
export class Allowlist {
  private readonly parsed: Array<{ cidr: Cidr; why: string }>;
  constructor(readonly entries: AllowEntry[]) {
    this.parsed = entries.map((e) => ({ cidr: parseCidr(e.cidr), why: e.why }));
  }

  static fromConfig(cidrs: string[], extra: AllowEntry[] = [], withStatic = true): Allowlist {
    const entries: AllowEntry[] = [];
    cidrs.forEach((c, i) => {
      try {
        parseCidr(c);
      } catch (err) {
        throw new InvalidArgumentError(`rules.allowlist[${i}]`, (err as Error).message);
      }
      entries.push({ cidr: c, why: "configuration" });
    });
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
