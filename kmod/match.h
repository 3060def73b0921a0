/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel-independent packet/rule matching and the host-set hash. Compiled
 * into vigil.ko and into the userspace unit tests and benchmark (test/unit),
 * so it must not use any kernel API: only fixed-width integer types and
 * plain C.
 */
#ifndef _VIGIL_MATCH_H
#define _VIGIL_MATCH_H

#include "ktypes.h"

/* An IPv4 address occupies b[0..3]; the rest stays zero. Network order. */
union vigil_addr {
	u8	b[16];
	u32	w[4];
};

/* What the hooks extract from a packet; everything the matchers look at. */
struct vigil_pkt {
	union vigil_addr src;
	union vigil_addr dst;
	u16	sport;		/* host order; valid only if has_ports */
	u16	dport;
	u8	family;		/* VIGIL_FAMILY_IPV4 / _IPV6 */
	u8	proto;		/* L4 protocol, 0 when it could not be found */
	u8	dir;		/* VIGIL_DIR_INGRESS / _EGRESS */
	u8	has_ports;	/* first fragment (or unfragmented) of TCP/UDP/SCTP/UDPLITE/DCCP */
	u8	is_frag;	/* non-first fragment: addresses and protocol only */
	u8	l4_hidden;	/* first fragment that does not hold its ports (see match.c) */
};

/* Key of the exact-address host set: family + the remote address. */
struct vigil_host_key {
	u8	family;
	u8	pad[3];
	union vigil_addr addr;
};

#define VIGIL_HOST_KEY_WORDS (sizeof(struct vigil_host_key) / sizeof(u32))

/*
 * A general rule as the packet path sees it: an entry of the sorted array
 * published under RCU. Masks are precomputed; src/dst are stored masked.
 * Like host rules, and like the nftables back end, a general rule is written
 * from our side: src is the remote side (the source of ingress packets, the
 * destination of egress ones), dst the local side, and the port range is the
 * local port (the destination port of ingress packets, the source port of
 * egress ones: the service we offer and its replies).
 */
struct vigil_gen_match {
	union vigil_addr src;	/* remote side */
	union vigil_addr smask;
	union vigil_addr dst;	/* local side */
	union vigil_addr dmask;
	u64	expires;	/* jiffies64; 0 = never */
	u64	id;
	u32	priority;
	u16	dport_min;	/* local port */
	u16	dport_max;
	u8	family;
	u8	proto;		/* 0 = any */
	u8	dir;		/* mask of VIGIL_DIR_* */
	u8	action;		/* VIGIL_ACTION_* */
	u8	src_prefix;
	u8	dst_prefix;
	u8	ports;		/* 1 if a port range narrower than 0..65535 is set */
	u8	pad;
	void	*owner;		/* kernel: struct vigil_rule * */
};

/* The part of a host rule the packet path reads. */
struct vigil_host_match {
	u64	expires;	/* jiffies64; 0 = never */
	u32	priority;
	u8	dir;
	u8	action;
};

/* Result of a lookup: the deciding rule, or action 0 when none matched. */
struct vigil_verdict {
	u8	action;		/* 0 = no rule, else VIGIL_ACTION_* */
	u8	is_host;	/* deciding rule is the host rule */
	int	gen_index;	/* index into the general array, or -1 */
};

static inline bool vigil_expired(u64 expires, u64 now)
{
	return expires != 0 && now >= expires;
}

unsigned int vigil_family_bits(u8 family);
void vigil_prefix_mask(u8 family, unsigned int prefix, union vigil_addr *mask);
bool vigil_addr_valid_for_prefix(u8 family, const union vigil_addr *addr,
				 unsigned int prefix);
void vigil_gen_prepare(struct vigil_gen_match *m);
bool vigil_gen_matches(const struct vigil_gen_match *m,
		       const struct vigil_pkt *p, u64 now);
int vigil_gen_cmp(const void *a, const void *b);
int vigil_gen_lookup(const struct vigil_gen_match *tbl, unsigned int n,
		     const struct vigil_pkt *p, u64 now, u32 prio_limit,
		     bool limit);
void vigil_decide(const struct vigil_host_match *host,
		  const struct vigil_gen_match *tbl, unsigned int n,
		  const struct vigil_pkt *p, u64 now, struct vigil_verdict *v);
bool vigil_host_applies(const struct vigil_host_match *h, u8 dir, u64 now);
void vigil_host_key_from_pkt(const struct vigil_pkt *p,
			     struct vigil_host_key *k);
u32 vigil_host_hash(const struct vigil_host_key *k, u32 seed);
bool vigil_port_proto(u8 proto);

#endif /* _VIGIL_MATCH_H */
