// The transport declared in genl_socket.h. Replies are matched to requests by
// port id and sequence number, so a late reply of an earlier request on the
// same socket is never taken for the current one.
#include "genl_socket.h"

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/vigil.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

namespace vigil::nl {

namespace {

// Messages of at most this many bytes each, several per sendmsg().
constexpr size_t kMsgBytes = 32 * 1024;
constexpr size_t kSendBytes = 128 * 1024;

// Reads the extack message out of an NLMSG_ERROR or NLMSG_DONE (NETLINK_EXT_ACK + NETLINK_CAP_ACK).
std::string ExtackOf(const struct nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  size_t off = MNL_NLMSG_HDRLEN;
  if (nlh->nlmsg_type == NLMSG_ERROR) {
    if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(struct nlmsgerr)) return {};
    const auto* e = static_cast<const struct nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
    off += sizeof(*e);
    if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += MNL_ALIGN(e->msg.nlmsg_len) - sizeof(struct nlmsghdr);
  } else {
    off += sizeof(int);
  }
  if (off >= nlh->nlmsg_len) return {};
  std::string out, ignored;
  ForEachAttr(reinterpret_cast<const char*>(nlh) + off, nlh->nlmsg_len - off, "extack", &ignored,
              [&](const struct nlattr* a) {
                if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && mnl_attr_get_payload_len(a) > 0)
                  out.assign(static_cast<const char*>(mnl_attr_get_payload(a)),
                             strnlen(static_cast<const char*>(mnl_attr_get_payload(a)), mnl_attr_get_payload_len(a)));
                return true;
              });
  return out;
}

// A string attribute of at most its payload's length (no trust in a terminating NUL).
std::string StringOf(const struct nlattr* a) {
  const char* p = static_cast<const char*>(mnl_attr_get_payload(a));
  return std::string(p, strnlen(p, mnl_attr_get_payload_len(a)));
}

}  // namespace

Socket::~Socket() {
  if (nl_) mnl_socket_close(nl_);
}

bool Socket::Open(int flags, NlError* e) {
  seq_ = static_cast<uint32_t>(time(nullptr));
  nl_ = mnl_socket_open2(NETLINK_GENERIC, flags | SOCK_CLOEXEC);
  if (!nl_) return Fail(e, "socket");
  int one = 1;
  // Extended acks carry the kernel's explanation; capped acks keep them small.
  mnl_socket_setsockopt(nl_, NETLINK_EXT_ACK, &one, sizeof(one));
  mnl_socket_setsockopt(nl_, NETLINK_CAP_ACK, &one, sizeof(one));
  int rcv = kRecvBytes * 4;
  setsockopt(mnl_socket_get_fd(nl_), SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
  if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) return Fail(e, "bind");
  portid_ = mnl_socket_get_portid(nl_);
  return true;
}

bool Socket::Transact(const char* buf, size_t len, uint32_t firstSeq, uint32_t lastSeq, bool dump,
                      const OnData& onData, NlError* e, const std::vector<size_t>* firstRuleOfSeq) {
  if (mnl_socket_sendto(nl_, buf, len) < 0) return Fail(e, "sendto");
  std::vector<char> rbuf(kRecvBytes);
  uint32_t pending = lastSeq - firstSeq + 1;
  bool ok = true;
  auto failWith = [&](int err, std::string extack) {
    if (!ok) return;
    ok = false;
    e->err = err;
    e->extack = std::move(extack);
  };
  while (pending > 0) {
    ssize_t n = mnl_socket_recvfrom(nl_, rbuf.data(), rbuf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(e, "recvfrom");
    }
    const struct nlmsghdr* nlh = reinterpret_cast<const struct nlmsghdr*>(rbuf.data());
    int rem = static_cast<int>(n);
    for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
      if (nlh->nlmsg_pid != portid_ || nlh->nlmsg_seq < firstSeq || nlh->nlmsg_seq > lastSeq) continue;
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(struct nlmsgerr)) {
          failWith(EPROTO, "malformed reply: truncated acknowledgement");
        } else {
          const auto* err = static_cast<const struct nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
          if (err->error != 0 && ok) {
            failWith(-err->error, ExtackOf(nlh));
            if (firstRuleOfSeq) e->badRule = static_cast<int64_t>((*firstRuleOfSeq)[nlh->nlmsg_seq - firstSeq]);
          }
        }
        pending--;
      } else if (nlh->nlmsg_type == NLMSG_DONE) {
        if (dump && nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
          int status;
          memcpy(&status, mnl_nlmsg_get_payload(nlh), sizeof(status));
          if (status < 0) failWith(-status, ExtackOf(nlh));
        }
        pending--;
      } else if (nlh->nlmsg_type >= NLMSG_MIN_TYPE && ok) {
        std::string why;
        if (!onData(nlh, &why)) failWith(EPROTO, "malformed reply: " + why);
      }
    }
  }
  return ok;
}

bool Socket::Fail(NlError* e, const char* what) {
  e->err = errno ? errno : EIO;
  e->extack = std::string(what) + " failed";
  return false;
}

