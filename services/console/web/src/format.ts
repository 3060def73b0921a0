export function fmtRate(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(1)} k`;
  if (v >= 100) return v.toFixed(0);
  return v.toFixed(v < 10 ? 2 : 1);
}

export function fmtCount(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return Math.round(v).toLocaleString("en-US");
}

export function fmtScore(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3);
}

const pad = (n: number) => String(n).padStart(2, "0");

/** Seconds since the epoch, shown in UTC: capture times come from other hosts and replays. */
export function fmtTime(ts: number | null | undefined, withDate = false): string {
  if (!ts) return "–";
  const d = new Date(ts * 1000);
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return withDate ? `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${time} UTC` : time;
}

export function fmtDuration(s: number): string {
  if (s < 0) s = 0;
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = Math.floor(s % 60);
  if (d) return `${d}d ${hh}h ${pad(mm)}m`;
  if (hh) return `${hh}h ${pad(mm)}m ${pad(ss)}s`;
  return `${mm}m ${pad(ss)}s`;
}

export function fmtAgo(ms: number): string {
  const s = Math.max(0, (Date.now() - ms) / 1000);
  return s < 1 ? "now" : s < 90 ? `${s.toFixed(0)} s ago` : `${fmtDuration(s)} ago`;
}

export const PROTOCOLS: Record<number, string> = { 0: "any", 1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp" };

export function enumText(v: string | undefined, prefix: string): string {
  if (!v) return "";
  return v.startsWith(prefix) ? v.slice(prefix.length).toLowerCase() : v.toLowerCase();
}

/** A measured value: integers as integers, fractions with up to 3 decimals. */
export function fmtNum(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  return Math.abs(v) >= 1000 ? v.toFixed(0) : String(+v.toFixed(3));
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "2026-12-07", the UTC date of a capture time. */
export function fmtDate(ts: number | null | undefined): string {
  if (!ts) return "–";
  const d = new Date(ts * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** "Dec 7", for axis labels where a full date does not fit. */
export function fmtShortDate(ts: number): string {
  const d = new Date(ts * 1000);
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
}

/** An address and port: IPv6 in brackets ("[fd77::10]:22"), as URLs write them, so the port cannot read as part of the address. */
export function fmtEndpoint(address: string | undefined, port?: number | null): string {
  const a = address || "?";
  if (port === undefined || port === null) return a;
  return a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`;
}

/** Splits "addr:port" at its last colon; IPv6 with a port is ambiguous without brackets, so callers say whether a port is there. */
function endpointText(text: string, hasPort: boolean): string {
  if (text.startsWith("[") || !hasPort) return text;
  const i = text.lastIndexOf(":");
  if (i <= 0) return text;
  const port = Number(text.slice(i + 1));
  return Number.isInteger(port) ? fmtEndpoint(text.slice(0, i), port) : text;
}

/**
 * A judged item's key as the scores carry it, "client -> server:port class" (the detector's) or
 * "client:port -> server:port class" (a verdict's connection), with IPv6 endpoints bracketed.
 */
export function fmtItemKey(key: string, clientHasPort: boolean): string {
  const m = /^(\S+) -> (\S+)(.*)$/.exec(key);
  if (!m) return key;
  return `${endpointText(m[1], clientHasPort)} → ${endpointText(m[2], true)}${m[3]}`;
}

/** Capture time far from when the console received it: a replayed capture (a pcap), not live traffic. */
export const LIVE_SKEW_S = 120;
export function isReplayed(captureTs: number | undefined, receivedAt: number): boolean {
  return !!captureTs && Math.abs(receivedAt - captureTs) > LIVE_SKEW_S;
}
