/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per network namespace state: struct vigil_net and how to find it.
 */
#ifndef _VIGIL_NETNS_H
#define _VIGIL_NETNS_H

#include <linux/types.h>
#include <linux/mutex.h>
#include <linux/rhashtable-types.h>
#include <linux/rbtree.h>
#include <linux/list.h>
#include <linux/workqueue.h>
#include <linux/wait.h>
#include <linux/irq_work.h>
#include <linux/percpu.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>

struct vigil_gen_table;
struct vigil_rings;

struct vigil_pcpu_stats {
	u64 seen;
	u64 dropped;
	u64 captured;
	u64 ring_drops;
};

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

int vigil_netns_init(void);
void vigil_netns_exit(void);

#endif /* _VIGIL_NETNS_H */
