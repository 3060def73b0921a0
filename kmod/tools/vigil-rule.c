// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-rule: manage the vigil rule table of the current network namespace.
 *
 *   vigil-rule add ID host ADDR [dir in|out|both] [action drop|accept]
 *                  [prio N] [timeout MS]
 *   vigil-rule add ID net [src CIDR] [dst CIDR] [proto tcp|udp|icmp|icmp6|N]
 *                  [dport P[-Q]] [dir ..] [action ..] [prio N] [timeout MS]
 *   vigil-rule bulk COUNT IPV4_BASE [idbase N] [batch N] [timeout MS]
 *                  COUNT host drop rules for consecutive IPv4 addresses
 *   vigil-rule del ID...
 *   vigil-rule flush
 *   vigil-rule dump [count]
 *   vigil-rule stats
 *   vigil-rule config [capture 0|1] [sample N] [capture_dropped 0|1] [capture_loopback 0|1]
 *   vigil-rule monitor [COUNT [TIMEOUT_MS]]   print RULE_EXPIRED events
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include "nl.h"

static struct vnl v;

static void die(const char *m)
{
	fprintf(stderr, "vigil-rule: %s\n", m);
	exit(2);
}

static int parse_addr(const char *s, uint8_t *fam, uint8_t *buf)
{
	if (inet_pton(AF_INET, s, buf) == 1) {
		*fam = 4;
		return 4;
	}
	if (inet_pton(AF_INET6, s, buf) == 1) {
		*fam = 6;
		return 16;
	}
	die("bad address");
	return 0;
}

static void put_cidr(struct nlmsghdr *nlh, const char *s, int a_addr, int a_pfx,
		     uint8_t *fam)
{
	char tmp[128];
	uint8_t buf[16], f;
	char *slash;
	int len;

	snprintf(tmp, sizeof(tmp), "%s", s);
	slash = strchr(tmp, '/');
	if (slash)
		*slash++ = 0;
	len = parse_addr(tmp, &f, buf);
	if (*fam && *fam != f)
		die("mixed address families");
	*fam = f;
	mnl_attr_put(nlh, a_addr, len, buf);
	mnl_attr_put_u8(nlh, a_pfx, slash ? atoi(slash) : len * 8);
}

static uint8_t parse_proto(const char *s)
{
	if (!strcmp(s, "tcp")) return 6;
	if (!strcmp(s, "udp")) return 17;
	if (!strcmp(s, "icmp")) return 1;
	if (!strcmp(s, "icmp6") || !strcmp(s, "icmpv6")) return 58;
	return atoi(s);
}

static uint8_t parse_dir(const char *s)
{
	if (!strcmp(s, "in")) return VIGIL_RULE_DIR_INGRESS;
	if (!strcmp(s, "out")) return VIGIL_RULE_DIR_EGRESS;
	if (!strcmp(s, "both")) return VIGIL_RULE_DIR_BOTH;
	return atoi(s);
}

