/* SPDX-License-Identifier: GPL-2.0 */
/* The netfilter hooks of one namespace (hooks.c). */
#ifndef _VIGIL_HOOKS_H
#define _VIGIL_HOOKS_H

struct net;

int vigil_hooks_register(struct net *net);
void vigil_hooks_unregister(struct net *net);

#endif /* _VIGIL_HOOKS_H */
