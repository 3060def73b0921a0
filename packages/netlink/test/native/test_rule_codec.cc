// Unit tests of native/src/rule_codec.cc in userspace, built with
// -fsanitize=address,undefined by test/rule-codec.test.ts: round trips of
// rules, stats and config, and hostile replies (bad lengths, skipped unknown
// attributes, truncated nests, random corruption). Each hostile reply must be
// refused with a reason; a read past the reply is an ASan error, because every
// decoded message sits in a heap block of exactly its own size.
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

#include "rule_codec.h"

using namespace vigil::nl;

static int passed, failed;

#define CHECK(cond)                                                    \
  do {                                                                 \
    if (cond) {                                                        \
      passed++;                                                        \
    } else {                                                           \
      failed++;                                                        \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                  \
  } while (0)

// A message under construction, in a buffer with room to spare.
struct Builder {
  alignas(8) char buf[8192] = {};
  struct nlmsghdr* nlh;
  explicit Builder(uint8_t cmd = VIGIL_CMD_RULE_GET) {
    nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = 0x20;
    auto* g = static_cast<struct genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(struct genlmsghdr)));
    g->cmd = cmd;
    g->version = VIGIL_GENL_VERSION;
  }
  // An attribute written byte by byte: `claimed` overrides nla_len (0: the true length).
  void Raw(uint16_t type, const void* payload, uint16_t len, uint16_t claimed = 0) {
    struct nlattr a;
    a.nla_type = type;
    a.nla_len = claimed ? claimed : static_cast<uint16_t>(sizeof(a) + len);
    char* at = buf + nlh->nlmsg_len;
    memcpy(at, &a, sizeof(a));
    if (len) memcpy(at + sizeof(a), payload, len);
    nlh->nlmsg_len += MNL_ALIGN(sizeof(a) + len);
  }
  // Appends stray bytes (no alignment).
  void Bytes(const void* p, uint16_t len) {
    memcpy(buf + nlh->nlmsg_len, p, len);
    nlh->nlmsg_len += len;
  }
};

// A copy of the message in a heap block of exactly nlmsg_len bytes.
struct Exact {
  struct nlmsghdr* nlh;
  explicit Exact(const struct nlmsghdr* from, uint32_t len = 0) {
    uint32_t n = len ? len : from->nlmsg_len;
    nlh = static_cast<struct nlmsghdr*>(malloc(n));
    memcpy(nlh, from, n);
    nlh->nlmsg_len = n;
  }
  ~Exact() { free(nlh); }
};

static Rule HostRule() {
  Rule r;
  r.id = 0x1122334455667788ULL & 0x1fffffffffffffULL;
  r.kind = VIGIL_RULE_HOST;
  r.family = VIGIL_FAMILY_IPV4;
  r.addrLen = 4;
  inet_pton(AF_INET, "192.0.2.7", r.addr);
  r.hasTimeout = true;
  r.timeoutMs = 600000;
  r.hasAction = true;
  r.action = VIGIL_ACTION_DROP;
  return r;
}

static Rule GeneralRule() {
  Rule r;
  r.id = 42;
  r.kind = VIGIL_RULE_GENERAL;
  r.family = VIGIL_FAMILY_IPV6;
  r.srcLen = 16;
  inet_pton(AF_INET6, "2001:db8::", r.src);
  r.hasSrcPrefix = true;
  r.srcPrefix = 32;
  r.dstLen = 16;
  inet_pton(AF_INET6, "2001:db8:1::", r.dst);
  r.hasDstPrefix = true;
  r.dstPrefix = 48;
  r.hasProto = true;
  r.proto = 6;
  r.hasPorts = true;
  r.dportMin = 22;
  r.dportMax = 2222;
  r.hasDirection = true;
  r.direction = VIGIL_RULE_DIR_INGRESS;
  r.hasAction = true;
  r.action = VIGIL_ACTION_ACCEPT;
  r.hasPriority = true;
  r.priority = 4000000000U;
  return r;
}

