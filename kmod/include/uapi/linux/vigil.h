/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Vigil kernel ABI: the capture ring mapped from /dev/vigil and the "vigil"
 * generic netlink family. This header is the only definition of both; the
 * module, kmod/tools and every userspace component include it.
 */
#ifndef _UAPI_LINUX_VIGIL_H
#define _UAPI_LINUX_VIGIL_H

#include <linux/types.h>

#define VIGIL_DEVICE_NAME	"vigil"

/* ------------------------------------------------------------------------
 * Frame record: one per captured packet, identical in the ring slots and in
 * the batches userspace publishes. The captured bytes follow the header and
 * start at the L3 header.
 */
enum vigil_direction {
	VIGIL_DIR_UNKNOWN	= 0,
	VIGIL_DIR_INGRESS	= 1,
	VIGIL_DIR_EGRESS	= 2,
};

enum vigil_family {
	VIGIL_FAMILY_IPV4	= 4,
	VIGIL_FAMILY_IPV6	= 6,
};

#define VIGIL_FRAME_F_DROPPED	(1U << 0)	/* a drop rule matched this packet */

struct vigil_frame {
	__u64	ts_ns;		/* CLOCK_REALTIME, nanoseconds */
	__u32	ifindex;
	__u32	orig_len;	/* L3 length of the packet on the wire */
	__u16	cap_len;	/* bytes that follow this header */
	__u8	direction;	/* enum vigil_direction */
	__u8	family;		/* enum vigil_family */
	__u8	flags;		/* VIGIL_FRAME_F_* */
	__u8	reserved[3];	/* zero */
};

#define VIGIL_FRAME_HDR_LEN	24

/* ------------------------------------------------------------------------
 * Capture rings. mmap() of /dev/vigil, offset 0, maps:
 *
 *   [ info page ][ ring 0: ctl page | slots ][ ring 1: ctl page | slots ] ...
 *
 * One ring per possible CPU; ring i's control page is at
 * ring_offset + i * ring_stride and its slots start page_size bytes later.
 * Slot n of a ring (n free-running) is at slots + (n & (slots_per_ring - 1))
 * * slot_size and holds a struct vigil_frame followed by cap_len bytes.
 *
 * The kernel is the only producer of a ring: it fills slot `producer`, then
 * publishes it with a store-release of producer + 1. The reader loads
 * producer with acquire, reads slots up to it and releases them with a
 * store-release of consumer. A ring with producer - consumer ==
 * slots_per_ring is full: the frame is counted in drops, the packet is not
 * affected.
 */
#define VIGIL_RING_MAGIC	0x4e524756U	/* "VGRN" little-endian */
#define VIGIL_RING_ABI_VERSION	1

struct vigil_ring_info {
	__u32	magic;
	__u32	abi_version;
	__u32	ring_count;
	__u32	slots_per_ring;	/* power of two */
	__u32	slot_size;	/* multiple of 64, >= VIGIL_FRAME_HDR_LEN + snaplen */
	__u32	snaplen;
	__u32	page_size;
	__u32	reserved;
	__u64	ring_offset;	/* offset of ring 0's control page */
	__u64	ring_stride;	/* bytes from one ring's control page to the next */
	__u64	map_size;	/* total bytes to mmap */
};

/* Each index sits on its own cache line: producer and consumer never share one. */
struct vigil_ring_ctl {
	__u64	producer;	/* written by the kernel */
	__u64	reserved0[7];
	__u64	consumer;	/* written by the reader */
	__u64	reserved1[7];
	__u64	drops;		/* frames lost to a full ring */
	__u64	reserved2[7];
};

/* ------------------------------------------------------------------------
 * Generic netlink family "vigil", version 1.
 */
#define VIGIL_GENL_NAME		"vigil"
#define VIGIL_GENL_VERSION	1
#define VIGIL_MCGRP_EVENTS	"events"	/* joining needs CAP_NET_ADMIN */

enum vigil_cmd {
	VIGIL_CMD_UNSPEC,
	VIGIL_CMD_RULE_ADD,	/* one or more VIGIL_ATTR_RULE; CAP_NET_ADMIN */
	VIGIL_CMD_RULE_DEL,	/* one or more VIGIL_ATTR_RULE carrying an ID; CAP_NET_ADMIN */
	VIGIL_CMD_RULE_FLUSH,	/* CAP_NET_ADMIN */
	VIGIL_CMD_RULE_GET,	/* dump: one VIGIL_ATTR_RULE per message; CAP_NET_ADMIN */
	VIGIL_CMD_STATS_GET,	/* reply: VIGIL_ATTR_STATS */
	VIGIL_CMD_CONFIG_GET,	/* reply: VIGIL_ATTR_CONFIG */
	VIGIL_CMD_CONFIG_SET,	/* VIGIL_ATTR_CONFIG; CAP_NET_ADMIN */
	VIGIL_CMD_RULE_EXPIRED,	/* event on VIGIL_MCGRP_EVENTS: VIGIL_ATTR_RULE */
	__VIGIL_CMD_MAX,
};
#define VIGIL_CMD_MAX (__VIGIL_CMD_MAX - 1)

enum vigil_attr {
	VIGIL_ATTR_UNSPEC,
	VIGIL_ATTR_RULE,	/* nest of enum vigil_rule_attr */
	VIGIL_ATTR_STATS,	/* nest of enum vigil_stats_attr */
	VIGIL_ATTR_CONFIG,	/* nest of enum vigil_config_attr */
	VIGIL_ATTR_PAD,
	__VIGIL_ATTR_MAX,
};
#define VIGIL_ATTR_MAX (__VIGIL_ATTR_MAX - 1)

