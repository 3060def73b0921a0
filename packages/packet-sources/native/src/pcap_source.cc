// pcap and pcapng files: libpcap opens them and chooses the format by magic
// number; records of standard classic files are then read by our own reader
// (pcap_records.h), the rest by libpcap. We strip the link layer so that
// every record starts at L3.
#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <pcap/dlt.h>

#include <cstdio>
#include <stdio_ext.h>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "pcap_records.h"
#include "sources.h"

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif

namespace vigil {

namespace {

constexpr size_t kReadBuffer = 1 << 20;
constexpr uint32_t kPcapngMagic = 0x0A0D0D0A;
constexpr uint32_t kPcapMagicMicros = 0xA1B2C3D4;
constexpr uint32_t kPcapMagicNanos = 0xA1B23C4D;
constexpr long kPcapFileHeader = 24;

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

inline bool familyOfEthertype(uint16_t type, uint8_t& family) {
  if (type == 0x0800) { family = VIGIL_FAMILY_IPV4; return true; }
  if (type == 0x86DD) { family = VIGIL_FAMILY_IPV6; return true; }
  return false;
}

inline bool familyOfVersion(const uint8_t* p, uint32_t caplen, uint8_t& family) {
  if (caplen < 1) return false;
  uint8_t v = p[0] >> 4;
  if (v == 4) { family = VIGIL_FAMILY_IPV4; return true; }
  if (v == 6) { family = VIGIL_FAMILY_IPV6; return true; }
  return false;
}

// BSD loopback families: AF_INET is 2 everywhere, AF_INET6 differs per OS.
inline bool familyOfBsdAf(uint32_t af, uint8_t& family) {
  if (af == 2) { family = VIGIL_FAMILY_IPV4; return true; }
  if (af == 24 || af == 28 || af == 30 || af == 10) { family = VIGIL_FAMILY_IPV6; return true; }
  return false;
}

bool supportedLinktype(int dlt) {
  switch (dlt) {
    case DLT_EN10MB: case DLT_RAW: case DLT_IPV4: case DLT_IPV6: case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2: case DLT_NULL: case DLT_LOOP:
      return true;
    default:
      return false;
  }
}

// Offset of the IP header in a link-layer frame, or -1 for a non-IP frame.
int l3Offset(int dlt, const uint8_t* d, uint32_t caplen, uint8_t& family) {
  switch (dlt) {
    case DLT_EN10MB: {
      if (caplen < 14) return -1;
      uint32_t off = 12;
      uint16_t type = be16(d + off);
      // 802.1Q, 802.1ad and the old QinQ tag: skip to the inner ethertype.
      while (type == 0x8100 || type == 0x88A8 || type == 0x9100) {
        if (caplen < off + 6) return -1;
        off += 4;
        type = be16(d + off);
      }
      return familyOfEthertype(type, family) ? static_cast<int>(off + 2) : -1;
    }
    case DLT_RAW: case DLT_IPV4: case DLT_IPV6:
      return familyOfVersion(d, caplen, family) ? 0 : -1;
    case DLT_LINUX_SLL:
      if (caplen < 16) return -1;
      return familyOfEthertype(be16(d + 14), family) ? 16 : -1;
    case DLT_LINUX_SLL2:
      if (caplen < 20) return -1;
      return familyOfEthertype(be16(d), family) ? 20 : -1;
    case DLT_NULL: {
      if (caplen < 4) return -1;
      // Host byte order of the machine that wrote the file: accept either.
      uint32_t af;
      std::memcpy(&af, d, 4);
      if (af > 0xffff) af = __builtin_bswap32(af);
      return familyOfBsdAf(af, family) ? 4 : -1;
    }
    case DLT_LOOP: {
      if (caplen < 4) return -1;
      uint32_t af = static_cast<uint32_t>(d[0]) << 24 | d[1] << 16 | d[2] << 8 | d[3];
      return familyOfBsdAf(af, family) ? 4 : -1;
    }
    default:
      return -1;
  }
}

class PcapSource final : public Source {
 public:
  PcapSource(const std::string& path, Options opts) : Source(std::move(opts)), path_(path) {
    fp_ = std::fopen(path.c_str(), "rb");
    if (!fp_) {
      int e = errno;
      throw OpenError(e == EACCES || e == EPERM ? "VIGIL_ERR_PERMISSION" : "VIGIL_ERR_PCAP_OPEN",
                      "cannot open capture file " + path + ": " + std::strerror(e), path, -1);
    }
    // Only the reader thread touches the stream once it runs: skip stdio's
    // per-call locking (libpcap makes two fread calls per packet).
    __fsetlocking(fp_, FSETLOCKING_BYCALLER);
    iobuf_ = static_cast<char*>(std::malloc(kReadBuffer));
    if (iobuf_) setvbuf(fp_, iobuf_, _IOFBF, kReadBuffer);
    uint8_t header[kPcapFileHeader] = {};
    size_t got = std::fread(header, 1, sizeof header, fp_);
    uint32_t magic = 0;
    if (got >= 4) std::memcpy(&magic, header, 4);
    pcapng_ = got >= 4 && magic == kPcapngMagic;
    std::rewind(fp_);
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    p_ = pcap_fopen_offline_with_tstamp_precision(fp_, PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (!p_) {
      std::fclose(fp_);
      fp_ = nullptr;
      throw OpenError("VIGIL_ERR_PCAP", "corrupt or unreadable capture file " + path + " at byte 0: " + errbuf, path, 0);
    }
    try {
      configure(path);
      if (!pcapng_ && got == sizeof header) useOwnReader(header);
    } catch (...) {
      release();
      throw;
    }
  }

  ~PcapSource() override {
    stop();
    release();
  }

  void extraStats(std::vector<std::pair<const char*, double>>& out) override {
    out.emplace_back("file_offset", static_cast<double>(offset_.load(std::memory_order_relaxed)));
  }

 private:
  void configure(const std::string& path) {
    dlt_ = pcap_datalink(p_);
    if (!supportedLinktype(dlt_)) {
      const char* name = pcap_datalink_val_to_name(dlt_);
      throw OpenError("VIGIL_ERR_PCAP_LINKTYPE",
                      "capture file " + path + " has link type " + (name ? name : std::to_string(dlt_)) +
                          "; supported: EN10MB, RAW, IPV4, IPV6, LINUX_SLL, LINUX_SLL2, NULL, LOOP",
                      path, 0);
    }
    if (!opts_.filter.empty()) {
      if (pcap_compile(p_, &prog_, opts_.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
        throw OpenError("VIGIL_ERR_FILTER", "invalid filter \"" + opts_.filter + "\": " + pcap_geterr(p_));
      hasFilter_ = true;
    }
    long pos = std::ftell(fp_);
    lastGood_ = pos < 0 ? 0 : pos;
  }

  // Classic pcap of version 2.4 in either byte order and either time unit, from a
  // file we can seek in: libpcap has checked its header, we read its records.
  void useOwnReader(const uint8_t* header) {
    uint32_t magic;
    std::memcpy(&magic, header, 4);
    bool swapped = magic == __builtin_bswap32(kPcapMagicMicros) || magic == __builtin_bswap32(kPcapMagicNanos);
    if (swapped) magic = __builtin_bswap32(magic);
    if (magic != kPcapMagicMicros && magic != kPcapMagicNanos) return;
    uint16_t major, minor;
    std::memcpy(&major, header + 4, 2);
    std::memcpy(&minor, header + 6, 2);
    if (swapped) {
      major = __builtin_bswap16(major);
      minor = __builtin_bswap16(minor);
    }
    // Older minor versions may have their two lengths swapped: libpcap's heuristics handle those.
    if (major != 2 || minor < 4) return;
    int fd = fileno(fp_);
    // stdio has read ahead for libpcap: our reads start at the first record. A pipe cannot seek: libpcap reads it.
    if (fd < 0 || lseek(fd, kPcapFileHeader, SEEK_SET) != kPcapFileHeader) return;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    int snapshot = pcap_snapshot(p_);
    records_ = std::make_unique<ClassicPcapReader>(fd, kPcapFileHeader, swapped, magic == kPcapMagicNanos,
                                                   snapshot > 0 ? static_cast<uint32_t>(snapshot) : kMaxRecordCaplen);
  }

  void release() {
    if (hasFilter_) pcap_freecode(&prog_);
    hasFilter_ = false;
    if (p_) pcap_close(p_);  // closes fp_
    else if (fp_) std::fclose(fp_);
    p_ = nullptr;
    fp_ = nullptr;
    std::free(iobuf_);
    iobuf_ = nullptr;
  }

 protected:
  void run() override {
    if (records_) return runOwnReader();
    // pcap_dispatch hands over packets in runs through a callback: cheaper per
    // packet than pcap_next_ex, and batches are aged between runs.
    for (;;) {
      int rc = pcap_dispatch(p_, 64, &PcapSource::onPacket, reinterpret_cast<u_char*>(this));
      now_ = monotonicNs();
      flushAged();
      offset_.store(lastGood_, std::memory_order_relaxed);
      if (rc == 0) break;  // end of file
      if (rc == PCAP_ERROR_BREAK || halted()) return;
      if (rc < 0) return corrupt(pcap_geterr(p_));
    }
  }

  void runOwnReader() {
    PcapRecord r;
    for (;;) {
      ClassicPcapReader::Result rc = ClassicPcapReader::Result::Record;
      // Runs of 64 records, as pcap_dispatch gives them: batches are aged between runs.
      for (int i = 0; i < 64; i++) {
        rc = records_->next(r);
        if (rc != ClassicPcapReader::Result::Record) break;
        lastGood_ = records_->offset();
        if (!deliver(r.tsNs, r.caplen, r.len, r.data)) return;
      }
      now_ = monotonicNs();
      flushAged();
      offset_.store(lastGood_, std::memory_order_relaxed);
      if (rc == ClassicPcapReader::Result::End) break;
      if (halted()) return;
      if (rc == ClassicPcapReader::Result::Error) return corrupt(records_->error());
    }
  }

  // The file breaks after the last good record: either reader's words for why, with its byte offset.
  void corrupt(const std::string& why) {
    fail("VIGIL_ERR_PCAP", "corrupt or truncated capture file " + path_ + " at byte " + std::to_string(lastGood_) + ": " + why,
         path_, lastGood_);
  }

 private:
  static void onPacket(u_char* user, const struct pcap_pkthdr* h, const u_char* d) {
    reinterpret_cast<PcapSource*>(user)->packet(h, d);
  }

  void packet(const struct pcap_pkthdr* h, const u_char* d) {
    if (pcapng_) {
      long pos = std::ftell(fp_);
      if (pos >= 0) lastGood_ = pos;
    } else {
      lastGood_ += sizeof(uint32_t) * 4 + h->caplen;
    }
    uint64_t ts = static_cast<uint64_t>(h->ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(h->ts.tv_usec);
    if (!deliver(ts, h->caplen, h->len, d)) pcap_breakloop(p_);
  }

  // Paces, filters and strips the link layer of one record; false when the source halted while pacing.
  bool deliver(uint64_t ts, uint32_t caplen, uint32_t len, const uint8_t* d) {
    if (opts_.speed > 0) {
      if (!paced_) {
        paced_ = true;
        ts0_ = ts;
        wall0_ = monotonicNs();
      } else if (ts > ts0_) {
        uint64_t target = wall0_ + static_cast<uint64_t>(static_cast<double>(ts - ts0_) / opts_.speed);
        now_ = monotonicNs();
        if (now_ < target) sleepFlushing(target - now_);
        if (halted()) return false;
      }
    }
    if (hasFilter_) {
      struct pcap_pkthdr h {};
      h.caplen = caplen;
      h.len = len;
      if (!pcap_offline_filter(&prog_, &h, d)) {
        bump(counters.filteredOut);
        return true;
      }
    }
    uint8_t family = 0;
    int off = l3Offset(dlt_, d, caplen, family);
    if (off < 0) {
      bump(counters.skippedNonIp);
      return true;
    }
    uint32_t uoff = static_cast<uint32_t>(off);
    frame(ts, 0, len > uoff ? len - uoff : 0, d + uoff, caplen - uoff, family, -1, 0);
    return true;
  }

  bool paced_ = false;
  uint64_t ts0_ = 0;
  uint64_t wall0_ = 0;

 private:
  std::string path_;
  FILE* fp_ = nullptr;
  char* iobuf_ = nullptr;
  pcap_t* p_ = nullptr;
  int dlt_ = 0;
  bool pcapng_ = false;
  bool hasFilter_ = false;
  struct bpf_program prog_ {};
  int64_t lastGood_ = 0;
  std::atomic<int64_t> offset_{0};
  std::unique_ptr<ClassicPcapReader> records_;  // null: libpcap reads the records
};

}  // namespace

std::unique_ptr<Source> openPcapSource(const std::string& path, Options opts) {
  opts.live = false;
  return std::make_unique<PcapSource>(path, std::move(opts));
}

void compileRawFilter(const std::string& filter, uint32_t snaplen, struct bpf_program* out) {
  pcap_t* dead = pcap_open_dead(DLT_RAW, static_cast<int>(snaplen ? snaplen : 65535));
  if (!dead) throw OpenError("VIGIL_ERR_FILTER", "cannot compile filter: pcap_open_dead failed");
  if (pcap_compile(dead, out, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    std::string msg = pcap_geterr(dead);
    pcap_close(dead);
    throw OpenError("VIGIL_ERR_FILTER", "invalid filter \"" + filter + "\": " + msg);
  }
  pcap_close(dead);
}

}  // namespace vigil