static bool SameRule(const Rule& a, const Rule& b) {
  return a.id == b.id && a.kind == b.kind && a.family == b.family && a.addrLen == b.addrLen &&
         !memcmp(a.addr, b.addr, 16) && a.srcLen == b.srcLen && !memcmp(a.src, b.src, 16) && a.dstLen == b.dstLen &&
         !memcmp(a.dst, b.dst, 16) && a.hasSrcPrefix == b.hasSrcPrefix && a.srcPrefix == b.srcPrefix &&
         a.hasDstPrefix == b.hasDstPrefix && a.dstPrefix == b.dstPrefix && a.hasProto == b.hasProto &&
         a.proto == b.proto && a.hasPorts == b.hasPorts && a.dportMin == b.dportMin && a.dportMax == b.dportMax &&
         a.hasDirection == b.hasDirection && a.direction == b.direction && a.hasAction == b.hasAction &&
         a.action == b.action && a.hasPriority == b.hasPriority && a.priority == b.priority &&
         a.hasTimeout == b.hasTimeout && a.timeoutMs == b.timeoutMs;
}

// Decodes `m` expecting a refusal whose reason contains `needle`.
static bool Refused(const struct nlmsghdr* m, const char* needle, uint32_t len = 0) {
  Exact e(m, len);
  std::vector<Rule> rules;
  std::string why;
  bool ok = DecodeRules(e.nlh, &rules, &why);
  if (ok || why.find(needle) == std::string::npos) {
    fprintf(stderr, "  expected a refusal with \"%s\", got %s \"%s\"\n", needle, ok ? "success" : "refusal", why.c_str());
    return false;
  }
  return true;
}

static void TestRuleRoundTrip() {
  Builder b;
  Rule host = HostRule(), general = GeneralRule();
  PutRule(b.nlh, host, false);
  PutRule(b.nlh, general, false);
  CHECK(b.nlh->nlmsg_len - MNL_NLMSG_HDRLEN - 4 <= 2 * kRuleMaxBytes);
  Exact e(b.nlh);
  std::vector<Rule> out;
  std::string why;
  CHECK(DecodeRules(e.nlh, &out, &why));
  CHECK(why.empty());
  CHECK(out.size() == 2);
  CHECK(out.size() == 2 && SameRule(out[0], host));
  CHECK(out.size() == 2 && SameRule(out[1], general));
  CHECK(out.size() == 2 && !out[1].hasTimeout);  // no timeout attribute: never expires
}

static void TestRuleEncodingRules() {
  // A delete carries the id only; a zero timeout is not sent (absent = never).
  Builder b;
  Rule r = GeneralRule();
  PutRule(b.nlh, r, true);
  r.hasTimeout = true;
  r.timeoutMs = 0;
  PutRule(b.nlh, r, false);
  Exact e(b.nlh);
  std::vector<Rule> out;
  std::string why;
  CHECK(DecodeRules(e.nlh, &out, &why));
  CHECK(out.size() == 2 && out[0].id == 42 && out[0].kind == 0 && !out[0].hasProto && !out[0].srcLen);
  CHECK(out.size() == 2 && !out[1].hasTimeout && out[1].hasProto);
}

static void TestDumpCountersAndPadding() {
  // What the kernel sends in a dump: counters, and PAD attributes on
  // architectures that align 64-bit values.
  Builder b;
  struct nlattr* nest = mnl_attr_nest_start(b.nlh, VIGIL_ATTR_RULE);
  mnl_attr_put_u64(b.nlh, VIGIL_RULE_ATTR_ID, 9);
  b.Raw(VIGIL_RULE_ATTR_PAD, nullptr, 0);
  mnl_attr_put_u64(b.nlh, VIGIL_RULE_ATTR_HITS, 1000);
  mnl_attr_put_u64(b.nlh, VIGIL_RULE_ATTR_BYTES, 64000);
  mnl_attr_nest_end(b.nlh, nest);
  b.Raw(VIGIL_ATTR_PAD, nullptr, 0);
  Exact e(b.nlh);
  std::vector<Rule> out;
  std::string why;
  CHECK(DecodeRules(e.nlh, &out, &why));
  CHECK(out.size() == 1 && out[0].id == 9 && out[0].hasCounters && out[0].hits == 1000 && out[0].bytes == 64000);
}

