import {
  F_AVG_SIZE,
  F_DST_PORTS,
  F_FANOUT,
  F_FRAGMENTS,
  F_ICMP,
  F_INACTIVE,
  F_LARGE,
  F_NEW_TCP,
  F_SMALL,
  F_UDP,
  F_UNREACHABLES,
  type WindowStats,
} from "./features.js";

export interface AttributionOptions {
  /** A source whose share of the deviation reaches this is named in a verdict. */
  dominantShare: number;
  /** When the sources not named account for at least this share, one aggregate verdict is emitted too. */
  aggregateShare: number;
  /** At most this many sources named per window. */
  maxSources: number;
  /** A source must have sent at least this many packets in the window to be named. */
  minSourcePackets: number;
}

export const DEFAULT_ATTRIBUTION: AttributionOptions = {
  dominantShare: 0.25,
  aggregateShare: 0.5,
  maxSources: 4,
  minSourcePackets: 10,
};

export interface SourceShareInfo {
  index: number;
  address: string;
  share: number;
  packets: number;
  ports: number;
  /** Of ports, those the source probed (opened): what a scan sends, not a server's answers. */
  probes: number;
  halfOpen: number;
  fragments: number;
}

export interface Attribution {
  /**
   * Weight of each evidence group in the deviation: packets, ports, new connections, half-open, fragments,
   * hosts probed (fan-out), destination-unreachable replies received (refused probes).
   */
  weights: { packets: number; ports: number; newTcp: number; halfOpen: number; fragments: number; hosts: number; refused: number };
  dominant: SourceShareInfo[];
  /** The largest sources by share, dominant or not (evidence). */
  ranked: SourceShareInfo[];
  /** Share left to the sources below the dominant share: spread over many. */
  residual: number;
  aggregate: boolean;
  /** The attacked local address: a known local address, else the most contacted destination. */
  localAddress: string;
  localIndex: number;
  localPorts: number[];
  sources: number;
}

const pos = (v: number) => (v > 0 ? v * v : 0);

/**
 * Ranks the remote sources of an anomalous window by their share of what
 * deviates. Each feature's positive deviation from the best-matching unit
 * (squared) weighs one evidence group; a source's share is the weighted sum of
 * its fraction of each group's total. Local addresses (known from the frame
 * direction, or inferred as the most contacted destination when the direction
 * is unknown) are never ranked.
 */
