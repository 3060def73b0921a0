// A userspace producer of the kernel ring layout, for tests: it creates a
// file laid out exactly as the UAPI header describes and plays the kernel's
// part (fill slot, store-release producer; full ring => drops++).
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include <linux/vigil.h>

namespace vigil {

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

}  // namespace vigil
