// SPDX-License-Identifier: GPL-2.0
/*
 * The per-namespace expiry work: ends expired rules, announces them,
 * republishes the general table.
 *
 * An expired rule has already stopped matching (the lookup checks the
 * expiry itself), so this only cleans up, and is batched: at most 20 runs a
 * second. rules.c arms it (vigil_gc_arm()) for the earliest expiry.
 */
#include <linux/jiffies.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/workqueue.h>

#include "netns.h"
#include "rules.h"
#include "netlink.h"
#include "expire.h"

void vigil_gc_work(struct work_struct *work)
{
	struct vigil_net *vn = container_of(to_delayed_work(work),
					    struct vigil_net, gc);
	struct vigil_rule *r, *tmp;
	unsigned int i = 0;
	bool dirty = false;
	u64 now, next = 0;

	mutex_lock(&vn->lock);
	now = get_jiffies_64();
	vn->gc_at = 0;
	list_for_each_entry_safe(r, tmp, &vn->expiring, expire_node) {
		if (r->expires <= now) {
			vigil_notify_expired(vn, r);
			vigil_rule_unlink(vn, r, &dirty);
		} else if (!next || r->expires < next) {
			next = r->expires;
		}
		if (!(++i & 1023))
			cond_resched();
	}
	if (dirty && vigil_gen_publish(vn))
		next = now + HZ;	/* retry the publish soon */
	/* Expired rules already stopped matching; batch the cleanup. */
	if (next)
		vigil_gc_arm(vn, max_t(u64, next, now + HZ / 20));
	mutex_unlock(&vn->lock);
}
