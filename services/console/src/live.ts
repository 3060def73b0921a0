import { EventEmitter } from "node:events";
import { hostname } from "node:os";
import { codecs, startHeartbeat, subjects, type HeartbeatHandle, type NatsConnection, type Subscription } from "@vigil/bus";
import { instanceId, VERSION, type Logger } from "@vigil/lifecycle";
import { Heartbeat, RuleEvent, ScoreBatch, Status, Verdict } from "@vigil/proto";
import { CounterRates, sumCounters } from "./capture-metrics.js";
import type { ConsoleConfig } from "./config.js";
import type { RulesClient } from "./rules-client.js";
import type { InstanceHealth, RulesState, RulesStatus, ScorePoint, SeriesPoint, Tick } from "./wire.js";

export const scoresSubject = subjects.scores;
export const scoresAll = subjects.scoresAll;

export interface LiveVerdict {
  verdict: unknown;
  receivedAt: number;
}

const VERDICT_RING = 2000;
const SCORE_RING = 3000;

/**
 * Everything the console knows live: heartbeats, verdict and score streams from
 * NATS, capture counters scraped from the instances' metrics ports, the rules
 * service's status. Emits "tick" (1 s summary), "verdict", "rule", "scores".
 */
export class LiveState extends EventEmitter {
  readonly instances = new Map<string, InstanceHealth>();
  readonly series: SeriesPoint[] = [];
  readonly verdicts: LiveVerdict[] = [];
  readonly scores = new Map<string, ScorePoint[]>();
  readonly bmus: ScorePoint[] = [];
  rules: RulesState;
  readonly counters = { messages: 0, decodeErrors: 0, scrapeErrors: 0, rulesErrors: 0 };
  readonly instance = instanceId("console");
  /** The console's own port, announced in its heartbeat (its /metrics is there). */
  metricsPort = 0;
  private heartbeat: HeartbeatHandle | null = null;
  private readonly verdictsThisSecond = new Map<string, number>();
  private readonly seenDetectors = new Set<string>();
  private readonly rates = new CounterRates();
  private subs: Subscription[] = [];
  private timer: NodeJS.Timeout | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private lastTick = Date.now();
  private stopped = false;
  private readonly localHost = hostname();

  constructor(
    private readonly cfg: ConsoleConfig,
    private readonly log: Logger,
    private readonly rulesClient: RulesClient,
  ) {
    super();
    this.setMaxListeners(0);
    this.rules = { reachable: false, address: rulesClient.address, error: "not polled yet", status: null };
  }

  start(nc: NatsConnection | null): void {
    if (nc) this.attachBus(nc);
    this.timer = setInterval(() => void this.tick(), 1000);
    this.timer.unref();
    const poll = async () => {
      await this.pollStatus();
      if (!this.stopped) this.statusTimer = setTimeout(poll, 2000);
    };
    void poll();
  }

  /** Subscribes to the bus and announces this console; called at start, or later when NATS was not reachable then. */
  attachBus(nc: NatsConnection): void {
    if (this.subs.length) return;
    this.heartbeat = startHeartbeat(nc, { service: "console", instance: this.instance, version: VERSION, metricsPort: () => this.metricsPort, logger: this.log });
    const on = (subject: string, handle: (data: Uint8Array, subject: string) => void) => {
      const sub = nc.subscribe(subject);
      this.subs.push(sub);
      void (async () => {
        for await (const m of sub) {
          try {
            handle(m.data, m.subject);
          } catch (err) {
            this.counters.decodeErrors++;
            this.log.warn({ err: (err as Error).message, subject: m.subject }, "dropped a malformed message");
          }
        }
      })();
    };
    on(subjects.heartbeatAll, (data, subject) => this.onHeartbeat(codecs.heartbeat.decode(data, subject)));
    on(subjects.verdictsAll, (data, subject) => this.onVerdict(codecs.verdict.decode(data, subject)));
    on(subjects.ruleEvents, (data, subject) => this.emit("rule", RuleEvent.toJSON(codecs.ruleEvent.decode(data, subject))));
    on(scoresAll, (data, subject) => {
      let batch: ScoreBatch;
      try {
        batch = ScoreBatch.decode(data);
      } catch (err) {
        throw new Error(`malformed ScoreBatch on ${subject}: ${(err as Error).message}`);
      }
      this.onScores(batch);
    });
  }

  onHeartbeat(hb: Heartbeat): void {
    this.counters.messages++;
    const key = `${hb.service}/${hb.instance}`;
    this.instances.set(key, {
      service: hb.service,
      instance: hb.instance,
      version: hb.version,
      host: hb.host,
      shards: hb.shards,
      metricsPort: hb.metricsPort,
      frames: hb.frames,
      framesLost: hb.framesLost,
      batchesLost: hb.batchesLost,
      framesShed: hb.framesShed,
      shedLevel: hb.shedLevel,
      lastSeen: Date.now(),
      state: hb.stopping ? "stopped" : "up",
    });
  }

