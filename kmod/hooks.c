// SPDX-License-Identifier: GPL-2.0
/*
 * Netfilter hooks: IPv4 and IPv6, PRE_ROUTING (ingress, local or forwarded)
 * and LOCAL_OUT (locally generated egress), at the first priority, before
 * defragmentation and conntrack. Every packet, whatever its size or shape,
 * goes through the rule check; only the headers are read, through
 * skb_header_pointer(), so nonlinear and GSO skbs need no special case.
 * A first fragment that does not hold its ports is marked l4_hidden, and
 * judged by match.c as whatever port it could be heading for.
 */
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/skbuff.h>
#include <net/ip.h>
#include <net/ipv6.h>

#include "netns.h"
#include "rules.h"
#include "ring.h"
#include "hooks.h"

static bool vigil_parse_v4(const struct sk_buff *skb, unsigned int noff,
			   struct vigil_pkt *p)
{
	const struct iphdr *iph;
	struct iphdr _iph;
	const __be16 *ports;
	__be16 _ports[2];

	iph = skb_header_pointer(skb, noff, sizeof(_iph), &_iph);
	if (!iph || iph->version != 4 || iph->ihl < 5)
		return false;
	memcpy(p->src.b, &iph->saddr, 4);
	memcpy(p->dst.b, &iph->daddr, 4);
	p->proto = iph->protocol;
	if (ntohs(iph->frag_off) & IP_OFFSET) {
		/* Non-first fragment: addresses and protocol only. */
		p->is_frag = 1;
		return true;
	}
	if (vigil_port_proto(p->proto)) {
		ports = skb_header_pointer(skb, noff + iph->ihl * 4,
					   sizeof(_ports), &_ports);
		if (ports) {
			p->has_ports = 1;
			p->sport = ntohs(ports[0]);
			p->dport = ntohs(ports[1]);
		} else if (ntohs(iph->frag_off) & IP_MF) {
			/* A first fragment too short for its ports. */
			p->l4_hidden = 1;
		}
	}
	return true;
}

static bool vigil_parse_v6(struct sk_buff *skb, unsigned int noff,
			   struct vigil_pkt *p)
{
	const struct ipv6hdr *ip6h;
	struct ipv6hdr _ip6h;
	unsigned int thoff = 0;
	unsigned short fragoff = 0;
	int flags = 0, proto;
	const __be16 *ports;
	__be16 _ports[2];

	ip6h = skb_header_pointer(skb, noff, sizeof(_ip6h), &_ip6h);
	if (!ip6h || ip6h->version != 6)
		return false;
	memcpy(p->src.b, &ip6h->saddr, 16);
	memcpy(p->dst.b, &ip6h->daddr, 16);

	/* Walks the extension headers; for a non-first fragment it returns
	 * the protocol from the fragment header and sets fragoff. */
	proto = ipv6_find_hdr(skb, &thoff, -1, &fragoff, &flags);
	if (proto < 0) {
		p->proto = 0;	/* only protocol-agnostic rules can match */
		/* -EBADMSG past a first fragment's header: the extension
		 * header chain goes on in the next fragment. */
		if (proto == -EBADMSG && (flags & IP6_FH_F_FRAG) && !fragoff)
			p->l4_hidden = 1;
		return true;
	}
	p->proto = proto;
	if ((flags & IP6_FH_F_FRAG) && fragoff) {
		p->is_frag = 1;
		return true;
	}
	if (vigil_port_proto(p->proto)) {
		ports = skb_header_pointer(skb, thoff, sizeof(_ports), &_ports);
		if (ports) {
			p->has_ports = 1;
			p->sport = ntohs(ports[0]);
			p->dport = ntohs(ports[1]);
		} else if (flags & IP6_FH_F_FRAG) {
			/* A first fragment that ends before its ports. */
			p->l4_hidden = 1;
		}
	}
	return true;
}

/* Loopback traffic is local chatter (the capture service's own publishes to
 * a local NATS among it): not copied unless asked for. Rules still apply. */
static bool vigil_wants_frame(const struct vigil_net *vn,
			      const struct net_device *dev)
{
	if (!READ_ONCE(vn->capture))
		return false;
	return !dev || !(dev->flags & IFF_LOOPBACK) ||
	       READ_ONCE(vn->capture_loopback);
}

static unsigned int vigil_hook(void *priv, struct sk_buff *skb,
			       const struct nf_hook_state *state)
{
	struct vigil_net *vn = vigil_pernet(state->net);
	unsigned int noff = skb_network_offset(skb);
	struct vigil_pkt p = {};
	const struct net_device *dev;
	u8 action = 0;
	bool ok;

	this_cpu_inc(vn->stats->seen);

	if (state->hook == NF_INET_PRE_ROUTING) {
		p.dir = VIGIL_DIR_INGRESS;
		dev = state->in;
	} else {
		p.dir = VIGIL_DIR_EGRESS;
		dev = state->out;
	}
	if (state->pf == NFPROTO_IPV4) {
		p.family = VIGIL_FAMILY_IPV4;
		ok = vigil_parse_v4(skb, noff, &p);
	} else {
		p.family = VIGIL_FAMILY_IPV6;
		ok = vigil_parse_v6(skb, noff, &p);
	}
	if (likely(ok))
		action = vigil_rules_decide(vn, &p, skb->len - noff);

	if (action == VIGIL_ACTION_DROP) {
		this_cpu_inc(vn->stats->dropped);
		if (READ_ONCE(vn->capture_dropped) && vigil_wants_frame(vn, dev))
			vigil_capture(vn, skb, p.dir, p.family,
				      dev ? dev->ifindex : 0,
				      VIGIL_FRAME_F_DROPPED);
		return NF_DROP;
	}
	if (vigil_wants_frame(vn, dev))
		vigil_capture(vn, skb, p.dir, p.family, dev ? dev->ifindex : 0, 0);
	return NF_ACCEPT;
}

static const struct nf_hook_ops vigil_nf_ops[] = {
	{
		.hook		= vigil_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP_PRI_FIRST,
	},
	{
		.hook		= vigil_hook,
		.pf		= NFPROTO_IPV4,
		.hooknum	= NF_INET_LOCAL_OUT,
		.priority	= NF_IP_PRI_FIRST,
	},
	{
		.hook		= vigil_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_PRE_ROUTING,
		.priority	= NF_IP6_PRI_FIRST,
	},
	{
		.hook		= vigil_hook,
		.pf		= NFPROTO_IPV6,
		.hooknum	= NF_INET_LOCAL_OUT,
		.priority	= NF_IP6_PRI_FIRST,
	},
};

int vigil_hooks_register(struct net *net)
{
	return nf_register_net_hooks(net, vigil_nf_ops, ARRAY_SIZE(vigil_nf_ops));
}

void vigil_hooks_unregister(struct net *net)
{
	nf_unregister_net_hooks(net, vigil_nf_ops, ARRAY_SIZE(vigil_nf_ops));
}
