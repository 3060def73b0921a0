import { formatCidr, parseCidr } from "@vigil/frames";
import { Action, Direction, type Rule } from "@vigil/proto";
import type { Logger } from "@vigil/lifecycle";
import { isHostMatch, normalizeMatch, type NormalizedMatch } from "../model.js";
import { NftRunner, type NftRunnerOptions } from "@vigil/nftables";
import { remainingMs, type Enforcer, type ReconcileResult } from "./types.js";

const HOOK_PRIORITY = -300; // before conntrack (-200): dropped packets never create state

type SetName = "drop4" | "drop6" | "allow4" | "allow6";
type Elem = string | { elem: { val: string; timeout: number } };
type NewHost = { set: SetName; addr: string; rule: Rule };

/** New set elements per nft transaction (see applyWithNew). */
const ELEMENTS_PER_TRANSACTION = 50_000;

interface Placement {
  set: SetName | null;
  match: NormalizedMatch;
}

const V4_TEXT = /^\d{1,3}(\.\d{1,3}){3}$/;
const V6_TEXT = /^[0-9a-f:]+$/;

/**
 * The set and address of a canonical host rule, without parsing: rules reach
 * the enforcer canonical (see canonicalRule), so "a.b.c.d/32" and "x::y/128"
 * are exact. Saves most of the time of a bulk load. Anything else, such as a
 * srcCidr that is not plain address text, takes the parsing path, which
 * rejects it.
 */
function fastHostPlacement(rule: Rule): { set: SetName; addr: string } | null {
  if (rule.dstCidr || rule.protocol || rule.dportMin || rule.dportMax || rule.direction !== Direction.DIRECTION_BOTH) return null;
  const cidr = rule.srcCidr;
  const v6 = cidr.includes(":");
  if (!cidr.endsWith(v6 ? "/128" : "/32")) return null;
  const addr = cidr.slice(0, cidr.lastIndexOf("/"));
  if (!(v6 ? V6_TEXT : V4_TEXT).test(addr)) return null;
  const kind = rule.action === Action.ACTION_ACCEPT ? "allow" : rule.action === Action.ACTION_DROP ? "drop" : null;
  if (!kind) return null;
  return { set: `${kind}${v6 ? "6" : "4"}` as SetName, addr };
}

/** Host rules for both directions go into address sets; everything else is a chain rule. */
function place(rule: Rule): Placement {
  const match = normalizeMatch(rule);
  if (isHostMatch(match) && match.direction === Direction.DIRECTION_BOTH) {
    const v = match.src.family === 4 ? "4" : "6";
    return { set: `${match.action === Action.ACTION_ACCEPT ? "allow" : "drop"}${v}` as SetName, match };
  }
  return { set: null, match };
}

function addrOf(match: NormalizedMatch): string {
  return formatCidr(match.src).split("/")[0];
}

function prefixExpr(c: ReturnType<typeof parseCidr>): unknown {
  const text = formatCidr(c);
  const [addr, len] = text.split("/");
  return Number(len) === c.bytes.length * 8 ? addr : { prefix: { addr, len: Number(len) } };
}

const PORT_PROTOS = ["tcp", "udp", "sctp", "dccp", "udplite"];

/**
 * nftables back end: `table inet <name>` with timeout sets of blocked and
 * allowed hosts (v4 and v6) matched from base chains hooked at priority -300
 * on prerouting (remote = source) and output (remote = destination). CIDR,
 * one-direction, protocol and port rules are chain rules tagged with their id
 * in a comment; they are ordered by priority and rebuilt atomically when they
 * change. Interval sets are not used for CIDRs because they reject
 * overlapping elements, and people's CIDR rules legitimately overlap.
 */
export class NftablesEnforcer implements Enforcer {
  readonly name = "nftables" as const;
  private readonly nft: NftRunner;
  private general = new Map<number, Rule>();
  private hosts = new Map<number, { set: SetName; addr: string }>();
  private problem = "";

  constructor(
    private readonly opts: NftRunnerOptions & { table?: string; logger?: Logger } = {},
  ) {
    if (opts.table !== undefined && !/^[A-Za-z0-9_]{1,64}$/.test(opts.table))
      throw Object.assign(new Error(`nftables table name "${opts.table}" must be 1-64 letters, digits or _`), { code: "VIGIL_ERR_CONFIG" });
    this.nft = new NftRunner(opts);
  }

  get table(): string {
    return this.opts.table ?? "vigil";
  }

  get detail(): string {
    return `table inet ${this.table} via ${this.nft.mode === "library" ? "libnftables" : "nft"}${this.opts.netns ? ` in netns ${this.opts.netns}` : ""}${this.problem ? `; ${this.problem}` : ""}`;
  }

