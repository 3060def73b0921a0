#!/usr/bin/env python3
"""A DNS-like UDP service on the victim: answers every well-formed query with
one A record (10.77.0.x derived from the name), on IPv4 and IPv6. Garbage
(floods, scans) gets no answer, like a real resolver."""
import argparse
import struct
import zlib

from dualstack import udp_socket


def answer(query: bytes) -> bytes | None:
    if len(query) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", query[:6])
    if flags & 0x8000 or qd != 1:
        return None
    i = 12
    labels = []
    while i < len(query) and query[i] != 0:
        n = query[i]
        labels.append(query[i + 1:i + 1 + n])
        i += n + 1
    if i + 5 > len(query):
        return None
    question = query[12:i + 5]
    ip = bytes([10, 77, 0, 100 + zlib.crc32(b".".join(labels)) % 100])
    header = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0)
    rr = struct.pack("!HHHIH", 0xC00C, 1, 1, 300, 4) + ip
    return header + question + rr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=53)
    a = ap.parse_args()
    s = udp_socket(a.port)
    while True:
        data, peer = s.recvfrom(2048)
        reply = answer(data)
        if reply:
            s.sendto(reply, peer)


if __name__ == "__main__":
    main()
