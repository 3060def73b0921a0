import { JetStreamApiCodes, JetStreamApiError, StorageType } from "@nats-io/jetstream";
import { Kvm, KvWatchInclude, type KV, type KvEntry } from "@nats-io/kv";
import type { NatsConnection } from "@vigil/bus";
import type { Logger } from "@vigil/lifecycle";
import { Rule, Verdict } from "@vigil/proto";
import { QuarantineError, checkStoredOffence, checkStoredRule } from "./store-check.js";

export interface HistoryEntry {
  ts: number;
  event: "added" | "updated" | "removed" | "expired" | "enforced" | "enforcement-failed";
  by: string;
  why: string;
  verdictIds?: string[];
}

/** What the bucket holds per rule: the rule, why it exists, and the verdicts behind it. */
export interface StoredRule {
  rule: Rule;
  history: HistoryEntry[];
  verdicts: Verdict[];
}

export interface Offence {
  count: number;
  lastAt: number;
  /** Capture times of the last block: its decision, and that plus its TTL. Evidence that began in between was seen while blocked. */
  from?: number;
  until?: number;
}

const MAX_HISTORY = 50;
/** A rule record with 5 verdicts of bounded size stays far below this. */
const MAX_RECORD_BYTES = 1 << 20;
const MAX_VERDICTS = 5;

function ruleKey(id: number): string {
  return `rule.${id}`;
}

/** KV keys allow [-/_=.a-zA-Z0-9]: IPv6 colons become underscores. */
export function offenceKey(address: string): string {
  return `offence.${address.replace(/:/g, "_")}`;
}

export function encodeStored(s: StoredRule): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({ rule: Rule.toJSON(s.rule), history: s.history.slice(-MAX_HISTORY), verdicts: s.verdicts.slice(-MAX_VERDICTS).map((v) => Verdict.toJSON(v)) }),
  );
}

/** "2.11.3" >= "2.11" */
export function versionAtLeast(version: string, want: [number, number]): boolean {
  const [maj, min] = version.split(".").map((x) => Number.parseInt(x, 10));
  return maj > want[0] || (maj === want[0] && min >= want[1]);
}

type Pending = { kind: "put"; data: Uint8Array; ttlS?: number; fresh?: boolean } | { kind: "delete" };

export interface RuleStoreOptions {
  /** What the bucket should hold now (the service's active rules and its offences): put again if its stream is lost. */
  contents?: () => { rules: StoredRule[]; offences: Map<string, Offence> };
  /** Called each time the bucket had to be made again. */
  recreated?: () => void;
  /** How often the store looks for its stream when nothing is written (ms). */
  checkMs?: number;
}

/** JetStream no longer has the stream (deleted by hand, or lost with its storage). */
function streamGone(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === JetStreamApiCodes.StreamNotFound;
  return /stream not found/i.test((err as Error)?.message ?? "");
}

/**
 * Rules and offences in a JetStream KV bucket with file storage. Writes go
 * through a write-behind queue that retries until NATS takes them, so a NATS
 * outage delays persistence but never enforcement; the latest value of a key
 * wins. The bucket has no bucket-wide TTL (permanent rules must survive):
 * the service deletes expired entries itself, and on servers with per-message
 * TTL (2.11+) new timed entries also carry their own TTL as a backstop.
 *
 * If JetStream loses the bucket's stream while the service runs (deleted,
 * storage lost), writes would fail forever and the next start would begin
 * empty: the store notices (a failed write, or its periodic look), makes the
 * bucket again and puts what `contents` says is active back into it.
 */