  onVerdict(v: Verdict): void {
    this.counters.messages++;
    const detector = v.detector || "unknown";
    this.seenDetectors.add(detector);
    this.verdictsThisSecond.set(detector, (this.verdictsThisSecond.get(detector) ?? 0) + 1);
    const entry = { verdict: Verdict.toJSON(v), receivedAt: Date.now() / 1000 };
    this.verdicts.push(entry);
    if (this.verdicts.length > VERDICT_RING) this.verdicts.splice(0, this.verdicts.length - VERDICT_RING);
    const point: ScorePoint = {
      t: v.lastTs || v.firstTs || Date.now() / 1000,
      score: v.score,
      threshold: v.threshold,
      key: v.address || (v.aggregate ? "aggregate" : ""),
      detector,
      model: v.model,
      bmu: v.som ? v.som.bmu : -1,
      verdict: true,
    };
    // A PST verdict carries the scores of a sample of its connections: real per-item scores for the live view.
    const connections = (v.pst?.connections ?? []).map<ScorePoint>((c) => ({
      t: c.lastTs || c.firstTs || point.t,
      score: c.score,
      threshold: v.threshold,
      key: `${c.client}:${c.clientPort} -> ${c.server}:${c.serverPort} ${c.serviceClass}`,
      detector,
      model: v.model,
      bmu: -1,
      verdict: true,
    }));
    this.pushScores(detector, [...connections, point]);
    this.emit("verdict", entry);
  }

  onScores(batch: ScoreBatch): void {
    this.counters.messages++;
    const detector = batch.detector || "unknown";
    const points = batch.scores.map<ScorePoint>((s) => ({
      t: s.ts,
      score: s.score,
      threshold: s.threshold,
      key: s.key,
      detector,
      model: s.model,
      bmu: s.bmu,
      verdict: false,
    }));
    this.pushScores(detector, points);
  }

  private pushScores(detector: string, points: ScorePoint[]): void {
    if (!points.length) return;
    let ring = this.scores.get(detector);
    if (!ring) this.scores.set(detector, (ring = []));
    ring.push(...points);
    if (ring.length > SCORE_RING) ring.splice(0, ring.length - SCORE_RING);
    for (const p of points)
      if (p.bmu >= 0) {
        this.bmus.push(p);
        if (this.bmus.length > 200) this.bmus.shift();
      }
    this.emit("scores", { detector, points });
  }

  health(): InstanceHealth[] {
    const now = Date.now();
    for (const [key, inst] of this.instances) {
      if (inst.state === "stopped" && now - inst.lastSeen > 60_000) this.instances.delete(key);
      else if (inst.state !== "stopped") inst.state = now - inst.lastSeen > this.cfg.staleAfterMs ? "stale" : "up";
    }
    return [...this.instances.values()].sort((a, b) => a.service.localeCompare(b.service) || a.instance.localeCompare(b.instance));
  }

  private async scrapeCapture(): Promise<{ packets: number; drops: number } | null> {
    const { frames, drops, host } = this.cfg.captureMetrics;
    const targets = this.health().filter(
      (i) => i.service === "capture" && i.state === "up" && i.metricsPort > 0 && (!i.host || i.host === this.localHost || i.host === "localhost"),
    );
    if (!targets.length) return null;
    let packets = 0;
    let dropped = 0;
    await Promise.all(
      targets.map(async (t) => {
        try {
          const res = await fetch(`http://${host}:${t.metricsPort}/metrics`, { signal: AbortSignal.timeout(800) });
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          const sums = sumCounters(await res.text(), [...frames, ...drops]);
          const total = (names: string[]) => names.reduce((s, n) => s + (sums.get(n) ?? 0), 0);
          packets += this.rates.delta(`${t.instance}|f`, total(frames));
          dropped += this.rates.delta(`${t.instance}|d`, total(drops));
        } catch (err) {
          this.counters.scrapeErrors++;
          this.log.debug({ err: (err as Error).message, instance: t.instance }, "capture metrics scrape failed");
        }
      }),
    );
    this.rates.forget(new Set(targets.map((t) => t.instance)));
    return { packets, drops: dropped };
  }

  private async pollStatus(): Promise<void> {
    try {
      const status = await this.rulesClient.getStatus();
      this.rules = { reachable: true, address: this.rulesClient.address, error: null, status: Status.toJSON(status) as RulesStatus };
    } catch (err) {
      this.counters.rulesErrors++;
      this.rules = { reachable: false, address: this.rulesClient.address, error: (err as Error).message, status: null };
    }
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    const elapsed = Math.max(0.25, (now - this.lastTick) / 1000);
    this.lastTick = now;
    const capture = await this.scrapeCapture();
    const verdicts: Record<string, number> = {};
    for (const d of this.seenDetectors) verdicts[d] = (this.verdictsThisSecond.get(d) ?? 0) / elapsed;
    this.verdictsThisSecond.clear();
    const status = this.rules.status as { activeRules?: number } | null;
    const point: SeriesPoint = {
      t: now / 1000,
      packets: capture ? capture.packets / elapsed : null,
      drops: capture ? capture.drops / elapsed : null,
      verdicts,
      activeRules: this.rules.reachable ? (status?.activeRules ?? 0) : null,
    };
    this.series.push(point);
    if (this.series.length > this.cfg.historySeconds) this.series.splice(0, this.series.length - this.cfg.historySeconds);
    const tick: Tick = { point, health: this.health(), rules: this.rules };
    this.emit("tick", tick);
  }

  stop(): void {
    this.stopped = true;
    void this.heartbeat?.stop();
    this.heartbeat = null;
    if (this.timer) clearInterval(this.timer);
    if (this.statusTimer) clearTimeout(this.statusTimer);
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
  }
}
