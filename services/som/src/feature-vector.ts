/**
 * The SOM's feature vector: the name and position of every window feature. Model files, the
 * README's definitions, the console and the training tools all index vectors by these, so they
 * live apart from the accumulator (features.ts) that fills them.
 */
/** The window features, in vector order. README.md defines each one. */
export const FEATURE_NAMES = [
  "avg_packet_size",
  "small_packets",
  "large_packets",
  "new_tcp_connections",
  "udp_packets",
  "icmp_packets",
  "fragments",
  "distinct_sources",
  "distinct_dst_ports",
  "inactive_tcp_connections",
  "icmp_unreachables",
  "source_fanout",
] as const;
export const FEATURE_COUNT = FEATURE_NAMES.length;
export const F_AVG_SIZE = 0;
export const F_SMALL = 1;
export const F_LARGE = 2;
export const F_NEW_TCP = 3;
export const F_UDP = 4;
export const F_ICMP = 5;
export const F_FRAGMENTS = 6;
export const F_SOURCES = 7;
export const F_DST_PORTS = 8;
export const F_INACTIVE = 9;
export const F_UNREACHABLES = 10;
export const F_FANOUT = 11;

/** IP packet length (header included) at or below which a packet is small. */
export const SMALL_PACKET_BYTES = 100;
/** IP packet length at or above which a packet is large. */
export const LARGE_PACKET_BYTES = 1000;
