// Generic netlink client for the "vigil" family (kmod/include/uapi/linux/vigil.h).
//
// Two sockets: a command socket used by one request at a time from the libuv
// thread pool (requests never block the event loop), and a non-blocking event
// socket joined to the "events" multicast group and polled by libuv on the
// loop thread (rule expiry notifications).
#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/vigil.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

// libmnl's iteration macros assign void* and so do not compile as C++.
#define VIGIL_FOR_ATTR(attr, nlh, off)                                                               \
  for (const struct nlattr* attr = static_cast<const struct nlattr*>(mnl_nlmsg_get_payload_offset(nlh, off)); \
       mnl_attr_ok(attr, static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh)) -                   \
                             reinterpret_cast<const char*>(attr));                                     \
       attr = mnl_attr_next(attr))
#define VIGIL_FOR_NESTED(attr, nest)                                                                  \
  for (const struct nlattr* attr = static_cast<const struct nlattr*>(mnl_attr_get_payload(nest));       \
       mnl_attr_ok(attr, static_cast<const char*>(mnl_attr_get_payload(nest)) + mnl_attr_get_payload_len(nest) - \
                             reinterpret_cast<const char*>(attr));                                     \
       attr = mnl_attr_next(attr))

namespace {

// Messages of at most this many bytes each, several per sendmsg().
constexpr size_t kMsgBytes = 32 * 1024;
constexpr size_t kSendBytes = 128 * 1024;
constexpr size_t kRecvBytes = 256 * 1024;

struct NlError {
  int err = 0;          // positive errno
  std::string extack;   // the kernel's extended ack message, if any
  std::string where;    // which request
  int64_t badRule = -1; // index of the rule the kernel rejected, when known
};

struct Rule {
  uint64_t id = 0;
  uint8_t kind = 0, family = 0;
  uint8_t addrLen = 0, srcLen = 0, dstLen = 0;
  uint8_t addr[16] = {}, src[16] = {}, dst[16] = {};
  bool hasSrcPrefix = false, hasDstPrefix = false, hasProto = false, hasPorts = false;
  bool hasDirection = false, hasAction = false, hasPriority = false, hasTimeout = false;
  uint8_t srcPrefix = 0, dstPrefix = 0, proto = 0, direction = 0, action = 0;
  uint16_t dportMin = 0, dportMax = 0;
  uint32_t priority = 0;
  uint64_t timeoutMs = 0;
  bool hasCounters = false;
  uint64_t hits = 0, bytes = 0;
};

struct Stats {
  uint64_t seen = 0, dropped = 0, captured = 0, ringDrops = 0;
  uint32_t hostRules = 0, generalRules = 0;
};

struct Config {
  bool hasCapture = false, hasSample = false, hasCaptureDropped = false, hasSnaplen = false, hasSlots = false,
       hasCaptureLoopback = false;
  uint8_t capture = 0, captureDropped = 0, captureLoopback = 0;
  uint32_t sample = 0, snaplen = 0, slots = 0;
};

Napi::Error MakeError(Napi::Env env, const NlError& e) {
  std::string msg = "netlink " + e.where + ": " + strerror(e.err);
  if (!e.extack.empty()) msg += " (" + e.extack + ")";
  Napi::Error error = Napi::Error::New(env, msg);
  error.Set("code", Napi::String::New(env, "VIGIL_ERR_NETLINK"));
  error.Set("errno", Napi::Number::New(env, e.err));
  error.Set("syscall", Napi::String::New(env, e.where));
  if (!e.extack.empty()) error.Set("extack", Napi::String::New(env, e.extack));
  if (e.badRule >= 0) error.Set("ruleIndex", Napi::Number::New(env, static_cast<double>(e.badRule)));
  return error;
}

// Reads the extack message out of an NLMSG_ERROR (NETLINK_EXT_ACK + NETLINK_CAP_ACK).
std::string ExtackOf(const struct nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  const auto* e = static_cast<const struct nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  size_t off = sizeof(*e);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
  std::string out;
  VIGIL_FOR_ATTR(attr, nlh, off) {
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && mnl_attr_get_payload_len(attr) > 0)
      out.assign(mnl_attr_get_str(attr), strnlen(mnl_attr_get_str(attr), mnl_attr_get_payload_len(attr)));
  }
  return out;
}

