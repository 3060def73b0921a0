// SPDX-License-Identifier: GPL-2.0
/*
 * Generic netlink family "vigil", version 1 (include/uapi/linux/vigil.h).
 *
 * Validation is strict (the core's default for families that leave
 * resv_start_op at 0 and ops' validate at 0): unknown attributes, type 0,
 * wrong lengths, trailing data and nests without NLA_F_NESTED are rejected
 * by the core with an extack message before a handler runs; the handlers
 * then check the cross-attribute rules (required attributes, address
 * length against family, prefix length against family, port ranges).
 * Mutating commands carry GENL_UNS_ADMIN_PERM: CAP_NET_ADMIN in the user
 * namespace that owns the request's network namespace.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/rwsem.h>
#include <linux/jiffies.h>
#include <linux/sched.h>
#include <net/genetlink.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "core.h"

/* Ten years: keeps timeout_ms * HZ far from overflowing. */
#define VIGIL_MAX_TIMEOUT_MS	(10ULL * 366 * 24 * 3600 * 1000)

static const struct nla_policy vigil_rule_policy[VIGIL_RULE_ATTR_MAX + 1] = {
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

static const struct nla_policy vigil_config_policy[VIGIL_CONFIG_ATTR_MAX + 1] = {
	[VIGIL_CONFIG_ATTR_CAPTURE]		= NLA_POLICY_MAX(NLA_U8, 1),
	[VIGIL_CONFIG_ATTR_SAMPLE]		= NLA_POLICY_MIN(NLA_U32, 1),
	[VIGIL_CONFIG_ATTR_CAPTURE_DROPPED]	= NLA_POLICY_MAX(NLA_U8, 1),
	[VIGIL_CONFIG_ATTR_SNAPLEN]	= { .type = NLA_REJECT,
					    .reject_message = "SNAPLEN is a read-only module parameter" },
	[VIGIL_CONFIG_ATTR_SLOTS]	= { .type = NLA_REJECT,
					    .reject_message = "SLOTS is a read-only module parameter" },
	[VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK]	= NLA_POLICY_MAX(NLA_U8, 1),
};

static const struct nla_policy vigil_policy[VIGIL_ATTR_MAX + 1] = {
	[VIGIL_ATTR_RULE]	= NLA_POLICY_NESTED(vigil_rule_policy),
	[VIGIL_ATTR_STATS]	= { .type = NLA_REJECT,
				    .reject_message = "STATS is reply-only" },
	[VIGIL_ATTR_CONFIG]	= NLA_POLICY_NESTED(vigil_config_policy),
	[VIGIL_ATTR_PAD]	= { .type = NLA_REJECT },
};

static struct genl_family vigil_genl_family;

/* Held for reading while sending events, for writing while unregistering. */
static DECLARE_RWSEM(vigil_event_sem);
static bool vigil_events_live;

static struct vigil_net *info_vn(struct genl_info *info)
{
	return vigil_pernet(genl_info_net(info));
}

/* ---- rule parsing ------------------------------------------------------- */

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

static int vigil_parse_rule(const struct nlattr *nest, bool add,
			    struct vigil_rule_spec *s,
			    struct netlink_ext_ack *extack)
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

/* ---- rule commands ------------------------------------------------------ */

/* Every top-level attribute of a rule command must be a RULE nest. */
static int vigil_count_rules(struct genl_info *info)
{
	const struct nlattr *nla;
	int rem, n = 0;

	nla_for_each_attr(nla, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), rem) {
		if (nla_type(nla) != VIGIL_ATTR_RULE) {
			NL_SET_ERR_MSG_ATTR(info->extack, nla,
					    "only RULE attributes are allowed here");
			return -EINVAL;
		}
		n++;
	}
	if (!n) {
		NL_SET_ERR_MSG(info->extack, "at least one RULE attribute is required");
		return -EINVAL;
	}
	return n;
}

