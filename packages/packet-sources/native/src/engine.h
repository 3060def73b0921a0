// Shared machinery of every source: the per-frame work (record header,
// direction, shard), per-shard batch buffers, the bounded hand-off queue to
// JavaScript and the reader thread's lifecycle.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <linux/vigil.h>

#include "header_length.h"

namespace vigil {

static_assert(sizeof(struct vigil_frame) == VIGIL_FRAME_HDR_LEN, "UAPI frame header size");

struct Cidr {
  uint8_t len;  // 4 or 16
  uint8_t prefix;
  uint8_t bytes[16];
};

struct Options {
  uint32_t shardCount = 16;
  uint32_t batchBytes = 65536;
  uint32_t flushMs = 5;
  uint32_t snaplen = 128;
  bool headersOnly = false;  // keep the IP and transport headers only (still at most snaplen bytes)
  uint32_t maxQueuedBatches = 256;
  uint32_t headroom = 0;  // free bytes kept before each batch's records (for an envelope written in place)
  double speed = 0;  // pcap only: 0 = as fast as possible
  bool live = false; // live sources drop instead of blocking when JS falls behind
  std::vector<Cidr> local;
  std::string filter;
};

struct ReadyBatch {
  uint32_t shard;
  uint8_t* data;  // malloc'd, headroom bytes then the records; ownership passes to JS
  size_t len;     // bytes of records
  uint32_t frames;
  uint64_t droppedBefore;
};

// Error raised by the reader thread, surfaced when JS drains the queue.
struct SourceFailure {
  std::string code;
  std::string message;
  std::string file;
  int64_t offset = -1;
};

// Counters every source keeps; read from JS through stats().
struct Counters {
  std::atomic<uint64_t> framesCaptured{0};
  std::atomic<uint64_t> bytesCaptured{0};   // L3 bytes on the wire (orig_len)
  std::atomic<uint64_t> skippedNonIp{0};
  std::atomic<uint64_t> skippedMalformed{0};
  std::atomic<uint64_t> filteredOut{0};
  std::atomic<uint64_t> ringDrops{0};       // lost before we saw them (ring full / kernel)
  std::atomic<uint64_t> queueDrops{0};      // frames dropped because JS fell behind
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> batchBytes{0};
};

uint64_t monotonicNs();

// Counters have a single writer (the reader thread): a relaxed load and store
// is enough and avoids a locked instruction per frame.
static inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Signals JavaScript that the queue became non-empty or the source finished.
class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual void notify() = 0;
  virtual void release() = 0;
};

class Source {
 public:
  Source(Options opts);
  virtual ~Source();

  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Starts the reader thread; the notifier is released when the thread ends.
  void start(Notifier* notifier);
  // Stops the reader thread and waits for it. Batches still queued are freed.
  void stop();
  // Asks the reader to stop reading; what it read is still flushed and delivered, then it finishes.
  void end();

  // JS side: takes up to max queued batches (ownership of data passes to the caller).
  void take(std::vector<ReadyBatch>& out, size_t max);
  bool finished();
  bool failed(SourceFailure& out);

  Counters counters;
  uint32_t headroom() const { return opts_.headroom; }
  virtual void extraStats(std::vector<std::pair<const char*, double>>& out) { (void)out; }

 protected:
  virtual void run() = 0;
  // Interrupts a blocking wait in run() (poll, sleep); called after stopping_ is set.
  virtual void wake() {}

  // Per-frame entry. family is 4 or 6; direction < 0 means "derive from local CIDRs".
  // l3 points at the IP header, avail bytes of it are captured.
  inline void frame(uint64_t tsNs, uint32_t ifindex, uint32_t origLen, const uint8_t* l3, uint32_t avail,
                    uint8_t family, int direction, uint8_t flags);
  // Ships batches older than flushMs; cheap to call often.
  void flushAged();
  void flushAll();
  // Sleeps up to ns, returning early when stopping; flushes aged batches meanwhile.
  void sleepFlushing(uint64_t ns);
  // Milliseconds until the oldest open batch is due, or idleMs when none is open.
  int msUntilFlush(int idleMs) const;
  void fail(const char* code, std::string message, std::string file = "", int64_t offset = -1);

  // Updated by the reader loop; batches are aged against it.
  uint64_t now_ = 0;
  std::atomic<bool> stopping_{false};  // abort: nothing more is delivered
  std::atomic<bool> ending_{false};    // graceful: stop reading, deliver what was read
  bool halted() const { return stopping_.load(std::memory_order_relaxed) || ending_.load(std::memory_order_relaxed); }
  Options opts_;

 private:
  struct ShardBatch {
    uint8_t* data = nullptr;
    size_t len = 0;
    size_t cap = 0;
    uint32_t frames = 0;
    uint64_t openedNs = 0;
    uint64_t droppedPending = 0;
  };

