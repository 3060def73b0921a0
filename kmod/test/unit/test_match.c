// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of match.c (rule matching, host keys/hash, ring arithmetic),
 * built with -fsanitize=address,undefined by `make -C kmod check`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "match.h"
#include "ring_geom.h"
#include "linux/vigil.h"

static int passed, failed;

#define CHECK(cond) do {						\
	if (cond) { passed++; }						\
	else { failed++; fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

static union vigil_addr a4(const char *s)
{
	union vigil_addr a;

	memset(&a, 0, sizeof(a));
	inet_pton(AF_INET, s, a.b);
	return a;
}

static union vigil_addr a6(const char *s)
{
	union vigil_addr a;

	memset(&a, 0, sizeof(a));
	inet_pton(AF_INET6, s, a.b);
	return a;
}

static struct vigil_pkt pkt4(const char *src, const char *dst, u8 proto, u16 dport, u8 dir)
{
	struct vigil_pkt p;

	memset(&p, 0, sizeof(p));
	p.family = VIGIL_FAMILY_IPV4;
	p.src = a4(src);
	p.dst = a4(dst);
	p.proto = proto;
	p.dport = dport;
	p.has_ports = vigil_port_proto(proto);
	p.dir = dir;
	return p;
}

static struct vigil_gen_match gen(u8 fam, union vigil_addr src, u8 sp, union vigil_addr dst,
				  u8 dp, u8 proto, u16 lo, u16 hi, u8 dir, u8 action, u32 prio, u64 id)
{
	struct vigil_gen_match m;

	memset(&m, 0, sizeof(m));
	m.family = fam;
	m.src = src;
	m.src_prefix = sp;
	m.dst = dst;
	m.dst_prefix = dp;
	m.proto = proto;
	m.dport_min = lo;
	m.dport_max = hi;
	m.dir = dir;
	m.action = action;
	m.priority = prio;
	m.id = id;
	vigil_gen_prepare(&m);
	return m;
}

static void test_masks(void)
{
	union vigil_addr m, z;

	memset(&z, 0, sizeof(z));
	vigil_prefix_mask(4, 0, &m);
	CHECK(!memcmp(&m, &z, sizeof(m)));
	vigil_prefix_mask(4, 24, &m);
	CHECK(m.b[0] == 0xff && m.b[2] == 0xff && m.b[3] == 0 && m.b[4] == 0);
	vigil_prefix_mask(4, 1, &m);
	CHECK(m.b[0] == 0x80 && m.b[1] == 0);
	vigil_prefix_mask(4, 32, &m);
	CHECK(m.w[0] == 0xffffffffu && m.w[1] == 0);
	vigil_prefix_mask(4, 200, &m);		/* clamped to 32 */
	CHECK(m.w[0] == 0xffffffffu && m.w[1] == 0);
	vigil_prefix_mask(6, 127, &m);
	CHECK(m.b[15] == 0xfe && m.b[14] == 0xff);
	vigil_prefix_mask(6, 128, &m);
	CHECK(m.w[3] == 0xffffffffu);
	vigil_prefix_mask(6, 65, &m);
	CHECK(m.b[7] == 0xff && m.b[8] == 0x80 && m.b[9] == 0);

	union vigil_addr a = a4("10.1.2.0");
	CHECK(vigil_addr_valid_for_prefix(4, &a, 24));
	CHECK(!vigil_addr_valid_for_prefix(4, &a, 22));
	CHECK(vigil_addr_valid_for_prefix(4, &a, 23));
	a = a4("10.1.2.1");
	CHECK(!vigil_addr_valid_for_prefix(4, &a, 24));
	CHECK(vigil_addr_valid_for_prefix(4, &a, 32));
	a = a6("fd00::1");
	CHECK(!vigil_addr_valid_for_prefix(6, &a, 64));
	CHECK(vigil_addr_valid_for_prefix(6, &a, 128));
	CHECK(vigil_family_bits(4) == 32 && vigil_family_bits(6) == 128);
}

static void test_general(void)
{
	struct vigil_pkt p = pkt4("10.0.0.5", "192.168.1.1", 17, 53, VIGIL_DIR_INGRESS);
	struct vigil_gen_match m;

	m = gen(4, a4("10.0.0.0"), 8, a4("0.0.0.0"), 0, 0, 0, 0xffff, 3, 1, 0, 1);
	CHECK(vigil_gen_matches(&m, &p, 0));
	CHECK(!m.ports);
	m = gen(4, a4("11.0.0.0"), 8, a4("0.0.0.0"), 0, 0, 0, 0xffff, 3, 1, 0, 1);
	CHECK(!vigil_gen_matches(&m, &p, 0));
	m = gen(4, a4("0.0.0.0"), 0, a4("192.168.1.0"), 24, 17, 53, 53, 1, 1, 0, 1);
	CHECK(vigil_gen_matches(&m, &p, 0));
	CHECK(m.ports);
	m.dir = VIGIL_DIR_EGRESS;
	CHECK(!vigil_gen_matches(&m, &p, 0));
	m = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 6, 0, 0xffff, 3, 1, 0, 1);
	CHECK(!vigil_gen_matches(&m, &p, 0));		/* wrong protocol */
	m = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 0, 54, 60, 3, 1, 0, 1);
	CHECK(!vigil_gen_matches(&m, &p, 0));		/* port outside */
	m = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 0, 50, 60, 3, 1, 0, 1);
	CHECK(vigil_gen_matches(&m, &p, 0));
	/* non-first fragment: no ports, so port rules do not match ... */
	p.has_ports = 0;
	p.is_frag = 1;
	CHECK(!vigil_gen_matches(&m, &p, 0));
	/* ... but address/protocol rules still do */
	m = gen(4, a4("10.0.0.5"), 32, a4("0.0.0.0"), 0, 17, 0, 0xffff, 3, 1, 0, 1);
	CHECK(vigil_gen_matches(&m, &p, 0));
	/* family mismatch */
	m = gen(6, a6("::"), 0, a6("::"), 0, 0, 0, 0xffff, 3, 1, 0, 1);
	CHECK(!vigil_gen_matches(&m, &p, 0));
	/* host bits in the rule address are masked off */
	m = gen(4, a4("10.0.0.77"), 24, a4("0.0.0.0"), 0, 0, 0, 0xffff, 3, 1, 0, 1);
	CHECK(m.src.b[3] == 0 && vigil_gen_matches(&m, &p, 0));
	/* expiry */
	m.expires = 100;
	CHECK(vigil_gen_matches(&m, &p, 99));
	CHECK(!vigil_gen_matches(&m, &p, 100));
	CHECK(!vigil_gen_matches(&m, &p, 1000));

	/* IPv6 */
	struct vigil_pkt q;
	memset(&q, 0, sizeof(q));
	q.family = 6;
	q.src = a6("2001:db8::1");
	q.dst = a6("2001:db8:1::2");
	q.proto = 6;
	q.dport = 443;
	q.has_ports = 1;
	q.dir = VIGIL_DIR_EGRESS;
	/* Our reply from 2001:db8:1::2 port 443 to 2001:db8::1 port 40000. */
	q.src = a6("2001:db8:1::2");
	q.dst = a6("2001:db8::1");
	q.sport = 443;
	q.dport = 40000;
	m = gen(6, a6("2001:db8::"), 32, a6("2001:db8:1::"), 48, 6, 443, 443, 2, 1, 0, 1);
	CHECK(vigil_gen_matches(&m, &q, 0));
	m = gen(6, a6("2001:db8::"), 32, a6("2001:db8:2::"), 48, 6, 443, 443, 2, 1, 0, 1);
	CHECK(!vigil_gen_matches(&m, &q, 0));
	m = gen(6, a6("2001:db8::1"), 128, a6("::"), 0, 0, 0, 0xffff, 2, 1, 0, 1);
	CHECK(vigil_gen_matches(&m, &q, 0));
	m = gen(6, a6("::"), 0, a6("::"), 0, 6, 40000, 40000, 2, 1, 0, 1);
	CHECK(!vigil_gen_matches(&m, &q, 0));		/* the remote port */
}