static int vigil_rule_modify(struct genl_info *info, bool add)
{
	struct vigil_net *vn = info_vn(info);
	struct vigil_rule_spec s;
	const struct nlattr *nla;
	bool gen_dirty = false;
	int rem, err, i = 0;

	err = vigil_count_rules(info);
	if (err < 0)
		return err;

	/* Pass 1: validate every rule; nothing is applied if one is bad. */
	nla_for_each_attr(nla, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), rem) {
		err = vigil_parse_rule(nla, add, &s, info->extack);
		if (err)
			return err;
	}

	/* Pass 2: apply. A resource error (ENOSPC, ENOMEM, EEXIST, ENOENT)
	 * stops here; the rules before it stay applied. */
	err = 0;
	mutex_lock(&vn->lock);
	nla_for_each_attr(nla, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), rem) {
		vigil_parse_rule(nla, add, &s, NULL);
		if (add)
			err = vigil_rule_add(vn, &s, info->extack, &gen_dirty);
		else
			err = vigil_rule_del(vn, s.id, &gen_dirty);
		if (err) {
			if (err == -ENOENT)
				NL_SET_ERR_MSG(info->extack, "no rule with this ID");
			NL_SET_BAD_ATTR(info->extack, nla);
			break;
		}
		if (!(++i & 255)) {
			mutex_unlock(&vn->lock);
			cond_resched();
			mutex_lock(&vn->lock);
		}
	}
	if (gen_dirty) {
		int perr = vigil_gen_publish(vn);

		if (perr && !err) {
			NL_SET_ERR_MSG(info->extack, "out of memory publishing general rules");
			err = perr;
		}
	}
	mutex_unlock(&vn->lock);
	return err;
}

static int vigil_cmd_rule_add(struct sk_buff *skb, struct genl_info *info)
{
	return vigil_rule_modify(info, true);
}

static int vigil_cmd_rule_del(struct sk_buff *skb, struct genl_info *info)
{
	return vigil_rule_modify(info, false);
}

static int vigil_cmd_rule_flush(struct sk_buff *skb, struct genl_info *info)
{
	struct vigil_net *vn = info_vn(info);

	if (info->attrs[VIGIL_ATTR_RULE] || info->attrs[VIGIL_ATTR_CONFIG]) {
		NL_SET_ERR_MSG(info->extack, "FLUSH takes no attributes");
		return -EINVAL;
	}
	mutex_lock(&vn->lock);
	vigil_rules_flush(vn);
	mutex_unlock(&vn->lock);
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

/* Dump state kept in cb->ctx: the next id to emit, in id order. New or
 * removed rules between two parts of a dump are simply seen or not. */
struct vigil_dump_ctx {
	u64	next_id;
	u8	done;
};

static int vigil_cmd_rule_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct vigil_dump_ctx *ctx = (struct vigil_dump_ctx *)cb->ctx;
	struct vigil_net *vn = vigil_pernet(sock_net(skb->sk));
	struct vigil_rule *r;
	struct rb_node *node;
	u64 now;

	BUILD_BUG_ON(sizeof(*ctx) > sizeof(cb->ctx));
	if (ctx->done)
		return 0;

	mutex_lock(&vn->lock);
	now = get_jiffies_64();
	r = vigil_rule_first_from(vn, ctx->next_id);
	while (r) {
		void *hdr;

		if (vigil_expired(r->expires, now))
			goto next;	/* stopped matching; the GC is on its way */
		hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				  cb->nlh->nlmsg_seq, &vigil_genl_family,
				  NLM_F_MULTI, VIGIL_CMD_RULE_GET);
		if (!hdr)
			break;
		if (vigil_rule_fill(skb, r, now)) {
			genlmsg_cancel(skb, hdr);
			break;
		}
		genlmsg_end(skb, hdr);
next:
		if (r->id == U64_MAX) {
			r = NULL;
			break;
		}
		ctx->next_id = r->id + 1;
		node = rb_next(&r->id_node);
		r = node ? rb_entry(node, struct vigil_rule, id_node) : NULL;
	}
	if (!r)
		ctx->done = 1;
	mutex_unlock(&vn->lock);
	return skb->len;
}

