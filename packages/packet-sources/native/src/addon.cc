// JavaScript binding: a Source object per open source. The reader thread
// signals through a thread-safe function only when the hand-off queue turns
// non-empty (or the source ends); JavaScript then takes whole batches, one
// Buffer each, so there is never a call per frame.
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "sources.h"

namespace vigil {

namespace {

class TsfnNotifier final : public Notifier {
 public:
  explicit TsfnNotifier(Napi::ThreadSafeFunction tsfn) : tsfn_(std::move(tsfn)) {}
  void notify() override { tsfn_.NonBlockingCall(); }
  void release() override {
    if (!released_) {
      released_ = true;
      tsfn_.Release();
    }
  }

 private:
  Napi::ThreadSafeFunction tsfn_;
  bool released_ = false;
};

Napi::Error makeError(Napi::Env env, const std::string& code, const std::string& message, const std::string& file,
                      int64_t offset) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  if (!file.empty()) err.Set("file", Napi::String::New(env, file));
  if (offset >= 0) err.Set("offset", Napi::Number::New(env, static_cast<double>(offset)));
  return err;
}

uint32_t u32(const Napi::Object& o, const char* key, uint32_t def) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : def;
}

// Options from the TypeScript wrapper, which validates them; they are checked
// again here where a wrong value would make C++ read or write out of bounds.
// Returns false with the reason.
bool parseOptions(const Napi::Object& o, Options* out, std::string* why) {
  Options& opts = *out;
  opts.shardCount = u32(o, "shardCount", 16);
  opts.batchBytes = u32(o, "batchBytes", 65536);
  opts.flushMs = u32(o, "flushMs", 5);
  opts.snaplen = u32(o, "snaplen", 128);
  // A frame record's cap_len is 16 bits: a larger snaplen would desynchronise the records.
  if (opts.snaplen < 1 || opts.snaplen > 65535) {
    *why = "snaplen must be 1..65535, got " + std::to_string(opts.snaplen);
    return false;
  }
  Napi::Value headersOnly = o.Get("headersOnly");
  opts.headersOnly = headersOnly.IsBoolean() && headersOnly.As<Napi::Boolean>().Value();
  opts.maxQueuedBatches = u32(o, "maxQueuedBatches", 256);
  opts.headroom = u32(o, "headroom", 0);
  Napi::Value speed = o.Get("speed");
  if (speed.IsNumber()) opts.speed = speed.As<Napi::Number>().DoubleValue();
  Napi::Value filter = o.Get("filter");
  if (filter.IsString()) opts.filter = filter.As<Napi::String>().Utf8Value();
  Napi::Value local = o.Get("local");
  if (local.IsArray()) {
    Napi::Array arr = local.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      std::string at = "local[" + std::to_string(i) + "]";
      Napi::Value entry = arr.Get(i);
      if (!entry.IsObject()) {
        *why = at + " must be {bytes, prefix}";
        return false;
      }
      Napi::Object c = entry.As<Napi::Object>();
      Napi::Value bytesValue = c.Get("bytes");
      if (!bytesValue.IsBuffer() || (bytesValue.As<Napi::Buffer<uint8_t>>().Length() != 4 &&
                                     bytesValue.As<Napi::Buffer<uint8_t>>().Length() != 16)) {
        *why = at + ".bytes must be a Buffer of 4 or 16 bytes";
        return false;
      }
      Napi::Buffer<uint8_t> bytes = bytesValue.As<Napi::Buffer<uint8_t>>();
      Cidr cidr{};
      cidr.len = static_cast<uint8_t>(bytes.Length());
      std::memcpy(cidr.bytes, bytes.Data(), cidr.len);
      uint32_t prefix = u32(c, "prefix", cidr.len * 8);
      // isLocal() compares prefix/8 whole bytes: a prefix beyond the address would read past it.
      if (prefix > cidr.len * 8u) {
        *why = at + ".prefix must be 0.." + std::to_string(cidr.len * 8) + ", got " + std::to_string(prefix);
        return false;
      }
      cidr.prefix = static_cast<uint8_t>(prefix);
      opts.local.push_back(cidr);
    }
  }
  return true;
}

