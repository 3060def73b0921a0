/* SPDX-License-Identifier: GPL-2.0 */
/* Small libmnl helpers shared by the vigil tools. */
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

#endif
