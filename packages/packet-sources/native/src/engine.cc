#include "engine.h"

#include <time.h>

#include <chrono>
#include <cstdlib>
#include <new>

namespace vigil {

uint64_t monotonicNs() {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

Source::Source(Options opts) : opts_(std::move(opts)) {
  if (opts_.shardCount == 0) opts_.shardCount = 1;
  if (opts_.maxQueuedBatches == 0) opts_.maxQueuedBatches = 1;
  shards_.resize(opts_.shardCount);
  flushNs_ = static_cast<uint64_t>(opts_.flushMs) * 1000000ull;
}

Source::~Source() {
  stop();
}

void Source::start(Notifier* notifier) {
  notifier_ = notifier;
  started_ = true;
  thread_ = std::thread([this] { threadMain(); });
}

void Source::threadMain() {
  now_ = monotonicNs();
  try {
    run();
  } catch (const std::exception& e) {
    fail("VIGIL_ERR_SOURCE", std::string("capture thread failed: ") + e.what());
  }
  // Batches read before a fault are still delivered; the failure surfaces after them.
  if (!stopping_.load()) flushAll();
  {
    std::lock_guard<std::mutex> lk(mu_);
    finished_ = true;
  }
  notifier_->notify();
  notifier_->release();
}

void Source::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_.store(true);
    spaceCv_.notify_all();
    sleepCv_.notify_all();
  }
  wake();
  if (thread_.joinable()) thread_.join();
  if (!started_ && notifier_) notifier_->release();
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& r : queue_) std::free(r.data);
  queue_.clear();
  for (auto& s : shards_) {
    std::free(s.data);
    s.data = nullptr;
    s.len = s.cap = 0;
    s.frames = 0;
  }
}

void Source::end() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    ending_.store(true);
    sleepCv_.notify_all();
  }
  wake();
}

void Source::take(std::vector<ReadyBatch>& out, size_t max) {
  std::lock_guard<std::mutex> lk(mu_);
  bool wasFull = queue_.size() >= opts_.maxQueuedBatches;
  while (!queue_.empty() && out.size() < max) {
    out.push_back(queue_.front());
    queue_.pop_front();
  }
  if (wasFull && !out.empty()) spaceCv_.notify_all();
}

bool Source::finished() {
  std::lock_guard<std::mutex> lk(mu_);
  return finished_;
}

bool Source::failed(SourceFailure& out) {
  std::lock_guard<std::mutex> lk(mu_);
  if (!hasFailure_) return false;
  out = failure_;
  return true;
}

void Source::fail(const char* code, std::string message, std::string file, int64_t offset) {
  std::lock_guard<std::mutex> lk(mu_);
  if (hasFailure_) return;
  hasFailure_ = true;
  failure_.code = code;
  failure_.message = std::move(message);
  failure_.file = std::move(file);
  failure_.offset = offset;
}

bool Source::isLocal(const uint8_t* addr, uint8_t len) const {
  for (const Cidr& c : opts_.local) {
    if (c.len != len) continue;
    uint32_t full = c.prefix >> 3;
    if (std::memcmp(addr, c.bytes, full) != 0) continue;
    uint32_t rest = c.prefix & 7;
    if (rest == 0) return true;
    uint8_t mask = static_cast<uint8_t>(0xff00 >> rest);
    if ((addr[full] & mask) == c.bytes[full]) return true;
  }
  return false;
}

uint8_t Source::directionFor(const uint8_t* src, const uint8_t* dst, uint8_t alen) const {
  if (opts_.local.empty()) return VIGIL_DIR_UNKNOWN;
  bool dstLocal = isLocal(dst, alen);
  bool srcLocal = isLocal(src, alen);
  // Between two local hosts neither side is remote: unknown, so that both
  // directions of the conversation still shard by the same (lower) address.
  if (dstLocal && !srcLocal) return VIGIL_DIR_INGRESS;
  if (srcLocal && !dstLocal) return VIGIL_DIR_EGRESS;
  return VIGIL_DIR_UNKNOWN;
}

void Source::ship(uint32_t shard) {
  ShardBatch& b = shards_[shard];
  if (!b.data) return;
  if (b.frames == 0) {
    std::free(b.data);
    b.data = nullptr;
    b.len = b.cap = 0;
    return;
  }
  ReadyBatch r{shard, b.data, b.len, b.frames, b.droppedPending};
  b.data = nullptr;
  b.len = b.cap = 0;
  b.frames = 0;
  bool wasEmpty;
  {
    std::unique_lock<std::mutex> lk(mu_);
    if (queue_.size() >= opts_.maxQueuedBatches) {
      if (opts_.live) {
        // A live source must never wait: the kernel ring or socket would overflow
        // behind us. The frames are counted and reported with the shard's next batch.
        lk.unlock();
        bump(counters.queueDrops, r.frames);
        b.droppedPending = r.droppedBefore + r.frames;
        std::free(r.data);
        return;
      }
      spaceCv_.wait(lk, [&] { return queue_.size() < opts_.maxQueuedBatches || stopping_.load(); });
      if (stopping_.load()) {
        lk.unlock();
        std::free(r.data);
        return;
      }
    }
    wasEmpty = queue_.empty();
    queue_.push_back(r);
  }
  b.droppedPending = 0;
  bump(counters.batches);
  bump(counters.batchBytes, r.len);
  if (wasEmpty) notifier_->notify();
}

void Source::flushAged() {
  if (oldestOpenNs_ == UINT64_MAX || now_ < oldestOpenNs_ + flushNs_) return;
  uint64_t oldest = UINT64_MAX;
  for (uint32_t i = 0; i < shards_.size(); i++) {
    ShardBatch& b = shards_[i];
    if (!b.data) continue;
    if (now_ >= b.openedNs + flushNs_)
      ship(i);
    else if (b.openedNs < oldest)
      oldest = b.openedNs;
  }
  oldestOpenNs_ = oldest;
}

int Source::msUntilFlush(int idleMs) const {
  if (oldestOpenNs_ == UINT64_MAX) return idleMs;
  uint64_t due = oldestOpenNs_ + flushNs_;
  if (due <= now_) return 0;
  uint64_t ms = (due - now_ + 999999) / 1000000;
  return ms < static_cast<uint64_t>(idleMs) ? static_cast<int>(ms) : idleMs;
}

void Source::flushAll() {
  for (uint32_t i = 0; i < shards_.size(); i++) ship(i);
  oldestOpenNs_ = UINT64_MAX;
}

void Source::sleepFlushing(uint64_t ns) {
  uint64_t end = monotonicNs() + ns;
  for (;;) {
    now_ = monotonicNs();
    flushAged();
    if (now_ >= end || halted()) return;
    uint64_t step = end - now_;
    if (oldestOpenNs_ != UINT64_MAX) {
      uint64_t due = oldestOpenNs_ + flushNs_;
      uint64_t untilFlush = due > now_ ? due - now_ : 0;
      if (untilFlush < step) step = untilFlush + 100000;
    }
    std::unique_lock<std::mutex> lk(mu_);
    sleepCv_.wait_for(lk, std::chrono::nanoseconds(step), [&] { return halted(); });
  }
}

}  // namespace vigil
