#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""IPv6 fragments whose first fragment does not hold the ports (F24).

    frag6.py IFACE DST_MAC SRC DST DPORT split-ports|split-chain|whole

Sends one UDP datagram from SRC:40000 to DST:DPORT as two fragments, written
on IFACE with an AF_PACKET socket (the kernel would never fragment this way):

  split-ports  [Frag][DstOpts -> UDP]  |  [UDP header + data]
               the first fragment ends right before the UDP header; what
               RFC 8200 4.5 forbids and what 6.1 drops on receive itself
  split-chain  [Frag][DstOpts -> DstOpts]  |  [DstOpts -> UDP][UDP header + data]
               the header chain itself is cut: 6.1's receive check cannot
               walk it and lets it reassemble
  whole        [Frag][DstOpts -> UDP][UDP header + data]  |  [data]
               the control: the same datagram, ports in the first fragment
Prints sent=2.
"""
import socket
import struct
import sys

ETH_P_IPV6 = 0x86DD
NH_UDP, NH_FRAG, NH_DSTOPTS = 17, 44, 60


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s & 0xFFFF) or 0xFFFF


def dstopts(nexthdr):
    # 8 bytes: next header, length 0 (8 octets), PadN option of 4 bytes.
    return struct.pack("!BBBB4s", nexthdr, 0, 1, 4, b"\0" * 4)


def main():
    iface, dmac, src, dst, dport, mode = sys.argv[1:7]
    s6 = socket.inet_pton(socket.AF_INET6, src)
    d6 = socket.inet_pton(socket.AF_INET6, dst)
    data = b"vigil-f24-" + mode.encode() + b"!" * 18  # 8-byte multiple
    data = data[: len(data) - len(data) % 8]
    ulen = 8 + len(data)
    pseudo = s6 + d6 + struct.pack("!IxxxB", ulen, NH_UDP)
    udp0 = struct.pack("!HHHH", 40000, int(dport), ulen, 0) + data
    udp = udp0[:6] + struct.pack("!H", csum(pseudo + udp0)) + udp0[8:]

    if mode == "split-ports":
        first, rest, nh = dstopts(NH_UDP), udp, NH_DSTOPTS
    elif mode == "split-chain":
        first, rest, nh = dstopts(NH_DSTOPTS), dstopts(NH_UDP) + udp, NH_DSTOPTS
    elif mode == "whole":
        body = dstopts(NH_UDP) + udp
        first, rest, nh = body[:24], body[24:], NH_DSTOPTS
    else:
        sys.exit("frag6.py: unknown mode " + mode)

    ident = 0x5EC24000 + len(mode)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    with open("/sys/class/net/%s/address" % iface) as f:
        smac = bytes.fromhex(f.read().strip().replace(":", ""))
    eth = bytes.fromhex(dmac.replace(":", "")) + smac + struct.pack("!H", ETH_P_IPV6)
    for off, more, payload in ((0, 1, first), (len(first), 0, rest)):
        frag = struct.pack("!BBHI", nh, 0, off | more, ident)
        ip6 = struct.pack("!IHBB", 6 << 28, 8 + len(payload), NH_FRAG, 64) + s6 + d6
        sock.send(eth + ip6 + frag + payload)
    print("sent=2")


if __name__ == "__main__":
    main()