void ParseRule(const struct nlattr* nest, Rule* r) {
  VIGIL_FOR_NESTED(a, nest) {
    uint16_t len = mnl_attr_get_payload_len(a);
    switch (mnl_attr_get_type(a)) {
      case VIGIL_RULE_ATTR_ID: r->id = mnl_attr_get_u64(a); break;
      case VIGIL_RULE_ATTR_KIND: r->kind = mnl_attr_get_u8(a); break;
      case VIGIL_RULE_ATTR_FAMILY: r->family = mnl_attr_get_u8(a); break;
      case VIGIL_RULE_ATTR_ADDR:
        if (len <= 16) { r->addrLen = len; memcpy(r->addr, mnl_attr_get_payload(a), len); }
        break;
      case VIGIL_RULE_ATTR_SRC:
        if (len <= 16) { r->srcLen = len; memcpy(r->src, mnl_attr_get_payload(a), len); }
        break;
      case VIGIL_RULE_ATTR_DST:
        if (len <= 16) { r->dstLen = len; memcpy(r->dst, mnl_attr_get_payload(a), len); }
        break;
      case VIGIL_RULE_ATTR_SRC_PREFIX: r->hasSrcPrefix = true; r->srcPrefix = mnl_attr_get_u8(a); break;
      case VIGIL_RULE_ATTR_DST_PREFIX: r->hasDstPrefix = true; r->dstPrefix = mnl_attr_get_u8(a); break;
      case VIGIL_RULE_ATTR_PROTO: r->hasProto = true; r->proto = mnl_attr_get_u8(a); break;
      case VIGIL_RULE_ATTR_DPORT_MIN: r->hasPorts = true; r->dportMin = mnl_attr_get_u16(a); break;
      case VIGIL_RULE_ATTR_DPORT_MAX: r->hasPorts = true; r->dportMax = mnl_attr_get_u16(a); break;
      case VIGIL_RULE_ATTR_DIRECTION: r->hasDirection = true; r->direction = mnl_attr_get_u8(a); break;
      case VIGIL_RULE_ATTR_ACTION: r->hasAction = true; r->action = mnl_attr_get_u8(a); break;
      case VIGIL_RULE_ATTR_PRIORITY: r->hasPriority = true; r->priority = mnl_attr_get_u32(a); break;
      case VIGIL_RULE_ATTR_TIMEOUT_MS: r->hasTimeout = true; r->timeoutMs = mnl_attr_get_u64(a); break;
      case VIGIL_RULE_ATTR_HITS: r->hasCounters = true; r->hits = mnl_attr_get_u64(a); break;
      case VIGIL_RULE_ATTR_BYTES: r->hasCounters = true; r->bytes = mnl_attr_get_u64(a); break;
      default: break;
    }
  }
}

void PutRule(struct nlmsghdr* nlh, const Rule& r, bool idOnly) {
  struct nlattr* nest = mnl_attr_nest_start(nlh, VIGIL_ATTR_RULE);
  mnl_attr_put_u64(nlh, VIGIL_RULE_ATTR_ID, r.id);
  if (!idOnly) {
    mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_KIND, r.kind);
    mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_FAMILY, r.family);
    if (r.addrLen) mnl_attr_put(nlh, VIGIL_RULE_ATTR_ADDR, r.addrLen, r.addr);
    if (r.srcLen) mnl_attr_put(nlh, VIGIL_RULE_ATTR_SRC, r.srcLen, r.src);
    if (r.hasSrcPrefix) mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_SRC_PREFIX, r.srcPrefix);
    if (r.dstLen) mnl_attr_put(nlh, VIGIL_RULE_ATTR_DST, r.dstLen, r.dst);
    if (r.hasDstPrefix) mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_DST_PREFIX, r.dstPrefix);
    if (r.hasProto) mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_PROTO, r.proto);
    if (r.hasPorts) {
      mnl_attr_put_u16(nlh, VIGIL_RULE_ATTR_DPORT_MIN, r.dportMin);
      mnl_attr_put_u16(nlh, VIGIL_RULE_ATTR_DPORT_MAX, r.dportMax);
    }
    if (r.hasDirection) mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_DIRECTION, r.direction);
    if (r.hasAction) mnl_attr_put_u8(nlh, VIGIL_RULE_ATTR_ACTION, r.action);
    if (r.hasPriority) mnl_attr_put_u32(nlh, VIGIL_RULE_ATTR_PRIORITY, r.priority);
    if (r.hasTimeout && r.timeoutMs) mnl_attr_put_u64(nlh, VIGIL_RULE_ATTR_TIMEOUT_MS, r.timeoutMs);
  }
  mnl_attr_nest_end(nlh, nest);
}