class NativeSource : public Napi::ObjectWrap<NativeSource> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeSource",
                       {InstanceMethod("take", &NativeSource::Take), InstanceMethod("finished", &NativeSource::Finished),
                        InstanceMethod("failure", &NativeSource::Failure), InstanceMethod("stats", &NativeSource::Stats),
                        InstanceMethod("close", &NativeSource::Close),
                        InstanceMethod("end", &NativeSource::End)});
  }

  // new NativeSource(kind, target, options, onSignal)
  explicit NativeSource(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeSource>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsObject() ||
        !info[3].IsFunction()) {
      Napi::TypeError::New(env, "NativeSource(kind, target, options, onSignal)").ThrowAsJavaScriptException();
      return;
    }
    std::string kind = info[0].As<Napi::String>().Utf8Value();
    std::string target = info[1].As<Napi::String>().Utf8Value();
    Napi::Object o = info[2].As<Napi::Object>();
    Options opts;
    std::string why;
    if (!parseOptions(o, &opts, &why)) {
      makeError(env, "VIGIL_ERR_OPTIONS", why, "", -1).ThrowAsJavaScriptException();
      return;
    }
    try {
      if (kind == "pcap") {
        source_ = openPcapSource(target, std::move(opts));
      } else if (kind == "afpacket") {
        Napi::Value group = o.Get("fanoutGroup");
        bool fanout = group.IsNumber();
        source_ = openAfPacketSource(target, fanout, fanout ? static_cast<uint16_t>(group.As<Napi::Number>().Uint32Value()) : 0,
                                     u32(o, "blockBytes", 1u << 20), u32(o, "blockCount", 64), std::move(opts));
      } else if (kind == "ring") {
        source_ = openRingSource(target, std::move(opts));
      } else {
        Napi::TypeError::New(env, "unknown source kind " + kind).ThrowAsJavaScriptException();
        return;
      }
    } catch (const OpenError& e) {
      makeError(env, e.code, e.what(), e.file, e.offset).ThrowAsJavaScriptException();
      return;
    } catch (const std::exception& e) {
      makeError(env, "VIGIL_ERR_SOURCE", e.what(), "", -1).ThrowAsJavaScriptException();
      return;
    }
    auto tsfn = Napi::ThreadSafeFunction::New(env, info[3].As<Napi::Function>(), "vigil-packet-source", 0, 1);
    notifier_ = std::make_unique<TsfnNotifier>(std::move(tsfn));
    source_->start(notifier_.get());
  }

  ~NativeSource() override {
    source_.reset();
  }

 private:
  // take(max): [{shard, records, frameCount, droppedBefore}, ...]
  Napi::Value Take(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    if (!source_) return out;
    size_t max = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 64;
    taken_.clear();
    source_->take(taken_, max);
    for (size_t i = 0; i < taken_.size(); i++) {
      const ReadyBatch& r = taken_[i];
      Napi::Object b = Napi::Object::New(env);
      b.Set("shard", Napi::Number::New(env, r.shard));
      size_t headroom = source_->headroom();
      size_t total = headroom + r.len;
      // V8 accounts the backing store of an external ArrayBuffer itself (it
      // drives GC on external memory): no AdjustExternalMemory on top.
      Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, r.data, total, [](Napi::Env, void* data) { std::free(data); });
      b.Set("records", Napi::Uint8Array::New(env, r.len, ab, headroom));
      b.Set("frameCount", Napi::Number::New(env, r.frames));
      b.Set("droppedBefore", Napi::Number::New(env, static_cast<double>(r.droppedBefore)));
      out.Set(static_cast<uint32_t>(i), b);
    }
    taken_.clear();
    return out;
  }

  Napi::Value Finished(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), !source_ || source_->finished());
  }

  Napi::Value Failure(const Napi::CallbackInfo& info) {
    SourceFailure f;
    if (!source_ || !source_->failed(f)) return info.Env().Null();
    return makeError(info.Env(), f.code, f.message, f.file, f.offset).Value();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (!source_) return o;
    const Counters& c = source_->counters;
    auto put = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    put("frames_captured", c.framesCaptured.load(std::memory_order_relaxed));
    put("bytes_captured", c.bytesCaptured.load(std::memory_order_relaxed));
    put("skipped_non_ip", c.skippedNonIp.load(std::memory_order_relaxed));
    put("skipped_malformed", c.skippedMalformed.load(std::memory_order_relaxed));
    put("filtered_out", c.filteredOut.load(std::memory_order_relaxed));
    put("ring_drops", c.ringDrops.load(std::memory_order_relaxed));
    put("queue_drops", c.queueDrops.load(std::memory_order_relaxed));
    put("batches", c.batches.load(std::memory_order_relaxed));
    put("batch_bytes", c.batchBytes.load(std::memory_order_relaxed));
    std::vector<std::pair<const char*, double>> extra;
    source_->extraStats(extra);
    for (auto& kv : extra) o.Set(kv.first, Napi::Number::New(env, kv.second));
    return o;
  }

  Napi::Value End(const Napi::CallbackInfo& info) {
    if (source_) source_->end();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (source_) source_->stop();
    return info.Env().Undefined();
  }

  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<Source> source_;
  std::vector<ReadyBatch> taken_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeSource", NativeSource::Init(env));
  return exports;
}

}  // namespace

}  // namespace vigil

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return vigil::Init(env, exports); }

NODE_API_MODULE(vigil_packet_sources, InitModule)
