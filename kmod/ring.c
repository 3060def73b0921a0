// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/vigil and the per-CPU capture rings.
 *
 * Layout (include/uapi/linux/vigil.h): one info page, then per possible CPU
 * a control page followed by the slots, all in one vmalloc_user() area that
 * mmap() maps with remap_vmalloc_range() (VM_DONTEXPAND | VM_DONTDUMP).
 *
 * Memory ordering: the producer of ring i is whatever runs on CPU i with
 * bottom halves disabled, so there is exactly one. It reads the consumer
 * index with smp_load_acquire() (the reader is done with the slots below it
 * before we overwrite them), fills the slot, then publishes with
 * smp_store_release() of producer + 1. The kernel keeps its own copy of the
 * producer index and the drop counter and never reads them back from the
 * shared page; the consumer index is untrusted and can only make the ring
 * look full (vigil_ring_free()).
 *
 * Wakeups: poll() adds itself to the wait queue, issues a full barrier and
 * then looks at the rings. The producer, after publishing, issues a full
 * barrier and queues the wakeup only if the reader had consumed everything
 * (the ring went from empty to non-empty) and someone sleeps; the wakeup
 * itself runs from irq_work, so the packet path never takes the wait queue
 * lock and a busy ring costs no wakeup at all.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/nsproxy.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/version.h>
#include <linux/vmalloc.h>

#include "netns.h"
#include "params.h"
#include "ring.h"

void vigil_wake_fn(struct irq_work *work)
{
	struct vigil_net *vn = container_of(work, struct vigil_net, wake);

	wake_up_interruptible_poll(&vn->wq, EPOLLIN | EPOLLRDNORM);
}

void vigil_capture(struct vigil_net *vn, struct sk_buff *skb, u8 dir, u8 family,
		   int ifindex, u8 flags)
{
	struct vigil_rings *rings = rcu_dereference(vn->rings);
	unsigned int noff = skb_network_offset(skb);
	unsigned int len = skb->len - noff, cap;
	struct vigil_ring_ctl *ctl;
	struct vigil_frame *f;
	struct vigil_ring *ring;
	u32 sample;
	u64 prod, cons;

	if (!rings)
		return;

	/* LOCAL_OUT may run in process context: keep softirqs on this CPU
	 * from producing into the same ring (single producer per ring). */
	local_bh_disable();
	ring = &rings->ring[smp_processor_id()];
	ctl = ring->ctl;

	sample = READ_ONCE(vn->sample);
	if (sample > 1) {
		if (++ring->sample_ctr < sample)
			goto out;
		ring->sample_ctr = 0;
	}

	prod = ring->prod;
	cons = smp_load_acquire(&ctl->consumer);
	if (!vigil_ring_free(prod, cons, rings->geom.slots)) {
		ring->drops++;
		WRITE_ONCE(ctl->drops, ring->drops);
		this_cpu_inc(vn->stats->ring_drops);
		goto out;
	}

	f = (struct vigil_frame *)(ring->slots +
		vigil_ring_slot_off(prod, rings->geom.slots, rings->geom.slot_size));
	cap = min_t(unsigned int, len, rings->geom.snaplen);
	if (cap && skb_copy_bits(skb, noff, f + 1, cap))
		cap = 0;
	f->ts_ns = ktime_get_real_ns();
	f->ifindex = ifindex;
	f->orig_len = len;
	f->cap_len = cap;
	f->direction = dir;
	f->family = family;
	f->flags = flags;
	memset(f->reserved, 0, sizeof(f->reserved));

	ring->prod = prod + 1;
	smp_store_release(&ctl->producer, prod + 1);
	this_cpu_inc(vn->stats->captured);

	/* Pairs with the smp_mb() in vigil_poll(). */
	smp_mb();
	if (READ_ONCE(ctl->consumer) == prod && waitqueue_active(&vn->wq))
		irq_work_queue(&vn->wake);
out:
	local_bh_enable();
}

static struct vigil_rings *vigil_rings_alloc(void)
{
	struct vigil_ring_geom g = {
		.page_size = PAGE_SIZE,
		.ring_count = nr_cpu_ids,
		.slots = vigil_param_slots,
		.snaplen = vigil_param_snaplen,
	};
	struct vigil_ring_info *info;
	struct vigil_rings *rings;
	unsigned int i;