// Upper bound of the bytes PutRule adds.
constexpr size_t kRuleMaxBytes = 4 + 12 + 3 * 8 + 3 * 20 + 8 * 8 + 12;

Napi::Object RuleToJs(Napi::Env env, const Rule& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", Napi::Number::New(env, static_cast<double>(r.id)));
  o.Set("kind", r.kind);
  o.Set("family", r.family);
  if (r.addrLen) o.Set("addr", Napi::Buffer<uint8_t>::Copy(env, r.addr, r.addrLen));
  if (r.srcLen) o.Set("src", Napi::Buffer<uint8_t>::Copy(env, r.src, r.srcLen));
  if (r.hasSrcPrefix) o.Set("srcPrefix", r.srcPrefix);
  if (r.dstLen) o.Set("dst", Napi::Buffer<uint8_t>::Copy(env, r.dst, r.dstLen));
  if (r.hasDstPrefix) o.Set("dstPrefix", r.dstPrefix);
  if (r.hasProto) o.Set("proto", r.proto);
  if (r.hasPorts) {
    o.Set("dportMin", r.dportMin);
    o.Set("dportMax", r.dportMax);
  }
  if (r.hasDirection) o.Set("direction", r.direction);
  if (r.hasAction) o.Set("action", r.action);
  if (r.hasPriority) o.Set("priority", r.priority);
  if (r.hasTimeout) o.Set("timeoutMs", Napi::Number::New(env, static_cast<double>(r.timeoutMs)));
  if (r.hasCounters) {
    o.Set("hits", Napi::Number::New(env, static_cast<double>(r.hits)));
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(r.bytes)));
  }
  return o;
}

// Converts a JS rule object; throws a TypeError naming the field.
Rule RuleFromJs(Napi::Env env, Napi::Value v, size_t index, bool idOnly) {
  auto fail = [&](const std::string& field, const std::string& what) {
    Napi::TypeError e = Napi::TypeError::New(env, "rules[" + std::to_string(index) + "]." + field + ": " + what);
    e.Set("code", Napi::String::New(env, "VIGIL_ERR_NETLINK_ARG"));
    throw e;
  };
  Rule r;
  if (idOnly && v.IsNumber()) {
    r.id = static_cast<uint64_t>(v.As<Napi::Number>().DoubleValue());
    return r;
  }
  if (!v.IsObject()) fail("", "must be an object");
  Napi::Object o = v.As<Napi::Object>();
  auto num = [&](const char* key, double lo, double hi, bool* present) -> double {
    Napi::Value x = o.Get(key);
    if (x.IsUndefined() || x.IsNull()) {
      if (present) *present = false;
      return 0;
    }
    if (!x.IsNumber()) fail(key, "must be a number");
    double d = x.As<Napi::Number>().DoubleValue();
    if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<uint64_t>(d))) fail(key, "out of range");
    if (present) *present = true;
    return d;
  };
  auto bytes = [&](const char* key, uint8_t* out, uint8_t* len) {
    Napi::Value x = o.Get(key);
    if (x.IsUndefined() || x.IsNull()) return;
    if (!x.IsBuffer()) fail(key, "must be a Buffer");
    auto b = x.As<Napi::Buffer<uint8_t>>();
    if (b.Length() != 4 && b.Length() != 16) fail(key, "must hold 4 or 16 bytes");
    memcpy(out, b.Data(), b.Length());
    *len = static_cast<uint8_t>(b.Length());
  };
  bool present = false;
  r.id = static_cast<uint64_t>(num("id", 0, 9007199254740991.0, &present));
  if (!present) fail("id", "is required");
  if (idOnly) return r;
  r.kind = static_cast<uint8_t>(num("kind", 0, 255, &present));
  r.family = static_cast<uint8_t>(num("family", 0, 255, &present));
  bytes("addr", r.addr, &r.addrLen);
  bytes("src", r.src, &r.srcLen);
  bytes("dst", r.dst, &r.dstLen);
  r.srcPrefix = static_cast<uint8_t>(num("srcPrefix", 0, 128, &r.hasSrcPrefix));
  r.dstPrefix = static_cast<uint8_t>(num("dstPrefix", 0, 128, &r.hasDstPrefix));
  r.proto = static_cast<uint8_t>(num("proto", 0, 255, &r.hasProto));
  bool hasMin = false, hasMax = false;
  r.dportMin = static_cast<uint16_t>(num("dportMin", 0, 65535, &hasMin));
  r.dportMax = static_cast<uint16_t>(num("dportMax", 0, 65535, &hasMax));
  if (hasMin != hasMax) fail(hasMin ? "dportMax" : "dportMin", "dportMin and dportMax go together");
  r.hasPorts = hasMin;
  r.direction = static_cast<uint8_t>(num("direction", 0, 255, &r.hasDirection));
  r.action = static_cast<uint8_t>(num("action", 0, 255, &r.hasAction));
  r.priority = static_cast<uint32_t>(num("priority", 0, 4294967295.0, &r.hasPriority));
  r.timeoutMs = static_cast<uint64_t>(num("timeoutMs", 0, 9007199254740991.0, &r.hasTimeout));
  return r;
}

