import { existsSync } from "node:fs";
import type { Logger } from "@vigil/lifecycle";
import { addonUnavailableReason, VigilNetlink } from "@vigil/netlink";
import { DryRunEnforcer } from "./dry-run.js";
import { KmodEnforcer } from "./kmod.js";
import { NftablesEnforcer } from "./nftables.js";
import type { Enforcer } from "./types.js";

export interface SelectOptions {
  choice: "auto" | "kmod" | "nftables" | "dry-run";
  dryRun: boolean;
  nftTable: string;
  nftDriver?: "auto" | "library" | "process";
  netns?: string;
  logger?: Logger;
}

function kmodReason(): string | null {
  const addon = addonUnavailableReason();
  if (addon) return addon;
  if (existsSync("/sys/module/vigil") || VigilNetlink.available()) return null;
  return "the vigil kernel module is not loaded";
}

/** Picks the back end: the module when loaded, else nftables when `nft` works, else dry-run (with a warning). */
export async function selectEnforcer(opts: SelectOptions): Promise<Enforcer> {
  const log = opts.logger;
  if (opts.dryRun || opts.choice === "dry-run") return new DryRunEnforcer("dry-run mode: rules are decided and recorded, never enforced");
  if (opts.choice === "kmod") return new KmodEnforcer(log);
  const mode = opts.nftDriver && opts.nftDriver !== "auto" ? opts.nftDriver : undefined;
  const nft = new NftablesEnforcer({ table: opts.nftTable, netns: opts.netns, mode, logger: log });
  if (opts.choice === "nftables") return nft;
  const noKmod = opts.netns ? "a network namespace is configured" : kmodReason();
  if (!noKmod) return new KmodEnforcer(log);
  const noNft = await nft.available();
  if (!noNft) {
    log?.info({ why: noKmod }, "enforcing with nftables");
    return nft;
  }
  const detail = `NOT ENFORCING: no back end (kmod: ${noKmod}; nftables: ${noNft})`;
  log?.warn(detail);
  return new DryRunEnforcer(detail);
}