  available(): Promise<string | null> {
    return this.nft.works();
  }

  private base(): Record<string, unknown> {
    return { family: "inet", table: this.table };
  }

  private skeleton(): unknown[] {
    const t = this.table;
    const cmds: unknown[] = [{ add: { table: { family: "inet", name: t } } }];
    for (const [name, type] of [["drop4", "ipv4_addr"], ["drop6", "ipv6_addr"], ["allow4", "ipv4_addr"], ["allow6", "ipv6_addr"]])
      cmds.push({ add: { set: { ...this.base(), name, type, flags: ["timeout"], comment: "managed by vigil-rules" } } });
    cmds.push({ add: { chain: { ...this.base(), name: "pre", type: "filter", hook: "prerouting", prio: HOOK_PRIORITY, policy: "accept" } } });
    cmds.push({ add: { chain: { ...this.base(), name: "out", type: "filter", hook: "output", prio: HOOK_PRIORITY, policy: "accept" } } });
    cmds.push({ add: { chain: { ...this.base(), name: "rules_in" } } });
    cmds.push({ add: { chain: { ...this.base(), name: "rules_out" } } });
    cmds.push({ flush: { chain: { ...this.base(), name: "pre" } } });
    cmds.push({ flush: { chain: { ...this.base(), name: "out" } } });
    for (const [chain, field, sub] of [["pre", "saddr", "rules_in"], ["out", "daddr", "rules_out"]] as const) {
      const m = (proto: string, set: string) => ({ match: { op: "==", left: { payload: { protocol: proto, field } }, right: `@${set}` } });
      const rule = (expr: unknown[]) => ({ add: { rule: { ...this.base(), chain, expr } } });
      cmds.push(rule([m("ip", "allow4"), { accept: null }]));
      cmds.push(rule([m("ip6", "allow6"), { accept: null }]));
      cmds.push(rule([{ jump: { target: sub } }]));
      cmds.push(rule([m("ip", "drop4"), { counter: null }, { drop: null }]));
      cmds.push(rule([m("ip6", "drop6"), { counter: null }, { drop: null }]));
    }
    return cmds;
  }

  async start(): Promise<void> {
    await this.nft.apply(this.skeleton());
  }

  /**
   * A set element. Elements carry no comment: reconciliation keys them by
   * address, and comments cost nft a fifth of its parsing time. Commands are
   * always objects serialized by JSON.stringify, never text pasted together:
   * a hostile string can only ever be a (rejected) value.
   */
  private elem(rule: Rule, addr: string, nowMs: number): Elem {
    const ms = remainingMs(rule, nowMs);
    return ms ? { elem: { val: addr, timeout: Math.max(1, Math.ceil(ms / 1000)) } } : addr;
  }

  private elementCmd(op: "add" | "delete", set: SetName, elem: Elem[]): object {
    return { [op]: { element: { family: "inet", table: this.table, name: set, elem } } };
  }

  private generalRuleCmds(chain: "rules_in" | "rules_out", rule: Rule, match: NormalizedMatch): unknown {
    const ingress = chain === "rules_in";
    const proto = match.src.family === 4 ? "ip" : "ip6";
    const expr: unknown[] = [
      { match: { op: "==", left: { payload: { protocol: proto, field: ingress ? "saddr" : "daddr" } }, right: prefixExpr(match.src) } },
    ];
    if (match.dst)
      expr.push({ match: { op: "==", left: { payload: { protocol: proto, field: ingress ? "daddr" : "saddr" } }, right: prefixExpr(match.dst) } });
    const hasPorts = match.dportMin !== 0 || match.dportMax !== 0;
    if (match.protocol) expr.push({ match: { op: "==", left: { meta: { key: "l4proto" } }, right: match.protocol } });
    else if (hasPorts) expr.push({ match: { op: "==", left: { meta: { key: "l4proto" } }, right: { set: PORT_PROTOS } } });
    if (hasPorts) {
      // The rule's port is the local service: the destination port inbound, the source port of our replies outbound.
      const field = ingress ? "dport" : "sport";
      const right = match.dportMin === match.dportMax ? match.dportMin : { range: [match.dportMin, match.dportMax] };
      expr.push({ match: { op: "==", left: { payload: { protocol: "th", field } }, right } });
    }
    expr.push({ counter: null });
    expr.push(match.action === Action.ACTION_ACCEPT ? { accept: null } : { drop: null });
    return { add: { rule: { ...this.base(), chain, expr, comment: `vigil:${rule.id}` } } };
  }