/* F24: a first fragment that hides its ports (or, cut inside its extension
 * header chain, its protocol) is what a drop rule could match and what an
 * accept rule cannot vouch for. */
static void test_hidden_l4(void)
{
	struct vigil_pkt p = pkt4("10.0.0.5", "192.168.1.1", 6, 0, VIGIL_DIR_INGRESS);
	struct vigil_gen_match m[2];
	struct vigil_verdict v;

	p.has_ports = 0;
	p.l4_hidden = 1;
	m[0] = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 6, 22, 22, 3, VIGIL_ACTION_DROP, 0, 1);
	CHECK(vigil_gen_matches(&m[0], &p, 0));
	m[0].action = VIGIL_ACTION_ACCEPT;
	CHECK(!vigil_gen_matches(&m[0], &p, 0));
	/* The protocol it shows still counts, and so do the addresses. */
	m[0] = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 17, 22, 22, 3, VIGIL_ACTION_DROP, 0, 1);
	CHECK(!vigil_gen_matches(&m[0], &p, 0));
	m[0] = gen(4, a4("11.0.0.0"), 8, a4("0.0.0.0"), 0, 6, 22, 22, 3, VIGIL_ACTION_DROP, 0, 1);
	CHECK(!vigil_gen_matches(&m[0], &p, 0));
	/* Cut inside the chain: no protocol either. */
	p.proto = 0;
	m[0] = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 17, 0, 0xffff, 3, VIGIL_ACTION_DROP, 0, 1);
	CHECK(vigil_gen_matches(&m[0], &p, 0));
	m[0] = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 17, 7010, 7010, 3, VIGIL_ACTION_DROP, 0, 1);
	CHECK(vigil_gen_matches(&m[0], &p, 0));
	/* An accept on the port above a protocol drop: the drop decides. */
	m[0] = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 17, 7011, 7011, 3, VIGIL_ACTION_ACCEPT, 10, 1);
	m[1] = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 17, 0, 0xffff, 3, VIGIL_ACTION_DROP, 20, 2);
	vigil_decide(NULL, m, 2, &p, 0, &v);
	CHECK(v.action == VIGIL_ACTION_DROP && v.gen_index == 1);
	/* A non-first fragment is not hidden: port rules still pass it. */
	p.l4_hidden = 0;
	p.is_frag = 1;
	p.proto = 17;
	m[0] = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 17, 7010, 7010, 3, VIGIL_ACTION_DROP, 0, 1);
	CHECK(!vigil_gen_matches(&m[0], &p, 0));
}

