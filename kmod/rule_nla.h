/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A rule as netlink attributes and back (rule_nla.c): the policies, the
 * parser with its cross-attribute checks, and the nest a dump or an event
 * carries.
 */
#ifndef _VIGIL_RULE_NLA_H
#define _VIGIL_RULE_NLA_H

#include <linux/types.h>
#include <net/netlink.h>

#include "include/uapi/linux/vigil.h"

struct sk_buff;
struct vigil_rule;
struct vigil_rule_spec;

extern const struct nla_policy vigil_rule_policy[VIGIL_RULE_ATTR_MAX + 1];
extern const struct nla_policy vigil_config_policy[VIGIL_CONFIG_ATTR_MAX + 1];

int vigil_parse_rule(const struct nlattr *nest, bool add,
		     struct vigil_rule_spec *s, struct netlink_ext_ack *extack);
int vigil_rule_fill(struct sk_buff *skb, const struct vigil_rule *r, u64 now);

#endif /* _VIGIL_RULE_NLA_H */
