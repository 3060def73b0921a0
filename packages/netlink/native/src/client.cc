// NetlinkClient: two sockets per client. A command socket is used by one
// request at a time on the libuv thread pool (Request), so a 100,000-rule
// batch never blocks the event loop. A second, non-blocking socket joins the
// "events" multicast group and is watched by uv_poll on the loop thread: rule
// expiry events reach JavaScript without a thread hop.
#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <linux/genetlink.h>
#include <linux/vigil.h>
#include <sys/socket.h>

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "client.h"
#include "genl_socket.h"
#include "js.h"
#include "rule_codec.h"

namespace vigil::nl {

namespace {

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

// Names the request on failure.
bool Named(const char* where, bool ok, NlError* e) {
  if (!ok) e->where = where;
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

  Napi::Value Rules(const Napi::CallbackInfo& info, uint8_t cmd, const char* where) {
    auto rules = std::make_shared<std::vector<Rule>>(RulesArg(info, cmd == VIGIL_CMD_RULE_DEL));
    return Queue(info.Env(), [rules, cmd, where](Socket* s, uint16_t fam, NlError* e) {
      return Named(where, SendRules(s, fam, cmd, *rules, e), e);
    });
  }

  Napi::Value AddRules(const Napi::CallbackInfo& info) { return Rules(info, VIGIL_CMD_RULE_ADD, "rule add"); }
  Napi::Value DeleteRules(const Napi::CallbackInfo& info) { return Rules(info, VIGIL_CMD_RULE_DEL, "rule delete"); }

  Napi::Value Flush(const Napi::CallbackInfo& info) {
    return Queue(info.Env(), [](Socket* s, uint16_t fam, NlError* e) {
      return Named("rule flush", Call(s, fam, VIGIL_CMD_RULE_FLUSH, nullptr, IgnoreData, e), e);
    });
  }

  Napi::Value DumpRules(const Napi::CallbackInfo& info) {
    auto out = std::make_shared<std::vector<Rule>>();
    return Queue(
        info.Env(),
        [out](Socket* s, uint16_t fam, NlError* e) {
          auto onData = [&](const struct nlmsghdr* m, std::string* why) { return DecodeRules(m, out.get(), why); };
          return Named("rule dump", Dump(s, fam, VIGIL_CMD_RULE_GET, onData, e), e);
        },
        [out](Napi::Env env) -> Napi::Value {
          Napi::Array arr = Napi::Array::New(env, out->size());
          for (size_t i = 0; i < out->size(); i++) arr.Set(static_cast<uint32_t>(i), RuleToJs(env, (*out)[i]));
          return arr;
        });
  }

  // stats() and getConfig(): one nest of unsigned values in the reply.
  Napi::Value GetScalars(Napi::Env env, uint8_t cmd, const char* where, const NestSchema& schema, bool allFields) {
    auto values = std::make_shared<Scalars>();
    return Queue(
        env,
        [values, cmd, where, &schema](Socket* s, uint16_t fam, NlError* e) {
          auto onData = [&](const struct nlmsghdr* m, std::string* why) { return DecodeScalars(m, schema, values.get(), why); };
          return Named(where, Call(s, fam, cmd, nullptr, onData, e), e);
        },
        [values, &schema, allFields](Napi::Env env) -> Napi::Value { return ScalarsToJs(env, schema, *values, allFields); });
  }

  Napi::Value GetStats(const Napi::CallbackInfo& info) {
    return GetScalars(info.Env(), VIGIL_CMD_STATS_GET, "stats", kStatsSchema, true);
  }

  Napi::Value GetConfig(const Napi::CallbackInfo& info) {
    return GetScalars(info.Env(), VIGIL_CMD_CONFIG_GET, "config get", kConfigSchema, false);
  }

  Napi::Value SetConfig(const Napi::CallbackInfo& info) {
    auto c = std::make_shared<Scalars>(ConfigFromJs(info.Env(), info[0]));
    return Queue(info.Env(), [c](Socket* s, uint16_t fam, NlError* e) {
      auto fill = [&](struct nlmsghdr* nlh) { PutScalars(nlh, kConfigSchema, *c); };
      return Named("config set", Call(s, fam, VIGIL_CMD_CONFIG_SET, fill, IgnoreData, e), e);
    });
  }

  static bool IgnoreData(const struct nlmsghdr*, std::string*) { return true; }

  // subscribe(callback): callback(rule) for each expired rule; callback(null,
  // {overrun: true}) when events were lost: the kernel dropped them (socket
  // buffer full) or one could not be decoded. The caller resyncs by dump.
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
          self->EmitOverrun(nullptr);
          continue;
        }
        break;  // EAGAIN: drained
      }
      const struct nlmsghdr* nlh = reinterpret_cast<const struct nlmsghdr*>(buf.data());
      int rem = static_cast<int>(n);
      for (; mnl_nlmsg_ok(nlh, rem); nlh = mnl_nlmsg_next(nlh, &rem)) {
        if (nlh->nlmsg_type != self->family_.id || nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(struct genlmsghdr)) continue;
        const auto* g = static_cast<const struct genlmsghdr*>(mnl_nlmsg_get_payload(nlh));
        if (g->cmd != VIGIL_CMD_RULE_EXPIRED) continue;
        std::vector<Rule> rules;
        std::string why;
        if (!DecodeRules(nlh, &rules, &why)) {
          self->EmitOverrun(&why);
          continue;
        }
        for (const Rule& r : rules) self->Emit({RuleToJs(self->env_, r)});
      }
      if (!self->events_) break;  // closed from the callback
    }
  }

  void EmitOverrun(const std::string* why) {
    Napi::Object info = Napi::Object::New(env_);
    info.Set("overrun", true);
    if (why) info.Set("error", "malformed event: " + *why);
    Emit({env_.Null(), info});
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

}  // namespace

Napi::Function DefineClient(Napi::Env env) { return Client::Init(env); }

}  // namespace vigil::nl