static int cmd_add(int argc, char **argv)
{
	char *buf = calloc(1, MNL_SOCKET_BUFFER_SIZE);
	struct nlmsghdr *nlh = vnl_msg(&v, buf, VIGIL_CMD_RULE_ADD, 0);
	struct nlattr *nest;
	uint8_t fam = 0, abuf[16];
	int i, host, len;

	if (argc < 3)
		die("add ID host|net ...");
	host = !strcmp(argv[1], "host");
	nest = mnl_attr_nest_start(nlh, VIGIL_ATTR_RULE);
	mnl_attr_put_u64(nlh, VIGIL_RULE_ATTR_ID, strtoull(argv[0], NULL, 0));
	mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_KIND, host ? VIGIL_RULE_HOST : VIGIL_RULE_GENERAL);
	i = 2;
	if (host) {
		len = parse_addr(argv[2], &fam, abuf);
		mnl_attr_put(nlh, VIGIL_RULE_ATTR_ADDR, len, abuf);
		i = 3;
	}
	for (; i + 1 < argc; i += 2) {
		const char *k = argv[i], *val = argv[i + 1];

		if (!strcmp(k, "src"))
			put_cidr(nlh, val, VIGIL_RULE_ATTR_SRC, VIGIL_RULE_ATTR_SRC_PREFIX, &fam);
		else if (!strcmp(k, "dst"))
			put_cidr(nlh, val, VIGIL_RULE_ATTR_DST, VIGIL_RULE_ATTR_DST_PREFIX, &fam);
		else if (!strcmp(k, "family"))
			fam = atoi(val);
		else if (!strcmp(k, "proto"))
			mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_PROTO, parse_proto(val));
		else if (!strcmp(k, "dport")) {
			const char *dash = strchr(val, '-');

			mnl_attr_put_u16(nlh, VIGIL_RULE_ATTR_DPORT_MIN, atoi(val));
			mnl_attr_put_u16(nlh, VIGIL_RULE_ATTR_DPORT_MAX,
					 dash ? atoi(dash + 1) : atoi(val));
		} else if (!strcmp(k, "dir"))
			mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_DIRECTION, parse_dir(val));
		else if (!strcmp(k, "action"))
			mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_ACTION,
					!strcmp(val, "accept") ? VIGIL_ACTION_ACCEPT :
					!strcmp(val, "drop") ? VIGIL_ACTION_DROP : atoi(val));
		else if (!strcmp(k, "prio"))
			mnl_attr_put_u32(nlh, VIGIL_RULE_ATTR_PRIORITY, strtoul(val, NULL, 0));
		else if (!strcmp(k, "timeout"))
			mnl_attr_put_u64(nlh, VIGIL_RULE_ATTR_TIMEOUT_MS, strtoull(val, NULL, 0));
		else
			die("unknown add keyword");
	}
	if (i != argc)
		die("odd number of add arguments");
	mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_FAMILY, fam ? fam : 4);
	mnl_attr_nest_end(nlh, nest);
	return vnl_talk(&v, nlh, NULL, NULL, 0);
}

