// A tiny binding over libnftables: JSON documents in, JSON out, in-process
// (no nft process per change). A context may be bound to a named network
// namespace: its netlink socket is created inside it, so every later command
// acts there whichever thread runs it.
#include <napi.h>
#include <nftables/libnftables.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <memory>
#include <mutex>
#include <string>

namespace {

Napi::Error NftError(Napi::Env env, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, "VIGIL_ERR_NFT"));
  return e;
}

struct Ctx {
  struct nft_ctx* nft = nullptr;
  std::mutex mu;
  ~Ctx() {
    if (nft) nft_ctx_free(nft);
  }
};

class Run : public Napi::AsyncWorker {
 public:
  Run(Napi::Env env, std::shared_ptr<Ctx> ctx, std::string doc)
      : Napi::AsyncWorker(env, "vigil-nftables"), deferred_(Napi::Promise::Deferred::New(env)), ctx_(std::move(ctx)), doc_(std::move(doc)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    std::lock_guard<std::mutex> lock(ctx_->mu);
    nft_ctx_buffer_output(ctx_->nft);
    nft_ctx_buffer_error(ctx_->nft);
    rc_ = nft_run_cmd_from_buffer(ctx_->nft, doc_.c_str());
    const char* out = nft_ctx_get_output_buffer(ctx_->nft);
    const char* err = nft_ctx_get_error_buffer(ctx_->nft);
    out_ = out ? out : "";
    err_ = err ? err : "";
    nft_ctx_unbuffer_output(ctx_->nft);
    nft_ctx_unbuffer_error(ctx_->nft);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (rc_ == 0) deferred_.Resolve(Napi::String::New(env, out_));
    else {
      std::string msg = err_.empty() ? "nftables command failed" : err_;
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      Napi::Error e = NftError(env, "libnftables: " + msg);
      deferred_.Reject(e.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Ctx> ctx_;
  std::string doc_;
  int rc_ = 0;
  std::string out_, err_;
};

class Context : public Napi::ObjectWrap<Context> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NftContext", {InstanceMethod("run", &Context::RunDoc), InstanceMethod("close", &Context::Close)});
  }

  // new NftContext(netnsPath?: string)
  explicit Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
    Napi::Env env = info.Env();
    ctx_ = std::make_shared<Ctx>();
    int saved = -1, target = -1;
    if (info.Length() > 0 && info[0].IsString()) {
      std::string path = info[0].As<Napi::String>();
      target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (target < 0) throw NftError(env, "cannot open network namespace " + path + ": " + strerror(errno));
      saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
      if (saved < 0 || setns(target, CLONE_NEWNET) < 0) {
        int e = errno;
        if (saved >= 0) close(saved);
        close(target);
        throw NftError(env, "cannot enter network namespace " + path + ": " + strerror(e));
      }
    }
    ctx_->nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (saved >= 0) {
      // Back to our own namespace at once: only the context's socket lives in the other one.
      if (setns(saved, CLONE_NEWNET) < 0) abort();
      close(saved);
      close(target);
    }
    if (!ctx_->nft) throw NftError(env, "nft_ctx_new failed");
    // JSON output also makes libnftables parse JSON input (1.0.6 has no separate input flag).
    nft_ctx_output_set_flags(ctx_->nft, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
  }

 private:
  Napi::Value RunDoc(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!ctx_) throw NftError(env, "nftables context is closed");
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "document must be a string");
    auto* w = new Run(env, ctx_, info[0].As<Napi::String>());
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    ctx_.reset();  // freed once running commands finish
    return info.Env().Undefined();
  }
  std::shared_ptr<Ctx> ctx_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NftContext", Context::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(vigil_nftables, Init)