/* General rules are written from our side, in both directions (as the
 * nftables back end reads them): SRC remote, DST local, the port ours. */
static void test_remote_side(void)
{
	/* We send from 10.0.0.5:5353 to 192.168.1.1:53. */
	struct vigil_pkt out = pkt4("10.0.0.5", "192.168.1.1", 17, 53, VIGIL_DIR_EGRESS);
	/* 192.168.1.1:53 sends to us at 10.0.0.5:5353. */
	struct vigil_pkt in = pkt4("192.168.1.1", "10.0.0.5", 17, 5353, VIGIL_DIR_INGRESS);
	struct vigil_gen_match m;

	out.sport = 5353;
	in.sport = 53;
	m = gen(4, a4("192.168.1.0"), 24, a4("0.0.0.0"), 0, 0, 0, 0xffff, 3, 1, 0, 1);
	CHECK(vigil_gen_matches(&m, &out, 0));		/* a blocked CIDR, outbound */
	CHECK(vigil_gen_matches(&m, &in, 0));		/* and inbound */
	m = gen(4, a4("10.0.0.0"), 8, a4("0.0.0.0"), 0, 0, 0, 0xffff, 3, 1, 0, 1);
	CHECK(!vigil_gen_matches(&m, &out, 0));		/* our own address is not remote */
	CHECK(!vigil_gen_matches(&m, &in, 0));
	m = gen(4, a4("0.0.0.0"), 0, a4("10.0.0.0"), 8, 0, 0, 0xffff, 3, 1, 0, 1);
	CHECK(vigil_gen_matches(&m, &out, 0));		/* DST is ours */
	CHECK(vigil_gen_matches(&m, &in, 0));
	m = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 17, 5353, 5353, 3, 1, 0, 1);
	CHECK(vigil_gen_matches(&m, &out, 0));		/* our port, outbound: sport */
	CHECK(vigil_gen_matches(&m, &in, 0));		/* inbound: dport */
	m = gen(4, a4("0.0.0.0"), 0, a4("0.0.0.0"), 0, 17, 53, 53, 3, 1, 0, 1);
	CHECK(!vigil_gen_matches(&m, &out, 0));		/* the remote port */
	CHECK(!vigil_gen_matches(&m, &in, 0));
	m = gen(4, a4("192.168.1.0"), 24, a4("0.0.0.0"), 0, 0, 0, 0xffff, 1, 1, 0, 1);
	CHECK(!vigil_gen_matches(&m, &out, 0));		/* inbound only */
	CHECK(vigil_gen_matches(&m, &in, 0));
}

