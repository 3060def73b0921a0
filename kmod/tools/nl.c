// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include "nl.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

static int vnl_quiet;

struct fam_data {
	uint16_t id;
	uint32_t mcgrp;
};

static int grp_cb(const struct nlattr *attr, void *data)
{
	struct fam_data *f = data;
	const struct nlattr *a;
	const char *name = NULL;
	uint32_t id = 0;

	mnl_attr_for_each_nested(a, attr) {
		if (mnl_attr_get_type(a) == CTRL_ATTR_MCAST_GRP_NAME)
			name = mnl_attr_get_str(a);
		else if (mnl_attr_get_type(a) == CTRL_ATTR_MCAST_GRP_ID)
			id = mnl_attr_get_u32(a);
	}
	if (name && !strcmp(name, VIGIL_MCGRP_EVENTS))
		f->mcgrp = id;
	return MNL_CB_OK;
}

static int fam_attr_cb(const struct nlattr *attr, void *data)
{
	struct fam_data *f = data;
	const struct nlattr *g;

	switch (mnl_attr_get_type(attr)) {
	case CTRL_ATTR_FAMILY_ID:
		f->id = mnl_attr_get_u16(attr);
		break;
	case CTRL_ATTR_MCAST_GROUPS:
		mnl_attr_for_each_nested(g, attr)
			grp_cb(g, data);
		break;
	}
	return MNL_CB_OK;
}

static int fam_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), fam_attr_cb, data);
}

static int ack_err_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

	(void)data;
	if (e->error && !vnl_quiet && (nlh->nlmsg_flags & NLM_F_ACK_TLVS)) {
		const struct nlattr *a;
		size_t off = sizeof(*e);

		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
		mnl_attr_for_each(a, nlh, off)
			if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
				fprintf(stderr, "kernel: %s\n", mnl_attr_get_str(a));
	}
	errno = -e->error;
	return e->error ? MNL_CB_ERROR : MNL_CB_STOP;
}

static int done_cb(const struct nlmsghdr *nlh, void *data)
{
	const int *err = mnl_nlmsg_get_payload(nlh);

	(void)data;
	if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) && *err) {
		errno = -*err;
		return MNL_CB_ERROR;
	}
	return MNL_CB_STOP;
}

struct nlmsghdr *vnl_msg(struct vnl *v, char *buf, uint8_t cmd, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = v->family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++v->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = VIGIL_GENL_VERSION;
	return nlh;
}

int vnl_talk(struct vnl *v, struct nlmsghdr *nlh, mnl_cb_t cb, void *data, int quiet)
{
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = { [NLMSG_ERROR] = ack_err_cb,
					  [NLMSG_DONE] = done_cb };
	uint32_t seq = nlh->nlmsg_seq;
	int ret;

	vnl_quiet = quiet;
	if (mnl_socket_sendto(v->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ret = mnl_socket_recvfrom(v->nl, v->buf, v->bufsz);
		if (ret < 0)
			return -errno;
		errno = 0;
		ret = mnl_cb_run2(v->buf, ret, seq, v->portid, cb, data,
				  ctl, NLMSG_MIN_TYPE);
		if (ret == MNL_CB_ERROR)
			return errno ? -errno : -EIO;
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

int vnl_open(struct vnl *v)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;
	struct fam_data f = { 0 };
	int one = 1, ret;

	memset(v, 0, sizeof(*v));
	v->bufsz = MNL_SOCKET_BUFFER_SIZE * 16;
	v->buf = malloc(v->bufsz);
	v->nl = mnl_socket_open(NETLINK_GENERIC);
	if (!v->nl || !v->buf)
		return -errno;
	mnl_socket_setsockopt(v->nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(v->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	if (mnl_socket_bind(v->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	v->portid = mnl_socket_get_portid(v->nl);
	v->seq = time(NULL);

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++v->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, VIGIL_GENL_NAME);
	ret = vnl_talk(v, nlh, fam_cb, &f, 1);
	if (ret)
		return ret;
	v->family = f.id;
	v->mcgrp = f.mcgrp;
	return v->family ? 0 : -ENOENT;
}

void vnl_close(struct vnl *v)
{
	if (v->nl)
		mnl_socket_close(v->nl);
	free(v->buf);
}

int vnl_send_raw(struct vnl *v, const void *buf, size_t len)
{
	return mnl_socket_sendto(v->nl, buf, len) < 0 ? -errno : 0;
}

static int vnl_wait_readable(struct vnl *v, int timeout_ms)
{
	struct pollfd p = { .fd = mnl_socket_get_fd(v->nl), .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);

	if (r < 0)
		return errno == EINTR ? -ETIMEDOUT : -errno;
	return r ? 0 : -ETIMEDOUT;
}

int vnl_wait_answer(struct vnl *v, uint32_t seq, int timeout_ms)
{
	for (;;) {
		const struct nlmsghdr *h;
		int err = vnl_wait_readable(v, timeout_ms), n;

		if (err)
			return err;
		n = mnl_socket_recvfrom(v->nl, v->buf, v->bufsz);
		if (n < 0)
			return -errno;
		for (h = (const void *)v->buf; mnl_nlmsg_ok(h, n);
		     h = mnl_nlmsg_next(h, &n)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);

				return e->error;
			}
			if (h->nlmsg_type == NLMSG_DONE)
				return 1;
		}
	}
}

int vnl_join_events(struct vnl *v)
{
	int grp = v->mcgrp;

	if (!grp)
		return -ENOENT;
	if (mnl_socket_setsockopt(v->nl, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0)
		return -errno;
	return 0;
}

int vnl_recv_events(struct vnl *v, mnl_cb_t cb, void *data, int timeout_ms)
{
	int err = vnl_wait_readable(v, timeout_ms);
	ssize_t n;

	if (err)
		return err;
	n = mnl_socket_recvfrom(v->nl, v->buf, v->bufsz);
	if (n < 0)
		return -errno;
	mnl_cb_run(v->buf, n, 0, 0, cb, data);
	return 0;
}
