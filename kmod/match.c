// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel-independent matching; see match.h. No kernel API in here: the
 * same file is built into test/unit/ with ASan/UBSan.
 */
#include "match.h"
#include "include/uapi/linux/vigil.h"

#define VIGIL_IPPROTO_TCP	6
#define VIGIL_IPPROTO_UDP	17
#define VIGIL_IPPROTO_DCCP	33
#define VIGIL_IPPROTO_SCTP	132
#define VIGIL_IPPROTO_UDPLITE	136

unsigned int vigil_family_bits(u8 family)
{
	return family == VIGIL_FAMILY_IPV6 ? 128 : 32;
}

/* Protocols whose header starts with source and destination port. */
bool vigil_port_proto(u8 proto)
{
	return proto == VIGIL_IPPROTO_TCP || proto == VIGIL_IPPROTO_UDP ||
	       proto == VIGIL_IPPROTO_SCTP || proto == VIGIL_IPPROTO_UDPLITE ||
	       proto == VIGIL_IPPROTO_DCCP;
}

void vigil_prefix_mask(u8 family, unsigned int prefix, union vigil_addr *mask)
{
	unsigned int bits = vigil_family_bits(family), i;

	if (prefix > bits)
		prefix = bits;
	memset(mask, 0, sizeof(*mask));
	for (i = 0; i < 16 && prefix; i++) {
		unsigned int take = prefix >= 8 ? 8 : prefix;

		mask->b[i] = (u8)(0xff00u >> take);
		prefix -= take;
	}
}

/* An address with bits set beyond its prefix is accepted and masked;
 * this only reports whether it was already canonical. */
bool vigil_addr_valid_for_prefix(u8 family, const union vigil_addr *addr,
				 unsigned int prefix)
{
	union vigil_addr m;
	unsigned int i;

	vigil_prefix_mask(family, prefix, &m);
	for (i = 0; i < 4; i++)
		if (addr->w[i] & ~m.w[i])
			return false;
	return true;
}

void vigil_gen_prepare(struct vigil_gen_match *m)
{
	unsigned int i;

	vigil_prefix_mask(m->family, m->src_prefix, &m->smask);
	vigil_prefix_mask(m->family, m->dst_prefix, &m->dmask);
	for (i = 0; i < 4; i++) {
		m->src.w[i] &= m->smask.w[i];
		m->dst.w[i] &= m->dmask.w[i];
	}
	m->ports = !(m->dport_min == 0 && m->dport_max == 0xffff);
}

static inline bool addr_in(const union vigil_addr *a, const union vigil_addr *net,
			   const union vigil_addr *mask)
{
	return ((a->w[0] & mask->w[0]) ^ net->w[0]) == 0 &&
	       ((a->w[1] & mask->w[1]) ^ net->w[1]) == 0 &&
	       ((a->w[2] & mask->w[2]) ^ net->w[2]) == 0 &&
	       ((a->w[3] & mask->w[3]) ^ net->w[3]) == 0;
}

/*
 * A first fragment that ends before its ports (or inside its extension
 * header chain, leaving proto 0) hides what the reassembled datagram will
 * be: the rest of the header arrives in a fragment that no port rule can
 * match. Legitimate senders never split so (RFC 7112, RFC 8200 4.5), and
 * the hook runs before defragmentation, so the fragment is judged as what
 * it could be: a drop rule's protocol and ports count as matched, an accept
 * rule's as not (it cannot vouch for a port it did not see).
 */
static inline bool vigil_hidden_l4_dropped(const struct vigil_gen_match *m,
					   const struct vigil_pkt *p)
{
	return p->l4_hidden && m->action == VIGIL_ACTION_DROP;
}

/* Rules are written from our side (see struct vigil_gen_match): remote and
 * local are source and destination of ingress packets, and the other way
 * round for egress. */
bool vigil_gen_matches(const struct vigil_gen_match *m,
		       const struct vigil_pkt *p, u64 now)
{
	bool egress = p->dir == VIGIL_DIR_EGRESS;
	u16 lport = egress ? p->sport : p->dport;

	if (m->family != p->family || !(m->dir & p->dir))
		return false;
	if (m->proto && m->proto != p->proto &&
	    !(p->proto == 0 && vigil_hidden_l4_dropped(m, p)))
		return false;
	if (m->ports) {
		if (p->has_ports) {
			if (lport < m->dport_min || lport > m->dport_max)
				return false;
		} else if (!vigil_hidden_l4_dropped(m, p)) {
			/* Non-first fragments and unknown transports carry no port. */
			return false;
		}
	}
	if (!addr_in(egress ? &p->dst : &p->src, &m->src, &m->smask) ||
	    !addr_in(egress ? &p->src : &p->dst, &m->dst, &m->dmask))
		return false;
	return !vigil_expired(m->expires, now);
}

/* Evaluation order of the general array: priority, then id. */
int vigil_gen_cmp(const void *a, const void *b)
{
	const struct vigil_gen_match *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return 0;
}

/* First matching entry in evaluation order; with @limit, only entries whose
 * priority is strictly below @prio_limit are considered. */
int vigil_gen_lookup(const struct vigil_gen_match *tbl, unsigned int n,
		     const struct vigil_pkt *p, u64 now, u32 prio_limit,
		     bool limit)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (limit && tbl[i].priority >= prio_limit)
			break;
		if (vigil_gen_matches(&tbl[i], p, now))
			return (int)i;
	}
	return -1;
}

bool vigil_host_applies(const struct vigil_host_match *h, u8 dir, u64 now)
{
	return (h->dir & dir) && !vigil_expired(h->expires, now);
}

/*
 * The verdict is the action of the first matching rule in priority order.
 * A host rule and general rules share the priority space; on equal
 * priority the host rule is evaluated first.
 */
void vigil_decide(const struct vigil_host_match *host,
		  const struct vigil_gen_match *tbl, unsigned int n,
		  const struct vigil_pkt *p, u64 now, struct vigil_verdict *v)
{
	int i;

	v->action = 0;
	v->is_host = 0;
	v->gen_index = -1;
	if (host && !vigil_host_applies(host, p->dir, now))
		host = NULL;
	i = vigil_gen_lookup(tbl, n, p, now, host ? host->priority : 0,
			     host != NULL);
	if (i >= 0) {
		v->action = tbl[i].action;
		v->gen_index = i;
	} else if (host) {
		v->action = host->action;
		v->is_host = 1;
	}
}

/* Host rules match the remote side: the source of ingress packets and the
 * destination of egress packets. */
void vigil_host_key_from_pkt(const struct vigil_pkt *p, struct vigil_host_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = p->family;
	k->addr = p->dir == VIGIL_DIR_EGRESS ? p->dst : p->src;
}

static inline u32 rotl32(u32 x, unsigned int r)
{
	return (x << r) | (x >> (32 - r));
}

/* murmur3-style mixing of the five key words (keys are 20 bytes). */
u32 vigil_host_hash(const struct vigil_host_key *k, u32 seed)
{
	const u32 *w = (const u32 *)k;
	u32 h = seed ^ (u32)sizeof(*k);
	unsigned int i;

	for (i = 0; i < VIGIL_HOST_KEY_WORDS; i++) {
		u32 x = w[i] * 0xcc9e2d51u;

		x = rotl32(x, 15) * 0x1b873593u;
		h ^= x;
		h = rotl32(h, 13) * 5 + 0xe6546b64u;
	}
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}