	if (vigil_ring_geom_compute(&g))
		return ERR_PTR(-EINVAL);
	rings = kzalloc(struct_size(rings, ring, g.ring_count), GFP_KERNEL);
	if (!rings)
		return ERR_PTR(-ENOMEM);
	rings->area = vmalloc_user(g.map_size);
	if (!rings->area) {
		kfree(rings);
		return ERR_PTR(-ENOMEM);
	}
	rings->geom = g;
	rings->n = g.ring_count;
	for (i = 0; i < rings->n; i++) {
		u8 *base = (u8 *)rings->area + g.ring_offset + i * g.ring_stride;

		rings->ring[i].ctl = (struct vigil_ring_ctl *)base;
		rings->ring[i].slots = base + g.page_size;
	}
	info = rings->area;
	info->magic = VIGIL_RING_MAGIC;
	info->abi_version = VIGIL_RING_ABI_VERSION;
	info->ring_count = g.ring_count;
	info->slots_per_ring = g.slots;
	info->slot_size = g.slot_size;
	info->snaplen = g.snaplen;
	info->page_size = g.page_size;
	info->ring_offset = g.ring_offset;
	info->ring_stride = g.ring_stride;
	info->map_size = g.map_size;
	return rings;
}

/* Called at namespace exit, after the hooks are gone. The open file pins
 * the namespace, so no reader or mapping can still exist. */
void vigil_rings_net_exit(struct vigil_net *vn)
{
	struct vigil_rings *rings = rcu_dereference_protected(vn->rings, true);

	irq_work_sync(&vn->wake);
	if (!rings)
		return;
	RCU_INIT_POINTER(vn->rings, NULL);
	vfree(rings->area);
	kfree(rings);
}

static int vigil_open(struct inode *inode, struct file *file)
{
	struct net *net = current->nsproxy->net_ns;
	struct vigil_net *vn = vigil_pernet(net);
	struct vigil_rings *rings;
	int err = 0;

	if (!ns_capable(net->user_ns, CAP_NET_ADMIN))
		return -EPERM;
	if (atomic_cmpxchg(&vn->reader, 0, 1) != 0)
		return -EBUSY;

	mutex_lock(&vn->lock);
	rings = rcu_dereference_protected(vn->rings, lockdep_is_held(&vn->lock));
	if (!rings) {
		rings = vigil_rings_alloc();
		if (IS_ERR(rings))
			err = PTR_ERR(rings);
		else
			rcu_assign_pointer(vn->rings, rings);
	}
	mutex_unlock(&vn->lock);
	if (err) {
		atomic_set(&vn->reader, 0);
		return err;
	}
	file->private_data = get_net(net);
	return nonseekable_open(inode, file);
}

static int vigil_release(struct inode *inode, struct file *file)
{
	struct net *net = file->private_data;

	atomic_set(&vigil_pernet(net)->reader, 0);
	put_net(net);
	return 0;
}

static struct vigil_rings *vigil_file_rings(struct file *file)
{
	/* Allocated before open() succeeded; freed only at namespace exit,
	 * which the file's reference on the namespace prevents. */
	return rcu_dereference_protected(vigil_pernet(file->private_data)->rings,
					 true);
}

static int vigil_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vigil_rings *rings = vigil_file_rings(file);
	unsigned long len = vma->vm_end - vma->vm_start;

	/* The reader writes its consumer index into the control page, so the
	 * mapping is shared and writable as a whole; the kernel never trusts
	 * anything in it. Private mappings would silently copy on write. */
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (!vigil_mmap_ok(&rings->geom, vma->vm_pgoff, len))
		return -EINVAL;
	/* Sets VM_DONTEXPAND | VM_DONTDUMP and checks the size again. */
	return remap_vmalloc_range(vma, rings->area, 0);
}

static __poll_t vigil_poll(struct file *file, poll_table *wait)
{
	struct vigil_net *vn = vigil_pernet(file->private_data);
	struct vigil_rings *rings = vigil_file_rings(file);
	unsigned int i;

	poll_wait(file, &vn->wq, wait);
	/* Pairs with the smp_mb() in vigil_capture(). */
	smp_mb();
	for (i = 0; i < rings->n; i++) {
		struct vigil_ring *r = &rings->ring[i];

		if (READ_ONCE(r->prod) != READ_ONCE(r->ctl->consumer))
			return EPOLLIN | EPOLLRDNORM;
	}
	return 0;
}

static const struct file_operations vigil_fops = {
	.owner		= THIS_MODULE,
	.open		= vigil_open,
	.release	= vigil_release,
	.mmap		= vigil_mmap,
	.poll		= vigil_poll,
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
	.llseek		= no_llseek,
#endif
};

static struct miscdevice vigil_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= VIGIL_DEVICE_NAME,
	.fops	= &vigil_fops,
	.mode	= 0600,
};

int vigil_dev_init(void)
{
	return misc_register(&vigil_misc);
}

void vigil_dev_exit(void)
{
	misc_deregister(&vigil_misc);
}