static int cmd_bulk(int argc, char **argv)
{
	unsigned long count, i, batch = 1000, sent = 0;
	uint64_t idbase = 1000000, timeout = 0;
	struct in_addr base;
	char *buf;
	struct nlmsghdr *nlh = NULL;
	struct timespec t0, t1;
	int err, k;

	if (argc < 2 || inet_pton(AF_INET, argv[1], &base) != 1)
		die("bulk COUNT IPV4_BASE [idbase N] [batch N] [timeout MS]");
	count = strtoul(argv[0], NULL, 0);
	for (k = 2; k + 1 < argc; k += 2) {
		if (!strcmp(argv[k], "idbase"))
			idbase = strtoull(argv[k + 1], NULL, 0);
		else if (!strcmp(argv[k], "batch"))
			batch = strtoul(argv[k + 1], NULL, 0);
		else if (!strcmp(argv[k], "timeout"))
			timeout = strtoull(argv[k + 1], NULL, 0);
	}
	if (!batch || batch > 2000)
		die("batch must be 1..2000");
	/* at most 56 bytes per rule nest, plus the headers */
	buf = malloc(batch * 64 + 4096);
	if (!buf)
		die("out of memory");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < count; i++) {
		uint32_t a = htonl(ntohl(base.s_addr) + i);
		struct nlattr *nest;

		if (!nlh)
			nlh = vnl_msg(&v, buf, VIGIL_CMD_RULE_ADD, 0);
		nest = mnl_attr_nest_start(nlh, VIGIL_ATTR_RULE);
		mnl_attr_put_u64(nlh, VIGIL_RULE_ATTR_ID, idbase + i);
		mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_KIND, VIGIL_RULE_HOST);
		mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_FAMILY, 4);
		mnl_attr_put(nlh, VIGIL_RULE_ATTR_ADDR, 4, &a);
		if (timeout)
			mnl_attr_put_u64(nlh, VIGIL_RULE_ATTR_TIMEOUT_MS, timeout);
		mnl_attr_nest_end(nlh, nest);
		if (++sent == batch || i + 1 == count) {
			err = vnl_talk(&v, nlh, NULL, NULL, 0);
			if (err)
				return err;
			nlh = NULL;
			sent = 0;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("added=%lu ms=%.0f\n", count,
	       (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	free(buf);
	return 0;
}

static int cmd_del(int argc, char **argv)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = vnl_msg(&v, buf, VIGIL_CMD_RULE_DEL, 0);
	int i;

	if (argc < 1 || argc > 200)
		die("del ID... (1..200 ids)");
	for (i = 0; i < argc; i++) {
		struct nlattr *nest = mnl_attr_nest_start(nlh, VIGIL_ATTR_RULE);

		mnl_attr_put_u64(nlh, VIGIL_RULE_ATTR_ID, strtoull(argv[i], NULL, 0));
		mnl_attr_nest_end(nlh, nest);
	}
	return vnl_talk(&v, nlh, NULL, NULL, 0);
}

struct rule_view {
	const struct nlattr *tb[VIGIL_RULE_ATTR_MAX + 1];
};

static int rule_attr_cb(const struct nlattr *a, void *data)
{
	struct rule_view *r = data;
	int t = mnl_attr_get_type(a);

	if (t > 0 && t <= VIGIL_RULE_ATTR_MAX)
		r->tb[t] = a;
	return MNL_CB_OK;
}

static void addr_str(const struct nlattr *a, char *out, size_t n)
{
	if (!a) {
		snprintf(out, n, "-");
		return;
	}
	inet_ntop(mnl_attr_get_payload_len(a) == 4 ? AF_INET : AF_INET6,
		  mnl_attr_get_payload(a), out, n);
}

#define U8(r, x) ((r).tb[x] ? mnl_attr_get_u8((r).tb[x]) : 0)
#define U16(r, x) ((r).tb[x] ? mnl_attr_get_u16((r).tb[x]) : 0)
#define U32(r, x) ((r).tb[x] ? mnl_attr_get_u32((r).tb[x]) : 0)
#define U64(r, x) ((r).tb[x] ? mnl_attr_get_u64((r).tb[x]) : 0)

static void print_rule(const char *prefix, const struct nlattr *nest)
{
	struct rule_view r = { 0 };
	char a[64], b[64];

	mnl_attr_parse_nested(nest, rule_attr_cb, &r);
	if (U8(r, VIGIL_RULE_ATTR_KIND) == VIGIL_RULE_HOST) {
		addr_str(r.tb[VIGIL_RULE_ATTR_ADDR], a, sizeof(a));
		printf("%sid=%" PRIu64 " host %s", prefix, U64(r, VIGIL_RULE_ATTR_ID), a);
	} else {
		addr_str(r.tb[VIGIL_RULE_ATTR_SRC], a, sizeof(a));
		addr_str(r.tb[VIGIL_RULE_ATTR_DST], b, sizeof(b));
		printf("%sid=%" PRIu64 " net src=%s/%u dst=%s/%u proto=%u dport=%u-%u",
		       prefix, U64(r, VIGIL_RULE_ATTR_ID), a, U8(r, VIGIL_RULE_ATTR_SRC_PREFIX),
		       b, U8(r, VIGIL_RULE_ATTR_DST_PREFIX), U8(r, VIGIL_RULE_ATTR_PROTO),
		       U16(r, VIGIL_RULE_ATTR_DPORT_MIN), U16(r, VIGIL_RULE_ATTR_DPORT_MAX));
	}
	printf(" family=%u dir=%u action=%s prio=%u", U8(r, VIGIL_RULE_ATTR_FAMILY),
	       U8(r, VIGIL_RULE_ATTR_DIRECTION),
	       U8(r, VIGIL_RULE_ATTR_ACTION) == VIGIL_ACTION_ACCEPT ? "accept" : "drop",
	       U32(r, VIGIL_RULE_ATTR_PRIORITY));
	if (r.tb[VIGIL_RULE_ATTR_TIMEOUT_MS])
		printf(" timeout_ms=%" PRIu64, U64(r, VIGIL_RULE_ATTR_TIMEOUT_MS));
	printf(" hits=%" PRIu64 " bytes=%" PRIu64 "\n", U64(r, VIGIL_RULE_ATTR_HITS),
	       U64(r, VIGIL_RULE_ATTR_BYTES));
}

struct dump_state {
	int count_only;
	unsigned long n;
};

static int top_attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int t = mnl_attr_get_type(a);

	if (t > 0 && t <= VIGIL_ATTR_MAX)
		tb[t] = a;
	return MNL_CB_OK;
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[VIGIL_ATTR_MAX + 1] = { 0 };
	struct dump_state *st = data;

	mnl_attr_parse(nlh, sizeof(struct genlmsghdr), top_attr_cb, tb);
	if (tb[VIGIL_ATTR_RULE]) {
		st->n++;
		if (!st->count_only)
			print_rule("", tb[VIGIL_ATTR_RULE]);
	}
	return MNL_CB_OK;
}