/*
 * Rules are written from our side, in both directions. A host rule's ADDR
 * and a general rule's SRC are the remote side: the source of ingress
 * packets, the destination of egress ones. DST is the local side, and
 * DPORT_MIN..DPORT_MAX the local port: the destination port of ingress
 * packets, the source port of egress ones (our service and its replies).
 *
 * One host rule per address: a RULE_ADD of a host rule for an address that
 * another id holds replaces that rule atomically, and the other id ends
 * there (as if deleted; no RULE_EXPIRED event). IDs are the caller's names
 * for rules; for host rules the address is the key.
 */
enum vigil_rule_kind {
	VIGIL_RULE_HOST		= 1,	/* exact address, hash set */
	VIGIL_RULE_GENERAL	= 2,	/* CIDRs, protocol, ports: ordered list */
};

enum vigil_action {
	VIGIL_ACTION_DROP	= 1,
	VIGIL_ACTION_ACCEPT	= 2,
};

/* Rule direction is a mask of enum vigil_direction values. */
#define VIGIL_RULE_DIR_INGRESS	VIGIL_DIR_INGRESS
#define VIGIL_RULE_DIR_EGRESS	VIGIL_DIR_EGRESS
#define VIGIL_RULE_DIR_BOTH	(VIGIL_DIR_INGRESS | VIGIL_DIR_EGRESS)

#define VIGIL_MAX_GENERAL_RULES	4096
#define VIGIL_MAX_HOST_RULES	1048576

enum vigil_rule_attr {
	VIGIL_RULE_ATTR_UNSPEC,
	VIGIL_RULE_ATTR_ID,		/* u64, chosen by userspace; required */
	VIGIL_RULE_ATTR_KIND,		/* u8, enum vigil_rule_kind; required on add */
	VIGIL_RULE_ATTR_FAMILY,		/* u8, enum vigil_family; required on add */
	VIGIL_RULE_ATTR_ADDR,		/* host rules: 4 or 16 bytes, network order; remote */
	VIGIL_RULE_ATTR_SRC,		/* general rules: 4 or 16 bytes; remote side */
	VIGIL_RULE_ATTR_SRC_PREFIX,	/* u8, 0..32 or 0..128 */
	VIGIL_RULE_ATTR_DST,		/* general rules: 4 or 16 bytes; local side */
	VIGIL_RULE_ATTR_DST_PREFIX,	/* u8 */
	VIGIL_RULE_ATTR_PROTO,		/* u8, IPPROTO_*; 0 = any */
	VIGIL_RULE_ATTR_DPORT_MIN,	/* u16, host order; the local port */
	VIGIL_RULE_ATTR_DPORT_MAX,	/* u16, host order; >= DPORT_MIN */
	VIGIL_RULE_ATTR_DIRECTION,	/* u8, VIGIL_RULE_DIR_*; default BOTH */
	VIGIL_RULE_ATTR_ACTION,		/* u8, enum vigil_action; default DROP */
	VIGIL_RULE_ATTR_PRIORITY,	/* u32, lower is evaluated first */
	VIGIL_RULE_ATTR_TIMEOUT_MS,	/* u64, ms until expiry; absent or 0 = never */
	VIGIL_RULE_ATTR_HITS,		/* u64, dump only */
	VIGIL_RULE_ATTR_BYTES,		/* u64, dump only */
	VIGIL_RULE_ATTR_PAD,
	__VIGIL_RULE_ATTR_MAX,
};
#define VIGIL_RULE_ATTR_MAX (__VIGIL_RULE_ATTR_MAX - 1)

enum vigil_stats_attr {
	VIGIL_STATS_ATTR_UNSPEC,
	VIGIL_STATS_ATTR_SEEN,		/* u64, packets through the hooks */
	VIGIL_STATS_ATTR_DROPPED,	/* u64, packets dropped by rules */
	VIGIL_STATS_ATTR_CAPTURED,	/* u64, frames written to the rings */
	VIGIL_STATS_ATTR_RING_DROPS,	/* u64, frames lost to full rings */
	VIGIL_STATS_ATTR_HOST_RULES,	/* u32 */
	VIGIL_STATS_ATTR_GENERAL_RULES,	/* u32 */
	VIGIL_STATS_ATTR_PAD,
	__VIGIL_STATS_ATTR_MAX,
};
#define VIGIL_STATS_ATTR_MAX (__VIGIL_STATS_ATTR_MAX - 1)

enum vigil_config_attr {
	VIGIL_CONFIG_ATTR_UNSPEC,
	VIGIL_CONFIG_ATTR_CAPTURE,	/* u8, 0 or 1 */
	VIGIL_CONFIG_ATTR_SAMPLE,	/* u32, capture 1 in N; >= 1 */
	VIGIL_CONFIG_ATTR_CAPTURE_DROPPED, /* u8, 0 or 1 */
	VIGIL_CONFIG_ATTR_SNAPLEN,	/* u32, read-only (module parameter) */
	VIGIL_CONFIG_ATTR_SLOTS,	/* u32, read-only (module parameter) */
	VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK, /* u8, 0 or 1 */
	__VIGIL_CONFIG_ATTR_MAX,
};
#define VIGIL_CONFIG_ATTR_MAX (__VIGIL_CONFIG_ATTR_MAX - 1)

#endif /* _UAPI_LINUX_VIGIL_H */
