#!/usr/bin/env node
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { ConfigError } from "@vigil/config";
import { controlSocket, runDaemon } from "@vigil/lifecycle";
import { createRegistry } from "@vigil/metrics";
import { Allowlist, discoverHostAllowlist, watchAllowlist, type AllowlistWatchOptions } from "./allowlist.js";
import { loadRulesConfig } from "./config.js";
import { KmodEnforcer } from "./enforcers/kmod.js";
import { selectEnforcer } from "./enforcers/select.js";
import { startGrpcServer } from "./grpc-server.js";
import { KernelMetrics } from "./kernel-metrics.js";
import { createRulesMetrics } from "./metrics.js";
import { originName } from "./model.js";
import { RulesService } from "./service.js";

void runDaemon({
  service: "rules",
  loadConfig: () => loadRulesConfig(),
  settings: (cfg) => ({ nats: cfg.nats, metrics: cfg.rules.metrics }),
  // One rules service per host: its series carry no instance label.
  registry: () => createRegistry("rules"),
  async start({ config, log, nc, instance, version, registry, metricsPort, shutdown }) {
    const rc = config.rules;
    // Any local user can reach a TCP port: it is opt-in, and never without a token.
    if (rc.grpc.port !== undefined && !rc.grpc.token)
      throw new ConfigError(
        `rules.grpc.port (${rc.grpc.port}) opens the control API on TCP ${rc.grpc.host}, which needs rules.grpc.token (VIGIL_RULES__GRPC__TOKEN); ` +
          "without a port the API listens on the unix socket only",
      );
    // Where clients look for it unless told otherwise (an install: /run/vigil, the unit's RuntimeDirectory).
    const socket = rc.grpc.socket ?? (rc.stateDir ? join(rc.stateDir, "control.sock") : controlSocket());
    if (socket) mkdirSync(dirname(socket), { recursive: true });

    const discovered = rc.allowlistDefaults ? await discoverHostAllowlist(log, rc.resolvConf) : [];
    const allowlist = Allowlist.fromConfig(rc.allowlist, discovered, rc.allowlistDefaults, rc.sessionAllowlist);
    log.info({ entries: allowlist.entries.length }, "allowlist ready");
    const watching: AllowlistWatchOptions = { configured: rc.allowlist, session: rc.sessionAllowlist, defaults: rc.allowlistDefaults, resolvConfs: rc.resolvConf, refreshS: rc.allowlistRefreshS, log };
    const watcher = watchAllowlist(allowlist, watching);
    shutdown.add("allowlist", () => watcher.close());

    const enforcer = await selectEnforcer({ choice: rc.enforcer, dryRun: rc.dryRun, nftTable: rc.nftTable, nftDriver: rc.nftDriver, netns: rc.netns, logger: log });
    log.info({ enforcer: enforcer.name, detail: enforcer.detail }, "enforcer selected");

    const metrics = createRulesMetrics(registry);
    const svc = new RulesService({ config: rc, nc: nc!, enforcer, allowlist, metrics, logger: log, instance, version, metricsPort });
    // Always registered, so the page declares vigil_kernel_*; samples only when the kmod enforcer reads the module.
    new KernelMetrics(registry, enforcer instanceof KmodEnforcer ? enforcer : null, (id) => {
      const s = svc.rules.get(id);
      return s ? originName(s.rule.origin) : undefined;
    }, { logger: log });
    await svc.start();
    shutdown.add("service", () => svc.stop());

    const grpc = await startGrpcServer(svc, {
      host: rc.grpc.host,
      port: rc.grpc.port,
      socketGroup: rc.grpc.socketGroup,
      socket,
      token: rc.grpc.token,
      tls: rc.grpc.tls,
      logger: log,
    });
    log.info({ grpc: grpc.address, socket: grpc.socket }, "rules service running");
    // Stopped first on shutdown: no new calls while the service winds down.
    return {
      stop: () => grpc.close(),
      // SIGHUP: the configuration file is read again and the allowlist re-discovered; a bad file keeps the running one.
      async reload() {
        const next = loadRulesConfig().rules;
        Allowlist.fromConfig(next.allowlist, [], false, next.sessionAllowlist);
        watching.configured = next.allowlist;
        watching.session = next.sessionAllowlist;
        await watcher.refresh();
        log.info({ entries: allowlist.entries.length }, "configuration re-read: allowlist updated (other settings apply on restart)");
      },
    };
  },
});
