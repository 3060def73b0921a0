/* SPDX-License-Identifier: GPL-2.0 */
/* The per-namespace expiry work (expire.c). */
#ifndef _VIGIL_EXPIRE_H
#define _VIGIL_EXPIRE_H

struct work_struct;

void vigil_gc_work(struct work_struct *work);

#endif /* _VIGIL_EXPIRE_H */
