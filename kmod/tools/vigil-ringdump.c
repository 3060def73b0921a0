// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-ringdump: read the capture rings of the current network namespace.
 *
 *   vigil-ringdump [-q] [-i] [-n COUNT] [-t TIMEOUT_MS] [-H HOLD_MS]
 *
 * Drains every ring, printing one line per frame (unless -q); with -n it
 * keeps polling until COUNT frames were read or TIMEOUT_MS (default 0: one
 * pass) passed. -i prints the info page. -H keeps the device open for
 * HOLD_MS before reading (to test the single-reader rule). The last line is
 * "total=N drops=D" (D: frames the kernel lost to full rings, all CPUs).
 * Exit status 3 when -n COUNT was not reached.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <linux/vigil.h>

static long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void print_frame(unsigned int ring, const struct vigil_frame *f)
{
	const uint8_t *p = (const uint8_t *)(f + 1);
	char s[64] = "-", d[64] = "-";
	unsigned int proto = 0, off = 0, sport = 0, dport = 0, icmp = 0;

	if (f->family == 4 && f->cap_len >= 20) {
		inet_ntop(AF_INET, p + 12, s, sizeof(s));
		inet_ntop(AF_INET, p + 16, d, sizeof(d));
		proto = p[9];
		off = (p[0] & 15) * 4;
		if ((p[6] & 0x1f) || p[7])	/* non-first fragment */
			off = 0;
	} else if (f->family == 6 && f->cap_len >= 40) {
		inet_ntop(AF_INET6, p + 8, s, sizeof(s));
		inet_ntop(AF_INET6, p + 24, d, sizeof(d));
		proto = p[6];
		off = 40;
		/* one level of extension headers is enough for the tests */
		if ((proto == 0 || proto == 43 || proto == 60) && f->cap_len >= off + 8) {
			proto = p[off];
			off += (p[off + 1] + 1) * 8;
		} else if (proto == 44 && f->cap_len >= off + 8) {
			unsigned int fo = (p[off + 2] << 8 | p[off + 3]) & ~7u;

			proto = p[off];
			off = fo ? 0 : off + 8;
		}
	}
	if (off && f->cap_len >= off + 4) {
		if (proto == 1 || proto == 58) {
			icmp = p[off];
		} else {
			sport = p[off] << 8 | p[off + 1];
			dport = p[off + 2] << 8 | p[off + 3];
		}
	}
	printf("frame ring=%u ts=%" PRIu64 " if=%u dir=%s fam=%u proto=%u src=%s dst=%s "
	       "sport=%u dport=%u icmp=%u len=%u cap=%u flags=%u\n",
	       ring, (uint64_t)f->ts_ns, f->ifindex,
	       f->direction == VIGIL_DIR_INGRESS ? "in" :
	       f->direction == VIGIL_DIR_EGRESS ? "out" : "?",
	       f->family, proto, s, d, sport, dport, icmp, f->orig_len, f->cap_len, f->flags);
}

int main(int argc, char **argv)
{
	long want = -1, timeout = 0, hold = 0, total = 0, t0;
	int quiet = 0, info_only = 0, opt, fd;
	struct vigil_ring_info *info;
	uint8_t *map;
	uint64_t drops;
	unsigned int i;

	while ((opt = getopt(argc, argv, "qin:t:H:")) != -1) {
		switch (opt) {
		case 'q': quiet = 1; break;
		case 'i': info_only = 1; break;
		case 'n': want = atol(optarg); break;
		case 't': timeout = atol(optarg); break;
		case 'H': hold = atol(optarg); break;
		default:
			fprintf(stderr, "usage: vigil-ringdump [-q] [-i] [-n COUNT] [-t MS] [-H MS]\n");
			return 2;
		}
	}
	fd = open("/dev/vigil", O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "vigil-ringdump: open /dev/vigil: %s\n", strerror(errno));
		return errno == EBUSY ? 4 : 1;
	}
	info = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (info == MAP_FAILED) {
		perror("mmap info");
		return 1;
	}
	if (info->magic != VIGIL_RING_MAGIC || info->abi_version != VIGIL_RING_ABI_VERSION) {
		fprintf(stderr, "bad magic/abi\n");
		return 1;
	}
	if (info_only) {
		printf("magic=%#x abi=%u rings=%u slots=%u slot_size=%u snaplen=%u page=%u "
		       "ring_offset=%" PRIu64 " ring_stride=%" PRIu64 " map_size=%" PRIu64 "\n",
		       info->magic, info->abi_version, info->ring_count, info->slots_per_ring,
		       info->slot_size, info->snaplen, info->page_size,
		       (uint64_t)info->ring_offset, (uint64_t)info->ring_stride,
		       (uint64_t)info->map_size);
		return 0;
	}
	map = mmap(NULL, info->map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		perror("mmap rings");
		return 1;
	}
	if (hold) {
		fprintf(stderr, "holding\n");
		usleep(hold * 1000);
	}

	t0 = now_ms();
	for (;;) {
		for (i = 0; i < info->ring_count; i++) {
			struct vigil_ring_ctl *ctl = (void *)(map + info->ring_offset +
							      (uint64_t)i * info->ring_stride);
			uint8_t *slots = (uint8_t *)ctl + info->page_size;
			uint64_t cons = ctl->consumer;
			uint64_t prod = __atomic_load_n(&ctl->producer, __ATOMIC_ACQUIRE);

			for (; cons != prod; cons++) {
				const struct vigil_frame *f = (const void *)(slots +
					(cons & (info->slots_per_ring - 1)) * info->slot_size);

				if (!quiet)
					print_frame(i, f);
				total++;
			}
			__atomic_store_n(&ctl->consumer, cons, __ATOMIC_RELEASE);
		}
		if (want < 0 || total >= want)
			break;
		{
			long left = timeout - (now_ms() - t0);
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (left <= 0)
				break;
			poll(&p, 1, left);
		}
	}
	drops = 0;
	for (i = 0; i < info->ring_count; i++) {
		struct vigil_ring_ctl *ctl = (void *)(map + info->ring_offset +
						      (uint64_t)i * info->ring_stride);
		drops += __atomic_load_n(&ctl->drops, __ATOMIC_RELAXED);
	}
	printf("total=%ld drops=%" PRIu64 "\n", total, drops);
	return want >= 0 && total < want ? 3 : 0;
}
