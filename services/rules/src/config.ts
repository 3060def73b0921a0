import { DEFAULT_PORTS, durationSchema, loadConfig, metricsSchema, natsSchema, z, type LoadOptions } from "@vigil/config";

const detectorSchema = z.strictObject({
  /** Minimum score; 0 = the detector's own threshold carried in the verdict. */
  minScore: z.number().min(0).default(0),
  /** Contribution to the block decision; a source is blocked when the weights of the detectors that flagged it reach `blockWeight`. */
  weight: z.number().min(0).default(1),
  minConnections: z.number().int().min(0).default(0),
  minPackets: z.number().int().min(0).default(0),
});
export type DetectorPolicy = z.infer<typeof detectorSchema>;

const durationS = z.number().int().min(1);

/** A permanent rule from the configuration (origin CONFIG); removed again when it leaves the file. */
const staticRuleSchema = z.strictObject({
  action: z.enum(["block", "allow"]),
  cidr: z.string().min(1),
  dst: z.string().optional(),
  /** IPPROTO number or name (tcp, udp, icmp, icmpv6, sctp, dccp, udplite, gre, esp, ah); 0/any = all. */
  protocol: z.union([z.number().int().min(0).max(255), z.string()]).default(0),
  /** Destination port or range, "22" or "6000-6100". */
  ports: z.string().regex(/^\d{1,5}(-\d{1,5})?$/, "must be a port or a range like 6000-6100").optional(),
  direction: z.enum(["in", "out", "both"]).default("both"),
  priority: z.number().int().min(0).default(100),
  reason: z.string().optional(),
});
export type StaticRule = z.infer<typeof staticRuleSchema>;

