import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** A rule as the kernel module sees it (enum vigil_rule_attr). Addresses are network-order bytes. */
export interface KernelRule {
  id: number;
  kind: number;
  family: number;
  addr?: Buffer;
  src?: Buffer;
  srcPrefix?: number;
  dst?: Buffer;
  dstPrefix?: number;
  proto?: number;
  dportMin?: number;
  dportMax?: number;
  direction?: number;
  action?: number;
  priority?: number;
  /** Add: ms until expiry (0 or absent = never). Dump and events: ms left. */
  timeoutMs?: number;
  hits?: number;
  bytes?: number;
}

export interface KernelStats {
  seen: number;
  dropped: number;
  captured: number;
  ringDrops: number;
  hostRules: number;
  generalRules: number;
}

export interface KernelConfig {
  capture?: boolean;
  sample?: number;
  captureDropped?: boolean;
  /** Copy packets on loopback devices into the rings too (off by default). */
  captureLoopback?: boolean;
  snaplen?: number;
  slots?: number;
}

/** Values from kmod/include/uapi/linux/vigil.h, exported by the addon that includes it. */
export interface VigilConstants {
  VIGIL_GENL_NAME: string;
  VIGIL_MCGRP_EVENTS: string;
  VIGIL_GENL_VERSION: number;
  VIGIL_RULE_HOST: number;
  VIGIL_RULE_GENERAL: number;
  VIGIL_ACTION_DROP: number;
  VIGIL_ACTION_ACCEPT: number;
  VIGIL_RULE_DIR_INGRESS: number;
  VIGIL_RULE_DIR_EGRESS: number;
  VIGIL_RULE_DIR_BOTH: number;
  VIGIL_FAMILY_IPV4: number;
  VIGIL_FAMILY_IPV6: number;
  VIGIL_MAX_GENERAL_RULES: number;
  VIGIL_MAX_HOST_RULES: number;
}

export interface ExpiryOverrun {
  overrun: true;
  /** Set when an event arrived but could not be decoded (it counts as lost). */
  error?: string;
}

interface NativeClient {
  readonly familyId: number;
  readonly eventsGroup: number;
  addRules(rules: KernelRule[]): Promise<void>;
  deleteRules(ids: Array<number | Pick<KernelRule, "id">>): Promise<void>;
  flush(): Promise<void>;
  dumpRules(): Promise<KernelRule[]>;
  stats(): Promise<KernelStats>;
  getConfig(): Promise<KernelConfig>;
  setConfig(cfg: Pick<KernelConfig, "capture" | "sample" | "captureDropped" | "captureLoopback">): Promise<void>;
  subscribe(cb: (rule: KernelRule | null, info?: ExpiryOverrun) => void): void;
  close(): void;
}

interface NativeModule {
  NetlinkClient: new () => NativeClient;
  constants: VigilConstants;
}

const here = dirname(fileURLToPath(import.meta.url));
const addonPath = join(here, "../native/build/Release/vigil_netlink.node");
let native: NativeModule | null = null;
let loadError: Error | null = null;

function load(): NativeModule {
  if (native) return native;
  if (loadError) throw loadError;
  if (!existsSync(addonPath)) {
    loadError = Object.assign(new Error(`netlink addon not built (${addonPath}); run the build`), { code: "VIGIL_ERR_NETLINK_ADDON" });
    throw loadError;
  }
  native = createRequire(import.meta.url)(addonPath) as NativeModule;
  return native;
}

/** The ABI constants, straight from the kernel header. */
export function constants(): VigilConstants {
  return load().constants;
}

/** Why the addon cannot be used (not built), or null. */
export function addonUnavailableReason(): string | null {
  try {
    load();
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * A generic netlink client for the "vigil" family. Opening resolves the
 * family and its events group and fails with errno ENOENT when the module is
 * not loaded. Requests run off the event loop, one at a time per client.
 */
export class VigilNetlink {
  private constructor(private readonly client: NativeClient) {}

  static open(): VigilNetlink {
    return new VigilNetlink(new (load().NetlinkClient)());
  }

  /** True when the family is registered (the module is loaded in this network namespace). */
  static available(): boolean {
    try {
      VigilNetlink.open().close();
      return true;
    } catch {
      return false;
    }
  }

  get familyId(): number {
    return this.client.familyId;
  }

  /** Adds rules in batches (many per message, several messages per sendmsg). */
  async addRules(rules: KernelRule[]): Promise<void> {
    if (rules.length) await this.client.addRules(rules);
  }

  async deleteRules(ids: number[]): Promise<void> {
    if (ids.length) await this.client.deleteRules(ids);
  }

  flush(): Promise<void> {
    return this.client.flush();
  }

  /** Every rule the module holds (a multi-part dump), with hits, bytes and time left. */
  dumpRules(): Promise<KernelRule[]> {
    return this.client.dumpRules();
  }

  stats(): Promise<KernelStats> {
    return this.client.stats();
  }

  getConfig(): Promise<KernelConfig> {
    return this.client.getConfig();
  }

  async setConfig(cfg: Pick<KernelConfig, "capture" | "sample" | "captureDropped" | "captureLoopback">): Promise<void> {
    await this.client.setConfig(cfg);
  }

  /**
   * Receives VIGIL_CMD_RULE_EXPIRED events. `onOverrun` is called when the
   * kernel dropped events (socket buffer full): resynchronise with a dump.
   */
  onExpired(onRule: (rule: KernelRule) => void, onOverrun: () => void = () => undefined): void {
    this.client.subscribe((rule) => {
      if (rule) onRule(rule);
      else onOverrun();
    });
  }

  close(): void {
    this.client.close();
  }
}
