import { prom, type Registry } from "@vigil/metrics";

export type RulesMetrics = ReturnType<typeof createRulesMetrics>;

export function createRulesMetrics(registry: Registry) {
  const r = [registry];
  return {
    verdicts: new prom.Counter({ name: "vigil_rules_verdicts_received_total", help: "Verdicts received, by detector", labelNames: ["detector"], registers: r }),
    malformed: new prom.Counter({ name: "vigil_rules_verdicts_malformed_total", help: "Verdict messages rejected, by reason", labelNames: ["reason"], registers: r }),
    decisions: new prom.Counter({ name: "vigil_rules_decisions_total", help: "Decisions by outcome", labelNames: ["outcome"], registers: r }),
    activeRules: new prom.Gauge({ name: "vigil_rules_active_rules", help: "Active rules by origin and action", labelNames: ["origin", "action"], registers: r }),
    added: new prom.Counter({ name: "vigil_rules_rules_added_total", help: "Rules added, by origin", labelNames: ["origin"], registers: r }),
    expired: new prom.Counter({ name: "vigil_rules_rules_expired_total", help: "Rules that reached their expiry", labelNames: ["origin"], registers: r }),
    removed: new prom.Counter({ name: "vigil_rules_rules_removed_total", help: "Rules removed before expiry, by cause", labelNames: ["cause"], registers: r }),
    enforcementErrors: new prom.Counter({ name: "vigil_rules_enforcement_errors_total", help: "Failed enforcement operations", labelNames: ["enforcer", "op"], registers: r }),
    reconciles: new prom.Counter({ name: "vigil_rules_reconciles_total", help: "Reconciliations of desired and enforced rules", labelNames: ["result"], registers: r }),
    latency: new prom.Histogram({
      name: "vigil_rules_decision_latency_seconds",
      help: "From verdict received to rule enforced",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: r,
    }),
    storeBacklog: new prom.Gauge({ name: "vigil_rules_store_backlog", help: "Rule store writes waiting for NATS", registers: r }),
    storeRecreated: new prom.Counter({ name: "vigil_rules_store_recreated_total", help: "Times the rule store's KV stream was gone (deleted, or lost by JetStream) and the bucket was made again with the active rules", registers: r }),
    quarantined: new prom.Counter({ name: "vigil_rules_store_quarantined_total", help: "Records in the rule store that failed their checks and were not loaded, by kind (rule, offence, warmup, other)", labelNames: ["kind"], registers: r }),
    automaticRefused: new prom.Counter({ name: "vigil_rules_automatic_refused_total", help: "Automatic blocks refused because the automatic rules reached rules.maxAutomaticRules", registers: r }),
    enforcerFallback: new prom.Gauge({
      name: "vigil_rules_enforcer_fallback",
      help: "1 when enforcer auto found no usable back end and rules are decided but not enforced (dry-run was not asked for)",
      registers: r,
    }),
    capTokens: new prom.Gauge({ name: "vigil_rules_cap_tokens", help: "New unverified blocks still allowed now", registers: r }),
    phase: new prom.Gauge({
      name: "vigil_rules_phase",
      help: "1 for the blocking phase in force: warmup (automatic blocks simulated, rules.warmup), blocking, or dry-run",
      labelNames: ["phase"],
      registers: r,
    }),
    warmupUntil: new prom.Gauge({ name: "vigil_rules_warmup_until_seconds", help: "When the warm-up ends or ended, seconds since the epoch; 0 without one", registers: r }),
  };
}
