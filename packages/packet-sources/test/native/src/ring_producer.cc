// Test-only addon (vigil_ring_producer.node): a userspace producer of the
// kernel ring layout. It creates a file laid out exactly as the UAPI header
// describes and plays the kernel's part (fill slot, store-release producer;
// full ring => drops++), so the ring reader of the production addon is tested
// without the module. Built by scripts/build-addon.mjs from test/native, never
// linked into vigil_packet_sources.node and never shipped.
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/vigil.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace vigil {

namespace {

class RingProducer : public Napi::ObjectWrap<RingProducer> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit RingProducer(const Napi::CallbackInfo& info);
  ~RingProducer() override;

 private:
  Napi::Value Produce(const Napi::CallbackInfo& info);
  Napi::Value Indexes(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  struct vigil_ring_ctl* ctl(uint32_t ring) const;
  void release();

  int fd_ = -1;
  uint8_t* map_ = nullptr;
  struct vigil_ring_info info_ {};
};

Napi::Function RingProducer::Init(Napi::Env env) {
  return DefineClass(env, "RingProducer",
                     {InstanceMethod("produce", &RingProducer::Produce), InstanceMethod("indexes", &RingProducer::Indexes),
                      InstanceMethod("info", &RingProducer::Info), InstanceMethod("close", &RingProducer::Close)});
}

// new RingProducer(path, {rings, slots, snaplen, startIndex})
RingProducer::RingProducer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingProducer>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) {
    Napi::TypeError::New(env, "RingProducer(path, {rings, slots, snaplen, startIndex})").ThrowAsJavaScriptException();
    return;
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].As<Napi::Object>();
  auto num = [&](const char* k, double def) {
    Napi::Value v = o.Get(k);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
  };
  uint32_t rings = static_cast<uint32_t>(num("rings", 2));
  uint32_t slots = static_cast<uint32_t>(num("slots", 64));
  uint32_t snaplen = static_cast<uint32_t>(num("snaplen", 128));
  uint64_t start = static_cast<uint64_t>(num("startIndex", 0));
  if (rings == 0 || slots == 0 || (slots & (slots - 1))) {
    Napi::RangeError::New(env, "rings must be > 0 and slots a power of two").ThrowAsJavaScriptException();
    return;
  }
  uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  info_.magic = VIGIL_RING_MAGIC;
  info_.abi_version = VIGIL_RING_ABI_VERSION;
  info_.ring_count = rings;
  info_.slots_per_ring = slots;
  info_.slot_size = (VIGIL_FRAME_HDR_LEN + snaplen + 63) / 64 * 64;
  info_.snaplen = snaplen;
  info_.page_size = page;
  info_.ring_offset = page;
  uint64_t slotBytes = static_cast<uint64_t>(slots) * info_.slot_size;
  info_.ring_stride = page + (slotBytes + page - 1) / page * page;
  info_.map_size = info_.ring_offset + rings * info_.ring_stride;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0 || ftruncate(fd_, static_cast<off_t>(info_.map_size)) != 0) {
    std::string msg = "cannot create ring file " + path + ": " + std::strerror(errno);
    release();
    Napi::Error::New(env, msg).ThrowAsJavaScriptException();
    return;
  }
  void* m = mmap(nullptr, info_.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (m == MAP_FAILED) {
    std::string msg = std::string("mmap: ") + std::strerror(errno);
    release();
    Napi::Error::New(env, msg).ThrowAsJavaScriptException();
    return;
  }
  map_ = static_cast<uint8_t*>(m);
  for (uint32_t i = 0; i < rings; i++) {
    ctl(i)->producer = start;
    ctl(i)->consumer = start;
    ctl(i)->drops = 0;
  }
  // The info page last, with a release store of the magic: a reader that sees it sees the rest.
  struct vigil_ring_info copy = info_;
  copy.magic = 0;
  std::memcpy(map_, &copy, sizeof(copy));
  __atomic_store_n(reinterpret_cast<uint32_t*>(map_), VIGIL_RING_MAGIC, __ATOMIC_RELEASE);
}

RingProducer::~RingProducer() { release(); }

