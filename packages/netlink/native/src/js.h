// JavaScript <-> codec values: rules, stats and config as plain objects, and
// netlink failures as Errors with code VIGIL_ERR_NETLINK. Everything that
// knows both N-API and the codec's structs lives here, so that client.cc
// handles only threads and sockets.
#pragma once

#include <napi.h>

#include "genl_socket.h"
#include "rule_codec.h"

namespace vigil::nl {

// "netlink <where>: <strerror> (<extack>)" with errno, syscall, extack and ruleIndex.
Napi::Error MakeError(Napi::Env env, const NlError& e);

Napi::Object RuleToJs(Napi::Env env, const Rule& r);
// Converts rules[index]; throws a TypeError (VIGIL_ERR_NETLINK_ARG) naming the field.
Rule RuleFromJs(Napi::Env env, Napi::Value v, size_t index, bool idOnly);

// Present values of a stats or config nest as an object (stats: every field, 0 when absent).
Napi::Object ScalarsToJs(Napi::Env env, const NestSchema& schema, const Scalars& s, bool allFields);
// The writable fields of a config object; throws a TypeError or RangeError naming the field.
Scalars ConfigFromJs(Napi::Env env, Napi::Value v);

}  // namespace vigil::nl
