import { codecs, connectBus, PresenceView, subjects, type BusCredentials, type NatsConnection, type Subscription } from "@vigil/bus";
import type { EndOfStream, RuleEvent, Verdict } from "@vigil/proto";

/**
 * Records what a pipeline publishes on the bus (verdicts, rule events,
 * end-of-stream reports) and who is alive (heartbeats), and tells the
 * pipeline when any of it changes.
 */
export class BusObserver {
  readonly verdicts: Verdict[] = [];
  /** Wall-clock second each verdict arrived (live latency). */
  readonly verdictAt: number[] = [];
  readonly ruleEvents: RuleEvent[] = [];
  readonly eos: EndOfStream[] = [];
  /** Wall-clock ms each end-of-stream report arrived (throughput benchmarks). */
  readonly eosAt: number[] = [];
  readonly presence: PresenceView;
  /** Detector groups that announced every shard after the rules service was heard (ready for frames). */
  readonly readyDetectors = new Set<string>();
  private rulesHeardAt = 0;
  private readonly everSeen = new Map<string, Set<string>>();
  private subs: Subscription[] = [];

  private constructor(
    private readonly nc: NatsConnection,
    private readonly shardCount: number,
    private readonly onChange: () => void,
  ) {
    this.presence = new PresenceView(nc);
  }

  static async connect(natsUrl: string, shardCount: number, onChange: () => void, credentials: BusCredentials = {}): Promise<BusObserver> {
    const nc = await connectBus({ servers: [natsUrl], name: "vigil-replay", ...credentials });
    const o = new BusObserver(nc, shardCount, onChange);
    await o.start();
    return o;
  }

  get rulesHeard(): boolean {
    return this.rulesHeardAt > 0;
  }

  /** Instances of a service heard since the start, including those gone since. */
  seenInstances(service: string): ReadonlySet<string> {
    return this.everSeen.get(service) ?? new Set();
  }

  private async start(): Promise<void> {
    const on = <T>(subject: string, decode: (d: Uint8Array, s: string) => T, f: (m: T) => void) => {
      this.subs.push(
        this.nc.subscribe(subject, {
          callback: (err, msg) => {
            if (err) return;
            try {
              f(decode(msg.data, msg.subject));
            } catch {
              /* a malformed message is the sender's bug; the replay reports what it can decode */
            }
            this.onChange();
          },
        }),
      );
    };
    on(subjects.verdictsAll, codecs.verdict.decode, (v) => {
      this.verdicts.push(v);
      this.verdictAt.push(Date.now() / 1000);
    });
    on(subjects.ruleEvents, codecs.ruleEvent.decode, (e) => this.ruleEvents.push(e));
    on(subjects.endOfStreamAll, codecs.endOfStream.decode, (e) => {
      this.eos.push(e);
      this.eosAt.push(Date.now());
    });
    this.presence.on("beat", (hb) => {
      const seen = this.everSeen.get(hb.service) ?? new Set<string>();
      seen.add(hb.instance);
      this.everSeen.set(hb.service, seen);
      if (hb.service === "rules" && !this.rulesHeardAt) this.rulesHeardAt = Date.now();
      else if (this.rulesHeardAt && (hb.service === "pst" || hb.service === "som") && this.presence.ownsAll(hb.service, this.shardCount))
        this.readyDetectors.add(hb.service);
      this.onChange();
    });
    this.presence.start();
    await this.nc.flush();
  }

  /** Waits until what was published before now has been delivered. */
  flush(): Promise<void> {
    return this.nc.flush();
  }

  async close(): Promise<void> {
    this.presence.stop();
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
  }
}