static void TestEmptyAndOtherNests() {
  Builder b;
  Exact e(b.nlh);
  std::vector<Rule> out;
  std::string why;
  CHECK(DecodeRules(e.nlh, &out, &why) && out.empty());
  // A known nest of another kind is skipped, not refused.
  Builder c;
  struct nlattr* nest = mnl_attr_nest_start(c.nlh, VIGIL_ATTR_STATS);
  mnl_attr_nest_end(c.nlh, nest);
  Exact f(c.nlh);
  CHECK(DecodeRules(f.nlh, &out, &why) && out.empty());
}

static void TestScalarsRoundTrip() {
  Scalars in;
  in.Set(VIGIL_STATS_ATTR_SEEN, 1ULL << 40);
  in.Set(VIGIL_STATS_ATTR_DROPPED, 7);
  in.Set(VIGIL_STATS_ATTR_HOST_RULES, 1048576);
  Builder b(VIGIL_CMD_STATS_GET);
  PutScalars(b.nlh, kStatsSchema, in);
  Exact e(b.nlh);
  Scalars out;
  std::string why;
  CHECK(DecodeScalars(e.nlh, kStatsSchema, &out, &why));
  CHECK(out.value[VIGIL_STATS_ATTR_SEEN] == (1ULL << 40) && out.value[VIGIL_STATS_ATTR_DROPPED] == 7);
  CHECK(out.value[VIGIL_STATS_ATTR_HOST_RULES] == 1048576 && out.present[VIGIL_STATS_ATTR_HOST_RULES]);
  CHECK(!out.present[VIGIL_STATS_ATTR_CAPTURED] && !out.present[VIGIL_STATS_ATTR_GENERAL_RULES]);

  Scalars cfg;
  cfg.Set(VIGIL_CONFIG_ATTR_CAPTURE, 1);
  cfg.Set(VIGIL_CONFIG_ATTR_SAMPLE, 4);
  cfg.Set(VIGIL_CONFIG_ATTR_SNAPLEN, 128);
  cfg.Set(VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK, 0);
  Builder c(VIGIL_CMD_CONFIG_GET);
  PutScalars(c.nlh, kConfigSchema, cfg);
  Exact f(c.nlh);
  Scalars back;
  CHECK(DecodeScalars(f.nlh, kConfigSchema, &back, &why));
  CHECK(back.value[VIGIL_CONFIG_ATTR_CAPTURE] == 1 && back.value[VIGIL_CONFIG_ATTR_SAMPLE] == 4);
  CHECK(back.value[VIGIL_CONFIG_ATTR_SNAPLEN] == 128 && back.present[VIGIL_CONFIG_ATTR_CAPTURE_LOOPBACK]);
  CHECK(!back.present[VIGIL_CONFIG_ATTR_SLOTS] && !back.present[VIGIL_CONFIG_ATTR_CAPTURE_DROPPED]);
  // Every table entry names a field and has a wire width the kernel uses.
  for (const NestSchema* s : {&kStatsSchema, &kConfigSchema})
    for (size_t i = 0; i < s->count; i++)
      CHECK(s->attrs[i].name && (s->attrs[i].bytes == 1 || s->attrs[i].bytes == 4 || s->attrs[i].bytes == 8));
}

// A rule nest holding one hand-written attribute after a valid id.
static void OneRuleAttr(Builder* b, uint16_t type, const void* payload, uint16_t len, uint16_t claimed = 0) {
  struct nlattr* nest = mnl_attr_nest_start(b->nlh, VIGIL_ATTR_RULE);
  mnl_attr_put_u64(b->nlh, VIGIL_RULE_ATTR_ID, 1);
  b->Raw(type, payload, len, claimed);
  mnl_attr_nest_end(b->nlh, nest);
}

