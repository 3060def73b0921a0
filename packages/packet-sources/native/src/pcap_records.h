// Records of a classic pcap file read straight from its file descriptor into
// one buffer and handed on from there. libpcap reads each record through
// stdio into a buffer of its own: two copies of the whole file, and the
// larger share of the capture's CPU on a full-speed replay. The header and
// its oddities (old versions, the modified format, pcapng) stay libpcap's:
// the source uses this reader only for files libpcap has opened and that
// have the standard 2.4 layout.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace vigil {

// libpcap's bound on a record's captured length for every link type we read.
constexpr uint32_t kMaxRecordCaplen = 262144;

struct PcapRecord {
  uint64_t tsNs;
  uint32_t caplen;  // bytes at data: at most the file's snapshot length
  uint32_t len;     // length on the wire
  const uint8_t* data;
};

class ClassicPcapReader {
 public:
  enum class Result { Record, End, Error };

  // fd positioned at offset, the first record; snapshot as libpcap adjusted it.
  ClassicPcapReader(int fd, int64_t offset, bool swapped, bool nanos, uint32_t snapshot)
      : fd_(fd), offset_(offset), swapped_(swapped), nanos_(nanos), snapshot_(snapshot), buf_(kBuffer) {}

  // A record's data stays valid until the next call.
  Result next(PcapRecord& r) {
    if (!fill(kHeader)) {
      if (readErrno_) return failed("error reading capture file: " + std::string(std::strerror(readErrno_)));
      if (end_ == pos_) return Result::End;
      return failed("truncated dump file; tried to read 16 header bytes, only got " + std::to_string(end_ - pos_));
    }
    const uint8_t* h = buf_.data() + pos_;
    uint32_t sec = field(h), frac = field(h + 4), caplen = field(h + 8), len = field(h + 12);
    if (caplen > kMaxRecordCaplen)
      return failed("invalid packet capture length " + std::to_string(caplen) + ", bigger than maximum of " +
                    std::to_string(kMaxRecordCaplen));
    if (!fill(kHeader + caplen)) {
      if (readErrno_) return failed("error reading capture file: " + std::string(std::strerror(readErrno_)));
      return failed("truncated dump file; tried to read " + std::to_string(caplen) + " captured bytes, only got " +
                    std::to_string(end_ - pos_ - kHeader));
    }
    h = buf_.data() + pos_;  // fill may have moved the bytes
    r.tsNs = static_cast<uint64_t>(sec) * 1000000000ull + (nanos_ ? frac : static_cast<uint64_t>(frac) * 1000);
    // A record longer than the file's snapshot keeps the snapshot, as libpcap does.
    r.caplen = caplen < snapshot_ ? caplen : snapshot_;
    r.len = len;
    r.data = h + kHeader;
    pos_ += kHeader + caplen;
    offset_ += kHeader + caplen;
    return Result::Record;
  }

  // File offset of the next record (of the faulty one after an Error).
  int64_t offset() const { return offset_; }
  const std::string& error() const { return error_; }

 private:
  static constexpr size_t kHeader = 16;
  // The copy from the page cache into a buffer that stays in the CPU's cache
  // costs about half of one into a megabyte (measured on the bench capture).
  static constexpr size_t kBuffer = 128 << 10;

  uint32_t field(const uint8_t* p) const {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return swapped_ ? __builtin_bswap32(v) : v;
  }

  // Makes `need` bytes available from pos_: false at the end of the file or on a read error.
  bool fill(size_t need) {
    if (end_ - pos_ >= need) return true;
    if (readErrno_ || eof_) return false;
    if (pos_ > 0) {
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    if (need > buf_.size()) buf_.resize(need);
    while (end_ < need) {
      ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
      if (n < 0) {
        if (errno == EINTR) continue;
        readErrno_ = errno;
        return false;
      }
      if (n == 0) {
        eof_ = true;
        return false;
      }
      end_ += static_cast<size_t>(n);
    }
    return true;
  }

  Result failed(std::string message) {
    error_ = std::move(message);
    return Result::Error;
  }

  int fd_;
  int64_t offset_;
  bool swapped_;
  bool nanos_;
  uint32_t snapshot_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  int readErrno_ = 0;
  std::string error_;
};

}  // namespace vigil
