// How many bytes of a packet are headers: the IP header (IPv6 with its
// extension headers) and the transport header after it. The detectors read
// nothing past them, so a capture that keeps only these bytes carries about
// half as much over the bus as one that keeps 128 (capture.headersOnly).
#pragma once

#include <cstdint>

#include <linux/vigil.h>

namespace vigil {

// Returned when the headers cannot be measured from the bytes at hand (a
// truncated or malformed packet): the caller keeps what its snaplen allows, so
// the decoder downstream sees the same bytes it would have and names the fault.
constexpr uint32_t kHeadersUnknown = UINT32_MAX;

// Bytes of the transport header starting at l4 (avail bytes from there), or
// kHeadersUnknown. TCP keeps its options (data offset); UDP and ICMP their
// 8 bytes; any other protocol has no header Vigil reads.
inline uint32_t transportHeaderLength(uint8_t proto, const uint8_t* l4, uint32_t avail) {
  switch (proto) {
    case 6:  // TCP
      if (avail < 13) return kHeadersUnknown;
      return (l4[12] >> 4) * 4u < 20 ? 20 : (l4[12] >> 4) * 4u;
    case 17:  // UDP
    case 1:   // ICMP
    case 58:  // ICMPv6
      return 8;
    default:
      return 0;
  }
}

// IPv6 extension headers the decoder (packages/frames/src/packet.ts) walks.
inline bool isIpv6Extension(uint8_t next) {
  return next == 0 || next == 43 || next == 44 || next == 60 || next == 51 || next == 135 || next == 139 ||
         next == 140;
}

// The decoder's own bound on extension headers, so both stop at the same place.
constexpr int kMaxIpv6Extensions = 8;

inline uint32_t ipv4HeadersLength(const uint8_t* p, uint32_t avail) {
  if (avail < 20) return kHeadersUnknown;
  uint32_t ihl = (p[0] & 0x0f) * 4u;
  if (ihl < 20 || avail < ihl) return kHeadersUnknown;
  // A fragment after the first carries no transport header.
  if (((p[6] << 8 | p[7]) & 0x1fff) != 0) return ihl;
  uint32_t l4 = transportHeaderLength(p[9], p + ihl, avail - ihl);
  return l4 == kHeadersUnknown ? l4 : ihl + l4;
}

inline uint32_t ipv6HeadersLength(const uint8_t* p, uint32_t avail) {
  if (avail < 40) return kHeadersUnknown;
  uint8_t next = p[6];
  uint32_t off = 40;
  for (int i = 0; isIpv6Extension(next); i++) {
    if (i >= kMaxIpv6Extensions || avail - off < 8) return kHeadersUnknown;
    const uint8_t* h = p + off;
    uint32_t len;
    bool laterFragment = false;
    if (next == 44) {
      len = 8;
      laterFragment = ((h[2] << 8 | h[3]) & 0xfff8) != 0;
    } else if (next == 51) {
      len = (h[1] + 2) * 4u;
    } else {
      len = (h[1] + 1) * 8u;
    }
    if (avail - off < len) return kHeadersUnknown;
    next = h[0];
    off += len;
    if (laterFragment) return off;
  }
  if (next == 59) return off;  // no next header
  uint32_t l4 = transportHeaderLength(next, p + off, avail - off);
  return l4 == kHeadersUnknown ? l4 : off + l4;
}

// Header bytes of an IPv4 or IPv6 packet at l3, avail bytes long.
inline uint32_t headersLength(const uint8_t* l3, uint32_t avail, uint8_t family) {
  return family == VIGIL_FAMILY_IPV4 ? ipv4HeadersLength(l3, avail) : ipv6HeadersLength(l3, avail);
}

}  // namespace vigil
