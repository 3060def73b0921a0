// AF_PACKET with a TPACKET_V3 block ring. SOCK_DGRAM: the kernel strips the
// link layer, so frames start at L3 whatever the interface type, and the BPF
// filter is compiled for raw IP. PACKET_FANOUT (hash) lets several capture
// processes share one interface with each flow staying in one process.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "sources.h"
#include "wake_fd.h"

namespace vigil {

namespace {

class AfPacketSource final : public Source {
 public:
  AfPacketSource(const std::string& iface, bool fanout, uint16_t group, uint32_t blockBytes, uint32_t blockCount,
                 Options opts)
      : Source(std::move(opts)), iface_(iface) {
    try {
      setup(fanout, group, blockBytes, blockCount);
    } catch (...) {
      release();
      throw;
    }
  }

  ~AfPacketSource() override {
    stop();
    release();
  }

  void extraStats(std::vector<std::pair<const char*, double>>& out) override {
    out.emplace_back("ifindex", ifindex_);
    out.emplace_back("kernel_packets", static_cast<double>(kernelPackets_.load(std::memory_order_relaxed)));
    out.emplace_back("freeze_count", static_cast<double>(freezes_.load(std::memory_order_relaxed)));
  }

 protected:
  void wake() override { wakeFd_.signal(); }

  void run() override {
    uint32_t block = 0;
    uint64_t nextStats = 0;
    while (!halted()) {
      auto* desc = reinterpret_cast<struct tpacket_block_desc*>(ring_ + static_cast<size_t>(block) * req_.tp_block_size);
      uint32_t status = __atomic_load_n(&desc->hdr.bh1.block_status, __ATOMIC_ACQUIRE);
      now_ = monotonicNs();
      if (now_ >= nextStats) {
        readKernelStats();
        nextStats = now_ + 100000000ull;
      }
      if (!(status & TP_STATUS_USER)) {
        flushAged();
        struct pollfd p[2] = {{fd_, POLLIN | POLLERR, 0}, {wakeFd_.fd(), POLLIN, 0}};
        int rc = ::poll(p, 2, msUntilFlush(100));
        if (rc < 0 && errno != EINTR) {
          fail("VIGIL_ERR_AFPACKET", "poll on " + iface_ + ": " + std::strerror(errno));
          return;
        }
        if (p[0].revents & POLLNVAL) {
          fail("VIGIL_ERR_AFPACKET", "socket on " + iface_ + " became invalid");
          return;
        }
        continue;
      }
      walkBlock(desc);
      __atomic_store_n(&desc->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      block = (block + 1) % req_.tp_block_nr;
      flushAged();
    }
    readKernelStats();
  }

 private:
  void walkBlock(struct tpacket_block_desc* desc) {
    uint32_t n = desc->hdr.bh1.num_pkts;
    auto* base = reinterpret_cast<uint8_t*>(desc);
    auto* h = reinterpret_cast<struct tpacket3_hdr*>(base + desc->hdr.bh1.offset_to_first_pkt);
    for (uint32_t i = 0; i < n; i++) {
      auto* sll = reinterpret_cast<struct sockaddr_ll*>(reinterpret_cast<uint8_t*>(h) + TPACKET_ALIGN(sizeof(*h)));
      uint16_t proto = ntohs(sll->sll_protocol);
      uint8_t family = proto == ETH_P_IP ? VIGIL_FAMILY_IPV4 : proto == ETH_P_IPV6 ? VIGIL_FAMILY_IPV6 : 0;
      if (!family) {
        bump(counters.skippedNonIp);
      } else {
        const uint8_t* l3 = reinterpret_cast<uint8_t*>(h) + h->tp_mac;
        uint64_t ts = static_cast<uint64_t>(h->tp_sec) * 1000000000ull + h->tp_nsec;
        int dir = sll->sll_pkttype == PACKET_OUTGOING ? VIGIL_DIR_EGRESS : VIGIL_DIR_INGRESS;
        frame(ts, static_cast<uint32_t>(sll->sll_ifindex), h->tp_len, l3, h->tp_snaplen, family, dir, 0);
      }
      h = reinterpret_cast<struct tpacket3_hdr*>(reinterpret_cast<uint8_t*>(h) + h->tp_next_offset);
    }
  }

  void readKernelStats() {
    struct tpacket_stats_v3 st {};
    socklen_t len = sizeof(st);
    // Reading the statistics resets them in the kernel: accumulate.
    if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
      bump(counters.ringDrops, st.tp_drops);
      kernelPackets_.store(kernelPackets_.load(std::memory_order_relaxed) + st.tp_packets, std::memory_order_relaxed);
      freezes_.store(freezes_.load(std::memory_order_relaxed) + st.tp_freeze_q_cnt, std::memory_order_relaxed);
    }
  }

