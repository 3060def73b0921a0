// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-nlfuzz: send random and malformed generic netlink messages to the
 * vigil family and count the answers.
 *
 *   vigil-nlfuzz [COUNT [SEED]]
 *
 * Messages mix: random bytes, wrong lengths, unknown commands and
 * attributes, attributes of wrong sizes, nests without NLA_F_NESTED,
 * out-of-range values, and mutated near-valid rules. Prints one JSON line:
 * {"sent":..,"acks":..,"errors":..,"silent":..,"dumps":..,"errno":{..}}
 * Exit 0 unless the socket itself failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netlink.h>
#include "nl.h"

static unsigned int rnd(unsigned int n)
{
	return n ? (unsigned int)random() % n : 0;
}

static void fill_random(void *p, size_t n)
{
	unsigned char *c = p;

	while (n--)
		*c++ = random();
}

/* Plausible sizes for rule attribute types, so that some messages pass the
 * policy and reach the handlers. */
static int rule_attr_len(int t)
{
	switch (t) {
	case VIGIL_RULE_ATTR_ID: case VIGIL_RULE_ATTR_TIMEOUT_MS:
	case VIGIL_RULE_ATTR_HITS: case VIGIL_RULE_ATTR_BYTES:
		return 8;
	case VIGIL_RULE_ATTR_ADDR: case VIGIL_RULE_ATTR_SRC: case VIGIL_RULE_ATTR_DST:
		return rnd(2) ? 4 : 16;
	case VIGIL_RULE_ATTR_DPORT_MIN: case VIGIL_RULE_ATTR_DPORT_MAX:
		return 2;
	case VIGIL_RULE_ATTR_PRIORITY:
		return 4;
	default:
		return 1;
	}
}

static size_t put_attr(char *p, size_t room, int type, const void *data, int len)
{
	struct nlattr *a = (void *)p;
	size_t tot = NLA_ALIGN(NLA_HDRLEN + len);

	if (tot > room)
		return 0;
	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	if (len)
		memcpy(p + NLA_HDRLEN, data, len);
	return tot;
}

static size_t build_rule(char *p, size_t room)
{
	char tmp[64];
	size_t off = 0, k;
	int n = rnd(10), i;

	for (i = 0; i < n; i++) {
		int t = rnd(100) < 90 ? 1 + rnd(VIGIL_RULE_ATTR_MAX) : rnd(40);
		int len = rnd(100) < 80 ? rule_attr_len(t) : (int)rnd(24);

		fill_random(tmp, sizeof(tmp));
		if (t == VIGIL_RULE_ATTR_KIND && rnd(2))
			tmp[0] = 1 + rnd(2);
		if (t == VIGIL_RULE_ATTR_FAMILY && rnd(3))
			tmp[0] = rnd(2) ? 4 : 6;
		if ((t == VIGIL_RULE_ATTR_SRC_PREFIX || t == VIGIL_RULE_ATTR_DST_PREFIX) && rnd(2))
			tmp[0] = rnd(140);
		if (t == VIGIL_RULE_ATTR_TIMEOUT_MS && rnd(2))
			memset(tmp + 1, 0, 7);
		if (t == VIGIL_RULE_ATTR_ID && rnd(2))
			memset(tmp + 1, 0, 7);	/* small ids collide, exercising updates */
		k = put_attr(p + off, room - off, t, tmp, len);
		if (!k)
			break;
		off += k;
	}
	return off;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 5000, i;
	unsigned int seed = argc > 2 ? atoi(argv[2]) : 1;
	long acks = 0, errors = 0, silent = 0, dumps = 0, sent = 0;
	long per_errno[140] = { 0 };
	static char msg[8192];
	struct vnl v;
	int err;

	srandom(seed);
	err = vnl_open(&v);
	if (err) {
		fprintf(stderr, "vigil-nlfuzz: family: %s\n", strerror(-err));
		return 1;
	}

	for (i = 0; i < count; i++) {
		struct nlmsghdr *nlh = (void *)msg;
		struct genlmsghdr *g = (void *)(msg + NLMSG_HDRLEN);
		size_t off = NLMSG_HDRLEN + GENL_HDRLEN, len;
		unsigned int seq = i + 1000;
		int mode = rnd(20);

		memset(msg, 0, sizeof(msg));
		nlh->nlmsg_type = rnd(50) ? v.family : rnd(0x30);
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
		if (!rnd(8))
			nlh->nlmsg_flags |= NLM_F_DUMP;
		if (!rnd(30))
			nlh->nlmsg_flags |= rnd(0x1000);
		nlh->nlmsg_seq = seq;
		g->cmd = rnd(10) ? 1 + rnd(VIGIL_CMD_MAX) : rnd(256);
		g->version = rnd(10) ? VIGIL_GENL_VERSION : rnd(256);
		if (!rnd(20))
			g->reserved = rnd(65536);

		if (mode == 0) {
			/* random payload */
			len = rnd(512);
			fill_random(msg + off, len);
			off += len;
		} else {
			int n = rnd(6), k;

			for (k = 0; k < n; k++) {
				int t = rnd(10) ? 1 + rnd(VIGIL_ATTR_MAX) : rnd(20);
				struct nlattr *a = (void *)(msg + off);
				size_t body;

				if (off + 256 > sizeof(msg))
					break;
				if (t == VIGIL_ATTR_RULE || t == VIGIL_ATTR_CONFIG || !rnd(4)) {
					body = build_rule(msg + off + NLA_HDRLEN, 200);
					a->nla_type = t | (rnd(10) ? NLA_F_NESTED : 0);
					a->nla_len = NLA_HDRLEN + body;
					off += NLA_ALIGN(a->nla_len);
				} else {
					char tmp[32];

					fill_random(tmp, sizeof(tmp));
					off += put_attr(msg + off, sizeof(msg) - off, t, tmp, rnd(20));
				}
			}
			/* corrupt an attribute length now and then */
			if (!rnd(10) && off > NLMSG_HDRLEN + GENL_HDRLEN + 4) {
				struct nlattr *a = (void *)(msg + NLMSG_HDRLEN + GENL_HDRLEN);

				a->nla_len = rnd(2) ? rnd(4) : 0xffff;
			}
		}
		nlh->nlmsg_len = off;
		if (!rnd(25))
			nlh->nlmsg_len = rnd(2) ? rnd(NLMSG_HDRLEN + 4) : off + rnd(64);
		if (nlh->nlmsg_len > off)
			off = nlh->nlmsg_len;	/* the extra bytes are zeros */

		err = vnl_send_raw(&v, msg, off);
		if (!err) {
			sent++;
			err = vnl_wait_answer(&v, seq, 40);
		}
		if (err == 0)
			acks++;
		else if (err == 1)
			dumps++;
		else if (err == -ETIMEDOUT)
			silent++;
		else {
			errors++;
			if (-err < 140)
				per_errno[-err]++;
		}
	}
	printf("{\"sent\":%ld,\"acks\":%ld,\"errors\":%ld,\"silent\":%ld,\"dumps\":%ld,\"errno\":{",
	       sent, acks, errors, silent, dumps);
	{
		int first = 1, e;

		for (e = 0; e < 140; e++) {
			if (per_errno[e]) {
				printf("%s\"%s\":%ld", first ? "" : ",", strerror(e), per_errno[e]);
				first = 0;
			}
		}
	}
	printf("}}\n");
	vnl_close(&v);
	return 0;
}