static void test_order_and_decide(void)
{
	struct vigil_gen_match t[4];
	struct vigil_pkt p = pkt4("10.0.0.5", "10.0.0.9", 17, 53, VIGIL_DIR_INGRESS);
	struct vigil_host_match h = { .expires = 0, .priority = 100, .dir = 3,
				      .action = VIGIL_ACTION_DROP };
	struct vigil_verdict v;

	t[0] = gen(4, a4("10.0.0.0"), 24, a4("0.0.0.0"), 0, 0, 0, 0xffff, 3, VIGIL_ACTION_DROP, 50, 7);
	t[1] = gen(4, a4("10.0.0.0"), 24, a4("0.0.0.0"), 0, 17, 53, 53, 3, VIGIL_ACTION_ACCEPT, 10, 9);
	t[2] = gen(4, a4("10.0.0.0"), 24, a4("0.0.0.0"), 0, 0, 0, 0xffff, 3, VIGIL_ACTION_ACCEPT, 50, 3);
	t[3] = gen(4, a4("10.9.0.0"), 16, a4("0.0.0.0"), 0, 0, 0, 0xffff, 3, VIGIL_ACTION_DROP, 0, 1);
	qsort(t, 4, sizeof(t[0]), vigil_gen_cmp);
	CHECK(t[0].id == 1 && t[1].id == 9 && t[2].id == 3 && t[3].id == 7);

	CHECK(vigil_gen_lookup(t, 4, &p, 0, 0, false) == 1);
	CHECK(vigil_gen_lookup(t, 4, &p, 0, 10, true) == -1);	/* limit excludes prio 10 */
	CHECK(vigil_gen_lookup(t, 4, &p, 0, 11, true) == 1);

	/* accept at prio 10 beats the host drop at prio 100 */
	vigil_decide(&h, t, 4, &p, 0, &v);
	CHECK(v.action == VIGIL_ACTION_ACCEPT && !v.is_host && v.gen_index == 1);
	/* host at prio 5 beats everything */
	h.priority = 5;
	vigil_decide(&h, t, 4, &p, 0, &v);
	CHECK(v.action == VIGIL_ACTION_DROP && v.is_host && v.gen_index == -1);
	/* tie: host first */
	h.priority = 10;
	vigil_decide(&h, t, 4, &p, 0, &v);
	CHECK(v.is_host);
	/* expired host rule is ignored */
	h.expires = 5;
	vigil_decide(&h, t, 4, &p, 10, &v);
	CHECK(!v.is_host && v.action == VIGIL_ACTION_ACCEPT);
	/* direction mask of the host rule */
	h.expires = 0;
	h.dir = VIGIL_DIR_EGRESS;
	vigil_decide(&h, NULL, 0, &p, 0, &v);
	CHECK(v.action == 0 && v.gen_index == -1);
	h.dir = VIGIL_DIR_INGRESS;
	vigil_decide(&h, NULL, 0, &p, 0, &v);
	CHECK(v.action == VIGIL_ACTION_DROP && v.is_host);
	/* nothing at all */
	vigil_decide(NULL, NULL, 0, &p, 0, &v);
	CHECK(v.action == 0);
	/* no general match, no host: accept by default (action 0) */
	struct vigil_pkt o = pkt4("172.16.0.1", "10.0.0.9", 6, 80, VIGIL_DIR_INGRESS);
	vigil_decide(NULL, t, 4, &o, 0, &v);
	CHECK(v.action == 0);
}

static void test_host_key(void)
{
	struct vigil_pkt p = pkt4("1.2.3.4", "5.6.7.8", 6, 80, VIGIL_DIR_INGRESS);
	struct vigil_host_key k, k2;
	union vigil_addr x = a4("1.2.3.4"), y = a4("5.6.7.8");

	CHECK(sizeof(struct vigil_host_key) == 20);
	vigil_host_key_from_pkt(&p, &k);
	CHECK(k.family == 4 && !memcmp(&k.addr, &x, sizeof(x)));
	p.dir = VIGIL_DIR_EGRESS;
	vigil_host_key_from_pkt(&p, &k2);
	CHECK(!memcmp(&k2.addr, &y, sizeof(y)));
	CHECK(vigil_host_hash(&k, 1) == vigil_host_hash(&k, 1));
	CHECK(vigil_host_hash(&k, 1) != vigil_host_hash(&k2, 1));
	CHECK(vigil_host_hash(&k, 1) != vigil_host_hash(&k, 2));

	/* sequential addresses spread over buckets */
	enum { N = 65536, B = 65536 };
	static unsigned short cnt[B];
	unsigned int i, maxc = 0;

	memset(cnt, 0, sizeof(cnt));
	for (i = 0; i < N; i++) {
		memset(&k, 0, sizeof(k));
		k.family = 4;
		k.addr.w[0] = htonl(0x0a000000u + i);
		cnt[vigil_host_hash(&k, 0x1234) & (B - 1)]++;
	}
	for (i = 0; i < B; i++)
		if (cnt[i] > maxc)
			maxc = cnt[i];
	CHECK(maxc <= 12);	/* Poisson(1) max over 65536 buckets is ~8 */
}

