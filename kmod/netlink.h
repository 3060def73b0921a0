/* SPDX-License-Identifier: GPL-2.0 */
/* The generic netlink family "vigil" (netlink.c). */
#ifndef _VIGIL_NETLINK_H
#define _VIGIL_NETLINK_H

struct vigil_net;
struct vigil_rule;

int vigil_genl_init(void);
void vigil_genl_exit(void);
void vigil_notify_expired(struct vigil_net *vn, const struct vigil_rule *r);

#endif /* _VIGIL_NETLINK_H */
