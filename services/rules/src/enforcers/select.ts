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

/** Picks the back end: the module when loaded, else nftables when `nft` works, else dry-run, flagged as a fallback (error log, metric, Status). */
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
  // Not enforcing while the operator believes it is: an error in the log, vigil_rules_enforcer_fallback
  // in the metrics (an alert in deploy/prometheus/alerts.yml) and the reason in Status.
  const detail = `NOT ENFORCING: enforcer auto found no back end (kmod: ${noKmod}; nftables: ${noNft}); set rules.enforcer to kmod or nftables to refuse to start instead, or to dry-run to mean it`;
  log?.error(detail);
  return new DryRunEnforcer(detail, true);
}
