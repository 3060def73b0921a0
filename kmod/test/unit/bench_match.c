// SPDX-License-Identifier: GPL-2.0
/*
 * Micro-benchmark of the packet-path lookup code in match.c, in userspace.
 * Prints one JSON object.
 *
 * Host rules: 1,000,000 IPv4 entries in a chained hash table using the same
 * key, hash function (vigil_host_hash) and bucket sizing the kernel's
 * rhashtable reaches for that count (load <= 75% -> 2^21 buckets), then
 * vigil_decide() on the result. Half of the lookups hit, in random order.
 * General rules: 4096 rules none of which match until the last one (the
 * worst case: a full walk of the sorted array), through vigil_decide().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include "match.h"
#include "linux/vigil.h"

struct hnode {
	struct hnode *next;
	struct vigil_host_key key;
	struct vigil_host_match hm;
};

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static u64 rng = 88172645463325252ULL;
static u64 xr(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(void)
{
	enum { NHOST = 1000000, NB = 1 << 21, NQ = 4000000, NGEN = 4096, NGQ = 20000 };
	struct hnode *nodes = calloc(NHOST, sizeof(*nodes));
	struct hnode **buckets = calloc(NB, sizeof(*buckets));
	struct vigil_pkt *q = calloc(4096, sizeof(*q));
	struct vigil_gen_match *gen = calloc(NGEN, sizeof(*gen));
	const u32 seed = 0x9e3779b9;
	volatile unsigned long sink = 0;
	struct vigil_verdict v;
	double t0, t1, host_ns, gen_ns, gen_first_ns, empty_ns;
	unsigned long i, hits = 0;

	if (!nodes || !buckets || !q || !gen)
		return 1;
	for (i = 0; i < NHOST; i++) {
		struct hnode *n = &nodes[i];
		u32 h;

		n->key.family = 4;
		n->key.addr.w[0] = htonl(0x0b000000u + (u32)(i * 7));
		n->hm.priority = 0;
		n->hm.dir = 3;
		n->hm.action = VIGIL_ACTION_DROP;
		h = vigil_host_hash(&n->key, seed) & (NB - 1);
		n->next = buckets[h];
		buckets[h] = n;
	}
	for (i = 0; i < 4096; i++) {
		memset(&q[i], 0, sizeof(q[i]));
		q[i].family = 4;
		q[i].dir = VIGIL_DIR_INGRESS;
		q[i].proto = 17;
		q[i].has_ports = 1;
		q[i].dport = 53;
		/* half present, half absent */
		q[i].src.w[0] = htonl(0x0b000000u + (u32)((xr() % NHOST) * 7) + (i & 1));
		q[i].dst.w[0] = htonl(0x0a000001u);
	}

	t0 = now_ns();
	for (i = 0; i < NQ; i++) {
		const struct vigil_pkt *p = &q[(i * 2654435761u) & 4095];
		struct vigil_host_key k;
		struct hnode *n;

		vigil_host_key_from_pkt(p, &k);
		for (n = buckets[vigil_host_hash(&k, seed) & (NB - 1)]; n; n = n->next)
			if (!memcmp(&n->key, &k, sizeof(k)))
				break;
		vigil_decide(n ? &n->hm : NULL, NULL, 0, p, 1, &v);
		hits += v.action != 0;
	}
	t1 = now_ns();
	host_ns = (t1 - t0) / NQ;

	for (i = 0; i < NGEN; i++) {
		union vigil_addr s;

		memset(&s, 0, sizeof(s));
		s.w[0] = htonl(0xc0000000u + (u32)(i << 8));	/* 192.x.y.0/24: no match */
		memset(&gen[i], 0, sizeof(gen[i]));
		gen[i].family = 4;
		gen[i].src = s;
		gen[i].src_prefix = 24;
		gen[i].proto = 17;
		gen[i].dport_min = 0;
		gen[i].dport_max = 0xffff;
		gen[i].dir = 3;
		gen[i].action = VIGIL_ACTION_DROP;
		gen[i].priority = (u32)i;
		gen[i].id = i;
		vigil_gen_prepare(&gen[i]);
	}
	/* the last one matches everything from 11.0.0.0/8 */
	gen[NGEN - 1].src.w[0] = htonl(0x0b000000u);
	gen[NGEN - 1].src_prefix = 8;
	vigil_gen_prepare(&gen[NGEN - 1]);
	qsort(gen, NGEN, sizeof(gen[0]), vigil_gen_cmp);

	t0 = now_ns();
	for (i = 0; i < NGQ; i++) {
		vigil_decide(NULL, gen, NGEN, &q[i & 4095], 1, &v);
		sink += v.gen_index;
	}
	t1 = now_ns();
	gen_ns = (t1 - t0) / NGQ;

	/* first rule matches: the best case */
	gen[0].src.w[0] = htonl(0x0b000000u);
	gen[0].src_prefix = 8;
	vigil_gen_prepare(&gen[0]);
	t0 = now_ns();
	for (i = 0; i < NQ; i++) {
		vigil_decide(NULL, gen, NGEN, &q[i & 4095], 1, &v);
		sink += v.gen_index;
	}
	t1 = now_ns();
	gen_first_ns = (t1 - t0) / NQ;

	t0 = now_ns();
	for (i = 0; i < NQ; i++) {
		vigil_decide(NULL, NULL, 0, &q[i & 4095], 1, &v);
		sink += v.action;
	}
	t1 = now_ns();
	empty_ns = (t1 - t0) / NQ;

	printf("{\"host_rules\":%d,\"host_lookup_ns\":%.1f,\"host_hit_ratio\":%.2f,"
	       "\"general_rules\":%d,\"general_lookup_ns_full_walk\":%.1f,"
	       "\"general_lookup_ns_first_match\":%.1f,\"no_rules_ns\":%.1f}\n",
	       NHOST, host_ns, (double)hits / NQ, NGEN, gen_ns, gen_first_ns, empty_ns);
	(void)sink;
	free(nodes);
	free(buckets);
	free(q);
	free(gen);
	return 0;
}