void RingProducer::release() {
  if (map_) munmap(map_, info_.map_size);
  map_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

struct vigil_ring_ctl* RingProducer::ctl(uint32_t ring) const {
  return reinterpret_cast<struct vigil_ring_ctl*>(map_ + info_.ring_offset + static_cast<uint64_t>(ring) * info_.ring_stride);
}

// produce(ring, records): copies packed frame records into the ring's slots
// (truncating data to the slot) exactly like the kernel; returns {written, dropped}.
Napi::Value RingProducer::Produce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!map_) {
    Napi::Error::New(env, "ring producer is closed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t ring = info[0].As<Napi::Number>().Uint32Value();
  if (ring >= info_.ring_count) {
    Napi::RangeError::New(env, "no such ring").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> buf = info[1].As<Napi::Buffer<uint8_t>>();
  const uint8_t* p = buf.Data();
  size_t len = buf.Length();
  struct vigil_ring_ctl* c = ctl(ring);
  uint8_t* slots = reinterpret_cast<uint8_t*>(c) + info_.page_size;
  uint32_t maxCap = info_.slot_size - VIGIL_FRAME_HDR_LEN;
  uint64_t written = 0, dropped = 0;
  size_t off = 0;
  while (off + VIGIL_FRAME_HDR_LEN <= len) {
    struct vigil_frame f;
    std::memcpy(&f, p + off, sizeof(f));
    if (off + VIGIL_FRAME_HDR_LEN + f.cap_len > len) {
      Napi::RangeError::New(env, "record overruns the buffer").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const uint8_t* data = p + off + VIGIL_FRAME_HDR_LEN;
    off += VIGIL_FRAME_HDR_LEN + f.cap_len;
    uint64_t prod = c->producer;
    uint64_t cons = __atomic_load_n(&c->consumer, __ATOMIC_ACQUIRE);
    if (prod - cons >= info_.slots_per_ring) {
      __atomic_store_n(&c->drops, c->drops + 1, __ATOMIC_RELAXED);
      dropped++;
      continue;
    }
    uint8_t* slot = slots + static_cast<size_t>(prod & (info_.slots_per_ring - 1)) * info_.slot_size;
    if (f.cap_len > maxCap) f.cap_len = static_cast<uint16_t>(maxCap);
    std::memcpy(slot, &f, sizeof(f));
    std::memcpy(slot + VIGIL_FRAME_HDR_LEN, data, f.cap_len);
    __atomic_store_n(&c->producer, prod + 1, __ATOMIC_RELEASE);
    written++;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("written", Napi::Number::New(env, static_cast<double>(written)));
  out.Set("dropped", Napi::Number::New(env, static_cast<double>(dropped)));
  return out;
}

// indexes(ring): {producer, consumer, drops}
Napi::Value RingProducer::Indexes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!map_) return env.Undefined();
  uint32_t ring = info[0].As<Napi::Number>().Uint32Value();
  if (ring >= info_.ring_count) return env.Undefined();
  struct vigil_ring_ctl* c = ctl(ring);
  Napi::Object out = Napi::Object::New(env);
  out.Set("producer", Napi::Number::New(env, static_cast<double>(__atomic_load_n(&c->producer, __ATOMIC_RELAXED))));
  out.Set("consumer", Napi::Number::New(env, static_cast<double>(__atomic_load_n(&c->consumer, __ATOMIC_ACQUIRE))));
  out.Set("drops", Napi::Number::New(env, static_cast<double>(__atomic_load_n(&c->drops, __ATOMIC_RELAXED))));
  return out;
}

Napi::Value RingProducer::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ringCount", info_.ring_count);
  o.Set("slotsPerRing", info_.slots_per_ring);
  o.Set("slotSize", info_.slot_size);
  o.Set("snaplen", info_.snaplen);
  o.Set("pageSize", info_.page_size);
  o.Set("ringOffset", static_cast<double>(info_.ring_offset));
  o.Set("ringStride", static_cast<double>(info_.ring_stride));
  o.Set("mapSize", static_cast<double>(info_.map_size));
  return o;
}

Napi::Value RingProducer::Close(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

}  // namespace

}  // namespace vigil

static Napi::Object InitRingProducer(Napi::Env env, Napi::Object exports) {
  exports.Set("RingProducer", vigil::RingProducer::Init(env));
  return exports;
}

NODE_API_MODULE(vigil_ring_producer, InitRingProducer)