  private chainCmds(nowS: number): unknown[] {
    const cmds: unknown[] = [{ flush: { chain: { ...this.base(), name: "rules_in" } } }, { flush: { chain: { ...this.base(), name: "rules_out" } } }];
    const rules = [...this.general.values()].filter((r) => !r.expiresAt || r.expiresAt > nowS).sort((a, b) => a.priority - b.priority || a.id - b.id);
    for (const r of rules) {
      const m = normalizeMatch(r);
      if (m.direction !== Direction.DIRECTION_EGRESS) cmds.push(this.generalRuleCmds("rules_in", r, m));
      if (m.direction !== Direction.DIRECTION_INGRESS) cmds.push(this.generalRuleCmds("rules_out", r, m));
    }
    return cmds;
  }

  async apply(upserts: Rule[], removals: Rule[]): Promise<void> {
    const nowMs = Date.now();
    const del = new Map<SetName, Elem[]>();
    const add = new Map<SetName, Elem[]>();
    let generalChanged = false;
    const fresh: NewHost[] = [];
    for (const r of removals) {
      const h = this.hosts.get(r.id);
      if (h) {
        // Also when the rule's time is up: the element's whole-second timeout outlives the rule by
        // up to a second, and the source must pass once the rule is announced expired.
        push(del, h.set, h.addr);
        this.hosts.delete(r.id);
      }
      if (this.general.delete(r.id)) generalChanged = true;
    }
    for (const r of upserts) {
      const fast = fastHostPlacement(r);
      const p = fast ? null : place(r);
      const host = fast ?? (p?.set ? { set: p.set, addr: addrOf(p.match) } : null);
      if (host) {
        // Replace: before Linux 6.10 an add leaves an existing element's timeout as it was.
        if (this.hosts.has(r.id)) {
          push(del, host.set, host.addr);
          push(add, host.set, this.elem(r, host.addr, nowMs));
        } else fresh.push({ ...host, rule: r });
        this.hosts.set(r.id, host);
      } else {
        this.general.set(r.id, r);
        generalChanged = true;
      }
    }
    const cmds: unknown[] = [...this.removalCmds(del)];
    for (const [set, elems] of add) cmds.push(this.elementCmd("add", set, elems));
    if (generalChanged) cmds.push(...this.chainCmds(nowMs / 1000));
    try {
      await this.applyWithNew(cmds, fresh);
      this.problem = "";
    } catch (err) {
      this.problem = (err as Error).message;
      throw err;
    }
  }

  /**
   * Sends `cmds` (removals, replacements, chain rules: one transaction, so a
   * replaced host is never briefly unblocked) with the first of the new hosts,
   * then the rest ELEMENTS_PER_TRANSACTION at a time. The kernel starts an
   * element's timeout when its transaction commits, and nft takes seconds to
   * parse a million elements: in one transaction, every timeout computed before
   * it ran out as much later (16 s at a million), and the next reconciliation
   * found most elements drifted and rewrote them. Each chunk's timeouts are
   * computed just before it is sent.
   */
  private async applyWithNew(cmds: unknown[], fresh: NewHost[]): Promise<void> {
    let i = 0;
    const chunk = (): object[] => {
      const nowMs = Date.now();
      const add = new Map<SetName, Elem[]>();
      const end = Math.min(fresh.length, i + ELEMENTS_PER_TRANSACTION);
      for (; i < end; i++) push(add, fresh[i]!.set, this.elem(fresh[i]!.rule, fresh[i]!.addr, nowMs));
      return [...add].map(([set, elems]) => this.elementCmd("add", set, elems));
    };
    await this.nft.apply([...cmds, ...chunk()]);
    while (i < fresh.length) await this.nft.apply(chunk());
  }

  /**
   * Deletes set elements whether or not they are still there. A plain delete of an element the
   * kernel has timed out meanwhile fails, and with it the whole transaction (every other change
   * of the batch); adding the element first (no-op when present) makes the delete always valid.
   * nft 1.0.8's `destroy element` does the same, but older nft is still common.
   */
  private removalCmds(del: Map<SetName, Elem[]>): object[] {
    const cmds: object[] = [];
    for (const [set, elems] of del) cmds.push(this.elementCmd("add", set, elems), this.elementCmd("delete", set, elems));
    return cmds;
  }