export function attribute(w: WindowStats, deviation: ArrayLike<number>, opts: AttributionOptions): Attribution {
  w.finish();
  const gPackets = pos(deviation[F_SMALL]) + pos(deviation[F_LARGE]) + pos(deviation[F_UDP]) + pos(deviation[F_ICMP]) + deviation[F_AVG_SIZE] ** 2;
  const gPorts = pos(deviation[F_DST_PORTS]);
  const gNew = pos(deviation[F_NEW_TCP]);
  const gHalf = pos(deviation[F_INACTIVE]);
  const gFrag = pos(deviation[F_FRAGMENTS]);
  const gHosts = pos(deviation[F_FANOUT]);
  const gRefused = pos(deviation[F_UNREACHABLES]);

  const n = w.addrCount;
  const localIndex = w.localIndex;
  const isLocal = (i: number) => w.isLocalIndex(i);

  // Totals run over every sender, local ones included: a remote source's share is its
  // part of the whole window's evidence, so the replies of a scanned remote host cannot
  // inherit the share of the local scanner (an outbound anomaly names no remote host).
  let tPackets = 0;
  let tPorts = 0;
  let tNew = 0;
  let tHalf = 0;
  let tFrag = 0;
  let tHosts = 0;
  let tRefused = 0;
  let sources = 0;
  for (let i = 0; i < n; i++) {
    // Refusals are evidence against the remote prober they answer; those our side receives were not counted,
    // and those reaching the inferred local address (direction unknown) name no one either.
    if (!isLocal(i)) tRefused += w.recvUnreachables[i];
    if (w.sentPackets[i] === 0) continue;
    if (!isLocal(i)) sources++;
    tPackets += w.sentPackets[i];
    tPorts += w.sentPairs[i];
    tNew += w.sentNewTcp[i];
    tHalf += w.halfOpen[i];
    tFrag += w.sentFragments[i];
    tHosts += w.sentHosts[i];
  }
  // Groups with nothing to share out cannot single anyone out.
  let wp = tPackets ? gPackets : 0;
  let wo = tPorts ? gPorts : 0;
  let wn = tNew ? gNew : 0;
  let wh = tHalf ? gHalf : 0;
  let wf = tFrag ? gFrag : 0;
  let wt = tHosts ? gHosts : 0;
  let wr = tRefused ? gRefused : 0;
  let sum = wp + wo + wn + wh + wf + wt + wr;
  if (sum === 0) {
    wp = 1;
    sum = 1;
  }
  wp /= sum;
  wo /= sum;
  wn /= sum;
  wh /= sum;
  wf /= sum;
  wt /= sum;
  wr /= sum;
  const shareOf = (i: number) =>
    (tPackets ? (wp * w.sentPackets[i]) / tPackets : 0) +
    (tPorts ? (wo * w.sentPairs[i]) / tPorts : 0) +
    (tNew ? (wn * w.sentNewTcp[i]) / tNew : 0) +
    (tHalf ? (wh * w.halfOpen[i]) / tHalf : 0) +
    (tFrag ? (wf * w.sentFragments[i]) / tFrag : 0) +
    (tHosts ? (wt * w.sentHosts[i]) / tHosts : 0) +
    (tRefused && !isLocal(i) ? (wr * w.recvUnreachables[i]) / tRefused : 0);

  let localShare = 0;
  const ranked: SourceShareInfo[] = [];
  const keep = Math.max(opts.maxSources, 8);
  let minKept = -1;
  for (let i = 0; i < n; i++) {
    if (w.sentPackets[i] === 0) continue;
    const share = shareOf(i);
    if (isLocal(i)) {
      if (share >= opts.dominantShare) localShare += share;
      continue;
    }
    if (ranked.length >= keep && share <= minKept) continue;
    ranked.push({
      index: i,
      address: "",
      share,
      packets: w.sentPackets[i],
      ports: w.sentPairs[i],
      probes: w.sentProbes[i],
      halfOpen: w.halfOpen[i],
      fragments: w.sentFragments[i],
    });
    if (ranked.length > keep * 4) {
      ranked.sort((a, b) => b.share - a.share || a.index - b.index);
      ranked.length = keep;
      minKept = ranked[keep - 1].share;
    }
  }
  ranked.sort((a, b) => b.share - a.share || a.index - b.index);
  if (ranked.length > keep) ranked.length = keep;
  for (const r of ranked) r.address = w.address(r.index);

  // A large share held by a source too small to name, or by a local address, is still
  // concentrated, not spread: it counts against the aggregate, it just names no one.
  const large = ranked.filter((r) => r.share >= opts.dominantShare);
  const dominant = large.filter((r) => r.packets >= opts.minSourcePackets).slice(0, opts.maxSources);
  const residual = Math.max(0, 1 - localShare - large.reduce((s, r) => s + r.share, 0));
  const aggregate = residual >= opts.aggregateShare;

  const localPorts = w.packets > 0 ? w.busyPorts(Math.max(1, Math.ceil(0.2 * w.packets)), 8) : [];
  return {
    weights: { packets: wp, ports: wo, newTcp: wn, halfOpen: wh, fragments: wf, hosts: wt, refused: wr },
    dominant,
    ranked,
    residual,
    aggregate,
    localAddress: localIndex >= 0 ? w.address(localIndex) : "",
    localIndex,
    localPorts: localPorts.sort((a, b) => a - b),
    sources,
  };
}