export const rulesSectionSchema = z.strictObject({
  /** "auto": the kernel module when loaded, else nftables, else dry-run. */
  enforcer: z.enum(["auto", "kmod", "nftables", "dry-run"]).default("auto"),
  dryRun: z.boolean().default(false),
  /**
   * Warm-up of a new host: for this long from the service's first start (kept in the rule store, so restarts
   * do not begin it again) automatic blocks are decided as usual but only simulated (outcome "warmup-simulated",
   * nothing enforced); manual and static rules are enforced. Then blocking starts by itself; `vigil warmup end`
   * ends it early. A duration ("24h", "30m", seconds); 0 or "off": none. `vigil up` and the packaged
   * /etc/vigil/vigil.yaml set 24h.
   */
  warmup: durationSchema(0),
  stateDir: z.string().optional(),
  detectors: z.record(z.string(), detectorSchema).default({ pst: detectorSchema.parse({}), som: detectorSchema.parse({}) }),
  defaultDetector: detectorSchema.default(detectorSchema.parse({})),
  blockWeight: z.number().min(0).default(1),
  /** Verdicts of different detectors on one source within this capture-time window agree. */
  agreementWindowS: durationS.default(600),
  agreementTtlFactor: z.number().min(1).default(4),
  baseTtlS: durationS.default(600),
  maxTtlS: durationS.default(86_400),
  /** A past offence counts towards the TTL this long after the last one. */
  offenceMemoryS: durationS.default(7 * 86_400),
  /** Handshake-verified sources are never capped; all others share this budget of new blocks. */
  capPerMinute: z.number().int().min(0).default(10),
  capBurst: z.number().int().min(0).default(20),
  /** Completed TCP handshakes from the source needed to call it verified. */
  verifiedMinConnections: z.number().int().min(1).default(1),
  allowlist: z.array(z.string()).default([]),
  /** The admin's own SSH session source, never blocked automatically (like fail2ban's ignoreself); `vigil up` sets it from $SSH_CONNECTION. */
  sessionAllowlist: z.array(z.string()).default([]),
  staticRules: z.array(staticRuleSchema).default([]),
  /** Add loopback, link-local, own addresses, default gateways and DNS servers. */
  allowlistDefaults: z.boolean().default(true),
  /** Files DNS servers are read from (re-read when they change); the second is systemd-resolved's upstream list. */
  resolvConf: z.array(z.string().min(1)).default(["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"]),
  /** Own addresses, gateways and DNS servers are discovered again this often. */
  allowlistRefreshS: durationS.default(60),
  falseAlarmAllowTtlS: durationS.default(86_400),
  verdictLogSize: z.number().int().min(100).default(10_000),
  /** Memory the verdict log may hold, in bytes of encoded verdicts; the oldest go first. */
  verdictLogBytes: z.number().int().min(1 << 20).default(64 << 20),
  /** Verdict messages larger than this are rejected (counted as too-large). */
  maxVerdictBytes: z.number().int().min(1024).max(4 << 20).default(64 << 10),
  /**
   * Verdicts from a replayed capture (a pcap file: capture marks it whatever the source id) make real blocks.
   * Off: an enforcing service records them as "replay-simulated" and blocks nothing (a dry-run service decides them as usual).
   */
  enforceReplays: z.boolean().default(false),
  /** Automatic (detector) rules at once; beyond it new automatic blocks are refused, never evicting manual or verified rules. */
  maxAutomaticRules: z.number().int().min(1).default(100_000),
  /** Sources whose detector flags are kept for agreement; flags past the agreement window are dropped first, verified sources' last. */
  agreementMemory: z.number().int().min(1000).default(200_000),
  /** Automatic IPv6 blocks: `hosts` offenders in one prefix of `prefixLength` become one prefix rule (hosts 0: never). */
  ipv6Aggregate: z
    .strictObject({ prefixLength: z.number().int().min(16).max(120).default(64), hosts: z.number().int().min(0).default(16) })
    .default({ prefixLength: 64, hosts: 16 }),
  bucket: z.string().regex(/^[A-Za-z0-9_-]+$/).default("vigil_rules"),
  grpc: z
    .strictObject({
      host: z.string().default("127.0.0.1"),
      /** Opens the API on TCP (host:port, 9479 by convention) besides the socket; needs `token`. Absent: socket only. */
      port: z.number().int().min(0).max(65535).optional(),
      /** Unix socket path; default $VIGIL_CONTROL_SOCKET, else $VIGIL_STATE_DIR/control.sock, else /run/vigil/control.sock; "" disables it. */
      socket: z.string().optional(),
      /** The socket's group (mode 0660): only its members and the owner may connect. Default: `vigil-control` when that group exists, else `vigil` (older installs). */
      socketGroup: z.string().optional(),
      /** Every call must carry it (authorization: Bearer); required for TCP. */
      token: z.string().optional(),
      tls: z
        .strictObject({ cert: z.string(), key: z.string(), clientCa: z.string().optional() })
        .optional(),
    })
    .default({ host: "127.0.0.1" }),
  /** Enforce inside this named network namespace (containers, tests) instead of the service's own. */
  netns: z.string().optional(),
  /** "auto": libnftables in-process when the binding is built, else the nft command. */
  nftDriver: z.enum(["auto", "library", "process"]).default("auto"),
  nftTable: z.string().regex(/^[A-Za-z0-9_]+$/).default("vigil"),
  reconcileIntervalS: durationS.default(60),
  metrics: metricsSchema.default({ host: "127.0.0.1", port: DEFAULT_PORTS.rulesMetrics }),
});
export type RulesConfig = z.infer<typeof rulesSectionSchema>;

export const configSchema = z.object({
  rules: rulesSectionSchema.default(rulesSectionSchema.parse({})),
  nats: natsSchema.default(natsSchema.parse({})),
});
export type ServiceConfig = z.infer<typeof configSchema>;

export function loadRulesConfig(opts: LoadOptions = {}): ServiceConfig {
  return loadConfig(configSchema, opts);
}

export function rulesDefaults(overrides: Partial<RulesConfig> = {}): RulesConfig {
  return rulesSectionSchema.parse(overrides);
}