  [[noreturn]] void sysError(const std::string& what, int e) {
    if (e == EPERM || e == EACCES)
      throw OpenError("VIGIL_ERR_PERMISSION",
                      "no permission for AF_PACKET capture on " + iface_ + ": it needs CAP_NET_RAW (run as root or grant "
                      "the capability)");
    throw OpenError("VIGIL_ERR_AFPACKET", what + " on " + iface_ + ": " + std::strerror(e));
  }

  void setup(bool fanout, uint16_t group, uint32_t blockBytes, uint32_t blockCount) {
    if (iface_.empty() || iface_.size() >= IF_NAMESIZE)
      throw OpenError("VIGIL_ERR_INTERFACE", "invalid interface name \"" + iface_ + "\"");
    ifindex_ = if_nametoindex(iface_.c_str());
    if (ifindex_ == 0)
      throw OpenError("VIGIL_ERR_INTERFACE", "unknown interface \"" + iface_ + "\" (see `ip link` for the interfaces of this host)");
    fd_ = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);  // protocol 0: nothing arrives before bind()
    if (fd_ < 0) sysError("socket(AF_PACKET)", errno);
    if (!opts_.filter.empty()) {
      struct bpf_program prog {};
      compileRawFilter(opts_.filter, 65535, &prog);
      struct sock_fprog fprog {};
      fprog.len = static_cast<unsigned short>(prog.bf_len);
      fprog.filter = reinterpret_cast<struct sock_filter*>(prog.bf_insns);
      int rc = setsockopt(fd_, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog));
      int e = errno;
      pcap_freecode(&prog);
      if (rc != 0) sysError("SO_ATTACH_FILTER", e);
    }
    int version = TPACKET_V3;
    if (setsockopt(fd_, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) != 0) sysError("PACKET_VERSION", errno);
    long page = sysconf(_SC_PAGESIZE);
    if (blockBytes < static_cast<uint32_t>(page)) blockBytes = static_cast<uint32_t>(page);
    blockBytes = (blockBytes + page - 1) / page * page;
    if (blockCount < 2) blockCount = 2;
    std::memset(&req_, 0, sizeof(req_));
    req_.tp_block_size = blockBytes;
    req_.tp_block_nr = blockCount;
    req_.tp_frame_size = 2048;
    req_.tp_frame_nr = blockBytes / 2048 * blockCount;
    // A block is handed over when full or after this long, so quiet links still flush.
    req_.tp_retire_blk_tov = opts_.flushMs ? opts_.flushMs : 1;
    req_.tp_feature_req_word = 0;
    if (setsockopt(fd_, SOL_PACKET, PACKET_RX_RING, &req_, sizeof(req_)) != 0) sysError("PACKET_RX_RING", errno);
    mapSize_ = static_cast<size_t>(req_.tp_block_size) * req_.tp_block_nr;
    void* m = mmap(nullptr, mapSize_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (m == MAP_FAILED) sysError("mmap of the packet ring", errno);
    ring_ = static_cast<uint8_t*>(m);
    struct sockaddr_ll sll {};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = static_cast<int>(ifindex_);
    if (bind(fd_, reinterpret_cast<struct sockaddr*>(&sll), sizeof(sll)) != 0) {
      int e = errno;
      if (e == ENODEV || e == ENXIO) throw OpenError("VIGIL_ERR_INTERFACE", "interface \"" + iface_ + "\" disappeared");
      sysError("bind", e);
    }
    if (fanout) {
      uint32_t arg = static_cast<uint32_t>(group) | (static_cast<uint32_t>(PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
      if (setsockopt(fd_, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) != 0) {
        int e = errno;
        if (e == EINVAL || e == EEXIST)
          throw OpenError("VIGIL_ERR_AFPACKET", "cannot join fanout group " + std::to_string(group) + " on " + iface_ +
                                                    ": the group exists with another mode or on another interface");
        sysError("PACKET_FANOUT", e);
      }
    }
    if (int e = wakeFd_.open()) sysError("eventfd", e);
  }

  void release() {
    if (ring_) munmap(ring_, mapSize_);
    ring_ = nullptr;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    wakeFd_.close();
  }

  std::string iface_;
  unsigned ifindex_ = 0;
  int fd_ = -1;
  WakeFd wakeFd_;
  uint8_t* ring_ = nullptr;
  size_t mapSize_ = 0;
  struct tpacket_req3 req_ {};
  std::atomic<uint64_t> kernelPackets_{0};
  std::atomic<uint64_t> freezes_{0};
};

}  // namespace

std::unique_ptr<Source> openAfPacketSource(const std::string& iface, bool fanout, uint16_t fanoutGroup,
                                           uint32_t blockBytes, uint32_t blockCount, Options opts) {
  opts.live = true;
  return std::make_unique<AfPacketSource>(iface, fanout, fanoutGroup, blockBytes, blockCount, std::move(opts));
}

}  // namespace vigil
