// SPDX-License-Identifier: GPL-2.0
/*
 * A rule as netlink attributes and back: the policies the core validates
 * before a handler runs, the cross-attribute checks it cannot express
 * (required attributes, address length against family, prefix length
 * against family, port ranges), each with an extack message naming the
 * attribute, and the rule nest of dumps and events.
 */
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/string.h>
#include <net/netlink.h>

#include "rules.h"
#include "rule_nla.h"

/* Ten years: keeps timeout_ms * HZ far from overflowing. */
#define VIGIL_MAX_TIMEOUT_MS	(10ULL * 366 * 24 * 3600 * 1000)

const struct nla_policy vigil_rule_policy[VIGIL_RULE_ATTR_MAX + 1] = {
	[VIGIL_RULE_ATTR_ID]		= { .type = NLA_U64 },
	[VIGIL_RULE_ATTR_KIND]		= NLA_POLICY_RANGE(NLA_U8, VIGIL_RULE_HOST,
							   VIGIL_RULE_GENERAL),
	[VIGIL_RULE_ATTR_FAMILY]	= NLA_POLICY_RANGE(NLA_U8, VIGIL_FAMILY_IPV4,
							   VIGIL_FAMILY_IPV6),
	[VIGIL_RULE_ATTR_ADDR]		= { .type = NLA_BINARY, .len = 16 },
	[VIGIL_RULE_ATTR_SRC]		= { .type = NLA_BINARY, .len = 16 },
	[VIGIL_RULE_ATTR_SRC_PREFIX]	= NLA_POLICY_MAX(NLA_U8, 128),
	[VIGIL_RULE_ATTR_DST]		= { .type = NLA_BINARY, .len = 16 },
	[VIGIL_RULE_ATTR_DST_PREFIX]	= NLA_POLICY_MAX(NLA_U8, 128),
	[VIGIL_RULE_ATTR_PROTO]		= { .type = NLA_U8 },
	[VIGIL_RULE_ATTR_DPORT_MIN]	= { .type = NLA_U16 },
	[VIGIL_RULE_ATTR_DPORT_MAX]	= { .type = NLA_U16 },
	[VIGIL_RULE_ATTR_DIRECTION]	= NLA_POLICY_RANGE(NLA_U8, VIGIL_RULE_DIR_INGRESS,
							   VIGIL_RULE_DIR_BOTH),
	[VIGIL_RULE_ATTR_ACTION]	= NLA_POLICY_RANGE(NLA_U8, VIGIL_ACTION_DROP,
							   VIGIL_ACTION_ACCEPT),
	[VIGIL_RULE_ATTR_PRIORITY]	= { .type = NLA_U32 },
	[VIGIL_RULE_ATTR_TIMEOUT_MS]	= { .type = NLA_U64 },
	[VIGIL_RULE_ATTR_HITS]		= { .type = NLA_REJECT,
					    .reject_message = "HITS is dump-only" },
	[VIGIL_RULE_ATTR_BYTES]		= { .type = NLA_REJECT,
					    .reject_message = "BYTES is dump-only" },
	[VIGIL_RULE_ATTR_PAD]		= { .type = NLA_REJECT },
};

const struct nla_policy vigil_config_policy[VIGIL_CONFIG_ATTR_MAX + 1] = {
	[VIGIL_CONFIG_ATTR_CAPTURE]		= NLA_POLICY_MAX(NLA_U8, 1),
	[VIGIL_CONFIG_ATTR_SAMPLE]		= NLA_POLICY_MIN(NLA_U32, 1),
	[VIGIL_CONFIG_ATTR_CAPTURE_DROPPED]	= NLA_POLICY_MAX(NLA_U8, 1),
	[VIGIL_CONFIG_ATTR_SNAPLEN]	= { .type = NLA_REJECT,
					    .reject_message = "SNAPLEN is a read-only module parameter" },
	[VIGIL_CONFIG_ATTR_SLOTS]	= { .type = NLA_REJECT,
					    .reject_message = "SLOTS is a read-only module parameter" },
	[VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK]	= NLA_POLICY_MAX(NLA_U8, 1),
};

