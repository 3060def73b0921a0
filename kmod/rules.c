// SPDX-License-Identifier: GPL-2.0
/*
 * The per-namespace rule table.
 *
 * - Host rules: an rhashtable keyed by (family, address); lookups are
 *   lockless under RCU. Host rule objects are immutable once published: an
 *   update replaces the object (rhashtable_replace_fast()) and frees the
 *   old one after a grace period.
 * - General rules: an array of struct vigil_gen_match sorted by
 *   (priority, id), rebuilt and published with rcu_assign_pointer() by every
 *   change; the packet path walks the array it got from rcu_dereference().
 *   Removed general rules wait in a graveyard until the table that still
 *   points at them has been replaced.
 * - Every rule is also in an rbtree keyed by id (idempotent adds, deletes,
 *   resumable dumps in id order) and, if it expires, on the expiring list.
 *
 * All writers (netlink, the expiry work, namespace exit) hold vn->lock.
 * Nothing in here knows the control interface: expire.c announces what
 * expires, netlink.c what is asked for.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/jiffies.h>
#include <linux/sched.h>
#include <linux/delay.h>
#include <linux/mm.h>
#include <linux/rhashtable.h>
#include <linux/netlink.h>
#include <linux/user_namespace.h>

#include "netns.h"
#include "params.h"
#include "rules.h"

static struct kmem_cache *vigil_rule_cache __read_mostly;

static u32 vigil_rht_hash(const void *data, u32 len, u32 seed)
{
	return vigil_host_hash(data, seed);
}

static const struct rhashtable_params vigil_host_params = {
	.head_offset		= offsetof(struct vigil_rule, host_node),
	.key_offset		= offsetof(struct vigil_rule, key),
	.key_len		= sizeof(struct vigil_host_key),
	.hashfn			= vigil_rht_hash,
	.automatic_shrinking	= true,
};

int vigil_rules_init(void)
{
	/* Charged to the memory cgroup of whoever adds the rule. */
	vigil_rule_cache = KMEM_CACHE(vigil_rule, SLAB_ACCOUNT);
	return vigil_rule_cache ? 0 : -ENOMEM;
}

void vigil_rules_exit(void)
{
	kmem_cache_destroy(vigil_rule_cache);
}

/* ---- packet path -------------------------------------------------------- */

u8 vigil_rules_decide(struct vigil_net *vn, const struct vigil_pkt *p,
		      unsigned int len)
{
	const struct vigil_gen_table *t = rcu_dereference(vn->gen);
	struct vigil_rule *h = NULL, *r;
	struct vigil_verdict v;
	struct vigil_host_key k;
	u64 now;

	if (READ_ONCE(vn->n_host)) {
		vigil_host_key_from_pkt(p, &k);
		h = rhashtable_lookup(&vn->hosts, &k, vigil_host_params);
	}
	if (!h && !t)
		return 0;
	now = get_jiffies_64();
	vigil_decide(h ? &h->hm : NULL, t ? t->e : NULL, t ? t->n : 0, p, now, &v);
	if (!v.action)
		return 0;
	if (v.is_host) {
		atomic64_inc(&h->hits);
		atomic64_add(len, &h->bytes);
	} else {
		r = t->e[v.gen_index].owner;
		this_cpu_inc(r->ctr->hits);
		this_cpu_add(r->ctr->bytes, len);
	}
	return v.action;
}

/* ---- control path (vn->lock held) --------------------------------------- */

static struct vigil_rule *vigil_rule_find(struct vigil_net *vn, u64 id)
{
	struct rb_node *n = vn->by_id.rb_node;

	while (n) {
		struct vigil_rule *r = rb_entry(n, struct vigil_rule, id_node);

		if (id < r->id)
			n = n->rb_left;
		else if (id > r->id)
			n = n->rb_right;
		else
			return r;
	}
	return NULL;
}

/* First rule with an id >= @id, for resumable dumps. */
struct vigil_rule *vigil_rule_first_from(struct vigil_net *vn, u64 id)
{
	struct rb_node *n = vn->by_id.rb_node;
	struct vigil_rule *best = NULL;

	lockdep_assert_held(&vn->lock);
	while (n) {
		struct vigil_rule *r = rb_entry(n, struct vigil_rule, id_node);

		if (id <= r->id) {
			best = r;
			n = n->rb_left;
		} else {
			n = n->rb_right;
		}
	}
	return best;
}