static void test_ring(void)
{
	struct vigil_ring_geom g = { .page_size = 4096, .ring_count = 2, .slots = 4096, .snaplen = 128 };

	CHECK(vigil_ring_geom_compute(&g) == 0);
	CHECK(g.slot_size == 192);
	CHECK(g.slot_size % 64 == 0 && g.slot_size >= VIGIL_FRAME_HDR_LEN + g.snaplen);
	CHECK(g.ring_offset == 4096);
	CHECK(g.ring_stride == 4096 + 4096 * 192);
	CHECK(g.ring_stride % 4096 == 0);
	CHECK(g.map_size == 4096 + 2 * g.ring_stride);
	CHECK(sizeof(struct vigil_frame) == VIGIL_FRAME_HDR_LEN);
	CHECK(sizeof(struct vigil_ring_ctl) == 192);
	CHECK(sizeof(struct vigil_ring_info) == 56);

	g.snaplen = 40;			/* 64 exactly */
	CHECK(vigil_ring_geom_compute(&g) == 0 && g.slot_size == 64);
	g.snaplen = 41;
	CHECK(vigil_ring_geom_compute(&g) == 0 && g.slot_size == 128);
	g.slots = 3;
	CHECK(vigil_ring_geom_compute(&g) == -1);
	g.slots = 1;
	CHECK(vigil_ring_geom_compute(&g) == -1);
	g.slots = 1u << 21;
	CHECK(vigil_ring_geom_compute(&g) == -1);
	g.slots = 8;
	g.snaplen = 70000;
	CHECK(vigil_ring_geom_compute(&g) == -1);
	g.snaplen = 0;
	CHECK(vigil_ring_geom_compute(&g) == 0 && g.slot_size == 64 && g.ring_stride == 8192);
	g.page_size = 3000;
	CHECK(vigil_ring_geom_compute(&g) == -1);
	g.page_size = 4096;
	g.ring_count = 0;
	CHECK(vigil_ring_geom_compute(&g) == -1);
	g.ring_count = 8192;
	g.slots = 1u << 20;
	g.snaplen = 65000;
	CHECK(vigil_ring_geom_compute(&g) == -1);	/* way over the mapping cap */

	/* slot offsets wrap with the free-running index */
	CHECK(vigil_ring_slot_off(0, 8, 64) == 0);
	CHECK(vigil_ring_slot_off(7, 8, 64) == 7 * 64);
	CHECK(vigil_ring_slot_off(8, 8, 64) == 0);
	CHECK(vigil_ring_slot_off(UINT64_MAX, 8, 64) == 7 * 64);

	/* free space, including wrap-around of the u64 counters */
	CHECK(vigil_ring_free(0, 0, 8) == 8);
	CHECK(vigil_ring_free(8, 0, 8) == 0);
	CHECK(vigil_ring_free(9, 2, 8) == 1);
	CHECK(vigil_ring_free(UINT64_MAX, UINT64_MAX - 3, 8) == 5);
	CHECK(vigil_ring_free(2, UINT64_MAX - 1, 8) == 4);	/* wrapped producer */
	/* a consumer ahead of the producer (garbage) looks full, never huge */
	CHECK(vigil_ring_free(5, 6, 8) == 0);
	CHECK(vigil_ring_free(5, 1000, 8) == 0);

	g = (struct vigil_ring_geom){ .page_size = 4096, .ring_count = 2, .slots = 64, .snaplen = 128 };
	CHECK(vigil_ring_geom_compute(&g) == 0);
	CHECK(vigil_mmap_ok(&g, 0, g.map_size));
	CHECK(vigil_mmap_ok(&g, 0, 4096));
	CHECK(!vigil_mmap_ok(&g, 1, 4096));
	CHECK(!vigil_mmap_ok(&g, 0, g.map_size + 4096));
	CHECK(!vigil_mmap_ok(&g, 0, 0));
}

int main(void)
{
	test_masks();
	test_general();
	test_remote_side();
	test_hidden_l4();
	test_order_and_decide();
	test_host_key();
	test_ring();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