  void ship(uint32_t shard);
  uint8_t directionFor(const uint8_t* src, const uint8_t* dst, uint8_t addrLen) const;
  bool isLocal(const uint8_t* addr, uint8_t len) const;
  void threadMain();

  std::vector<ShardBatch> shards_;
  uint64_t flushNs_;
  uint64_t oldestOpenNs_ = UINT64_MAX;  // lower bound of openedNs over open batches

  std::mutex mu_;
  std::condition_variable spaceCv_;  // queue has space (finite sources wait on it)
  std::condition_variable sleepCv_;  // pacing sleeps, woken by stop()
  std::deque<ReadyBatch> queue_;
  bool finished_ = false;
  bool hasFailure_ = false;
  SourceFailure failure_;

  Notifier* notifier_ = nullptr;
  std::thread thread_;
  bool started_ = false;
};

static inline uint32_t fnv1a32(const uint8_t* p, uint32_t n) {
  uint32_t h = 0x811c9dc5u;
  for (uint32_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x01000193u;
  }
  return h;
}

// The fixed-length forms let the compiler unroll the per-frame hash and compare.
template <int N>
static inline uint32_t fnv1a32Fixed(const uint8_t* p) {
  return fnv1a32(p, N);
}

// a <= b as big-endian byte strings (memcmp order).
template <int N>
static inline bool lowerOrEqual(const uint8_t* a, const uint8_t* b) {
  for (int i = 0; i < N; i += 8 > N ? N : 8) {
    if (N == 4) {
      uint32_t x, y;
      std::memcpy(&x, a, 4);
      std::memcpy(&y, b, 4);
      x = __builtin_bswap32(x);
      y = __builtin_bswap32(y);
      if (x != y) return x < y;
    } else {
      uint64_t x, y;
      std::memcpy(&x, a + i, 8);
      std::memcpy(&y, b + i, 8);
      x = __builtin_bswap64(x);
      y = __builtin_bswap64(y);
      if (x != y) return x < y;
    }
  }
  return true;
}

inline void Source::frame(uint64_t tsNs, uint32_t ifindex, uint32_t origLen, const uint8_t* l3, uint32_t avail,
                          uint8_t family, int direction, uint8_t flags) {
  const uint8_t* src;
  const uint8_t* dst;
  uint8_t alen;
  if (family == VIGIL_FAMILY_IPV4) {
    if (avail < 20 || (l3[0] >> 4) != 4) {
      bump(counters.skippedMalformed);
      return;
    }
    src = l3 + 12;
    dst = l3 + 16;
    alen = 4;
  } else {
    if (avail < 40 || (l3[0] >> 4) != 6) {
      bump(counters.skippedMalformed);
      return;
    }
    src = l3 + 8;
    dst = l3 + 24;
    alen = 16;
  }
  uint8_t dir = direction < 0 ? directionFor(src, dst, alen) : static_cast<uint8_t>(direction);
  const uint8_t* remote;
  if (dir == VIGIL_DIR_INGRESS)
    remote = src;
  else if (dir == VIGIL_DIR_EGRESS)
    remote = dst;
  else
    remote = alen == 4 ? (lowerOrEqual<4>(src, dst) ? src : dst) : (lowerOrEqual<16>(src, dst) ? src : dst);
  uint32_t shard = (alen == 4 ? fnv1a32Fixed<4>(remote) : fnv1a32Fixed<16>(remote)) % opts_.shardCount;

  uint32_t cap = avail < opts_.snaplen ? avail : opts_.snaplen;
  if (opts_.headersOnly) {
    uint32_t headers = headersLength(l3, avail, family);
    if (headers < cap) cap = headers;
  }
  size_t need = VIGIL_FRAME_HDR_LEN + cap;
  ShardBatch* b = &shards_[shard];
  if (b->len && b->len + need > b->cap) ship(shard);
  if (!b->data) {
    b->cap = need > opts_.batchBytes ? need : opts_.batchBytes;
    b->data = static_cast<uint8_t*>(std::malloc(opts_.headroom + b->cap));
    if (!b->data) throw std::bad_alloc();
    b->openedNs = now_;
    if (now_ < oldestOpenNs_) oldestOpenNs_ = now_;
  }
  uint8_t* p = b->data + opts_.headroom + b->len;
  struct vigil_frame h;
  h.ts_ns = tsNs;
  h.ifindex = ifindex;
  h.orig_len = origLen;
  h.cap_len = static_cast<uint16_t>(cap);
  h.direction = dir;
  h.family = family;
  h.flags = flags;
  h.reserved[0] = h.reserved[1] = h.reserved[2] = 0;
  std::memcpy(p, &h, VIGIL_FRAME_HDR_LEN);
  std::memcpy(p + VIGIL_FRAME_HDR_LEN, l3, cap);
  b->len += need;
  b->frames++;
  bump(counters.framesCaptured);
  bump(counters.bytesCaptured, origLen);
}

}  // namespace vigil
