// Factories of the three sources. Open errors throw OpenError, which the addon
// turns into a JS error carrying code, file and offset.
#pragma once

#include <pcap/pcap.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "engine.h"

namespace vigil {

struct OpenError : std::runtime_error {
  OpenError(std::string code, const std::string& message, std::string file = "", int64_t offset = -1)
      : std::runtime_error(message), code(std::move(code)), file(std::move(file)), offset(offset) {}
  std::string code;
  std::string file;
  int64_t offset;
};

std::unique_ptr<Source> openPcapSource(const std::string& path, Options opts);
std::unique_ptr<Source> openAfPacketSource(const std::string& iface, bool fanout, uint16_t fanoutGroup,
                                           uint32_t blockBytes, uint32_t blockCount, Options opts);
std::unique_ptr<Source> openRingSource(const std::string& device, Options opts);

// Compiles a tcpdump-syntax filter for packets that start at the IP header.
// Throws OpenError(VIGIL_ERR_FILTER) naming the filter on a syntax error.
void compileRawFilter(const std::string& filter, uint32_t snaplen, struct bpf_program* out);

}  // namespace vigil
