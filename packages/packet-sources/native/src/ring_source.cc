// The kernel module's capture rings (/dev/vigil), or a regular file laid out
// the same way (tests with a userspace producer). Layout and ordering rules:
// kmod/include/uapi/linux/vigil.h.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pcap/pcap.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "sources.h"
#include "wake_fd.h"

namespace vigil {

namespace {

// Frames drained from one ring before its consumer index is published, so the
// producer gets slots back while a busy ring is still being read.
constexpr uint32_t kReleaseEvery = 1024;

// The loopback device has this index in every network namespace
// (LOOPBACK_IFINDEX). The module does not copy loopback packets unless its
// capture_loopback is on; when it is, this process's own publishes to a local
// nats-server would come back as frames, which make the next batch, endlessly.
// Loopback traffic never comes from a remote peer (the one thing the detectors
// judge), and AF_PACKET on an interface never sees it either.
constexpr uint32_t kLoopbackIfindex = 1;

class RingSource final : public Source {
 public:
  RingSource(const std::string& device, Options opts) : Source(std::move(opts)), device_(device) {
    fd_ = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) {
      int e = errno;
      if (e == ENOENT)
        throw OpenError("VIGIL_ERR_NO_DEVICE",
                        device + " does not exist: the vigil kernel module is not loaded. Load it with `modprobe vigil` "
                                 "(or `insmod kmod/vigil.ko` from a source build), or capture with AF_PACKET instead "
                                 "(--interface IF)",
                        device);
      if (e == EACCES || e == EPERM)
        throw OpenError("VIGIL_ERR_PERMISSION",
                        "no permission to open " + device + ": reading the capture rings needs CAP_NET_ADMIN (run as root)",
                        device);
      if (e == EBUSY)
        throw OpenError("VIGIL_ERR_BUSY", device + " is busy: another capture process is already reading the rings", device);
      throw OpenError("VIGIL_ERR_RING", "cannot open " + device + ": " + std::strerror(e), device);
    }
    try {
      map();
      if (!opts_.filter.empty()) {
        compileRawFilter(opts_.filter, 65535, &prog_);
        hasFilter_ = true;
      }
      if (int e = wakeFd_.open()) throw OpenError("VIGIL_ERR_RING", std::string("eventfd: ") + std::strerror(e));
    } catch (...) {
      release();
      throw;
    }
  }

  ~RingSource() override {
    stop();
    release();
  }

  void extraStats(std::vector<std::pair<const char*, double>>& out) override {
    out.emplace_back("rings", info_.ring_count);
    out.emplace_back("slots_per_ring", info_.slots_per_ring);
    out.emplace_back("ring_snaplen", info_.snaplen);
    out.emplace_back("skipped_loopback", static_cast<double>(skippedLoopback_.load(std::memory_order_relaxed)));
  }

 protected:
  void wake() override { wakeFd_.signal(); }

  void run() override {
    const uint32_t mask = info_.slots_per_ring - 1;
    const uint32_t maxCap = info_.slot_size - VIGIL_FRAME_HDR_LEN;
    std::vector<uint64_t> lastDrops(info_.ring_count, 0);
    while (!halted()) {
      bool any = false;
      for (uint32_t i = 0; i < info_.ring_count; i++) {
        struct vigil_ring_ctl* ctl = ctlOf(i);
        uint8_t* slots = reinterpret_cast<uint8_t*>(ctl) + info_.page_size;
        uint64_t cons = __atomic_load_n(&ctl->consumer, __ATOMIC_RELAXED);
        uint64_t prod = __atomic_load_n(&ctl->producer, __ATOMIC_ACQUIRE);
        if (prod - cons > info_.slots_per_ring) {
          // Impossible with a correct producer; resynchronise rather than read garbage.
          bump(counters.skippedMalformed, prod - cons - info_.slots_per_ring);
          cons = prod - info_.slots_per_ring;
        }
        uint32_t sinceRelease = 0;
        for (; cons != prod; cons++) {
          any = true;
          const uint8_t* slot = slots + static_cast<size_t>(cons & mask) * info_.slot_size;
          struct vigil_frame f;
          std::memcpy(&f, slot, sizeof(f));
          const uint8_t* data = slot + VIGIL_FRAME_HDR_LEN;
          if (f.cap_len > maxCap || (f.family != VIGIL_FAMILY_IPV4 && f.family != VIGIL_FAMILY_IPV6)) {
            bump(counters.skippedMalformed);
          } else if (f.ifindex == kLoopbackIfindex) {
            bump(skippedLoopback_);
          } else if (hasFilter_ && !passes(f, data)) {
            bump(counters.filteredOut);
          } else {
            int dir = f.direction <= VIGIL_DIR_EGRESS ? static_cast<int>(f.direction) : static_cast<int>(VIGIL_DIR_UNKNOWN);
            frame(f.ts_ns, f.ifindex, f.orig_len, data, f.cap_len, f.family, dir, f.flags);
          }
          if (++sinceRelease == kReleaseEvery) {
            __atomic_store_n(&ctl->consumer, cons + 1, __ATOMIC_RELEASE);
            sinceRelease = 0;
            now_ = monotonicNs();
            flushAged();
          }
        }
        __atomic_store_n(&ctl->consumer, cons, __ATOMIC_RELEASE);
        uint64_t drops = __atomic_load_n(&ctl->drops, __ATOMIC_RELAXED);
        if (drops > lastDrops[i]) {
          bump(counters.ringDrops, drops - lastDrops[i]);
          lastDrops[i] = drops;
        }
      }
      now_ = monotonicNs();
      flushAged();
      if (any) continue;
      if (isDevice_) {
        struct pollfd p[2] = {{fd_, POLLIN, 0}, {wakeFd_.fd(), POLLIN, 0}};
        int rc = ::poll(p, 2, msUntilFlush(100));
        if (rc < 0 && errno != EINTR) {
          fail("VIGIL_ERR_RING", std::string("poll on ") + device_ + ": " + std::strerror(errno), device_);
          return;
        }
        if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
          fail("VIGIL_ERR_RING", device_ + " reported an error or hang-up (module unloaded?)", device_);
          return;
        }
      } else {
        // A plain file cannot be polled for new frames: nap briefly.
        sleepFlushing(500000);
      }
    }
  }

