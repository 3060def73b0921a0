// SPDX-License-Identifier: GPL-2.0
/*
 * Generic netlink family "vigil", version 1 (include/uapi/linux/vigil.h).
 *
 * Validation is strict (the core's default for families that leave
 * resv_start_op at 0 and ops' validate at 0): unknown attributes, type 0,
 * wrong lengths, trailing data and nests without NLA_F_NESTED are rejected
 * by the core with an extack message before a handler runs; rule_nla.c
 * then checks the cross-attribute rules.
 * Mutating commands, the rule dump and the events group need CAP_NET_ADMIN
 * in the user namespace that owns the request's network namespace
 * (GENL_UNS_ADMIN_PERM, GENL_MCAST_CAP_NET_ADMIN): the rule set says whom we
 * block and allow. Statistics and configuration stay readable.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/rwsem.h>
#include <linux/jiffies.h>
#include <linux/sched.h>
#include <net/genetlink.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "netns.h"
#include "params.h"
#include "rules.h"
#include "rule_nla.h"
#include "netlink.h"

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
		.flags	= GENL_UNS_ADMIN_PERM,
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

/* Events name the rules, so they are as private as the dump. Kernels
 * without the flag (before 6.7 and its stable backports) let anyone join. */
#ifndef GENL_MCAST_CAP_NET_ADMIN
#define GENL_MCAST_CAP_NET_ADMIN 0
#endif
static const struct genl_multicast_group vigil_mcgrps[] = {
	{ .name = VIGIL_MCGRP_EVENTS, .flags = GENL_MCAST_CAP_NET_ADMIN },
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
