import { JetStreamApiCodes, JetStreamApiError, StorageType } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@vigil/bus";
import type { Logger } from "@vigil/lifecycle";
import { Rule, Verdict } from "@vigil/proto";
import { entryOf, type RuleEntry } from "./evidence.js";
import { applyWrite, mergeWrites, recordWrite, type Additions, type RecordWrite } from "./rule-record.js";
import { ruleKey, ruleKeyId } from "./rule-key.js";
import { QuarantineError, checkStoredOffence, checkStoredRule } from "./store-check.js";
import { readBucket } from "./store-read.js";

export interface HistoryEntry {
  ts: number;
  event: "added" | "updated" | "removed" | "expired" | "enforced" | "enforcement-failed";
  by: string;
  why: string;
  verdictIds?: string[];
}

/** What the bucket holds per rule: the rule, why it exists, and the verdicts behind it (the table holds only the first, see evidence.ts). */
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

type Pending = { kind: "put"; data: Uint8Array; ttlS?: number; fresh?: boolean } | { kind: "rule"; write: RecordWrite; ttlS?: number; fresh: boolean } | { kind: "delete" };

/** A write queued after `older` for the same key, and `older` (not yet written), as one. */
function combine(older: Pending, newer: Pending): Pending {
  if (newer.kind !== "rule" || newer.write.whole) return newer;
  if (older.kind !== "rule") return { ...newer, write: { ...newer.write, whole: true } };
  return { ...newer, write: mergeWrites(older.write, newer.write), fresh: older.fresh || newer.fresh };
}

/** Records last written, kept to make the next write of a rule without reading it back (its enforcement follows its addition). */
const RECENT_RECORDS = 1024;

export interface RuleStoreOptions {
  /** What the bucket should hold now (the service's active rules and its offences): put again if its stream is lost. */
  contents?: () => { rules: RuleEntry[]; offences: Map<string, Offence> };
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
  private readonly inflightKeys = new Set<string>();
  private readonly recent = new Map<string, StoredRule>();
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
   *
   * The bucket is read by one consumer of everything in stream order
   * (store-read.ts): one request per key (keys(), then get() each) took about
   * 100 s for a million rules. The bucket keeps one revision per key, so
   * everything is the last values; older revisions, in a bucket made with
   * more history, are superseded here.
   */
  async loadAll(quarantine: (key: string, problem: string) => void = () => undefined): Promise<{ rules: Map<number, RuleEntry>; offences: Map<string, Offence> }> {
    // Stream order is revision order: a later value of a key replaces an earlier one, a delete removes it.
    // A record is reduced to the table's entry at once, and kept by its id: a million whole records, or
    // their keys, never sit in memory together.
    const rules = new Map<number, RuleEntry>();
    const offences = new Map<string, Offence>();
    const problems = new Map<string, string>();
    const text = new TextDecoder();
    // readBucket reads the stream with the connection alone; the KV handle's getter throws the store's own
    // "not open" error (VIGIL_ERR_STORE), as the watcher did before it.
    void this.store;
    await readBucket(this.nc, this.bucket, (k, operation, value) => {
      const id = ruleKeyId(k); // NaN unless k is ruleKey(id)
      if (!Number.isNaN(id)) rules.delete(id);
      offences.delete(k);
      problems.delete(k);
      if (operation !== "PUT" || value.length === 0) return;
      try {
        if (value.length > MAX_RECORD_BYTES) throw new QuarantineError(`larger than ${MAX_RECORD_BYTES} bytes`);
        if (k.startsWith("rule.")) {
          const entry = entryOf(checkStoredRule(k, JSON.parse(text.decode(value))));
          rules.set(entry.rule.id, entry);
        } else if (k.startsWith("offence.")) offences.set(k, checkStoredOffence(JSON.parse(text.decode(value))));
      } catch (err) {
        problems.set(k, (err as Error).message);
      }
    });
    for (const [k, problem] of problems) quarantine(k, problem);
    return { rules, offences: new Map([...offences].map(([k, o]) => [k.slice(8).replace(/_/g, ":"), o])) };
  }

