// The codec declared in rule_codec.h. Widths come from the UAPI header's
// comments ("u8", "u64", "4 or 16 bytes"); a reply that disagrees with them
// comes from a different module or is corrupt, and is refused rather than
// guessed at.
#include "rule_codec.h"

namespace vigil::nl {

namespace {

constexpr ScalarAttr kStatsAttrs[] = {
    {VIGIL_STATS_ATTR_SEEN, "seen", 8, false, false},
    {VIGIL_STATS_ATTR_DROPPED, "dropped", 8, false, false},
    {VIGIL_STATS_ATTR_CAPTURED, "captured", 8, false, false},
    {VIGIL_STATS_ATTR_RING_DROPS, "ringDrops", 8, false, false},
    {VIGIL_STATS_ATTR_HOST_RULES, "hostRules", 4, false, false},
    {VIGIL_STATS_ATTR_GENERAL_RULES, "generalRules", 4, false, false},
};

constexpr ScalarAttr kConfigAttrs[] = {
    {VIGIL_CONFIG_ATTR_CAPTURE, "capture", 1, true, true},
    {VIGIL_CONFIG_ATTR_SAMPLE, "sample", 4, false, true},
    {VIGIL_CONFIG_ATTR_CAPTURE_DROPPED, "captureDropped", 1, true, true},
    {VIGIL_CONFIG_ATTR_SNAPLEN, "snaplen", 4, false, false},
    {VIGIL_CONFIG_ATTR_SLOTS, "slots", 4, false, false},
    {VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK, "captureLoopback", 1, true, true},
};

// Rule attributes: name for messages and payload width (0: an address, 4 or 16 bytes).
struct RuleAttr {
  uint16_t type;
  const char* name;
  uint8_t bytes;
};
constexpr RuleAttr kRuleAttrs[] = {
    {VIGIL_RULE_ATTR_ID, "id", 8},           {VIGIL_RULE_ATTR_KIND, "kind", 1},
    {VIGIL_RULE_ATTR_FAMILY, "family", 1},   {VIGIL_RULE_ATTR_ADDR, "addr", 0},
    {VIGIL_RULE_ATTR_SRC, "src", 0},         {VIGIL_RULE_ATTR_SRC_PREFIX, "srcPrefix", 1},
    {VIGIL_RULE_ATTR_DST, "dst", 0},         {VIGIL_RULE_ATTR_DST_PREFIX, "dstPrefix", 1},
    {VIGIL_RULE_ATTR_PROTO, "proto", 1},     {VIGIL_RULE_ATTR_DPORT_MIN, "dportMin", 2},
    {VIGIL_RULE_ATTR_DPORT_MAX, "dportMax", 2}, {VIGIL_RULE_ATTR_DIRECTION, "direction", 1},
    {VIGIL_RULE_ATTR_ACTION, "action", 1},   {VIGIL_RULE_ATTR_PRIORITY, "priority", 4},
    {VIGIL_RULE_ATTR_TIMEOUT_MS, "timeoutMs", 8}, {VIGIL_RULE_ATTR_HITS, "hits", 8},
    {VIGIL_RULE_ATTR_BYTES, "bytes", 8},
};

const RuleAttr* FindRuleAttr(uint16_t type) {
  for (const RuleAttr& a : kRuleAttrs)
    if (a.type == type) return &a;
  return nullptr;
}

// The payload as an unsigned number of `bytes` bytes (host order, as netlink sends it).
uint64_t Unsigned(const struct nlattr* a, uint8_t bytes) {
  const void* p = mnl_attr_get_payload(a);
  switch (bytes) {
    case 1: return *static_cast<const uint8_t*>(p);
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
  }
}

void PutUnsigned(struct nlmsghdr* nlh, uint16_t type, uint8_t bytes, uint64_t v) {
  switch (bytes) {
    case 1: mnl_attr_put_u8(nlh, type, static_cast<uint8_t>(v)); break;
    case 2: mnl_attr_put_u16(nlh, type, static_cast<uint16_t>(v)); break;
    case 4: mnl_attr_put_u32(nlh, type, static_cast<uint32_t>(v)); break;
    default: mnl_attr_put_u64(nlh, type, v); break;
  }
}

std::string Width(const char* nest, const char* name, uint16_t type, size_t got, const char* want) {
  return std::string(nest) + " attribute " + std::to_string(type) + " (" + name + ") has " + std::to_string(got) +
         " bytes, expected " + want;
}

bool DecodeRule(const struct nlattr* nest, Rule* r, std::string* why) {
  return ForEachAttr(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest), "rule", why, [&](const struct nlattr* a) {
    uint16_t type = mnl_attr_get_type(a);
    uint16_t len = mnl_attr_get_payload_len(a);
    if (type == VIGIL_RULE_ATTR_PAD) return true;
    const RuleAttr* found = FindRuleAttr(type);
    // A newer module may append attributes (the UAPI only ever grows): skip what this
    // build does not know, as iproute2 does, but never read a known one of the wrong size.
    if (!found) return true;
    const RuleAttr& spec = *found;
    if (spec.bytes == 0 ? (len != 4 && len != 16) : len != spec.bytes) {
      *why = Width("rule", spec.name, type, len, spec.bytes == 0 ? "4 or 16" : std::to_string(spec.bytes).c_str());
      return false;
    }
    uint64_t v = spec.bytes ? Unsigned(a, spec.bytes) : 0;
    auto address = [&](uint8_t* out, uint8_t* outLen) {
      memcpy(out, mnl_attr_get_payload(a), len);
      *outLen = static_cast<uint8_t>(len);
    };
    switch (type) {
      case VIGIL_RULE_ATTR_ID: r->id = v; break;
      case VIGIL_RULE_ATTR_KIND: r->kind = static_cast<uint8_t>(v); break;
      case VIGIL_RULE_ATTR_FAMILY: r->family = static_cast<uint8_t>(v); break;
      case VIGIL_RULE_ATTR_ADDR: address(r->addr, &r->addrLen); break;
      case VIGIL_RULE_ATTR_SRC: address(r->src, &r->srcLen); break;
      case VIGIL_RULE_ATTR_DST: address(r->dst, &r->dstLen); break;
      case VIGIL_RULE_ATTR_SRC_PREFIX: r->hasSrcPrefix = true; r->srcPrefix = static_cast<uint8_t>(v); break;
      case VIGIL_RULE_ATTR_DST_PREFIX: r->hasDstPrefix = true; r->dstPrefix = static_cast<uint8_t>(v); break;
      case VIGIL_RULE_ATTR_PROTO: r->hasProto = true; r->proto = static_cast<uint8_t>(v); break;
      case VIGIL_RULE_ATTR_DPORT_MIN: r->hasPorts = true; r->dportMin = static_cast<uint16_t>(v); break;
      case VIGIL_RULE_ATTR_DPORT_MAX: r->hasPorts = true; r->dportMax = static_cast<uint16_t>(v); break;
      case VIGIL_RULE_ATTR_DIRECTION: r->hasDirection = true; r->direction = static_cast<uint8_t>(v); break;
      case VIGIL_RULE_ATTR_ACTION: r->hasAction = true; r->action = static_cast<uint8_t>(v); break;
      case VIGIL_RULE_ATTR_PRIORITY: r->hasPriority = true; r->priority = static_cast<uint32_t>(v); break;
      case VIGIL_RULE_ATTR_TIMEOUT_MS: r->hasTimeout = true; r->timeoutMs = v; break;
      case VIGIL_RULE_ATTR_HITS: r->hasCounters = true; r->hits = v; break;
      case VIGIL_RULE_ATTR_BYTES: r->hasCounters = true; r->bytes = v; break;
    }
    return true;
  });
}

// Top-level attributes: the wanted nest is handed to `fn`; every other type is
// skipped, those a newer module may add included.
template <typename Fn>
bool ForEachNest(const struct nlmsghdr* nlh, uint16_t want, std::string* why, Fn&& fn) {
  return ForEachGenlAttr(nlh, why, [&](const struct nlattr* a) {
    return mnl_attr_get_type(a) == want ? fn(a) : true;
  });
}

}  // namespace

