/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Capture ring geometry: where each ring, slot and page lies in the area
 * /dev/vigil maps, and which mappings are allowed. Kernel-independent (built
 * into test/unit too), like match.h.
 */
#ifndef _VIGIL_RING_GEOM_H
#define _VIGIL_RING_GEOM_H

#include "ktypes.h"

struct vigil_ring_geom {
	u64	page_size;
	u64	ring_count;
	u64	slots;		/* power of two */
	u64	snaplen;
	u64	slot_size;	/* derived */
	u64	ring_offset;	/* derived */
	u64	ring_stride;	/* derived */
	u64	map_size;	/* derived */
};

int vigil_ring_geom_compute(struct vigil_ring_geom *g);
static inline bool vigil_is_pow2(u64 x)
{
	return x && !(x & (x - 1));
}
static inline u64 vigil_ring_slot_off(u64 n, u64 slots, u64 slot_size)
{
	return (n & (slots - 1)) * slot_size;
}
/* Frames the producer may still write; untrusted consumer values (a reader
 * that scribbled over its index) only ever make the ring look full. */
static inline u64 vigil_ring_free(u64 prod, u64 cons, u64 slots)
{
	u64 used = prod - cons;

	return used >= slots ? 0 : slots - used;
}
bool vigil_mmap_ok(const struct vigil_ring_geom *g, u64 pgoff, u64 len);

#endif /* _VIGIL_RING_GEOM_H */