static const int vigil_host_only_bad[] = {
	VIGIL_RULE_ATTR_SRC, VIGIL_RULE_ATTR_SRC_PREFIX, VIGIL_RULE_ATTR_DST,
	VIGIL_RULE_ATTR_DST_PREFIX, VIGIL_RULE_ATTR_PROTO,
	VIGIL_RULE_ATTR_DPORT_MIN, VIGIL_RULE_ATTR_DPORT_MAX,
};

static int vigil_parse_cidr(struct nlattr **tb, int a_addr, int a_prefix,
			    u8 family, union vigil_addr *addr, u8 *prefix,
			    struct netlink_ext_ack *extack)
{
	unsigned int bits = vigil_family_bits(family);

	memset(addr, 0, sizeof(*addr));
	*prefix = 0;
	if (!tb[a_addr]) {
		if (tb[a_prefix]) {
			NL_SET_ERR_MSG_ATTR(extack, tb[a_prefix],
					    "prefix length without an address");
			return -EINVAL;
		}
		return 0;
	}
	if (nla_len(tb[a_addr]) != bits / 8) {
		NL_SET_ERR_MSG_ATTR(extack, tb[a_addr],
				    "address length does not match FAMILY");
		return -EINVAL;
	}
	nla_memcpy(addr->b, tb[a_addr], bits / 8);
	*prefix = bits;
	if (tb[a_prefix]) {
		*prefix = nla_get_u8(tb[a_prefix]);
		if (*prefix > bits) {
			NL_SET_ERR_MSG_ATTR(extack, tb[a_prefix],
					    "prefix length too long for FAMILY");
			return -EINVAL;
		}
	}
	if (!vigil_addr_valid_for_prefix(family, addr, *prefix)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[a_addr],
				    "address has bits set beyond the prefix length");
		return -EINVAL;
	}
	return 0;
}

int vigil_parse_rule(const struct nlattr *nest, bool add,
		     struct vigil_rule_spec *s, struct netlink_ext_ack *extack)
{
	struct nlattr *tb[VIGIL_RULE_ATTR_MAX + 1];
	unsigned int i;
	int err;

	memset(s, 0, sizeof(*s));
	err = nla_parse_nested(tb, VIGIL_RULE_ATTR_MAX, nest, vigil_rule_policy,
			       extack);
	if (err)
		return err;
	if (!tb[VIGIL_RULE_ATTR_ID]) {
		NL_SET_ERR_MSG_ATTR(extack, nest, "rule ID is required");
		return -EINVAL;
	}
	s->id = nla_get_u64(tb[VIGIL_RULE_ATTR_ID]);
	if (!add)
		return 0;

	if (!tb[VIGIL_RULE_ATTR_KIND]) {
		NL_SET_ERR_MSG_ATTR(extack, nest, "rule KIND is required");
		return -EINVAL;
	}
	if (!tb[VIGIL_RULE_ATTR_FAMILY]) {
		NL_SET_ERR_MSG_ATTR(extack, nest, "rule FAMILY is required");
		return -EINVAL;
	}
	s->kind = nla_get_u8(tb[VIGIL_RULE_ATTR_KIND]);
	s->family = nla_get_u8(tb[VIGIL_RULE_ATTR_FAMILY]);
	if (s->family != VIGIL_FAMILY_IPV4 && s->family != VIGIL_FAMILY_IPV6) {
		NL_SET_ERR_MSG_ATTR(extack, tb[VIGIL_RULE_ATTR_FAMILY],
				    "FAMILY must be 4 or 6");
		return -EINVAL;
	}
	s->dir = tb[VIGIL_RULE_ATTR_DIRECTION] ?
		 nla_get_u8(tb[VIGIL_RULE_ATTR_DIRECTION]) : VIGIL_RULE_DIR_BOTH;
	s->action = tb[VIGIL_RULE_ATTR_ACTION] ?
		    nla_get_u8(tb[VIGIL_RULE_ATTR_ACTION]) : VIGIL_ACTION_DROP;
	s->priority = tb[VIGIL_RULE_ATTR_PRIORITY] ?
		      nla_get_u32(tb[VIGIL_RULE_ATTR_PRIORITY]) : 0;
	if (tb[VIGIL_RULE_ATTR_TIMEOUT_MS]) {
		s->timeout_ms = nla_get_u64(tb[VIGIL_RULE_ATTR_TIMEOUT_MS]);
		if (s->timeout_ms > VIGIL_MAX_TIMEOUT_MS) {
			NL_SET_ERR_MSG_ATTR(extack, tb[VIGIL_RULE_ATTR_TIMEOUT_MS],
					    "TIMEOUT_MS too large (max ten years)");
			return -EINVAL;
		}
	}