// A stats or config nest holding one attribute of `bytes` bytes.
static bool ScalarRefused(const NestSchema& schema, uint16_t type, uint8_t bytes, const char* expect) {
  Builder b(VIGIL_CMD_STATS_GET);
  uint64_t v = 1;
  struct nlattr* nest = mnl_attr_nest_start(b.nlh, schema.nest);
  b.Raw(type, &v, bytes);
  mnl_attr_nest_end(b.nlh, nest);
  Exact e(b.nlh);
  Scalars out;
  std::string why;
  if (DecodeScalars(e.nlh, schema, &out, &why) || why != expect) {
    fprintf(stderr, "  expected \"%s\", got \"%s\"\n", expect, why.c_str());
    return false;
  }
  return true;
}

static void TestBadLengths() {
  static const struct {
    uint16_t type;
    uint16_t len;
    const char* expect;
  } cases[] = {
      {VIGIL_RULE_ATTR_SRC_PREFIX, 3, "rule attribute 6 (srcPrefix) has 3 bytes, expected 1"},
      {VIGIL_RULE_ATTR_TIMEOUT_MS, 4, "(timeoutMs) has 4 bytes, expected 8"},
      {VIGIL_RULE_ATTR_ADDR, 5, "(addr) has 5 bytes, expected 4 or 16"},
      {VIGIL_RULE_ATTR_SRC, 32, "(src) has 32 bytes, expected 4 or 16"},
      {VIGIL_RULE_ATTR_DPORT_MIN, 0, "(dportMin) has 0 bytes, expected 2"},
  };
  uint8_t bytes[32] = {1, 2, 3, 4, 5, 6, 7, 8};
  for (const auto& c : cases) {
    Builder b;
    OneRuleAttr(&b, c.type, bytes, c.len);
    CHECK(Refused(b.nlh, c.expect));
  }
  CHECK(ScalarRefused(kStatsSchema, VIGIL_STATS_ATTR_SEEN, 4, "stats attribute 1 (seen) has 4 bytes, expected 8"));
  CHECK(ScalarRefused(kConfigSchema, VIGIL_CONFIG_ATTR_CAPTURE, 8, "config attribute 1 (capture) has 8 bytes, expected 1"));
}

// The UAPI only grows: attributes a newer module appends are skipped, and the
// ones this build knows are still decoded (and still size-checked).
static bool DecodesDespite(const struct nlmsghdr* m) {
  Exact e(m);
  std::vector<Rule> rules;
  std::string why;
  if (!DecodeRules(e.nlh, &rules, &why) || rules.size() != 1 || rules[0].id != 1) {
    fprintf(stderr, "  expected one rule with id 1, got %zu rules, \"%s\"\n", rules.size(), why.c_str());
    return false;
  }
  return true;
}

static void TestUnknownAttributes() {
  uint8_t v = 1;
  {
    Builder b;
    OneRuleAttr(&b, 99, &v, 1);
    CHECK(DecodesDespite(b.nlh));
  }
  {
    Builder b;
    OneRuleAttr(&b, VIGIL_RULE_ATTR_UNSPEC, &v, 1);
    CHECK(DecodesDespite(b.nlh));
  }
  {
    Builder b;
    b.Raw(77, &v, 1);
    OneRuleAttr(&b, 98, &v, 1);
    CHECK(DecodesDespite(b.nlh));
  }
  {
    Builder b(VIGIL_CMD_STATS_GET);
    uint64_t seen = 5;
    struct nlattr* nest = mnl_attr_nest_start(b.nlh, kStatsSchema.nest);
    b.Raw(40, &v, 1);
    mnl_attr_put_u64(b.nlh, VIGIL_STATS_ATTR_SEEN, seen);
    mnl_attr_nest_end(b.nlh, nest);
    Exact e(b.nlh);
    Scalars out;
    std::string why;
    CHECK(DecodeScalars(e.nlh, kStatsSchema, &out, &why));
    CHECK(out.present[VIGIL_STATS_ATTR_SEEN] && out.value[VIGIL_STATS_ATTR_SEEN] == 5);
  }
}