  /** Reads the table back: set elements (with time left) and tagged chain rules. */
  async actual(): Promise<{ elems: Map<string, { set: SetName; expiresS: number }>; ruleIds: Set<number> }> {
    const items = await this.nft.list(["table", "inet", this.table]);
    const elems = new Map<string, { set: SetName; expiresS: number }>();
    const ruleIds = new Set<number>();
    for (const item of items) {
      const set = item.set as { name: string; elem?: unknown[] } | undefined;
      if (set && ["drop4", "drop6", "allow4", "allow6"].includes(set.name)) {
        for (const e of set.elem ?? []) {
          const obj = (typeof e === "object" && e !== null && "elem" in e ? (e as { elem: Record<string, unknown> }).elem : { val: e }) as Record<string, unknown>;
          const val = typeof obj.val === "string" ? obj.val : null;
          if (!val) continue;
          elems.set(`${set.name}|${val}`, { set: set.name as SetName, expiresS: typeof obj.expires === "number" ? obj.expires : 0 });
        }
      }
      const rule = item.rule as { chain: string; comment?: string } | undefined;
      if (rule && (rule.chain === "rules_in" || rule.chain === "rules_out") && rule.comment?.startsWith("vigil:")) ruleIds.add(Number(rule.comment.slice(6)));
    }
    return { elems, ruleIds };
  }

  async reconcile(desired: Rule[]): Promise<ReconcileResult> {
    await this.start();
    // The kernel reports each element's time left when the listing reaches it: a million take
    // seconds, so a timeout is judged against the time left at both ends of the listing.
    const listedFrom = Date.now();
    const { elems, ruleIds } = await this.actual();
    const nowMs = Date.now();
    const want = new Map<string, Rule>();
    this.hosts.clear();
    this.general.clear();
    for (const r of desired) {
      if (r.expiresAt && r.expiresAt * 1000 <= nowMs) continue;
      const fast = fastHostPlacement(r);
      let p: Placement | null = null;
      try {
        p = fast ? null : place(r);
      } catch (err) {
        // One unusable rule must not keep the others out of the kernel.
        this.opts.logger?.error({ id: r.id, err: (err as Error).message }, "rule skipped at reconciliation: not enforceable");
        continue;
      }
      const host = fast ?? (p?.set ? { set: p.set, addr: addrOf(p.match) } : null);
      if (host) {
        want.set(`${host.set}|${host.addr}`, r);
        this.hosts.set(r.id, host);
      } else this.general.set(r.id, r);
    }
    const del = new Map<SetName, Elem[]>();
    const add = new Map<SetName, Elem[]>();
    let added = 0;
    let removed = 0;
    let kept = 0;
    let replaced = 0;
    for (const [key, e] of elems) {
      const r = want.get(key);
      const addr = key.split("|")[1];
      // A permanent rule has no timeout; a timed one is replaced when the kernel's clock drifts from ours by > 5 s.
      const drift = r
        ? r.expiresAt
          ? e.expiresS > remainingMs(r, listedFrom) / 1000 + 5 || e.expiresS < remainingMs(r, nowMs) / 1000 - 5 || e.expiresS === 0
          : e.expiresS !== 0
        : true;
      if (!r || drift) {
        push(del, e.set, addr);
        if (r) replaced++;
        else removed++;
      } else kept++;
      if (r && !drift) want.delete(key);
    }
    const fresh: NewHost[] = [];
    for (const [key, r] of want) {
      const [set, addr] = key.split("|") as [SetName, string];
      if (elems.has(key)) push(add, set, this.elem(r, addr, nowMs));
      else {
        fresh.push({ set, addr, rule: r });
        added++;
      }
    }
    const desiredGeneral = new Set(this.general.keys());
    for (const id of ruleIds) if (!desiredGeneral.has(id)) removed++;
    for (const id of desiredGeneral) if (!ruleIds.has(id)) added++;
    // Listed elements may time out before this runs.
    const cmds: unknown[] = [...this.removalCmds(del)];
    for (const [set, elems] of add) cmds.push(this.elementCmd("add", set, elems));
    cmds.push(...this.chainCmds(nowMs / 1000));
    await this.applyWithNew(cmds, fresh);
    this.problem = "";
    return { added, removed, kept, replaced };
  }

  /** True when our table or its hooks are gone (e.g. `nft flush ruleset` by a firewall reload). */
  async check(): Promise<boolean> {
    try {
      const items = await this.nft.list(["chain", "inet", this.table, "pre"]);
      return !items.some((i) => "rule" in i);
    } catch {
      return true;
    }
  }

  /** Set elements expire in the kernel; the service's own sweeper reports them. */
  onExpired(): void {}

  /** Removes the table (used by tests and `enforcer: dry-run` switches). */
  async destroy(): Promise<void> {
    await this.nft.apply([{ delete: { table: { family: "inet", name: this.table } } }]).catch(() => undefined);
    this.nft.close();
  }

  get mode(): string {
    return this.nft.mode;
  }

  async close(): Promise<void> {
    this.nft.close();
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}
