// Conversions declared in js.h. Numbers cross as doubles: ids and counters
// stay exact up to 2^53, which RuleFromJs enforces for what goes in.
#include "js.h"

#include <string.h>

#include <string>

namespace vigil::nl {

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

Napi::Object ScalarsToJs(Napi::Env env, const NestSchema& schema, const Scalars& s, bool allFields) {
  Napi::Object o = Napi::Object::New(env);
  for (size_t i = 0; i < schema.count; i++) {
    const ScalarAttr& f = schema.attrs[i];
    if (!allFields && !s.present[f.type]) continue;
    uint64_t v = s.value[f.type];
    if (f.boolean) o.Set(f.name, Napi::Boolean::New(env, v != 0));
    else o.Set(f.name, Napi::Number::New(env, static_cast<double>(v)));
  }
  return o;
}

Scalars ConfigFromJs(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, "config must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Scalars c;
  for (size_t i = 0; i < kConfigSchema.count; i++) {
    const ScalarAttr& f = kConfigSchema.attrs[i];
    if (!f.writable || !o.Has(f.name)) continue;
    Napi::Value x = o.Get(f.name);
    if (x.IsUndefined()) continue;
    if (f.boolean) {
      c.Set(f.type, x.ToBoolean().Value() ? 1 : 0);
      continue;
    }
    std::string key = std::string("config.") + f.name;
    if (!x.IsNumber()) throw Napi::TypeError::New(env, key + " must be a number");
    double d = x.As<Napi::Number>().DoubleValue();
    // The only writable number is the sampling rate: capture 1 in N, N >= 1.
    if (!(d >= 1 && d <= 4294967295.0)) throw Napi::RangeError::New(env, key + " must be 1..2^32-1");
    c.Set(f.type, static_cast<uint32_t>(d));
  }
  return c;
}

}  // namespace vigil::nl