static void vigil_rule_link_id(struct vigil_net *vn, struct vigil_rule *new)
{
	struct rb_node **p = &vn->by_id.rb_node, *parent = NULL;

	while (*p) {
		struct vigil_rule *r = rb_entry(*p, struct vigil_rule, id_node);

		parent = *p;
		p = new->id < r->id ? &(*p)->rb_left : &(*p)->rb_right;
	}
	rb_link_node(&new->id_node, parent, p);
	rb_insert_color(&new->id_node, &vn->by_id);
}

void vigil_rule_counters(const struct vigil_rule *r, u64 *hits, u64 *bytes)
{
	int cpu;

	if (r->kind == VIGIL_RULE_HOST) {
		*hits = atomic64_read(&r->hits);
		*bytes = atomic64_read(&r->bytes);
		return;
	}
	*hits = 0;
	*bytes = 0;
	for_each_possible_cpu(cpu) {
		const struct vigil_rule_pcpu *c = per_cpu_ptr(r->ctr, cpu);

		*hits += READ_ONCE(c->hits);
		*bytes += READ_ONCE(c->bytes);
	}
}

static void vigil_rule_free_rcu(struct rcu_head *head)
{
	struct vigil_rule *r = container_of(head, struct vigil_rule, rcu);

	if (r->kind == VIGIL_RULE_GENERAL)
		free_percpu(r->ctr);
	kmem_cache_free(vigil_rule_cache, r);
}

static void vigil_gen_table_free_rcu(struct rcu_head *head)
{
	kvfree(container_of(head, struct vigil_gen_table, rcu));
}

/* Rebuild the sorted general array from vn->gen_rules and publish it; then
 * the rules in the graveyard are unreachable after a grace period. */
int vigil_gen_publish(struct vigil_net *vn)
{
	struct vigil_gen_table *t = NULL, *old;
	struct vigil_rule *r, *tmp;
	unsigned int i = 0;

	lockdep_assert_held(&vn->lock);
	if (vn->n_gen) {
		t = kvmalloc(struct_size(t, e, vn->n_gen), GFP_KERNEL_ACCOUNT);
		if (!t)
			return -ENOMEM;
		list_for_each_entry(r, &vn->gen_rules, gen_node) {
			t->e[i] = r->gen;
			t->e[i].expires = r->expires;
			t->e[i].owner = r;
			i++;
		}
		t->n = i;
		sort(t->e, t->n, sizeof(t->e[0]), vigil_gen_cmp, NULL);
	}
	old = rcu_replace_pointer(vn->gen, t, lockdep_is_held(&vn->lock));
	if (old)
		call_rcu(&old->rcu, vigil_gen_table_free_rcu);
	list_for_each_entry_safe(r, tmp, &vn->gen_graveyard, gen_node) {
		list_del(&r->gen_node);
		call_rcu(&r->rcu, vigil_rule_free_rcu);
	}
	return 0;
}

/* Take @r out of every structure. Host rules are freed after a grace
 * period; general rules go to the graveyard until the next publish. */
void vigil_rule_unlink(struct vigil_net *vn, struct vigil_rule *r,
		       bool *gen_dirty)
{
	rb_erase(&r->id_node, &vn->by_id);
	if (!list_empty(&r->expire_node))
		list_del_init(&r->expire_node);
	if (r->kind == VIGIL_RULE_HOST) {
		rhashtable_remove_fast(&vn->hosts, &r->host_node,
				       vigil_host_params);
		WRITE_ONCE(vn->n_host, vn->n_host - 1);
		call_rcu(&r->rcu, vigil_rule_free_rcu);
	} else {
		list_move(&r->gen_node, &vn->gen_graveyard);
		vn->n_gen--;
		*gen_dirty = true;
	}
}

static struct vigil_rule *vigil_rule_alloc(u8 kind)
{
	struct vigil_rule *r = kmem_cache_zalloc(vigil_rule_cache, GFP_KERNEL);

	if (!r)
		return NULL;
	r->kind = kind;
	INIT_LIST_HEAD(&r->expire_node);
	INIT_LIST_HEAD(&r->gen_node);
	if (kind == VIGIL_RULE_GENERAL) {
		r->ctr = alloc_percpu_gfp(struct vigil_rule_pcpu, GFP_KERNEL_ACCOUNT);
		if (!r->ctr) {
			kmem_cache_free(vigil_rule_cache, r);
			return NULL;
		}
	}
	return r;
}

