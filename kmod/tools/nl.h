/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one netlink socket layer of the vigil tools (libmnl): resolving the
 * family and its events group, building requests, acks with their extack
 * message, dumps, raw sends for the fuzzer, and events.
 */
#ifndef VIGIL_TOOLS_NL_H
#define VIGIL_TOOLS_NL_H

#include <stdint.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/vigil.h>

struct vnl {
	struct mnl_socket *nl;
	uint16_t family;
	uint32_t mcgrp;		/* events group id, 0 if unknown */
	uint32_t seq;
	uint32_t portid;
	char *buf;		/* MNL_SOCKET_BUFFER_SIZE * 16 */
	size_t bufsz;
};

int vnl_open(struct vnl *v);
void vnl_close(struct vnl *v);
struct nlmsghdr *vnl_msg(struct vnl *v, char *buf, uint8_t cmd, uint16_t flags);
/* Send and wait for the ack; cb (may be NULL) sees every data message.
 * Returns 0 or -errno; prints the extack message to stderr unless quiet. */
int vnl_talk(struct vnl *v, struct nlmsghdr *nlh, mnl_cb_t cb, void *data, int quiet);
/* Send @len raw bytes (possibly malformed) and wait up to @timeout_ms for
 * the answer to @seq: 0 for an ack, 1 for the end of a dump, -errno for an
 * error answer, -ETIMEDOUT when nothing came. */
int vnl_send_raw(struct vnl *v, const void *buf, size_t len);
int vnl_wait_answer(struct vnl *v, uint32_t seq, int timeout_ms);
/* Join the events group; 0 or -errno. */
int vnl_join_events(struct vnl *v);
/* Wait up to @timeout_ms (-1: forever) for event messages, pass each to
 * @cb; 0 when a batch was handled, -ETIMEDOUT, or -errno. */
int vnl_recv_events(struct vnl *v, mnl_cb_t cb, void *data, int timeout_ms);

#endif