	if (s->kind == VIGIL_RULE_HOST) {
		for (i = 0; i < ARRAY_SIZE(vigil_host_only_bad); i++) {
			if (tb[vigil_host_only_bad[i]]) {
				NL_SET_ERR_MSG_ATTR(extack, tb[vigil_host_only_bad[i]],
						    "attribute not valid for a host rule");
				return -EINVAL;
			}
		}
		if (!tb[VIGIL_RULE_ATTR_ADDR]) {
			NL_SET_ERR_MSG_ATTR(extack, nest, "host rule needs ADDR");
			return -EINVAL;
		}
		if (nla_len(tb[VIGIL_RULE_ATTR_ADDR]) !=
		    vigil_family_bits(s->family) / 8) {
			NL_SET_ERR_MSG_ATTR(extack, tb[VIGIL_RULE_ATTR_ADDR],
					    "ADDR length does not match FAMILY");
			return -EINVAL;
		}
		nla_memcpy(s->addr.b, tb[VIGIL_RULE_ATTR_ADDR], sizeof(s->addr.b));
		return 0;
	}

	/* general rule */
	if (tb[VIGIL_RULE_ATTR_ADDR]) {
		NL_SET_ERR_MSG_ATTR(extack, tb[VIGIL_RULE_ATTR_ADDR],
				    "ADDR is for host rules; use SRC/DST");
		return -EINVAL;
	}
	s->gen.family = s->family;
	err = vigil_parse_cidr(tb, VIGIL_RULE_ATTR_SRC, VIGIL_RULE_ATTR_SRC_PREFIX,
			       s->family, &s->gen.src, &s->gen.src_prefix, extack);
	if (err)
		return err;
	err = vigil_parse_cidr(tb, VIGIL_RULE_ATTR_DST, VIGIL_RULE_ATTR_DST_PREFIX,
			       s->family, &s->gen.dst, &s->gen.dst_prefix, extack);
	if (err)
		return err;
	s->gen.proto = tb[VIGIL_RULE_ATTR_PROTO] ?
		       nla_get_u8(tb[VIGIL_RULE_ATTR_PROTO]) : 0;
	s->gen.dport_min = 0;
	s->gen.dport_max = 0xffff;
	if (tb[VIGIL_RULE_ATTR_DPORT_MIN]) {
		s->gen.dport_min = nla_get_u16(tb[VIGIL_RULE_ATTR_DPORT_MIN]);
		s->gen.dport_max = s->gen.dport_min;
	}
	if (tb[VIGIL_RULE_ATTR_DPORT_MAX]) {
		s->gen.dport_max = nla_get_u16(tb[VIGIL_RULE_ATTR_DPORT_MAX]);
		if (s->gen.dport_max < s->gen.dport_min) {
			NL_SET_ERR_MSG_ATTR(extack, tb[VIGIL_RULE_ATTR_DPORT_MAX],
					    "DPORT_MAX is below DPORT_MIN");
			return -EINVAL;
		}
	}
	if ((tb[VIGIL_RULE_ATTR_DPORT_MIN] || tb[VIGIL_RULE_ATTR_DPORT_MAX]) &&
	    s->gen.proto && !vigil_port_proto(s->gen.proto)) {
		NL_SET_ERR_MSG_ATTR(extack, tb[VIGIL_RULE_ATTR_PROTO],
				    "ports need TCP, UDP, SCTP, UDPLITE, DCCP or any protocol");
		return -EINVAL;
	}
	s->gen.dir = s->dir;
	s->gen.action = s->action;
	s->gen.priority = s->priority;
	s->gen.id = s->id;
	return 0;
}