export class RuleStore {
  private kv: KV | null = null;
  private pending = new Map<string, Pending>();
  private flushing: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private inflight = 0;
  private closed = false;
  perKeyTtl = false;
  lastError = "";
  /** The records that are neither rules nor offences (the warm-up's start), as last saved: put again with the rest. */
  private readonly records = new Map<string, unknown>();
  private checkTimer: NodeJS.Timeout | null = null;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    private readonly log?: Logger,
    private readonly opts: RuleStoreOptions = {},
  ) {}

  private bucketOptions() {
    return { storage: StorageType.File, history: 1, ...(this.perKeyTtl ? { markerTTL: 60_000 } : {}) };
  }

  async open(): Promise<void> {
    const version = this.nc.info?.version ?? "0.0.0";
    this.perKeyTtl = versionAtLeast(version, [2, 11]);
    const kvm = new Kvm(this.nc);
    const opts = this.bucketOptions();
    if (this.opts.contents) {
      this.checkTimer = setInterval(() => void this.checkStream(), this.opts.checkMs ?? 30_000);
      this.checkTimer.unref();
    }
    try {
      this.kv = await kvm.create(this.bucket, opts);
    } catch (err) {
      if (/jetstream (is )?not enabled|503/i.test(`${(err as Error).message} ${(err as { code?: string }).code ?? ""}`))
        throw Object.assign(new Error(`JetStream is not enabled on the NATS server (${this.nc.getServer()}): the rules service keeps its rules in a JetStream KV bucket; start nats-server with -js`), { code: "VIGIL_ERR_STORE" });
      if (!this.perKeyTtl) throw err;
      // A bucket made before per-key TTL cannot gain it: use it as it is.
      this.log?.warn({ err }, "KV bucket without per-key TTL; expired entries are removed by the service only");
      this.perKeyTtl = false;
      this.kv = await kvm.open(this.bucket);
    }
    this.log?.info({ bucket: this.bucket, server: version, perKeyTtl: this.perKeyTtl }, "rule store open");
  }

  private get store(): KV {
    if (!this.kv) throw Object.assign(new Error("rule store is not open"), { code: "VIGIL_ERR_STORE" });
    return this.kv;
  }

  /**
   * Every rule and offence in the bucket, each checked as untrusted input
   * (see store-check.ts). A record that fails is reported to `quarantine` and
   * skipped: it stays in the bucket for inspection and never stops the load.
   */
  async loadAll(quarantine: (key: string, problem: string) => void = () => undefined): Promise<{ rules: StoredRule[]; offences: Map<string, Offence> }> {
    // Stream order is revision order: a later value of a key replaces an earlier one, a delete removes it.
    const latest = new Map<string, { rule: StoredRule } | { offence: Offence } | { problem: string }>();
    for await (const e of this.everything()) {
      const k = e.key;
      if (e.operation !== "PUT" || e.value.length === 0) {
        latest.delete(k);
        continue;
      }
      try {
        if (e.value.length > MAX_RECORD_BYTES) throw new QuarantineError(`larger than ${MAX_RECORD_BYTES} bytes`);
        if (k.startsWith("rule.")) latest.set(k, { rule: checkStoredRule(k, JSON.parse(e.string())) });
        else if (k.startsWith("offence.")) latest.set(k, { offence: checkStoredOffence(JSON.parse(e.string())) });
      } catch (err) {
        latest.set(k, { problem: (err as Error).message });
      }
    }
    const rules: StoredRule[] = [];
    const offences = new Map<string, Offence>();
    for (const [k, v] of latest) {
      if ("rule" in v) rules.push(v.rule);
      else if ("offence" in v) offences.set(k.slice(8).replace(/_/g, ":"), v.offence);
      else quarantine(k, v.problem);
    }
    return { rules, offences };
  }

  /**
   * Every entry of the bucket in stream order, by one watcher (an ordered
   * push consumer), ending with the entries present when it started. One
   * request per key (keys(), then get() each) took about 100 s for a million
   * rules; and a consumer of each key's last value only (the watcher's
   * default) is not even created within the API timeout at a million keys on
   * nats-server 2.9, while one of everything is: the bucket keeps one
   * revision per key, so everything is the last values (and older revisions,
   * in a bucket made with more history, are superseded in loadAll).
   */
  private async *everything(): AsyncGenerator<KvEntry> {
    const status = await this.store.status();
    if (status.values === 0) return;
    const watch = await this.store.watch({ include: KvWatchInclude.AllHistory });
    try {
      for await (const e of watch) {
        yield e;
        if (e.delta === 0) break;
      }
    } finally {
      watch.stop();
    }
  }

  saveRule(s: StoredRule, fresh = false): void {
    const ttlS = s.rule.expiresAt ? Math.max(1, Math.ceil(s.rule.expiresAt - Date.now() / 1000)) + 60 : undefined;
    this.enqueue(ruleKey(s.rule.id), { kind: "put", data: encodeStored(s), ttlS, fresh });
  }

  /** A new block: the rule and the offence it counts, queued together. */
  saveBlock(s: StoredRule, address: string, o: Offence): void {
    this.saveOffence(address, o);
    this.saveRule(s, true);
  }

  deleteRule(id: number): void {
    this.enqueue(ruleKey(id), { kind: "delete" });
  }

  saveOffence(address: string, o: Offence): void {
    this.enqueue(offenceKey(address), { kind: "put", data: new TextEncoder().encode(JSON.stringify(o)) });
  }

  deleteOffence(address: string): void {
    this.enqueue(offenceKey(address), { kind: "delete" });
  }

  /** The text of a record that is neither a rule nor an offence (the warm-up's start), null when there is none. */
  async readRecord(key: string): Promise<string | null> {
    const e = await this.store.get(key);
    if (!e || e.operation !== "PUT" || e.value.length === 0) return null;
    if (e.value.length > MAX_RECORD_BYTES) throw new QuarantineError(`larger than ${MAX_RECORD_BYTES} bytes`);
    return e.string();
  }

  saveRecord(key: string, value: unknown): void {
    this.records.set(key, value);
    this.enqueue(key, { kind: "put", data: new TextEncoder().encode(JSON.stringify(value)) });
  }

  /** Writes not yet acknowledged by NATS: queued and in flight. */
  get backlog(): number {
    return this.pending.size + this.inflight;
  }

  private enqueue(key: string, p: Pending): void {
    this.pending.set(key, p);
    this.kick();
  }

  private kick(): void {
    if (this.flushing || this.closed || this.retryTimer) return;
    this.flushing = this.flush().finally(() => {
      this.flushing = null;
      if (this.pending.size && !this.closed && !this.retryTimer) this.kick();
    });
  }

  /** Writes up to 64 keys at a time (JetStream acks pipelined); a failure requeues what has not been newer-written since. */
  private async flush(): Promise<void> {
    while (this.pending.size) {
      const batch: Array<[string, Pending]> = [];
      for (const entry of this.pending) {
        batch.push(entry);
        if (batch.length === 64) break;
      }
      for (const [key] of batch) this.pending.delete(key);
      this.inflight = batch.length;
      const results = await Promise.allSettled(batch.map(([key, p]) => this.write(key, p)));
      this.inflight = 0;
      let failure: unknown = null;
      results.forEach((r, i) => {
        if (r.status === "fulfilled") return;
        failure = r.reason;
        const [key, p] = batch[i];
        // Keep the newest value for the key and retry later (NATS restarting).
        if (!this.pending.has(key)) this.pending.set(key, p);
      });
      if (failure) {
        // A put to a lost stream fails like one to an absent server (no responders): the stream's info tells which.
        void this.checkStream();
        this.lastError = (failure as Error).message;
        this.log?.warn({ err: this.lastError, backlog: this.pending.size }, "rule store write failed; retrying");
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.kick();
        }, 500);
        return;
      }
      this.lastError = "";
    }
  }

  private async write(key: string, p: Pending): Promise<void> {
    if (p.kind === "delete") await this.store.delete(key);
    else if (p.fresh && p.ttlS && this.perKeyTtl) {
      try {
        await this.store.create(key, p.data, `${p.ttlS}s`);
      } catch {
        await this.store.put(key, p.data);
      }
    } else await this.store.put(key, p.data);
  }

  /** Makes the bucket again if its stream is gone; one look at a time. */
  private checkStream(): Promise<void> {
    if (!this.checking && this.kv && !this.closed && this.opts.contents)
      this.checking = this.recreateIfGone().finally(() => (this.checking = null));
    return this.checking ?? Promise.resolve();
  }

  private async recreateIfGone(): Promise<void> {
    try {
      await this.store.status();
      return;
    } catch (err) {
      if (!streamGone(err)) return; // NATS away or busy: the writes retry, the next look tells
    }
    try {
      this.kv = await new Kvm(this.nc).create(this.bucket, this.bucketOptions());
    } catch (err) {
      this.log?.error({ err, bucket: this.bucket }, "the rule store's stream is gone and the bucket cannot be made again; retrying");
      return;
    }
    const { rules, offences } = this.opts.contents!();
    for (const s of rules) this.saveRule(s, true);
    for (const [address, o] of offences) this.saveOffence(address, o);
    for (const [key, value] of this.records) this.saveRecord(key, value);
    this.opts.recreated?.();
    this.log?.error({ bucket: this.bucket, rules: rules.length, offences: offences.size }, "the rule store's stream was gone (deleted, or lost by JetStream): bucket made again, the active rules and offences stored again");
  }

  /** Waits until every queued write reached NATS (or the timeout passed). */
  async drain(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while ((this.pending.size || this.flushing) && Date.now() < deadline) {
      if (this.flushing) await Promise.race([this.flushing, new Promise((r) => setTimeout(r, 100))]);
      else await new Promise((r) => setTimeout(r, 50));
    }
    return this.pending.size === 0 && !this.flushing;
  }

  async close(): Promise<void> {
    if (!(await this.drain(10_000))) this.log?.error({ backlog: this.backlog }, "rule store writes lost at shutdown; the next start reconciles from what was stored");
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.checkTimer) clearInterval(this.checkTimer);
  }
}
