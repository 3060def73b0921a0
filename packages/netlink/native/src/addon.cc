// Entry point of vigil_netlink.node: the NetlinkClient class and the ABI
// constants of kmod/include/uapi/linux/vigil.h, which TypeScript reads from
// here instead of declaring them a second time.
#include <napi.h>

#include <linux/vigil.h>

#include "client.h"

namespace {

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
  exports.Set("NetlinkClient", vigil::nl::DefineClient(env));
  exports.Set("constants", Constants(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(vigil_netlink, Init)
