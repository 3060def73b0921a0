// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-traffic: deterministic traffic for the VM tests and the benchmark.
 *
 *   udp-send ADDR PORT COUNT [SIZE [SPORT]]  COUNT datagrams (from SPORT), prints sent=N
 *   udp-recv PORT COUNT TIMEOUT_MS      waits for COUNT datagrams (v4+v6)
 *   tcp-send ADDR PORT BYTES [TIMEOUT_MS]  one connection; exit 1 on failure
 *   tcp-recv PORT TIMEOUT_MS            accepts one connection, reads to EOF
 *   flood ADDR PORT MS [SIZE]           UDP as fast as possible for MS
 *   sink PORT MS                        counts datagrams for MS after the first
 *
 * Receivers bind the IPv6 wildcard (dual stack), so one receiver serves
 * both families.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void catch_term(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;	/* no SA_RESTART: poll() returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

static long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static socklen_t mkaddr(const char *a, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (void *)ss;
	struct sockaddr_in6 *s6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		return sizeof(*s4);
	}
	if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		return sizeof(*s6);
	}
	fprintf(stderr, "bad address %s\n", a);
	exit(2);
}

static int bind_port(int fd, int family, int port)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		return bind(fd, (void *)&s6, sizeof(s6));
	return bind(fd, (void *)&s4, sizeof(s4));
}

static int listen_sock(int type, int port)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int fd = socket(AF_INET6, type, 0), zero = 0, one = 1, big = 32 << 20;

	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (bind(fd, (void *)&s6, sizeof(s6)) < 0) {
		perror("bind");
		exit(1);
	}
	if (type == SOCK_STREAM)
		listen(fd, 4);
	return fd;
}

static int wait_in(int fd, long deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	long left = deadline - now_ms();

	if (left <= 0)
		return 0;
	return poll(&p, 1, left) > 0;
}

int main(int argc, char **argv)
{
	static char buf[65536];
	struct sockaddr_storage ss;
	socklen_t sl;
	long i, n = 0, deadline;
	int fd;

	if (argc < 2)
		goto usage;
	if (!strcmp(argv[1], "udp-send") && argc >= 5) {
		long count = atol(argv[4]);
		int size = argc > 5 ? atoi(argv[5]) : 64;

		sl = mkaddr(argv[2], atoi(argv[3]), &ss);
		fd = socket(ss.ss_family, SOCK_DGRAM, 0);
		if (argc > 6 && bind_port(fd, ss.ss_family, atoi(argv[6])) < 0) {
			perror("bind");
			return 1;
		}
		for (i = 0; i < count; i++) {
			if (sendto(fd, buf, size, 0, (void *)&ss, sl) == size)
				n++;
			else if (errno == ENOBUFS || errno == EAGAIN)
				i--, usleep(100);
		}
		printf("sent=%ld\n", n);
		return n == count ? 0 : 1;
	}
	if (!strcmp(argv[1], "udp-recv") && argc >= 5) {
		long count = atol(argv[3]);

		catch_term();
		fd = listen_sock(SOCK_DGRAM, atoi(argv[2]));
		printf("ready\n");
		fflush(stdout);
		deadline = now_ms() + atol(argv[4]);
		/* Until COUNT, the timeout, or SIGTERM (the sender is done). */
		while (n < count && !stop && wait_in(fd, deadline))
			if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
				n++;
		/* whatever is already queued, and extras arriving right after */
		while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
			n++;
		if (!stop)
			while (wait_in(fd, now_ms() + 100))
				if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
					n++;
		printf("received=%ld\n", n);
		return n == count ? 0 : 1;
	}
	if (!strcmp(argv[1], "tcp-send") && argc >= 5) {
		long bytes = atol(argv[4]);
		int tmo = argc > 5 ? atoi(argv[5]) : 3000;
		struct timeval tv = { .tv_sec = tmo / 1000, .tv_usec = (tmo % 1000) * 1000 };

		sl = mkaddr(argv[2], atoi(argv[3]), &ss);
		fd = socket(ss.ss_family, SOCK_STREAM, 0);
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, (void *)&ss, sl) < 0) {
			printf("connect=%s\n", strerror(errno));
			return 1;
		}
		while (n < bytes) {
			long k = bytes - n > (long)sizeof(buf) ? (long)sizeof(buf) : bytes - n;
			ssize_t w = send(fd, buf, k, 0);

			if (w <= 0)
				break;
			n += w;
		}
		close(fd);
		printf("sent=%ld\n", n);
		return n == bytes ? 0 : 1;
	}
	if (!strcmp(argv[1], "tcp-recv") && argc >= 4) {
		int lfd = listen_sock(SOCK_STREAM, atoi(argv[2]));
		ssize_t r;

		printf("ready\n");
		fflush(stdout);
		deadline = now_ms() + atol(argv[3]);
		if (!wait_in(lfd, deadline)) {
			printf("received=0 accept-timeout\n");
			return 1;
		}
		fd = accept(lfd, NULL, NULL);
		while (wait_in(fd, deadline) && (r = recv(fd, buf, sizeof(buf), 0)) > 0)
			n += r;
		close(fd);
		printf("received=%ld\n", n);
		return 0;
	}
	if (!strcmp(argv[1], "flood") && argc >= 5) {
		long ms = atol(argv[4]), t0;
		int size = argc > 5 ? atoi(argv[5]) : 64;

		sl = mkaddr(argv[2], atoi(argv[3]), &ss);
		fd = socket(ss.ss_family, SOCK_DGRAM, 0);
		t0 = now_ms();
		while (now_ms() - t0 < ms)
			for (i = 0; i < 64; i++)
				if (sendto(fd, buf, size, 0, (void *)&ss, sl) == size)
					n++;
		printf("sent=%ld pps=%.0f\n", n, n * 1000.0 / ms);
		return 0;
	}
	if (!strcmp(argv[1], "sink") && argc >= 4) {
		long ms = atol(argv[3]), t0;

		fd = listen_sock(SOCK_DGRAM, atoi(argv[2]));
		printf("ready\n");
		fflush(stdout);
		if (!wait_in(fd, now_ms() + 20000))
			return 1;
		t0 = now_ms();
		while (now_ms() - t0 < ms && wait_in(fd, t0 + ms))
			while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
				n++;
		printf("received=%ld pps=%.0f\n", n, n * 1000.0 / ms);
		return 0;
	}
usage:
	fprintf(stderr, "usage: see the comment at the top of vigil-traffic.c\n");
	return 2;
}