int vigil_rule_fill(struct sk_buff *skb, const struct vigil_rule *r, u64 now)
{
	unsigned int alen = vigil_family_bits(r->kind == VIGIL_RULE_HOST ?
					      r->key.family : r->gen.family) / 8;
	struct nlattr *nest;
	u64 hits, bytes, left = 0;

	vigil_rule_counters(r, &hits, &bytes);
	if (r->expires)
		left = r->expires > now ? jiffies64_to_msecs(r->expires - now) : 0;

	nest = nla_nest_start(skb, VIGIL_ATTR_RULE);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, VIGIL_RULE_ATTR_ID, r->id, VIGIL_RULE_ATTR_PAD) ||
	    nla_put_u8(skb, VIGIL_RULE_ATTR_KIND, r->kind))
		goto nla_put_failure;
	if (r->kind == VIGIL_RULE_HOST) {
		if (nla_put_u8(skb, VIGIL_RULE_ATTR_FAMILY, r->key.family) ||
		    nla_put(skb, VIGIL_RULE_ATTR_ADDR, alen, r->key.addr.b) ||
		    nla_put_u8(skb, VIGIL_RULE_ATTR_DIRECTION, r->hm.dir) ||
		    nla_put_u8(skb, VIGIL_RULE_ATTR_ACTION, r->hm.action) ||
		    nla_put_u32(skb, VIGIL_RULE_ATTR_PRIORITY, r->hm.priority))
			goto nla_put_failure;
	} else {
		const struct vigil_gen_match *g = &r->gen;

		if (nla_put_u8(skb, VIGIL_RULE_ATTR_FAMILY, g->family) ||
		    nla_put(skb, VIGIL_RULE_ATTR_SRC, alen, g->src.b) ||
		    nla_put_u8(skb, VIGIL_RULE_ATTR_SRC_PREFIX, g->src_prefix) ||
		    nla_put(skb, VIGIL_RULE_ATTR_DST, alen, g->dst.b) ||
		    nla_put_u8(skb, VIGIL_RULE_ATTR_DST_PREFIX, g->dst_prefix) ||
		    nla_put_u8(skb, VIGIL_RULE_ATTR_PROTO, g->proto) ||
		    nla_put_u16(skb, VIGIL_RULE_ATTR_DPORT_MIN, g->dport_min) ||
		    nla_put_u16(skb, VIGIL_RULE_ATTR_DPORT_MAX, g->dport_max) ||
		    nla_put_u8(skb, VIGIL_RULE_ATTR_DIRECTION, g->dir) ||
		    nla_put_u8(skb, VIGIL_RULE_ATTR_ACTION, g->action) ||
		    nla_put_u32(skb, VIGIL_RULE_ATTR_PRIORITY, g->priority))
			goto nla_put_failure;
	}
	if (r->expires &&
	    nla_put_u64_64bit(skb, VIGIL_RULE_ATTR_TIMEOUT_MS, left, VIGIL_RULE_ATTR_PAD))
		goto nla_put_failure;
	if (nla_put_u64_64bit(skb, VIGIL_RULE_ATTR_HITS, hits, VIGIL_RULE_ATTR_PAD) ||
	    nla_put_u64_64bit(skb, VIGIL_RULE_ATTR_BYTES, bytes, VIGIL_RULE_ATTR_PAD))
		goto nla_put_failure;
	nla_nest_end(skb, nest);
	return 0;

nla_put_failure:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}
