// SPDX-License-Identifier: GPL-2.0
/*
 * Capture ring geometry; see ring_geom.h. No kernel API in here: the same
 * file is built into test/unit/ with ASan/UBSan.
 */
#include "ring_geom.h"
#include "include/uapi/linux/vigil.h"

#define VIGIL_MAX_MAP	(1ULL << 36)

static u64 round_up_u64(u64 x, u64 a)
{
	return (x + a - 1) / a * a;
}

/* Fill in the derived fields; -1 when the parameters are out of range. */
int vigil_ring_geom_compute(struct vigil_ring_geom *g)
{
	u64 slot_bytes;

	if (!vigil_is_pow2(g->page_size) || g->page_size < 4096)
		return -1;
	if (!vigil_is_pow2(g->slots) || g->slots < 2 || g->slots > (1u << 20))
		return -1;
	if (g->ring_count < 1 || g->ring_count > 8192)
		return -1;
	if (g->snaplen > 65535 - VIGIL_FRAME_HDR_LEN - 63)
		return -1;
	g->slot_size = round_up_u64(VIGIL_FRAME_HDR_LEN + g->snaplen, 64);
	slot_bytes = g->slots * g->slot_size;
	g->ring_offset = g->page_size;
	g->ring_stride = g->page_size + round_up_u64(slot_bytes, g->page_size);
	if (g->ring_stride > VIGIL_MAX_MAP / g->ring_count)
		return -1;
	g->map_size = g->ring_offset + g->ring_count * g->ring_stride;
	if (g->map_size > VIGIL_MAX_MAP)
		return -1;
	return 0;
}

/* Only a mapping that starts at offset 0 and stays inside the area. */
bool vigil_mmap_ok(const struct vigil_ring_geom *g, u64 pgoff, u64 len)
{
	return pgoff == 0 && len > 0 && len <= g->map_size;
}
