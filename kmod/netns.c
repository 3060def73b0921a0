// SPDX-License-Identifier: GPL-2.0
/*
 * Per network namespace state: every namespace gets its own hooks, rule
 * table, counters and (on first open of /dev/vigil) capture rings.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/netfilter.h>

#include "netns.h"
#include "params.h"
#include "rules.h"
#include "hooks.h"
#include "ring.h"
#include "expire.h"

unsigned int vigil_net_id __read_mostly;

static int __net_init vigil_net_init(struct net *net)
{
	struct vigil_net *vn = vigil_pernet(net);
	int err;

	vn->net = net;
	mutex_init(&vn->lock);
	vn->by_id = RB_ROOT;
	INIT_LIST_HEAD(&vn->expiring);
	INIT_LIST_HEAD(&vn->gen_rules);
	INIT_LIST_HEAD(&vn->gen_graveyard);
	INIT_DELAYED_WORK(&vn->gc, vigil_gc_work);
	init_waitqueue_head(&vn->wq);
	init_irq_work(&vn->wake, vigil_wake_fn);
	atomic_set(&vn->reader, 0);
	vn->capture = vigil_param_capture;
	vn->capture_dropped = vigil_param_capture_dropped;
	vn->capture_loopback = vigil_param_capture_loopback;
	vn->sample = vigil_param_sample;

	vn->stats = alloc_percpu(struct vigil_pcpu_stats);
	if (!vn->stats)
		return -ENOMEM;
	err = vigil_rules_net_init(vn);
	if (err)
		goto err_stats;
	err = vigil_hooks_register(net);
	if (err)
		goto err_rules;
	return 0;

err_rules:
	vigil_rules_net_exit(vn);
err_stats:
	free_percpu(vn->stats);
	return err;
}

static void __net_exit vigil_net_exit(struct net *net)
{
	struct vigil_net *vn = vigil_pernet(net);

	/* nf_unregister_net_hooks() waits for the hooks in flight. */
	vigil_hooks_unregister(net);
	vigil_rules_net_exit(vn);
	vigil_rings_net_exit(vn);
	free_percpu(vn->stats);
}

static struct pernet_operations vigil_net_ops = {
	.init = vigil_net_init,
	.exit = vigil_net_exit,
	.id   = &vigil_net_id,
	.size = sizeof(struct vigil_net),
};

int vigil_netns_init(void)
{
	return register_pernet_subsys(&vigil_net_ops);
}

void vigil_netns_exit(void)
{
	unregister_pernet_subsys(&vigil_net_ops);
}