/* ---- stats and config --------------------------------------------------- */

static int vigil_cmd_stats_get(struct sk_buff *skb, struct genl_info *info)
{
	struct vigil_net *vn = info_vn(info);
	struct vigil_pcpu_stats sum = {};
	struct sk_buff *msg;
	struct nlattr *nest;
	void *hdr;
	int cpu;

	for_each_possible_cpu(cpu) {
		const struct vigil_pcpu_stats *s = per_cpu_ptr(vn->stats, cpu);

		sum.seen += READ_ONCE(s->seen);
		sum.dropped += READ_ONCE(s->dropped);
		sum.captured += READ_ONCE(s->captured);
		sum.ring_drops += READ_ONCE(s->ring_drops);
	}
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &vigil_genl_family, 0,
				VIGIL_CMD_STATS_GET);
	if (!hdr)
		goto nla_put_failure;
	nest = nla_nest_start(msg, VIGIL_ATTR_STATS);
	if (!nest ||
	    nla_put_u64_64bit(msg, VIGIL_STATS_ATTR_SEEN, sum.seen, VIGIL_STATS_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, VIGIL_STATS_ATTR_DROPPED, sum.dropped, VIGIL_STATS_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, VIGIL_STATS_ATTR_CAPTURED, sum.captured, VIGIL_STATS_ATTR_PAD) ||
	    nla_put_u64_64bit(msg, VIGIL_STATS_ATTR_RING_DROPS, sum.ring_drops, VIGIL_STATS_ATTR_PAD) ||
	    nla_put_u32(msg, VIGIL_STATS_ATTR_HOST_RULES, READ_ONCE(vn->n_host)) ||
	    nla_put_u32(msg, VIGIL_STATS_ATTR_GENERAL_RULES, READ_ONCE(vn->n_gen)))
		goto nla_put_failure;
	nla_nest_end(msg, nest);
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

nla_put_failure:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

static int vigil_cmd_config_get(struct sk_buff *skb, struct genl_info *info)
{
	struct vigil_net *vn = info_vn(info);
	struct sk_buff *msg;
	struct nlattr *nest;
	void *hdr;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &vigil_genl_family, 0,
				VIGIL_CMD_CONFIG_GET);
	if (!hdr)
		goto nla_put_failure;
	nest = nla_nest_start(msg, VIGIL_ATTR_CONFIG);
	if (!nest ||
	    nla_put_u8(msg, VIGIL_CONFIG_ATTR_CAPTURE, READ_ONCE(vn->capture)) ||
	    nla_put_u32(msg, VIGIL_CONFIG_ATTR_SAMPLE, READ_ONCE(vn->sample)) ||
	    nla_put_u8(msg, VIGIL_CONFIG_ATTR_CAPTURE_DROPPED,
		       READ_ONCE(vn->capture_dropped)) ||
	    nla_put_u32(msg, VIGIL_CONFIG_ATTR_SNAPLEN, vigil_param_snaplen) ||
	    nla_put_u32(msg, VIGIL_CONFIG_ATTR_SLOTS, vigil_param_slots) ||
	    nla_put_u8(msg, VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK,
		       READ_ONCE(vn->capture_loopback)))
		goto nla_put_failure;
	nla_nest_end(msg, nest);
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

nla_put_failure:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

