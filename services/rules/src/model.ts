import { AddressError, formatAddress, formatCidr, parseAddress, parseCidr, type Cidr } from "@vigil/frames";
import { Action, Direction, Origin, Rule } from "@vigil/proto";
import { InvalidArgumentError } from "./errors.js";

/** Maximum TTL accepted from a request: ten years, like the kernel module. */
export const MAX_TTL_S = 10 * 366 * 24 * 3600;

export interface NormalizedMatch {
  action: Action;
  src: Cidr;
  dst: Cidr | null;
  protocol: number;
  dportMin: number;
  dportMax: number;
  direction: Direction;
}

const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136]); // TCP, UDP, DCCP, SCTP, UDP-Lite

function cidr(field: string, text: string): Cidr {
  try {
    const c = parseCidr(text.trim());
    return c;
  } catch (err) {
    if (err instanceof AddressError) throw new InvalidArgumentError(field, err.message);
    throw err;
  }
}

/**
 * Checks and normalizes the match of a rule (CIDRs canonical, direction
 * explicit, ports ordered). Errors name the offending field with `prefix`.
 */
export function normalizeMatch(rule: Rule, prefix = "rule"): NormalizedMatch {
  const action = rule.action === Action.ACTION_UNSPECIFIED ? Action.ACTION_DROP : rule.action;
  if (action !== Action.ACTION_DROP && action !== Action.ACTION_ACCEPT)
    throw new InvalidArgumentError(`${prefix}.action`, `unknown action ${rule.action}`);
  if (!rule.srcCidr) throw new InvalidArgumentError(`${prefix}.src_cidr`, "is required (an address or CIDR)");
  const src = cidr(`${prefix}.src_cidr`, rule.srcCidr);
  const dst = rule.dstCidr ? cidr(`${prefix}.dst_cidr`, rule.dstCidr) : null;
  if (dst && dst.family !== src.family)
    throw new InvalidArgumentError(`${prefix}.dst_cidr`, "address family differs from src_cidr");
  if (!Number.isInteger(rule.protocol) || rule.protocol < 0 || rule.protocol > 255)
    throw new InvalidArgumentError(`${prefix}.protocol`, "must be 0..255 (IPPROTO_*, 0 = any)");
  for (const [name, v] of [["dport_min", rule.dportMin], ["dport_max", rule.dportMax]] as const)
    if (!Number.isInteger(v) || v < 0 || v > 65535) throw new InvalidArgumentError(`${prefix}.${name}`, "must be 0..65535");
  let dportMin = rule.dportMin;
  let dportMax = rule.dportMax;
  if (dportMin !== 0 && dportMax === 0) dportMax = dportMin;
  if (dportMax < dportMin) throw new InvalidArgumentError(`${prefix}.dport_max`, `is below dport_min (${dportMin}..${dportMax})`);
  if ((dportMin || dportMax) && rule.protocol !== 0 && !PORT_PROTOCOLS.has(rule.protocol))
    throw new InvalidArgumentError(`${prefix}.protocol`, `protocol ${rule.protocol} has no ports; use TCP, UDP, SCTP, DCCP, UDP-Lite or any`);
  const direction = rule.direction === Direction.DIRECTION_UNSPECIFIED ? Direction.DIRECTION_BOTH : rule.direction;
  if (![Direction.DIRECTION_INGRESS, Direction.DIRECTION_EGRESS, Direction.DIRECTION_BOTH].includes(direction))
    throw new InvalidArgumentError(`${prefix}.direction`, `unknown direction ${rule.direction}`);
  return { action, src, dst, protocol: rule.protocol, dportMin, dportMax, direction };
}

export function validateTtl(ttlS: number, field = "ttl_s"): number {
  if (!Number.isInteger(ttlS) || ttlS < 0 || ttlS > MAX_TTL_S)
    throw new InvalidArgumentError(field, `must be 0 (never expires) to ${MAX_TTL_S} seconds`);
  return ttlS;
}

/**
 * The low 53 bits of the 64-bit FNV-1a of `key` (over its UTF-16 code
 * units), at least 1. The 64-bit state is four 16-bit limbs, so that the
 * product with the prime (2^40 + 0x1b3) is small integer arithmetic: each
 * limb times 0x1b3, plus the limb two below shifted by 8 (the 2^40), with
 * carries, all below 2^27. Every rule loaded and every verdict decided takes
 * an id: this runs a million times in a restore.
 */
export function fnv53(key: string): number {
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  for (let i = 0; i < key.length; i++) {
    h0 ^= key.charCodeAt(i);
    const t0 = h0 * 0x1b3;
    const t1 = h1 * 0x1b3 + (t0 >>> 16);
    const t2 = h2 * 0x1b3 + (h0 << 8) + (t1 >>> 16);
    h3 = (h3 * 0x1b3 + (h1 << 8) + (t2 >>> 16)) & 0xffff;
    h0 = t0 & 0xffff;
    h1 = t1 & 0xffff;
    h2 = t2 & 0xffff;
  }
  const id = ((h3 & 0x1f) * 0x10000 + h2) * 0x100000000 + h1 * 0x10000 + h0;
  return id === 0 ? 1 : id;
}