/* Runs the expiry work (expire.c) at @expires, unless it runs earlier. */
void vigil_gc_arm(struct vigil_net *vn, u64 expires)
{
	u64 now = get_jiffies_64();

	if (!expires || vn->dying)
		return;
	if (vn->gc_at && vn->gc_at <= expires)
		return;
	vn->gc_at = expires;
	mod_delayed_work(system_power_efficient_wq, &vn->gc,
			 expires > now ? (unsigned long)(expires - now) : 0);
}

static void vigil_rule_set_expiry(struct vigil_net *vn, struct vigil_rule *r,
				  u64 expires)
{
	r->expires = expires;
	if (!list_empty(&r->expire_node))
		list_del_init(&r->expire_node);
	if (expires) {
		list_add_tail(&r->expire_node, &vn->expiring);
		vigil_gc_arm(vn, expires);
	}
}

/* rhashtable inserts can fail transiently while a resize is in progress. */
static int vigil_host_insert(struct vigil_net *vn, struct vigil_rule *r)
{
	int tries = 0, err;

	for (;;) {
		err = rhashtable_lookup_insert_fast(&vn->hosts, &r->host_node,
						    vigil_host_params);
		if ((err != -EBUSY && err != -ENOMEM) || ++tries > 50)
			return err;
		usleep_range(500, 1000);
	}
}

/* Room for one more rule. A namespace owned by a non-initial user namespace
 * belongs to whoever ran unshare -Urn: at most userns_max_rules, so that
 * unprivileged users cannot pin much kernel memory (what they do allocate
 * is charged to their memory cgroup). */
static int vigil_rule_room(struct vigil_net *vn, u8 kind,
			   struct netlink_ext_ack *extack)
{
	if (kind == VIGIL_RULE_HOST && vn->n_host >= VIGIL_MAX_HOST_RULES) {
		NL_SET_ERR_MSG(extack, "too many host rules");
		return -ENOSPC;
	}
	if (kind == VIGIL_RULE_GENERAL && vn->n_gen >= VIGIL_MAX_GENERAL_RULES) {
		NL_SET_ERR_MSG(extack, "too many general rules");
		return -ENOSPC;
	}
	if (vn->net->user_ns != &init_user_ns &&
	    vn->n_host + vn->n_gen >= READ_ONCE(vigil_param_userns_max_rules)) {
		NL_SET_ERR_MSG(extack, "rule limit reached: this namespace is owned by a user namespace (module parameter userns_max_rules)");
		return -ENOSPC;
	}
	return 0;
}

/*
 * One host rule per address. The new object takes the place of the rule
 * that holds the address, atomically for lookups
 * (rhashtable_replace_fast()): the same id (an update, counters carried
 * over) or another one, which then ends here as if deleted (no event: it
 * did not expire). So an allow added over a detector's drop replaces it.
 */
static int vigil_host_add(struct vigil_net *vn, const struct vigil_rule_spec *s,
			  struct vigil_rule *old, u64 expires,
			  struct netlink_ext_ack *extack, bool *gen_dirty)
{
	struct vigil_host_key key = { .family = s->family, .addr = s->addr };
	struct vigil_rule *new, *holder;
	int err;

	rcu_read_lock();
	holder = rhashtable_lookup(&vn->hosts, &key, vigil_host_params);
	rcu_read_unlock();
	/* Taking an address from another id adds no rule. */
	if (!old && !holder) {
		err = vigil_rule_room(vn, VIGIL_RULE_HOST, extack);
		if (err)
			return err;
	}
	new = vigil_rule_alloc(VIGIL_RULE_HOST);
	if (!new)
		return -ENOMEM;
	new->id = s->id;
	new->key = key;
	new->hm.expires = expires;
	new->hm.priority = s->priority;
	new->hm.dir = s->dir;
	new->hm.action = s->action;

	if (holder) {
		err = rhashtable_replace_fast(&vn->hosts, &holder->host_node,
					      &new->host_node, vigil_host_params);
		if (err) {
			NL_SET_ERR_MSG(extack, "host set replace failed");
			kmem_cache_free(vigil_rule_cache, new);
			return err;
		}
		if (holder == old) {
			rb_replace_node(&old->id_node, &new->id_node, &vn->by_id);
			/* Hits during the grace period still land on the old object. */
			atomic64_set(&new->hits, atomic64_read(&old->hits));
			atomic64_set(&new->bytes, atomic64_read(&old->bytes));
		} else {
			rb_erase(&holder->id_node, &vn->by_id);
			if (old)
				vigil_rule_unlink(vn, old, gen_dirty);
			vigil_rule_link_id(vn, new);
		}
		if (!list_empty(&holder->expire_node))
			list_del_init(&holder->expire_node);
		vigil_rule_set_expiry(vn, new, expires);
		call_rcu(&holder->rcu, vigil_rule_free_rcu);
		return 0;
	}

