// Rules, statistics and configuration of the kernel module as generic netlink
// attributes (kmod/include/uapi/linux/vigil.h), both ways. libmnl only: no
// N-API and no socket, so test/native/test_rule_codec.cc builds it in
// userspace under ASan and UBSan and feeds it hostile replies. Decoding never
// trusts a length: every attribute is checked against the bytes that are
// really there and against the width the UAPI header gives it, and a reply
// that does not fit is refused with a reason, not read past.
#pragma once

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/vigil.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <string>
#include <utility>
#include <vector>

namespace vigil::nl {

struct Rule {
  uint64_t id = 0;
  uint8_t kind = 0, family = 0;
  uint8_t addrLen = 0, srcLen = 0, dstLen = 0;
  uint8_t addr[16] = {}, src[16] = {}, dst[16] = {};
  bool hasSrcPrefix = false, hasDstPrefix = false, hasProto = false, hasPorts = false;
  bool hasDirection = false, hasAction = false, hasPriority = false, hasTimeout = false;
  uint8_t srcPrefix = 0, dstPrefix = 0, proto = 0, direction = 0, action = 0;
  uint16_t dportMin = 0, dportMax = 0;
  uint32_t priority = 0;
  uint64_t timeoutMs = 0;
  bool hasCounters = false;
  uint64_t hits = 0, bytes = 0;
};

// One unsigned attribute of the stats or config nest: its type, its width on
// the wire, and the name JavaScript knows it by. One table per nest drives
// decoding, encoding and the conversion to and from JavaScript.
struct ScalarAttr {
  uint16_t type;
  const char* name;
  uint8_t bytes;     // 1, 4 or 8
  bool boolean;      // a 0/1 flag (a JS boolean)
  bool writable;     // accepted by VIGIL_CMD_CONFIG_SET
};

struct NestSchema {
  uint16_t nest;           // VIGIL_ATTR_STATS or VIGIL_ATTR_CONFIG
  const char* name;        // for error messages
  uint16_t pad;            // the nest's padding attribute, skipped (0: none)
  const ScalarAttr* attrs;
  size_t count;
};

extern const NestSchema kStatsSchema;
extern const NestSchema kConfigSchema;

// Values of one stats or config nest by attribute type; absent ones stay unset.
constexpr size_t kMaxScalarType = 15;
struct Scalars {
  uint64_t value[kMaxScalarType + 1] = {};
  bool present[kMaxScalarType + 1] = {};
  void Set(uint16_t type, uint64_t v) {
    value[type] = v;
    present[type] = true;
  }
};
static_assert(VIGIL_STATS_ATTR_MAX <= kMaxScalarType && VIGIL_CONFIG_ATTR_MAX <= kMaxScalarType,
              "a stats or config attribute type outgrew Scalars");

// Upper bound of the bytes PutRule adds.
constexpr size_t kRuleMaxBytes = 4 + 12 + 3 * 8 + 3 * 20 + 8 * 8 + 12;

// Appends a VIGIL_ATTR_RULE nest (only the id for a delete).
void PutRule(struct nlmsghdr* nlh, const Rule& r, bool idOnly);
// Appends the schema's nest with the present values.
void PutScalars(struct nlmsghdr* nlh, const NestSchema& schema, const Scalars& s);

// Decoders of one whole generic netlink message (after the nlmsghdr checks of
// the transport). On failure they return false and say why in `why`.
// Every VIGIL_ATTR_RULE of a dump part or a VIGIL_CMD_RULE_EXPIRED event.
bool DecodeRules(const struct nlmsghdr* nlh, std::vector<Rule>* out, std::string* why);
// The schema's nest of a VIGIL_CMD_STATS_GET or VIGIL_CMD_CONFIG_GET reply.
bool DecodeScalars(const struct nlmsghdr* nlh, const NestSchema& schema, Scalars* out, std::string* why);

// Calls fn(attr) for every attribute in [data, data+len) and stops at the
// first false. Refuses (false, with `why`) an attribute header or length that
// runs past the end: `what` names the area in the message.
template <typename Fn>
bool ForEachAttr(const void* data, size_t len, const char* what, std::string* why, Fn&& fn) {
  const char* p = static_cast<const char*>(data);
  size_t off = 0;
  while (off < len) {
    if (len - off < sizeof(struct nlattr)) {
      *why = std::string(what) + ": " + std::to_string(len - off) + " stray bytes at offset " + std::to_string(off) +
             ", too few for an attribute header";
      return false;
    }
    struct nlattr hdr;
    memcpy(&hdr, p + off, sizeof(hdr));
    if (hdr.nla_len < sizeof(struct nlattr) || hdr.nla_len > len - off) {
      *why = std::string(what) + ": attribute type " + std::to_string(hdr.nla_type & NLA_TYPE_MASK) + " at offset " +
             std::to_string(off) + " claims " + std::to_string(hdr.nla_len) + " bytes, " + std::to_string(len - off) +
             " are left";
      return false;
    }
    if (!fn(reinterpret_cast<const struct nlattr*>(p + off))) return false;
    off += MNL_ALIGN(hdr.nla_len);
  }
  return true;
}

// The attributes of a generic netlink message, after its genlmsghdr.
template <typename Fn>
bool ForEachGenlAttr(const struct nlmsghdr* nlh, std::string* why, Fn&& fn) {
  const size_t head = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct genlmsghdr));
  if (nlh->nlmsg_len < head) {
    *why = "message of " + std::to_string(nlh->nlmsg_len) + " bytes is shorter than its headers";
    return false;
  }
  return ForEachAttr(reinterpret_cast<const char*>(nlh) + head, nlh->nlmsg_len - head, "message", why,
                     std::forward<Fn>(fn));
}

}  // namespace vigil::nl