/** 53-bit FNV-1a of the match: the same match always gets the same id, in every component. */
export function ruleIdOf(m: NormalizedMatch): number {
  return matchId(m, formatCidr(m.src), m.dst ? formatCidr(m.dst) : "");
}

/** ruleIdOf with the match's CIDRs already written (canonical). */
function matchId(m: NormalizedMatch, src: string, dst: string): number {
  return fnv53(`${m.action}|${src}|${dst}|${m.protocol}|${m.dportMin}|${m.dportMax}|${m.direction}`);
}

/** A host address parsed once: its bytes (4 or 16, IPv4-mapped unwrapped) and their canonical text. */
export interface HostAddress {
  bytes: Uint8Array;
  text: string;
}

/** Parses an address into a HostAddress; throws AddressError when it is not one. */
export function hostAddress(text: string): HostAddress {
  let b = parseAddress(text);
  // An IPv4-mapped IPv6 address is the IPv4 host: a v6 rule would never match its packets.
  if (b.length === 16 && b[10] === 0xff && b[11] === 0xff && b.subarray(0, 10).every((x) => x === 0)) b = b.slice(12);
  return { bytes: b, text: formatAddress(b, 0, b.length) };
}

/** The address as a host CIDR ("a.b.c.d/32", "x::y/128"). */
export function hostCidrOf(a: HostAddress): string {
  return `${a.text}/${a.bytes.length * 8}`;
}

/** The id of a DROP rule on a canonical CIDR in both directions: what canonicalRule would derive, without building a rule. */
export function blockRuleId(canonicalCidr: string): number {
  return fnv53([Action.ACTION_DROP, canonicalCidr, "", 0, 0, 0, Direction.DIRECTION_BOTH].join("|"));
}

/** The id of the detector block rule on a host (DROP, both directions). */
export function hostRuleId(a: HostAddress): number {
  return blockRuleId(hostCidrOf(a));
}

/** The canonical CIDR of the `prefix`-bit network holding the address. */
export function prefixCidrOf(a: HostAddress, prefix: number): string {
  const b = a.bytes.slice();
  for (let i = 0; i < b.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    b[i] &= (0xff << (8 - keep)) & 0xff;
  }
  return `${formatAddress(b, 0, b.length)}/${prefix}`;
}

/** A host rule: one exact address, no other condition (the kernel's hash set, nftables' address sets). */
export function isHostMatch(m: NormalizedMatch): boolean {
  return m.src.prefix === m.src.bytes.length * 8 && !m.dst && m.protocol === 0 && m.dportMin === 0 && m.dportMax === 0;
}

/** Only a source CIDR (any prefix): enforceable through an address set. */
export function isAddressOnly(m: NormalizedMatch): boolean {
  return !m.dst && m.protocol === 0 && m.dportMin === 0 && m.dportMax === 0;
}

/** Returns the rule with canonical fields and its derived id. */
export function canonicalRule(rule: Rule, prefix = "rule"): { rule: Rule; match: NormalizedMatch } {
  const match = normalizeMatch(rule, prefix);
  const src = formatCidr(match.src);
  const dst = match.dst ? formatCidr(match.dst) : "";
  const out: Rule = {
    ...rule,
    action: match.action,
    // The given text when it is already canonical: one flat string, not a second one built from parts.
    srcCidr: rule.srcCidr === src ? rule.srcCidr : src,
    dstCidr: rule.dstCidr === dst ? rule.dstCidr : dst,
    dportMin: match.dportMin,
    dportMax: match.dportMax,
    direction: match.direction,
  };
  const id = matchId(match, src, dst);
  if (rule.id && rule.id !== id) throw new InvalidArgumentError(`${prefix}.id`, `must be 0 or ${id} (ids are derived from the match)`);
  out.id = id;
  return { rule: out, match };
}

export const PROTOCOLS: Record<string, number> = { any: 0, icmp: 1, tcp: 6, udp: 17, dccp: 33, gre: 47, esp: 50, ah: 51, icmpv6: 58, sctp: 132, udplite: 136 };

/** "tcp" | "6" | 6 -> 6; null when unknown. */
export function protocolNumber(p: string | number): number | null {
  if (typeof p === "number") return Number.isInteger(p) && p >= 0 && p <= 255 ? p : null;
  const t = p.trim().toLowerCase();
  if (t in PROTOCOLS) return PROTOCOLS[t];
  return /^\d{1,3}$/.test(t) && Number(t) <= 255 ? Number(t) : null;
}

export function protocolName(p: number): string {
  return Object.entries(PROTOCOLS).find(([, n]) => n === p)?.[0] ?? String(p);
}

export function hostCidr(address: string): string {
  const b = parseAddress(address);
  return `${address}/${b.length * 8}`;
}

/** Wall-clock seconds, the unit of every rule time. */
export function nowS(): number {
  return Date.now() / 1000;
}

export function isActive(rule: Rule, nowS: number): boolean {
  return rule.expiresAt === 0 || rule.expiresAt > nowS;
}

export function originName(o: Origin): string {
  return ({ [Origin.ORIGIN_DETECTOR]: "detector", [Origin.ORIGIN_MANUAL]: "manual", [Origin.ORIGIN_FEEDBACK]: "feedback", [Origin.ORIGIN_CONFIG]: "config" } as Record<number, string>)[o] ?? "unspecified";
}

export { Rule };
