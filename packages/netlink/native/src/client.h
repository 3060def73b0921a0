// The NetlinkClient class that addon.cc exports (client.cc).
#pragma once

#include <napi.h>

namespace vigil::nl {

Napi::Function DefineClient(Napi::Env env);

}  // namespace vigil::nl
