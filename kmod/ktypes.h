/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's fixed-width type names, also in the userspace builds of the
 * kernel-independent files (match.c, ring_geom.c under test/unit).
 */
#ifndef _VIGIL_KTYPES_H
#define _VIGIL_KTYPES_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/string.h>
#else
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
#endif

#endif /* _VIGIL_KTYPES_H */