static int vigil_cmd_config_set(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *tb[VIGIL_CONFIG_ATTR_MAX + 1];
	struct vigil_net *vn = info_vn(info);
	int err;

	if (!info->attrs[VIGIL_ATTR_CONFIG]) {
		NL_SET_ERR_MSG(info->extack, "CONFIG attribute is required");
		return -EINVAL;
	}
	if (info->attrs[VIGIL_ATTR_RULE]) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[VIGIL_ATTR_RULE],
				    "RULE is not valid in CONFIG_SET");
		return -EINVAL;
	}
	err = nla_parse_nested(tb, VIGIL_CONFIG_ATTR_MAX,
			       info->attrs[VIGIL_ATTR_CONFIG],
			       vigil_config_policy, info->extack);
	if (err)
		return err;
	mutex_lock(&vn->lock);
	if (tb[VIGIL_CONFIG_ATTR_CAPTURE])
		WRITE_ONCE(vn->capture, nla_get_u8(tb[VIGIL_CONFIG_ATTR_CAPTURE]));
	if (tb[VIGIL_CONFIG_ATTR_SAMPLE])
		WRITE_ONCE(vn->sample, nla_get_u32(tb[VIGIL_CONFIG_ATTR_SAMPLE]));
	if (tb[VIGIL_CONFIG_ATTR_CAPTURE_DROPPED])
		WRITE_ONCE(vn->capture_dropped,
			   nla_get_u8(tb[VIGIL_CONFIG_ATTR_CAPTURE_DROPPED]));
	if (tb[VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK])
		WRITE_ONCE(vn->capture_loopback,
			   nla_get_u8(tb[VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK]));
	mutex_unlock(&vn->lock);
	return 0;
}

/* ---- events ------------------------------------------------------------- */

void vigil_notify_expired(struct vigil_net *vn, const struct vigil_rule *r)
{
	struct sk_buff *msg;
	void *hdr;

	down_read(&vigil_event_sem);
	if (!vigil_events_live ||
	    !genl_has_listeners(&vigil_genl_family, vn->net, 0))
		goto out;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		goto out;
	hdr = genlmsg_put(msg, 0, 0, &vigil_genl_family, 0, VIGIL_CMD_RULE_EXPIRED);
	if (!hdr || vigil_rule_fill(msg, r, get_jiffies_64())) {
		nlmsg_free(msg);
		goto out;
	}
	genlmsg_end(msg, hdr);
	genlmsg_multicast_netns(&vigil_genl_family, vn->net, msg, 0, 0, GFP_KERNEL);
out:
	up_read(&vigil_event_sem);
}

/* ---- family ------------------------------------------------------------- */

static const struct genl_ops vigil_genl_ops[] = {
	{
		.cmd	= VIGIL_CMD_RULE_ADD,
		.doit	= vigil_cmd_rule_add,
		.flags	= GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd	= VIGIL_CMD_RULE_DEL,
		.doit	= vigil_cmd_rule_del,
		.flags	= GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd	= VIGIL_CMD_RULE_FLUSH,
		.doit	= vigil_cmd_rule_flush,
		.flags	= GENL_UNS_ADMIN_PERM,
	},
	{
		.cmd	= VIGIL_CMD_RULE_GET,
		.dumpit	= vigil_cmd_rule_dump,
	},
	{
		.cmd	= VIGIL_CMD_STATS_GET,
		.doit	= vigil_cmd_stats_get,
	},
	{
		.cmd	= VIGIL_CMD_CONFIG_GET,
		.doit	= vigil_cmd_config_get,
	},
	{
		.cmd	= VIGIL_CMD_CONFIG_SET,
		.doit	= vigil_cmd_config_set,
		.flags	= GENL_UNS_ADMIN_PERM,
	},
};

static const struct genl_multicast_group vigil_mcgrps[] = {
	{ .name = VIGIL_MCGRP_EVENTS },
};

static struct genl_family vigil_genl_family __ro_after_init = {
	.name		= VIGIL_GENL_NAME,
	.version	= VIGIL_GENL_VERSION,
	.maxattr	= VIGIL_ATTR_MAX,
	.policy		= vigil_policy,
	.netnsok	= true,
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= vigil_genl_ops,
	.n_ops		= ARRAY_SIZE(vigil_genl_ops),
	.mcgrps		= vigil_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(vigil_mcgrps),
};

int vigil_genl_init(void)
{
	int err = genl_register_family(&vigil_genl_family);

	if (!err) {
		down_write(&vigil_event_sem);
		vigil_events_live = true;
		up_write(&vigil_event_sem);
	}
	return err;
}

void vigil_genl_exit(void)
{
	down_write(&vigil_event_sem);
	vigil_events_live = false;
	up_write(&vigil_event_sem);
	genl_unregister_family(&vigil_genl_family);
}