 private:
  struct vigil_ring_ctl* ctlOf(uint32_t i) const {
    return reinterpret_cast<struct vigil_ring_ctl*>(map_ + info_.ring_offset + static_cast<uint64_t>(i) * info_.ring_stride);
  }

  bool passes(const struct vigil_frame& f, const uint8_t* data) const {
    struct pcap_pkthdr h{};
    h.caplen = f.cap_len;
    h.len = f.orig_len;
    return pcap_offline_filter(&prog_, &h, data) != 0;
  }

  void map() {
    struct stat st;
    if (fstat(fd_, &st) != 0) throw OpenError("VIGIL_ERR_RING", "fstat " + device_ + ": " + std::strerror(errno), device_);
    isDevice_ = S_ISCHR(st.st_mode);
    long page = sysconf(_SC_PAGESIZE);
    if (!isDevice_ && st.st_size < static_cast<off_t>(sizeof(struct vigil_ring_info)))
      throw OpenError("VIGIL_ERR_RING", device_ + " is too small to hold a ring info page", device_, 0);
    void* head = mmap(nullptr, static_cast<size_t>(page), PROT_READ, MAP_SHARED, fd_, 0);
    if (head == MAP_FAILED)
      throw OpenError("VIGIL_ERR_RING", "mmap of the info page of " + device_ + ": " + std::strerror(errno), device_);
    std::memcpy(&info_, head, sizeof(info_));
    munmap(head, static_cast<size_t>(page));
    auto bad = [&](const std::string& what) {
      return OpenError("VIGIL_ERR_RING", device_ + ": invalid ring info: " + what, device_, 0);
    };
    if (info_.magic != VIGIL_RING_MAGIC) throw bad("bad magic (not a vigil ring)");
    if (info_.abi_version != VIGIL_RING_ABI_VERSION)
      throw bad("ABI version " + std::to_string(info_.abi_version) + ", this reader speaks " +
                std::to_string(VIGIL_RING_ABI_VERSION));
    if (info_.ring_count == 0 || info_.ring_count > 4096) throw bad("ring_count " + std::to_string(info_.ring_count));
    if (info_.slots_per_ring == 0 || (info_.slots_per_ring & (info_.slots_per_ring - 1)))
      throw bad("slots_per_ring is not a power of two");
    if (info_.slot_size < VIGIL_FRAME_HDR_LEN || info_.slot_size % 64) throw bad("slot_size");
    if (info_.page_size < sizeof(struct vigil_ring_ctl) || info_.page_size % 4096) throw bad("page_size");
    if (info_.ring_stride < info_.page_size + static_cast<uint64_t>(info_.slots_per_ring) * info_.slot_size)
      throw bad("ring_stride smaller than a ring");
    if (info_.ring_offset < sizeof(info_) ||
        info_.map_size < info_.ring_offset + static_cast<uint64_t>(info_.ring_count) * info_.ring_stride)
      throw bad("map_size smaller than the rings");
    if (!isDevice_ && static_cast<uint64_t>(st.st_size) < info_.map_size)
      throw bad("file is shorter than map_size");
    void* m = mmap(nullptr, info_.map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (m == MAP_FAILED)
      throw OpenError("VIGIL_ERR_RING", "mmap of the rings of " + device_ + ": " + std::strerror(errno), device_);
    map_ = static_cast<uint8_t*>(m);
  }

  void release() {
    if (map_) munmap(map_, info_.map_size);
    map_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    wakeFd_.close();
    if (hasFilter_) pcap_freecode(&prog_);
    hasFilter_ = false;
  }

  std::string device_;
  int fd_ = -1;
  WakeFd wakeFd_;
  bool isDevice_ = false;
  uint8_t* map_ = nullptr;
  struct vigil_ring_info info_ {};
  bool hasFilter_ = false;
  struct bpf_program prog_ {};
  std::atomic<uint64_t> skippedLoopback_{0};
};

}  // namespace

std::unique_ptr<Source> openRingSource(const std::string& device, Options opts) {
  opts.live = true;
  return std::make_unique<RingSource>(device, std::move(opts));
}

}  // namespace vigil