const NestSchema kStatsSchema = {VIGIL_ATTR_STATS, "stats", VIGIL_STATS_ATTR_PAD, kStatsAttrs,
                                 sizeof(kStatsAttrs) / sizeof(kStatsAttrs[0])};
const NestSchema kConfigSchema = {VIGIL_ATTR_CONFIG, "config", 0, kConfigAttrs,
                                  sizeof(kConfigAttrs) / sizeof(kConfigAttrs[0])};

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

void PutScalars(struct nlmsghdr* nlh, const NestSchema& schema, const Scalars& s) {
  struct nlattr* nest = mnl_attr_nest_start(nlh, schema.nest);
  for (size_t i = 0; i < schema.count; i++) {
    const ScalarAttr& f = schema.attrs[i];
    if (s.present[f.type]) PutUnsigned(nlh, f.type, f.bytes, s.value[f.type]);
  }
  mnl_attr_nest_end(nlh, nest);
}

bool DecodeRules(const struct nlmsghdr* nlh, std::vector<Rule>* out, std::string* why) {
  return ForEachNest(nlh, VIGIL_ATTR_RULE, why, [&](const struct nlattr* nest) {
    Rule r;
    if (!DecodeRule(nest, &r, why)) return false;
    out->push_back(r);
    return true;
  });
}

bool DecodeScalars(const struct nlmsghdr* nlh, const NestSchema& schema, Scalars* out, std::string* why) {
  return ForEachNest(nlh, schema.nest, why, [&](const struct nlattr* nest) {
    return ForEachAttr(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest), schema.name, why,
                       [&](const struct nlattr* a) {
                         uint16_t type = mnl_attr_get_type(a);
                         if (schema.pad && type == schema.pad) return true;
                         for (size_t i = 0; i < schema.count; i++) {
                           const ScalarAttr& f = schema.attrs[i];
                           if (f.type != type) continue;
                           if (mnl_attr_get_payload_len(a) != f.bytes) {
                             *why = Width(schema.name, f.name, type, mnl_attr_get_payload_len(a),
                                          std::to_string(f.bytes).c_str());
                             return false;
                           }
                           out->Set(type, Unsigned(a, f.bytes));
                           return true;
                         }
                         return true;  // appended by a newer module: skipped

                       });
  });
}

}  // namespace vigil::nl