static int cmd_dump(int argc, char **argv)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = vnl_msg(&v, buf, VIGIL_CMD_RULE_GET, NLM_F_DUMP);
	struct dump_state st = { .count_only = argc > 0 && !strcmp(argv[0], "count") };
	int err = vnl_talk(&v, nlh, dump_cb, &st, 0);

	if (!err && st.count_only)
		printf("rules=%lu\n", st.n);
	return err;
}

static int nest_print_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[VIGIL_ATTR_MAX + 1] = { 0 };
	const struct nlattr *a;
	static const char *const sn[] = { "", "seen", "dropped", "captured", "ring_drops",
					  "host_rules", "general_rules" };
	static const char *const cn[] = { "", "capture", "sample", "capture_dropped",
					  "snaplen", "slots", "capture_loopback" };

	(void)data;
	mnl_attr_parse(nlh, sizeof(struct genlmsghdr), top_attr_cb, tb);
	if (tb[VIGIL_ATTR_STATS]) {
		mnl_attr_for_each_nested(a, tb[VIGIL_ATTR_STATS]) {
			int t = mnl_attr_get_type(a);

			if (t >= VIGIL_STATS_ATTR_SEEN && t <= VIGIL_STATS_ATTR_RING_DROPS)
				printf("%s=%" PRIu64 " ", sn[t], mnl_attr_get_u64(a));
			else if (t == VIGIL_STATS_ATTR_HOST_RULES || t == VIGIL_STATS_ATTR_GENERAL_RULES)
				printf("%s=%u ", sn[t], mnl_attr_get_u32(a));
		}
		printf("\n");
	}
	if (tb[VIGIL_ATTR_CONFIG]) {
		mnl_attr_for_each_nested(a, tb[VIGIL_ATTR_CONFIG]) {
			int t = mnl_attr_get_type(a);

			if (t == VIGIL_CONFIG_ATTR_CAPTURE || t == VIGIL_CONFIG_ATTR_CAPTURE_DROPPED ||
			    t == VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK)
				printf("%s=%u ", cn[t], mnl_attr_get_u8(a));
			else if (t > 0 && t <= VIGIL_CONFIG_ATTR_MAX)
				printf("%s=%u ", cn[t], mnl_attr_get_u32(a));
		}
		printf("\n");
	}
	return MNL_CB_OK;
}

static int cmd_simple(uint8_t cmd)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = vnl_msg(&v, buf, cmd, 0);

	return vnl_talk(&v, nlh, nest_print_cb, NULL, 0);
}