	err = vigil_host_insert(vn, new);
	if (err) {
		NL_SET_ERR_MSG(extack, "host set insert failed");
		kmem_cache_free(vigil_rule_cache, new);
		return err;
	}
	if (old)
		vigil_rule_unlink(vn, old, gen_dirty);
	vigil_rule_link_id(vn, new);
	WRITE_ONCE(vn->n_host, vn->n_host + 1);
	vigil_rule_set_expiry(vn, new, expires);
	return 0;
}

static int vigil_gen_add(struct vigil_net *vn, const struct vigil_rule_spec *s,
			 struct vigil_rule *old, u64 expires,
			 struct netlink_ext_ack *extack, bool *gen_dirty)
{
	struct vigil_rule *new;

	if (old && old->kind == VIGIL_RULE_GENERAL) {
		/* The packet path only reads table copies: update in place. */
		old->gen = s->gen;
		vigil_gen_prepare(&old->gen);
		old->gen.id = s->id;
		old->gen.owner = old;
		vigil_rule_set_expiry(vn, old, expires);
		*gen_dirty = true;
		return 0;
	}
	if (!old) {
		int err = vigil_rule_room(vn, VIGIL_RULE_GENERAL, extack);

		if (err)
			return err;
	}
	new = vigil_rule_alloc(VIGIL_RULE_GENERAL);
	if (!new)
		return -ENOMEM;
	new->id = s->id;
	new->gen = s->gen;
	vigil_gen_prepare(&new->gen);
	new->gen.id = s->id;
	new->gen.owner = new;
	if (old)
		vigil_rule_unlink(vn, old, gen_dirty);
	vigil_rule_link_id(vn, new);
	list_add_tail(&new->gen_node, &vn->gen_rules);
	vn->n_gen++;
	vigil_rule_set_expiry(vn, new, expires);
	*gen_dirty = true;
	return 0;
}

int vigil_rule_add(struct vigil_net *vn, const struct vigil_rule_spec *s,
		   struct netlink_ext_ack *extack, bool *gen_dirty)
{
	struct vigil_rule *old;
	u64 expires = 0;

	lockdep_assert_held(&vn->lock);
	if (s->timeout_ms)
		expires = get_jiffies_64() +
			  max_t(u64, 1, DIV_ROUND_UP_ULL(s->timeout_ms * HZ, 1000));
	old = vigil_rule_find(vn, s->id);
	if (s->kind == VIGIL_RULE_HOST)
		return vigil_host_add(vn, s, old, expires, extack, gen_dirty);
	return vigil_gen_add(vn, s, old, expires, extack, gen_dirty);
}

int vigil_rule_del(struct vigil_net *vn, u64 id, bool *gen_dirty)
{
	struct vigil_rule *r;

	lockdep_assert_held(&vn->lock);
	r = vigil_rule_find(vn, id);
	if (!r)
		return -ENOENT;
	vigil_rule_unlink(vn, r, gen_dirty);
	return 0;
}

void vigil_rules_flush(struct vigil_net *vn)
{
	struct rb_node *n;
	bool dirty = false;
	unsigned int i = 0;

	lockdep_assert_held(&vn->lock);
	while ((n = rb_first(&vn->by_id))) {
		vigil_rule_unlink(vn, rb_entry(n, struct vigil_rule, id_node),
				  &dirty);
		if (!(++i & 1023))
			cond_resched();
	}
	/* An empty table needs no allocation: this cannot fail. */
	if (dirty || rcu_access_pointer(vn->gen))
		vigil_gen_publish(vn);
}

int vigil_rules_net_init(struct vigil_net *vn)
{
	return rhashtable_init(&vn->hosts, &vigil_host_params);
}

/* Namespace exit: the hooks are unregistered, nobody reads any more. */
void vigil_rules_net_exit(struct vigil_net *vn)
{
	struct vigil_gen_table *t;

	mutex_lock(&vn->lock);
	vn->dying = true;
	mutex_unlock(&vn->lock);
	cancel_delayed_work_sync(&vn->gc);

	mutex_lock(&vn->lock);
	vigil_rules_flush(vn);
	t = rcu_replace_pointer(vn->gen, NULL, lockdep_is_held(&vn->lock));
	mutex_unlock(&vn->lock);
	if (t)
		call_rcu(&t->rcu, vigil_gen_table_free_rcu);
	rhashtable_destroy(&vn->hosts);
	mutex_destroy(&vn->lock);
}
