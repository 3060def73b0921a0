/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internal definitions shared by the files of vigil.ko.
 */
#ifndef _VIGIL_CORE_H
#define _VIGIL_CORE_H

#include <linux/types.h>
#include <linux/mutex.h>
#include <linux/rhashtable.h>
#include <linux/rbtree.h>
#include <linux/workqueue.h>
#include <linux/wait.h>
#include <linux/irq_work.h>
#include <linux/percpu.h>
#include <linux/netlink.h>
#include <linux/skbuff.h>
#include <linux/version.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

#include "include/uapi/linux/vigil.h"
#include "match.h"

#if BITS_PER_LONG != 64
#error "vigil needs 64-bit atomics for the ring indexes (64-bit kernels only)"
#endif

/* ---- module parameters (main.c) -------------------------------------- */
extern unsigned int vigil_param_slots;
extern unsigned int vigil_param_snaplen;
extern bool vigil_param_capture;
extern unsigned int vigil_param_sample;
extern bool vigil_param_capture_dropped;
extern bool vigil_param_capture_loopback;

/* ---- per-CPU counters -------------------------------------------------- */
struct vigil_pcpu_stats {
	u64 seen;
	u64 dropped;
	u64 captured;
	u64 ring_drops;
};

struct vigil_rule_pcpu {
	u64 hits;
	u64 bytes;
};

/* ---- rules (rules.c) --------------------------------------------------- */
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

/* A parsed, validated rule from netlink (netlink.c -> rules.c). */
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

/* ---- capture rings (ring.c) ------------------------------------------- */
struct vigil_ring {
	struct vigil_ring_ctl	*ctl;	/* shared with userspace */
	u8			*slots;	/* shared with userspace */
	u64			prod;	/* private copy: never read back */
	u64			drops;
	u32			sample_ctr;
} ____cacheline_aligned_in_smp;

struct vigil_rings {
	void			*area;	/* vmalloc_user(), mapped by mmap() */
	struct vigil_ring_geom	geom;
	unsigned int		n;
	struct vigil_ring	ring[];
};

/* ---- per network namespace state (netns.c) ----------------------------- */
struct vigil_net {
	struct net		*net;
	struct mutex		lock;		/* serializes all writers */
	struct rhashtable	hosts;		/* struct vigil_rule, by key */
	struct vigil_gen_table __rcu *gen;
	struct rb_root		by_id;		/* every rule, by id */
	struct list_head	expiring;	/* rules with an expiry */
	struct list_head	gen_rules;	/* general rules, any order */
	struct list_head	gen_graveyard;	/* removed, still in vn->gen */
	u64			gc_at;		/* jiffies64 the GC is armed for */
	unsigned int		n_host;
	unsigned int		n_gen;
	struct delayed_work	gc;
	bool			dying;
	struct vigil_pcpu_stats __percpu *stats;

	/* configuration, read locklessly by the hooks */
	u8			capture;
	u8			capture_dropped;
	u8			capture_loopback;
	u32			sample;

	struct vigil_rings __rcu *rings;	/* allocated on first open() */
	atomic_t		reader;		/* one reader at a time */
	wait_queue_head_t	wq;
	struct irq_work		wake;
};

extern unsigned int vigil_net_id;

static inline struct vigil_net *vigil_pernet(const struct net *net)
{
	return net_generic(net, vigil_net_id);
}

/* netns.c */
int vigil_netns_init(void);
void vigil_netns_exit(void);

/* hooks.c */
int vigil_hooks_register(struct net *net);
void vigil_hooks_unregister(struct net *net);

/* rules.c */
int vigil_rules_init(void);
void vigil_rules_exit(void);
int vigil_rules_net_init(struct vigil_net *vn);
void vigil_rules_net_exit(struct vigil_net *vn);
int vigil_rule_add(struct vigil_net *vn, const struct vigil_rule_spec *s,
		   struct netlink_ext_ack *extack, bool *gen_dirty);
int vigil_gen_publish(struct vigil_net *vn);
int vigil_rule_del(struct vigil_net *vn, u64 id, bool *gen_dirty);
void vigil_rules_flush(struct vigil_net *vn);
struct vigil_rule *vigil_rule_first_from(struct vigil_net *vn, u64 id);
void vigil_rule_counters(const struct vigil_rule *r, u64 *hits, u64 *bytes);
u8 vigil_rules_decide(struct vigil_net *vn, const struct vigil_pkt *p,
		      unsigned int len);
void vigil_gc_work(struct work_struct *work);

/* ring.c */
int vigil_dev_init(void);
void vigil_dev_exit(void);
void vigil_rings_net_exit(struct vigil_net *vn);
void vigil_capture(struct vigil_net *vn, struct sk_buff *skb, u8 dir, u8 family,
		   int ifindex, u8 flags);
void vigil_wake_fn(struct irq_work *work);

/* netlink.c */
int vigil_genl_init(void);
void vigil_genl_exit(void);
void vigil_notify_expired(struct vigil_net *vn, const struct vigil_rule *r);
int vigil_rule_fill(struct sk_buff *skb, const struct vigil_rule *r, u64 now);

#endif /* _VIGIL_CORE_H */