static int cmd_config(int argc, char **argv)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct nlattr *nest;
	int i;

	if (!argc)
		return cmd_simple(VIGIL_CMD_CONFIG_GET);
	nlh = vnl_msg(&v, buf, VIGIL_CMD_CONFIG_SET, 0);
	nest = mnl_attr_nest_start(nlh, VIGIL_ATTR_CONFIG);
	for (i = 0; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "capture"))
			mnl_attr_put_u8(nlh, VIGIL_CONFIG_ATTR_CAPTURE, atoi(argv[i + 1]));
		else if (!strcmp(argv[i], "sample"))
			mnl_attr_put_u32(nlh, VIGIL_CONFIG_ATTR_SAMPLE, strtoul(argv[i + 1], NULL, 0));
		else if (!strcmp(argv[i], "capture_dropped"))
			mnl_attr_put_u8(nlh, VIGIL_CONFIG_ATTR_CAPTURE_DROPPED, atoi(argv[i + 1]));
		else if (!strcmp(argv[i], "capture_loopback"))
			mnl_attr_put_u8(nlh, VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK, atoi(argv[i + 1]));
		else
			die("unknown config keyword");
	}
	mnl_attr_nest_end(nlh, nest);
	return vnl_talk(&v, nlh, NULL, NULL, 0);
}

static int event_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[VIGIL_ATTR_MAX + 1] = { 0 };
	const struct genlmsghdr *g = mnl_nlmsg_get_payload(nlh);
	unsigned long *n = data;

	if (nlh->nlmsg_type != v.family || g->cmd != VIGIL_CMD_RULE_EXPIRED)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(struct genlmsghdr), top_attr_cb, tb);
	if (tb[VIGIL_ATTR_RULE]) {
		print_rule("expired ", tb[VIGIL_ATTR_RULE]);
		fflush(stdout);
		(*n)++;
	}
	return MNL_CB_OK;
}

static int cmd_monitor(int argc, char **argv)
{
	unsigned long want = argc > 0 ? strtoul(argv[0], NULL, 0) : 0, n = 0;
	int timeout = argc > 1 ? atoi(argv[1]) : -1, err;
	struct timespec t0, t;

	err = vnl_join_events(&v);
	if (err)
		return err;
	printf("listening\n");
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!want || n < want) {
		int left = -1;

		if (timeout >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			left = timeout - (int)((t.tv_sec - t0.tv_sec) * 1000 +
					       (t.tv_nsec - t0.tv_nsec) / 1000000);
			if (left <= 0)
				break;
		}
		err = vnl_recv_events(&v, event_cb, &n, left);
		if (err && err != -ETIMEDOUT)
			return err;
	}
	printf("events=%lu\n", n);
	return want && n < want ? -ETIMEDOUT : 0;
}

int main(int argc, char **argv)
{
	int err;

	if (argc < 2) {
		fprintf(stderr, "usage: vigil-rule add|bulk|del|flush|dump|stats|config|monitor ...\n");
		return 2;
	}
	err = vnl_open(&v);
	if (err) {
		fprintf(stderr, "vigil-rule: cannot resolve the vigil family: %s\n", strerror(-err));
		return 1;
	}
	if (!strcmp(argv[1], "add"))
		err = cmd_add(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "bulk"))
		err = cmd_bulk(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "del"))
		err = cmd_del(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "flush"))
		err = cmd_simple(VIGIL_CMD_RULE_FLUSH);
	else if (!strcmp(argv[1], "dump"))
		err = cmd_dump(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "stats"))
		err = cmd_simple(VIGIL_CMD_STATS_GET);
	else if (!strcmp(argv[1], "config"))
		err = cmd_config(argc - 2, argv + 2);
	else if (!strcmp(argv[1], "monitor"))
		err = cmd_monitor(argc - 2, argv + 2);
	else
		die("unknown command");
	if (err) {
		fprintf(stderr, "vigil-rule %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	vnl_close(&v);
	return 0;
}