static void TestTruncation() {
  uint64_t id = 5;
  {
    // The nest claims more bytes than the message has.
    Builder b;
    PutRule(b.nlh, HostRule(), false);
    struct nlattr* nest = reinterpret_cast<struct nlattr*>(b.buf + MNL_NLMSG_HDRLEN + 4);
    nest->nla_len += 8;
    CHECK(Refused(b.nlh, "message: attribute type 1 at offset 0 claims"));
  }
  {
    // An attribute inside the nest runs past the nest's end.
    Builder b;
    struct nlattr* nest = mnl_attr_nest_start(b.nlh, VIGIL_ATTR_RULE);
    b.Raw(VIGIL_RULE_ATTR_ID, &id, 8, 40);
    mnl_attr_nest_end(b.nlh, nest);
    CHECK(Refused(b.nlh, "rule: attribute type 1 at offset 0 claims 40 bytes, 12 are left"));
  }
  {
    // An attribute length shorter than its own header (would loop forever).
    Builder b;
    struct nlattr* nest = mnl_attr_nest_start(b.nlh, VIGIL_ATTR_RULE);
    b.Raw(VIGIL_RULE_ATTR_ID, &id, 8, 2);
    mnl_attr_nest_end(b.nlh, nest);
    CHECK(Refused(b.nlh, "claims 2 bytes"));
  }
  {
    // Stray bytes after the last attribute, too few for a header.
    Builder b;
    PutRule(b.nlh, HostRule(), false);
    uint8_t junk[3] = {1, 2, 3};
    b.Bytes(junk, 3);
    CHECK(Refused(b.nlh, "3 stray bytes"));
  }
  {
    // The message cut in the middle of a rule: the copy holds only part of it.
    Builder b;
    PutRule(b.nlh, GeneralRule(), false);
    uint32_t full = b.nlh->nlmsg_len;
    for (uint32_t len = MNL_NLMSG_HDRLEN + 4 + 1; len < full; len++) {
      Builder c;
      memcpy(c.buf, b.buf, full);
      c.nlh->nlmsg_len = len;
      std::vector<Rule> rules;
      std::string why;
      Exact e(c.nlh, len);
      CHECK(!DecodeRules(e.nlh, &rules, &why) && !why.empty());
    }
  }
  {
    // Shorter than the generic netlink header.
    Builder b;
    CHECK(Refused(b.nlh, "shorter than its headers", MNL_NLMSG_HDRLEN + 2));
  }
}

// Random corruption of valid replies: nothing may crash, read out of bounds
// or loop, and every refusal has a reason.
static void TestRandomCorruption() {
  Builder b;
  PutRule(b.nlh, HostRule(), false);
  PutRule(b.nlh, GeneralRule(), false);
  uint32_t len = b.nlh->nlmsg_len;
  unsigned seed = 12345;
  int refusedWithoutReason = 0, accepted = 0, refused = 0;
  for (int i = 0; i < 20000; i++) {
    Builder c;
    memcpy(c.buf, b.buf, len);
    int flips = 1 + rand_r(&seed) % 4;
    for (int k = 0; k < flips; k++) {
      uint32_t at = MNL_NLMSG_HDRLEN + 4 + rand_r(&seed) % (len - MNL_NLMSG_HDRLEN - 4);
      c.buf[at] = static_cast<char>(rand_r(&seed));
    }
    uint32_t cut = rand_r(&seed) % 3 == 0 ? MNL_NLMSG_HDRLEN + rand_r(&seed) % (len - MNL_NLMSG_HDRLEN) : len;
    Exact e(c.nlh, cut);
    std::vector<Rule> rules;
    std::string why;
    if (DecodeRules(e.nlh, &rules, &why)) {
      accepted++;
    } else {
      refused++;
      if (why.empty()) refusedWithoutReason++;
    }
    Scalars s;
    std::string why2;
    if (!DecodeScalars(e.nlh, kStatsSchema, &s, &why2) && why2.empty()) refusedWithoutReason++;
  }
  CHECK(refusedWithoutReason == 0);
  CHECK(refused > 1000);
  fprintf(stderr, "random corruption: %d refused, %d accepted\n", refused, accepted);
}

int main() {
  TestRuleRoundTrip();
  TestRuleEncodingRules();
  TestDumpCountersAndPadding();
  TestEmptyAndOtherNests();
  TestScalarsRoundTrip();
  TestBadLengths();
  TestUnknownAttributes();
  TestTruncation();
  TestRandomCorruption();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
