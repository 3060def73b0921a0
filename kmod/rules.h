/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-namespace rule table (rules.c): rule objects, the published
 * general array, and the operations writers call under vn->lock.
 */
#ifndef _VIGIL_RULES_H
#define _VIGIL_RULES_H

#include <linux/types.h>
#include <linux/atomic.h>
#include <linux/rhashtable-types.h>
#include <linux/rbtree.h>
#include <linux/list.h>
#include <linux/rcupdate.h>

#include "include/uapi/linux/vigil.h"
#include "match.h"

struct netlink_ext_ack;
struct vigil_net;

struct vigil_rule_pcpu {
	u64 hits;
	u64 bytes;
};

struct vigil_rule {
	struct rhash_head	host_node;	/* host rules: in vn->hosts */
	union {
		struct {			/* VIGIL_RULE_HOST */
			struct vigil_host_key	key;	/* family + address */
			struct vigil_host_match	hm;	/* read by the hooks */
			atomic64_t		hits;
			atomic64_t		bytes;
		};
		struct {			/* VIGIL_RULE_GENERAL */
			struct vigil_gen_match	gen;	/* canonical copy */
			struct vigil_rule_pcpu __percpu *ctr;	/* hits/bytes */
		};
	};
	u8			kind;		/* VIGIL_RULE_* */
	u64			id;
	u64			expires;	/* jiffies64, 0 = never */
	struct rb_node		id_node;	/* vn->by_id, under vn->lock */
	struct list_head	expire_node;	/* vn->expiring, if expires */
	struct list_head	gen_node;	/* general: vn->gen_rules, then
						 * vn->gen_graveyard once removed */
	struct rcu_head		rcu;
};

/* The general rules as the hooks see them: sorted by (priority, id). */
struct vigil_gen_table {
	struct rcu_head		rcu;
	unsigned int		n;
	struct vigil_gen_match	e[];
};

/* A parsed, validated rule from netlink (rule_nla.c -> rules.c). */
struct vigil_rule_spec {
	u64	id;
	u64	timeout_ms;
	u8	kind;
	u8	family;
	union vigil_addr addr;		/* host */
	struct vigil_gen_match gen;	/* general: fields before prepare */
	u8	dir;
	u8	action;
	u32	priority;
};

int vigil_rules_init(void);
void vigil_rules_exit(void);
int vigil_rules_net_init(struct vigil_net *vn);
void vigil_rules_net_exit(struct vigil_net *vn);

/* packet path, under RCU */
u8 vigil_rules_decide(struct vigil_net *vn, const struct vigil_pkt *p,
		      unsigned int len);

/* control path, vn->lock held */
int vigil_rule_add(struct vigil_net *vn, const struct vigil_rule_spec *s,
		   struct netlink_ext_ack *extack, bool *gen_dirty);
int vigil_rule_del(struct vigil_net *vn, u64 id, bool *gen_dirty);
void vigil_rule_unlink(struct vigil_net *vn, struct vigil_rule *r,
		       bool *gen_dirty);
void vigil_rules_flush(struct vigil_net *vn);
int vigil_gen_publish(struct vigil_net *vn);
void vigil_gc_arm(struct vigil_net *vn, u64 expires);
struct vigil_rule *vigil_rule_first_from(struct vigil_net *vn, u64 id);
void vigil_rule_counters(const struct vigil_rule *r, u64 *hits, u64 *bytes);

#endif /* _VIGIL_RULES_H */