class Socket {
 public:
  ~Socket() {
    if (nl_) mnl_socket_close(nl_);
  }

  bool Open(int flags, NlError* e) {
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

  struct mnl_socket* nl() const { return nl_; }
  uint32_t portid() const { return portid_; }
  uint32_t NextSeq() { return ++seq_; }

  // Sends the buffer (one or more messages) and reads replies until every
  // sequence number in [firstSeq, lastSeq] is acknowledged (or a dump is
  // done). `onData` sees each data message. The first error wins.
  bool Transact(const char* buf, size_t len, uint32_t firstSeq, uint32_t lastSeq, bool dump,
                const std::function<void(const struct nlmsghdr*)>& onData, NlError* e,
                const std::vector<size_t>* firstRuleOfSeq = nullptr) {
    if (mnl_socket_sendto(nl_, buf, len) < 0) return Fail(e, "sendto");
    std::vector<char> rbuf(kRecvBytes);
    uint32_t pending = lastSeq - firstSeq + 1;
    bool ok = true;
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
          const auto* err = static_cast<const struct nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
          if (err->error != 0 && ok) {
            ok = false;
            e->err = -err->error;
            e->extack = ExtackOf(nlh);
            if (firstRuleOfSeq) e->badRule = static_cast<int64_t>((*firstRuleOfSeq)[nlh->nlmsg_seq - firstSeq]);
          }
          pending--;
        } else if (nlh->nlmsg_type == NLMSG_DONE) {
          if (dump) {
            const int* status = static_cast<const int*>(mnl_nlmsg_get_payload(nlh));
            if (nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) && *status < 0 && ok) {
              ok = false;
              e->err = -*status;
              e->extack = ExtackOf(nlh);
            }
          }
          pending--;
        } else if (nlh->nlmsg_type >= NLMSG_MIN_TYPE) {
          onData(nlh);
        }
      }
    }
    return ok;
  }

 private:
  bool Fail(NlError* e, const char* what) {
    e->err = errno ? errno : EIO;
    e->extack = std::string(what) + " failed";
    return false;
  }
  struct mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = static_cast<uint32_t>(time(nullptr));
};

