// The transport to the "vigil" generic netlink family: a libmnl socket with
// extended acks, family and multicast-group resolution, request/ack matching
// by sequence number, and rule batches packed many to a message and several
// messages to a sendmsg(). No N-API: requests run on the libuv thread pool
// (client.cc) and report failures as an NlError for js.cc to turn into an Error.
#pragma once

#include <libmnl/libmnl.h>
#include <stdint.h>

#include <functional>
#include <string>
#include <vector>

#include "rule_codec.h"

namespace vigil::nl {

// Replies are read this many bytes at a time.
constexpr size_t kRecvBytes = 256 * 1024;

struct NlError {
  int err = 0;           // positive errno
  std::string extack;    // the kernel's extended ack message, or what went wrong here
  std::string where;     // which request
  int64_t badRule = -1;  // index of the rule the kernel rejected, when known
};

// Sees one data message of a reply; false (with a reason) refuses the reply.
using OnData = std::function<bool(const struct nlmsghdr*, std::string* why)>;

class Socket {
 public:
  Socket() = default;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  bool Open(int flags, NlError* e);
  struct mnl_socket* nl() const { return nl_; }
  uint32_t NextSeq() { return ++seq_; }

  // Sends the buffer (one or more messages) and reads replies until every
  // sequence number in [firstSeq, lastSeq] is acknowledged (or a dump is
  // done). `onData` sees each data message. The first error wins.
  bool Transact(const char* buf, size_t len, uint32_t firstSeq, uint32_t lastSeq, bool dump, const OnData& onData,
                NlError* e, const std::vector<size_t>* firstRuleOfSeq = nullptr);

 private:
  bool Fail(NlError* e, const char* what);
  struct mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
};

struct FamilyInfo {
  uint16_t id = 0;
  uint32_t eventsGroup = 0;
};

// CTRL_CMD_GETFAMILY "vigil": ENOENT with an explanation when the module is not loaded.
bool ResolveFamily(Socket* s, FamilyInfo* out, NlError* e);

// Starts a message of the vigil family at `at`.
struct nlmsghdr* PutGenl(char* at, uint16_t family, uint8_t cmd, uint16_t flags, uint32_t seq);

// One request and its acknowledgement; `fill` adds the attributes, `onData` reads the reply.
bool Call(Socket* s, uint16_t family, uint8_t cmd, const std::function<void(struct nlmsghdr*)>& fill,
          const OnData& onData, NlError* e);

// A multi-part dump of `cmd` until NLMSG_DONE.
bool Dump(Socket* s, uint16_t family, uint8_t cmd, const OnData& onData, NlError* e);

// Rule add/delete in batches: many rule nests per message, several messages
// per sendmsg(). The messages are independent: on failure the others were
// still applied, and the first failure is reported with the rule it started at.
bool SendRules(Socket* s, uint16_t family, uint8_t cmd, const std::vector<Rule>& rules, NlError* e);

}  // namespace vigil::nl
