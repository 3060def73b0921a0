/* SPDX-License-Identifier: GPL-2.0 */
/* /dev/vigil and the per-CPU capture rings (ring.c). */
#ifndef _VIGIL_RING_H
#define _VIGIL_RING_H

#include <linux/types.h>
#include <linux/cache.h>

#include "include/uapi/linux/vigil.h"
#include "ring_geom.h"

#if BITS_PER_LONG != 64
#error "vigil needs 64-bit atomics for the ring indexes (64-bit kernels only)"
#endif

struct irq_work;
struct sk_buff;
struct vigil_net;

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

int vigil_dev_init(void);
void vigil_dev_exit(void);
void vigil_rings_net_exit(struct vigil_net *vn);
void vigil_capture(struct vigil_net *vn, struct sk_buff *skb, u8 dir, u8 family,
		   int ifindex, u8 flags);
void vigil_wake_fn(struct irq_work *work);

#endif /* _VIGIL_RING_H */