  /**
   * Writes a rule's record: the rule as `entry` has it, with what `add`s to its
   * history and verdicts. `fresh`: a new rule, whose record starts from nothing;
   * otherwise the record is made from the stored one (read back when it was not
   * written recently), so the table never needs the whole record.
   */
  saveRule(entry: RuleEntry, add: Additions = {}, fresh = false): void {
    const ttlS = entry.rule.expiresAt ? Math.max(1, Math.ceil(entry.rule.expiresAt - Date.now() / 1000)) + 60 : undefined;
    this.enqueue(ruleKey(entry.rule.id), { kind: "rule", write: recordWrite(entry, add, fresh), ttlS, fresh });
  }

  /** A new block: the rule, its record's first history and verdicts, and the offence it counts, queued together. */
  saveBlock(entry: RuleEntry, record: Additions, address: string, o: Offence): void {
    this.saveOffence(address, o);
    this.saveRule(entry, record, true);
  }

  /**
   * A rule's record as it is or is about to be written (null: none), e.g. for a
   * verdict older than the verdict log. Read back from the bucket, it is checked
   * as any record loaded.
   */
  async readRule(id: number): Promise<StoredRule | null> {
    const key = ruleKey(id);
    while (this.inflightKeys.has(key) && this.flushing) await this.flushing;
    const p = this.pending.get(key);
    if (p?.kind === "delete") return null;
    const base = p?.kind === "rule" && p.write.whole ? null : await this.storedRecord(key);
    return p?.kind === "rule" ? applyWrite(base, p.write) : base;
  }

  /** The record last written of a key: remembered, else read back and checked (null: none, or one that fails its checks). */
  private async storedRecord(key: string): Promise<StoredRule | null> {
    const known = this.recent.get(key);
    if (known) return known;
    const e = await this.store.get(key);
    if (!e || e.operation !== "PUT" || e.value.length === 0) return null;
    try {
      if (e.value.length > MAX_RECORD_BYTES) throw new QuarantineError(`larger than ${MAX_RECORD_BYTES} bytes`);
      return checkStoredRule(key, JSON.parse(e.string()));
    } catch (err) {
      this.log?.warn({ key, problem: (err as Error).message }, "stored rule record failed its checks: rewritten from the rule in memory");
      return null;
    }
  }

  private remember(key: string, record: StoredRule | null): void {
    this.recent.delete(key);
    if (!record) return;
    this.recent.set(key, record);
    if (this.recent.size > RECENT_RECORDS) this.recent.delete(this.recent.keys().next().value!);
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
    const queued = this.pending.get(key);
    this.pending.set(key, queued ? combine(queued, p) : p);
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
      for (const [key] of batch) {
        this.pending.delete(key);
        this.inflightKeys.add(key);
      }
      this.inflight = batch.length;
      const results = await Promise.allSettled(batch.map(([key, p]) => this.write(key, p)));
      this.inflight = 0;
      this.inflightKeys.clear();
      let failure: unknown = null;
      results.forEach((r, i) => {
        if (r.status === "fulfilled") return;
        failure = r.reason;
        const [key, p] = batch[i];
        // Retry later (NATS restarting), under any newer write of the key.
        const newer = this.pending.get(key);
        this.pending.set(key, newer ? combine(p, newer) : p);
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
    if (p.kind === "delete") {
      await this.store.delete(key);
      this.remember(key, null);
      return;
    }
    let data = p.kind === "put" ? p.data : null;
    let record: StoredRule | null = null;
    if (p.kind === "rule") {
      record = applyWrite(p.write.whole ? null : await this.storedRecord(key), p.write);
      data = encodeStored(record);
    }
    if (p.fresh && p.ttlS && this.perKeyTtl) {
      try {
        await this.store.create(key, data!, `${p.ttlS}s`);
      } catch {
        await this.store.put(key, data!);
      }
    } else await this.store.put(key, data!);
    if (record) this.remember(key, record);
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
    // What is left of each record is what was written recently: the rest of their histories and verdicts went with the stream.
    for (const s of rules) {
      const key = ruleKey(s.rule.id);
      const queued = this.pending.get(key);
      let known = applyWrite(this.recent.get(key) ?? null, recordWrite(s, {}, false));
      if (queued?.kind === "rule") known = applyWrite(known, queued.write);
      this.saveRule(s, { history: known.history, verdicts: known.verdicts }, true);
    }
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
