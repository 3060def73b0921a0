#!/usr/bin/env python3
"""Forged TCP handshakes from spoofed sources (issue 12 F1), with a raw socket.

A blind spoofer cannot see our SYN-ACK, so it cannot acknowledge our initial
sequence number; it can only claim to have completed the handshake. Per source
and connection: a SYN, then (once our SYN-ACK is out) a segment acknowledging a
wrong number. The variants of the security review, by source index modulo 3:

  ack    SYN, then a plain ACK with a wrong ack number
  fpua   SYN, then FIN|PSH|URG|ACK with a wrong ack number
  owner  as fpua, then the real owner's late RST to our SYN-ACK
         (the C:S S:SA C:FPUA S:R pattern with its straggler)

Usage: forge.py DST DPORT FIRST_SOURCE COUNT CONNECTIONS
Prints one JSON line: what was sent. Only for the lab's namespaces.
"""
import ipaddress
import json
import random
import socket
import struct
import sys
import time

SYN, FIN, RST, PSH, ACK, URG = 0x02, 0x01, 0x04, 0x08, 0x10, 0x20
WRONG_ACK = 424242
BATCH = 50


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def segment(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randrange(65536), 0, 64, socket.IPPROTO_TCP, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def main() -> None:
    dst, dport, first, count, conns = sys.argv[1], int(sys.argv[2]), ipaddress.IPv4Address(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    d = socket.inet_aton(dst)
    sources = [first + i for i in range(count)]
    variants = ["ack", "fpua", "owner"]
    sent = {v: 0 for v in variants}
    packets = 0
    for c in range(conns):
        for b in range(0, count, BATCH):
            batch = []
            for i in range(b, min(b + BATCH, count)):
                src = socket.inet_aton(str(sources[i]))
                sport = 20000 + (i * 7 + c * 131) % 40000
                isn = random.randrange(1 << 32)
                sock.sendto(segment(src, d, sport, dport, isn, 0, SYN), (dst, 0))
                packets += 1
                batch.append((i, src, sport, isn))
            # Our SYN-ACKs go out first, as in the review's captures.
            time.sleep(0.005)
            for i, src, sport, isn in batch:
                v = variants[i % 3]
                flags = ACK if v == "ack" else FIN | PSH | URG | ACK
                sock.sendto(segment(src, d, sport, dport, isn + 1, WRONG_ACK, flags), (dst, 0))
                packets += 1
                sent[v] += 1
            time.sleep(0.002)
            for i, src, sport, isn in batch:
                if variants[i % 3] == "owner":
                    # The real owner never sent a SYN: it resets our SYN-ACK (whose ack it cannot know either).
                    sock.sendto(segment(src, d, sport, dport, isn + 1, 0, RST), (dst, 0))
                    packets += 1
        time.sleep(0.05)
    print(json.dumps({"sources": count, "first": str(first), "last": str(sources[-1]), "connections": conns, "packets": packets, "variants": sent}))


if __name__ == "__main__":
    main()