struct FamilyInfo {
  uint16_t id = 0;
  uint32_t eventsGroup = 0;
};

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
  bool ok = s->Transact(buf.data(), nlh->nlmsg_len, nlh->nlmsg_seq, nlh->nlmsg_seq, false,
                        [&](const struct nlmsghdr* m) {
                          VIGIL_FOR_ATTR(a, m, sizeof(struct genlmsghdr)) {
                            if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID) out->id = mnl_attr_get_u16(a);
                            if (mnl_attr_get_type(a) != CTRL_ATTR_MCAST_GROUPS) continue;
                            VIGIL_FOR_NESTED(grp, a) {
                              const char* name = nullptr;
                              uint32_t id = 0;
                              VIGIL_FOR_NESTED(f, grp) {
                                if (mnl_attr_get_type(f) == CTRL_ATTR_MCAST_GRP_NAME) name = mnl_attr_get_str(f);
                                if (mnl_attr_get_type(f) == CTRL_ATTR_MCAST_GRP_ID) id = mnl_attr_get_u32(f);
                              }
                              if (name && strcmp(name, VIGIL_MCGRP_EVENTS) == 0) out->eventsGroup = id;
                            }
                          }
                        },
                        e);
  if (!ok) {
    e->where = "resolve family " VIGIL_GENL_NAME;
    if (e->err == ENOENT && e->extack.empty()) e->extack = "generic netlink family \"" VIGIL_GENL_NAME "\" is not registered (is the vigil module loaded?)";
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

class Client;

// One request run on the thread pool; serialized on the client's command socket.
class Request : public Napi::AsyncWorker {
 public:
  using Body = std::function<bool(Socket*, uint16_t family, NlError*)>;
  using Result = std::function<Napi::Value(Napi::Env)>;
  Request(Napi::Env env, std::shared_ptr<Socket> sock, std::shared_ptr<std::mutex> mu, uint16_t family, Body body,
          Result result)
      : Napi::AsyncWorker(env, "vigil-netlink"),
        deferred_(Napi::Promise::Deferred::New(env)),
        sock_(std::move(sock)),
        mu_(std::move(mu)),
        family_(family),
        body_(std::move(body)),
        result_(std::move(result)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::lock_guard<std::mutex> lock(*mu_);
    ok_ = body_(sock_.get(), family_, &err_);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (ok_) deferred_.Resolve(result_ ? result_(env) : env.Undefined());
    else deferred_.Reject(MakeError(env, err_).Value());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Socket> sock_;
  std::shared_ptr<std::mutex> mu_;
  uint16_t family_;
  Body body_;
  Result result_;
  bool ok_ = false;
  NlError err_;
};

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

// Rule add/delete in batches: many RULE nests per message, several messages per sendmsg().
bool SendRules(Socket* s, uint16_t family, uint8_t cmd, const std::vector<Rule>& rules, NlError* e) {
  const bool idOnly = cmd == VIGIL_CMD_RULE_DEL;
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
    if (!s->Transact(buf.data(), used, firstSeq, lastSeq, false, [](const struct nlmsghdr*) {}, &err, &firstRule)) {
      // Keep going: the other messages of the batch are independent requests;
      // report the first failure.
      if (ok) first = err;
      ok = false;
    }
  }
  if (!ok) *e = first;
  return ok;
}

class Client : public Napi::ObjectWrap<Client> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NetlinkClient",
                       {
                           InstanceMethod("addRules", &Client::AddRules),
                           InstanceMethod("deleteRules", &Client::DeleteRules),
                           InstanceMethod("flush", &Client::Flush),
                           InstanceMethod("dumpRules", &Client::DumpRules),
                           InstanceMethod("stats", &Client::GetStats),
                           InstanceMethod("getConfig", &Client::GetConfig),
                           InstanceMethod("setConfig", &Client::SetConfig),
                           InstanceMethod("subscribe", &Client::Subscribe),
                           InstanceMethod("close", &Client::Close),
                           InstanceAccessor("familyId", &Client::FamilyId, nullptr),
                           InstanceAccessor("eventsGroup", &Client::EventsGroup, nullptr),
                       });
  }

  explicit Client(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Client>(info) {
    NlError e;
    sock_ = std::make_shared<Socket>();
    if (!sock_->Open(0, &e) || !ResolveFamily(sock_.get(), &family_, &e)) {
      if (e.where.empty()) e.where = "open";
      throw MakeError(info.Env(), e);
    }
  }

  ~Client() override { StopEvents(); }

 private:
  void EnsureOpen(Napi::Env env) {
    if (closed_) {
      Napi::Error e = Napi::Error::New(env, "netlink client is closed");
      e.Set("code", Napi::String::New(env, "VIGIL_ERR_NETLINK_CLOSED"));
      throw e;
    }
  }

  std::vector<Rule> RulesArg(const Napi::CallbackInfo& info, bool idOnly) {
    if (!info[0].IsArray()) throw Napi::TypeError::New(info.Env(), "rules must be an array");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<Rule> rules;
    rules.reserve(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); i++) rules.push_back(RuleFromJs(info.Env(), arr.Get(i), i, idOnly));
    return rules;
  }

  Napi::Value Queue(Napi::Env env, Request::Body body, Request::Result result = nullptr) {
    EnsureOpen(env);
    auto* req = new Request(env, sock_, mu_, family_.id, std::move(body), std::move(result));
    Napi::Promise p = req->Promise();
    req->Queue();
    return p;
  }

  Napi::Value AddRules(const Napi::CallbackInfo& info) {
    auto rules = std::make_shared<std::vector<Rule>>(RulesArg(info, false));
    return Queue(info.Env(), [rules](Socket* s, uint16_t fam, NlError* e) {
      if (!SendRules(s, fam, VIGIL_CMD_RULE_ADD, *rules, e)) {
        e->where = "rule add";
        return false;
      }
      return true;
    });
  }

  Napi::Value DeleteRules(const Napi::CallbackInfo& info) {
    auto rules = std::make_shared<std::vector<Rule>>(RulesArg(info, true));
    return Queue(info.Env(), [rules](Socket* s, uint16_t fam, NlError* e) {
      if (!SendRules(s, fam, VIGIL_CMD_RULE_DEL, *rules, e)) {
        e->where = "rule delete";
        return false;
      }
      return true;
    });
  }

  Napi::Value Simple(Napi::Env env, uint8_t cmd, const char* where,
                     std::function<void(struct nlmsghdr*)> fill,
                     std::function<void(const struct nlmsghdr*)> onData, Request::Result result) {
    return Queue(
        env,
        [cmd, where, fill, onData](Socket* s, uint16_t fam, NlError* e) {
          std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
          uint32_t seq = s->NextSeq();
          struct nlmsghdr* nlh = PutGenl(buf.data(), fam, cmd, NLM_F_REQUEST | NLM_F_ACK, seq);
          if (fill) fill(nlh);
          if (!s->Transact(buf.data(), nlh->nlmsg_len, seq, seq, false,
                           onData ? onData : [](const struct nlmsghdr*) {}, e)) {
            e->where = where;
            return false;
          }
          return true;
        },
        std::move(result));
  }

  Napi::Value Flush(const Napi::CallbackInfo& info) {
    return Simple(info.Env(), VIGIL_CMD_RULE_FLUSH, "rule flush", nullptr, nullptr, nullptr);
  }

  Napi::Value DumpRules(const Napi::CallbackInfo& info) {
    auto out = std::make_shared<std::vector<Rule>>();
    return Queue(
        info.Env(),
        [out](Socket* s, uint16_t fam, NlError* e) {
          std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
          uint32_t seq = s->NextSeq();
          struct nlmsghdr* nlh = PutGenl(buf.data(), fam, VIGIL_CMD_RULE_GET, NLM_F_REQUEST | NLM_F_DUMP, seq);
          bool ok = s->Transact(buf.data(), nlh->nlmsg_len, seq, seq, true,
                                [&](const struct nlmsghdr* m) {
                                  VIGIL_FOR_ATTR(a, m, sizeof(struct genlmsghdr)) {
                                    if (mnl_attr_get_type(a) != VIGIL_ATTR_RULE) continue;
                                    Rule r;
                                    ParseRule(a, &r);
                                    out->push_back(r);
                                  }
                                },
                                e);
          if (!ok) e->where = "rule dump";
          return ok;
        },
        [out](Napi::Env env) -> Napi::Value {
          Napi::Array arr = Napi::Array::New(env, out->size());
          for (size_t i = 0; i < out->size(); i++) arr.Set(static_cast<uint32_t>(i), RuleToJs(env, (*out)[i]));
          return arr;
        });
  }

  Napi::Value GetStats(const Napi::CallbackInfo& info) {
    auto st = std::make_shared<Stats>();
    return Simple(
        info.Env(), VIGIL_CMD_STATS_GET, "stats", nullptr,
        [st](const struct nlmsghdr* m) {
          VIGIL_FOR_ATTR(a, m, sizeof(struct genlmsghdr)) {
            if (mnl_attr_get_type(a) != VIGIL_ATTR_STATS) continue;
            VIGIL_FOR_NESTED(f, a) {
              switch (mnl_attr_get_type(f)) {
                case VIGIL_STATS_ATTR_SEEN: st->seen = mnl_attr_get_u64(f); break;
                case VIGIL_STATS_ATTR_DROPPED: st->dropped = mnl_attr_get_u64(f); break;
                case VIGIL_STATS_ATTR_CAPTURED: st->captured = mnl_attr_get_u64(f); break;
                case VIGIL_STATS_ATTR_RING_DROPS: st->ringDrops = mnl_attr_get_u64(f); break;
                case VIGIL_STATS_ATTR_HOST_RULES: st->hostRules = mnl_attr_get_u32(f); break;
                case VIGIL_STATS_ATTR_GENERAL_RULES: st->generalRules = mnl_attr_get_u32(f); break;
                default: break;
              }
            }
          }
        },
        [st](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("seen", Napi::Number::New(env, static_cast<double>(st->seen)));
          o.Set("dropped", Napi::Number::New(env, static_cast<double>(st->dropped)));
          o.Set("captured", Napi::Number::New(env, static_cast<double>(st->captured)));
          o.Set("ringDrops", Napi::Number::New(env, static_cast<double>(st->ringDrops)));
          o.Set("hostRules", st->hostRules);
          o.Set("generalRules", st->generalRules);
          return o;
        });
  }

  Napi::Value GetConfig(const Napi::CallbackInfo& info) {
    auto c = std::make_shared<Config>();
    return Simple(
        info.Env(), VIGIL_CMD_CONFIG_GET, "config get", nullptr,
        [c](const struct nlmsghdr* m) {
          VIGIL_FOR_ATTR(a, m, sizeof(struct genlmsghdr)) {
            if (mnl_attr_get_type(a) != VIGIL_ATTR_CONFIG) continue;
            VIGIL_FOR_NESTED(f, a) {
              switch (mnl_attr_get_type(f)) {
                case VIGIL_CONFIG_ATTR_CAPTURE: c->hasCapture = true; c->capture = mnl_attr_get_u8(f); break;
                case VIGIL_CONFIG_ATTR_SAMPLE: c->hasSample = true; c->sample = mnl_attr_get_u32(f); break;
                case VIGIL_CONFIG_ATTR_CAPTURE_DROPPED: c->hasCaptureDropped = true; c->captureDropped = mnl_attr_get_u8(f); break;
                case VIGIL_CONFIG_ATTR_SNAPLEN: c->hasSnaplen = true; c->snaplen = mnl_attr_get_u32(f); break;
                case VIGIL_CONFIG_ATTR_SLOTS: c->hasSlots = true; c->slots = mnl_attr_get_u32(f); break;
                case VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK: c->hasCaptureLoopback = true; c->captureLoopback = mnl_attr_get_u8(f); break;
                default: break;
              }
            }
          }
        },
        [c](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          if (c->hasCapture) o.Set("capture", Napi::Boolean::New(env, c->capture != 0));
          if (c->hasSample) o.Set("sample", c->sample);
          if (c->hasCaptureDropped) o.Set("captureDropped", Napi::Boolean::New(env, c->captureDropped != 0));
          if (c->hasSnaplen) o.Set("snaplen", c->snaplen);
          if (c->hasSlots) o.Set("slots", c->slots);
          if (c->hasCaptureLoopback) o.Set("captureLoopback", Napi::Boolean::New(env, c->captureLoopback != 0));
          return o;
        });
  }

  Napi::Value SetConfig(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "config must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    auto c = std::make_shared<Config>();
    if (o.Has("capture") && !o.Get("capture").IsUndefined()) {
      c->hasCapture = true;
      c->capture = o.Get("capture").ToBoolean().Value() ? 1 : 0;
    }
    if (o.Has("captureDropped") && !o.Get("captureDropped").IsUndefined()) {
      c->hasCaptureDropped = true;
      c->captureDropped = o.Get("captureDropped").ToBoolean().Value() ? 1 : 0;
    }
    if (o.Has("captureLoopback") && !o.Get("captureLoopback").IsUndefined()) {
      c->hasCaptureLoopback = true;
      c->captureLoopback = o.Get("captureLoopback").ToBoolean().Value() ? 1 : 0;
    }
    if (o.Has("sample") && !o.Get("sample").IsUndefined()) {
      if (!o.Get("sample").IsNumber()) throw Napi::TypeError::New(env, "config.sample must be a number");
      double s = o.Get("sample").As<Napi::Number>().DoubleValue();
      if (!(s >= 1 && s <= 4294967295.0)) throw Napi::RangeError::New(env, "config.sample must be 1..2^32-1");
      c->hasSample = true;
      c->sample = static_cast<uint32_t>(s);
    }
    return Simple(
        env, VIGIL_CMD_CONFIG_SET, "config set",
        [c](struct nlmsghdr* nlh) {
          struct nlattr* nest = mnl_attr_nest_start(nlh, VIGIL_ATTR_CONFIG);
          if (c->hasCapture) mnl_attr_put_u8(nlh, VIGIL_CONFIG_ATTR_CAPTURE, c->capture);
          if (c->hasSample) mnl_attr_put_u32(nlh, VIGIL_CONFIG_ATTR_SAMPLE, c->sample);
          if (c->hasCaptureDropped) mnl_attr_put_u8(nlh, VIGIL_CONFIG_ATTR_CAPTURE_DROPPED, c->captureDropped);
          if (c->hasCaptureLoopback) mnl_attr_put_u8(nlh, VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK, c->captureLoopback);
          mnl_attr_nest_end(nlh, nest);
        },
        nullptr, nullptr);
  }

  // subscribe(callback): callback(rule) for each expired rule; callback(null,
  // {overrun: true}) when the kernel dropped events (the caller resyncs by dump).
  Napi::Value Subscribe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    EnsureOpen(env);
    if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "callback must be a function");
    if (poll_) throw Napi::Error::New(env, "already subscribed");
    if (!family_.eventsGroup) {
      NlError e{ENOENT, "the family has no \"" VIGIL_MCGRP_EVENTS "\" multicast group", "subscribe"};
      throw MakeError(env, e);
    }
    NlError e;
    events_ = std::make_unique<Socket>();
    if (!events_->Open(SOCK_NONBLOCK, &e)) {
      e.where = "subscribe";
      events_.reset();
      throw MakeError(env, e);
    }
    int group = static_cast<int>(family_.eventsGroup);
    if (mnl_socket_setsockopt(events_->nl(), NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
      NlError err{errno, "cannot join the events group", "subscribe"};
      events_.reset();
      throw MakeError(env, err);
    }
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    env_ = env;
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    poll_->data = this;
    uv_poll_init(loop, poll_, mnl_socket_get_fd(events_->nl()));
    uv_poll_start(poll_, UV_READABLE, &Client::OnReadable);
    Ref();  // kept alive while subscribed
    return env.Undefined();
  }

  static void OnReadable(uv_poll_t* handle, int status, int) {
    auto* self = static_cast<Client*>(handle->data);
    if (status < 0 || !self->events_) return;
    Napi::HandleScope scope(self->env_);
    std::vector<char> buf(kRecvBytes);
    for (;;) {
      ssize_t n = recv(mnl_socket_get_fd(self->events_->nl()), buf.data(), buf.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {
          Napi::Object info = Napi::Object::New(self->env_);
          info.Set("overrun", true);
          self->Emit({self->env_.Null(), info});
          continue;
        }
        break;  // EAGAIN: drained
      }
      const struct nlmsghdr* nlh = reinterpret_cast<const struct nlmsghdr*>(buf.data());
      int rem = static_cast<int>(n);
      for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
        if (nlh->nlmsg_type != self->family_.id) continue;
        const auto* g = static_cast<const struct genlmsghdr*>(mnl_nlmsg_get_payload(nlh));
        if (g->cmd != VIGIL_CMD_RULE_EXPIRED) continue;
        VIGIL_FOR_ATTR(a, nlh, sizeof(struct genlmsghdr)) {
          if (mnl_attr_get_type(a) != VIGIL_ATTR_RULE) continue;
          Rule r;
          ParseRule(a, &r);
          self->Emit({RuleToJs(self->env_, r)});
        }
      }
      if (!self->events_) break;  // closed from the callback
    }
  }

  void Emit(const std::initializer_list<napi_value>& args) {
    if (callback_.IsEmpty()) return;
    try {
      callback_.MakeCallback(env_.Global(), args);
    } catch (const Napi::Error& e) {
      // An exception in the listener must not unwind into libuv.
      e.ThrowAsJavaScriptException();
    }
  }

  void StopEvents() {
    if (poll_) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
      callback_.Reset();
      events_.reset();
      Unref();
    }
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    StopEvents();
    closed_ = true;
    return info.Env().Undefined();
  }

  Napi::Value FamilyId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), family_.id); }
  Napi::Value EventsGroup(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), family_.eventsGroup); }

  std::shared_ptr<Socket> sock_;
  std::shared_ptr<std::mutex> mu_ = std::make_shared<std::mutex>();
  FamilyInfo family_;
  bool closed_ = false;
  std::unique_ptr<Socket> events_;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::Env env_ = nullptr;
};

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
#define K(name) c.Set(#name, Napi::Number::New(env, name))
  K(VIGIL_GENL_VERSION);
  K(VIGIL_RULE_HOST);
  K(VIGIL_RULE_GENERAL);
  K(VIGIL_ACTION_DROP);
  K(VIGIL_ACTION_ACCEPT);
  K(VIGIL_RULE_DIR_INGRESS);
  K(VIGIL_RULE_DIR_EGRESS);
  K(VIGIL_RULE_DIR_BOTH);
  K(VIGIL_FAMILY_IPV4);
  K(VIGIL_FAMILY_IPV6);
  K(VIGIL_MAX_GENERAL_RULES);
  K(VIGIL_MAX_HOST_RULES);
#undef K
  c.Set("VIGIL_GENL_NAME", Napi::String::New(env, VIGIL_GENL_NAME));
  c.Set("VIGIL_MCGRP_EVENTS", Napi::String::New(env, VIGIL_MCGRP_EVENTS));
  return c;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NetlinkClient", Client::Init(env));
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(vigil_netlink, Init)