bool ResolveFamily(Socket* s, FamilyInfo* out, NlError* e) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  struct nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = GENL_ID_CTRL;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = s->NextSeq();
  auto* g = static_cast<struct genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct genlmsghdr)));
  g->cmd = CTRL_CMD_GETFAMILY;
  g->version = 1;
  mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, VIGIL_GENL_NAME);
  auto onData = [&](const struct nlmsghdr* m, std::string* why) {
    return ForEachGenlAttr(m, why, [&](const struct nlattr* a) {
      if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID && mnl_attr_get_payload_len(a) >= sizeof(uint16_t))
        out->id = mnl_attr_get_u16(a);
      if (mnl_attr_get_type(a) != CTRL_ATTR_MCAST_GROUPS) return true;
      return ForEachAttr(mnl_attr_get_payload(a), mnl_attr_get_payload_len(a), "multicast groups", why,
                         [&](const struct nlattr* grp) {
                           std::string name;
                           uint32_t id = 0;
                           bool ok = ForEachAttr(mnl_attr_get_payload(grp), mnl_attr_get_payload_len(grp),
                                                 "multicast group", why, [&](const struct nlattr* f) {
                                                   if (mnl_attr_get_type(f) == CTRL_ATTR_MCAST_GRP_NAME) name = StringOf(f);
                                                   if (mnl_attr_get_type(f) == CTRL_ATTR_MCAST_GRP_ID &&
                                                       mnl_attr_get_payload_len(f) >= sizeof(uint32_t))
                                                     id = mnl_attr_get_u32(f);
                                                   return true;
                                                 });
                           if (ok && name == VIGIL_MCGRP_EVENTS) out->eventsGroup = id;
                           return ok;
                         });
    });
  };
  if (!s->Transact(buf.data(), nlh->nlmsg_len, nlh->nlmsg_seq, nlh->nlmsg_seq, false, onData, e)) {
    e->where = "resolve family " VIGIL_GENL_NAME;
    if (e->err == ENOENT && e->extack.empty())
      e->extack = "generic netlink family \"" VIGIL_GENL_NAME "\" is not registered (is the vigil module loaded?)";
    return false;
  }
  if (!out->id) {
    e->err = ENOENT;
    e->where = "resolve family " VIGIL_GENL_NAME;
    e->extack = "no family id in the controller's reply";
    return false;
  }
  return true;
}

struct nlmsghdr* PutGenl(char* at, uint16_t family, uint8_t cmd, uint16_t flags, uint32_t seq) {
  struct nlmsghdr* nlh = mnl_nlmsg_put_header(at);
  nlh->nlmsg_type = family;
  nlh->nlmsg_flags = flags;
  nlh->nlmsg_seq = seq;
  auto* g = static_cast<struct genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct genlmsghdr)));
  g->cmd = cmd;
  g->version = VIGIL_GENL_VERSION;
  return nlh;
}

bool Call(Socket* s, uint16_t family, uint8_t cmd, const std::function<void(struct nlmsghdr*)>& fill,
          const OnData& onData, NlError* e) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  uint32_t seq = s->NextSeq();
  struct nlmsghdr* nlh = PutGenl(buf.data(), family, cmd, NLM_F_REQUEST | NLM_F_ACK, seq);
  if (fill) fill(nlh);
  return s->Transact(buf.data(), nlh->nlmsg_len, seq, seq, false, onData, e);
}

bool Dump(Socket* s, uint16_t family, uint8_t cmd, const OnData& onData, NlError* e) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  uint32_t seq = s->NextSeq();
  struct nlmsghdr* nlh = PutGenl(buf.data(), family, cmd, NLM_F_REQUEST | NLM_F_DUMP, seq);
  return s->Transact(buf.data(), nlh->nlmsg_len, seq, seq, true, onData, e);
}

bool SendRules(Socket* s, uint16_t family, uint8_t cmd, const std::vector<Rule>& rules, NlError* e) {
  const bool idOnly = cmd == VIGIL_CMD_RULE_DEL;
  const OnData none = [](const struct nlmsghdr*, std::string*) { return true; };
  std::vector<char> buf(kSendBytes);
  size_t i = 0;
  bool ok = true;
  NlError first;
  while (i < rules.size()) {
    size_t used = 0;
    uint32_t firstSeq = 0, lastSeq = 0;
    std::vector<size_t> firstRule;
    while (i < rules.size() && used + kMsgBytes <= buf.size()) {
      uint32_t seq = s->NextSeq();
      if (!firstSeq) firstSeq = seq;
      lastSeq = seq;
      firstRule.push_back(i);
      struct nlmsghdr* nlh = PutGenl(buf.data() + used, family, cmd, NLM_F_REQUEST | NLM_F_ACK, seq);
      while (i < rules.size() && nlh->nlmsg_len + kRuleMaxBytes <= kMsgBytes) PutRule(nlh, rules[i++], idOnly);
      used += MNL_ALIGN(nlh->nlmsg_len);
    }
    NlError err;
    if (!s->Transact(buf.data(), used, firstSeq, lastSeq, false, none, &err, &firstRule)) {
      if (ok) first = err;
      ok = false;
    }
  }
  if (!ok) *e = first;
  return ok;
}

}  // namespace vigil::nl
