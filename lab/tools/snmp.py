#!/usr/bin/env python3
"""SNMP for the lab: a minimal SNMPv2c agent and a monitoring poller.

The poller behaves like a network monitor polling interface counters: every
INTERVAL seconds a burst of COUNT GetRequests (one OID each, distinct request
ids), sent back to back (the issue's ~200 requests in under 100 ms), each
answered by the agent with a Counter32.

  snmp.py serve [--port 161]
  snmp.py poll SERVER SECONDS [--interval 10] [--count 200]"""
import argparse
import socket
import struct
import sys
import time
import zlib

from dualstack import udp_socket

COMMUNITY = b"public"
IF_TABLE = (1, 3, 6, 1, 2, 1, 2, 2, 1)  # IF-MIB::ifEntry


def tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(ln)]) + ln + body


def integer(tag: int, v: int) -> bytes:
    return tlv(tag, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True) if tag == 0x02 else
               v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big"))


def oid(parts: tuple[int, ...]) -> bytes:
    body = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def read(buf: bytes, i: int) -> tuple[int, bytes, int]:
    """(tag, value, next index) of the TLV at i."""
    tag, n = buf[i], buf[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(buf[i:i + k], "big")
        i += k
    return tag, buf[i:i + n], i + n


def message(pdu_tag: int, req_id: int, varbinds: bytes) -> bytes:
    pdu = tlv(pdu_tag, integer(0x02, req_id) + integer(0x02, 0) + integer(0x02, 0) + tlv(0x30, varbinds))
    return tlv(0x30, integer(0x02, 1) + tlv(0x04, COMMUNITY) + pdu)


def answer(data: bytes) -> bytes | None:
    try:
        _, msg, _ = read(data, 0)
        _, _version, i = read(msg, 0)
        _, community, i = read(msg, i)
        tag, pdu, _ = read(msg, i)
        if community != COMMUNITY or tag != 0xA0:
            return None
        _, rid, j = read(pdu, 0)
        _, _, j = read(pdu, j)
        _, _, j = read(pdu, j)
        _, vbl, _ = read(pdu, j)
        out = b""
        k = 0
        while k < len(vbl):
            _, vb, k = read(vbl, k)
            _, name, _ = read(vb, 0)
            value = zlib.crc32(name) * 7 + int(time.time() * 1000) & 0xFFFFFFFF
            out += tlv(0x30, tlv(0x06, name) + integer(0x41, value))
        return message(0xA2, int.from_bytes(rid, "big", signed=True), out)
    except (IndexError, ValueError):
        return None


def serve(port: int) -> None:
    s = udp_socket(port)
    while True:
        data, peer = s.recvfrom(2048)
        reply = answer(data)
        if reply:
            s.sendto(reply, peer)


def poll(server: str, seconds: float, interval: float, count: int) -> int:
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    deadline = time.monotonic() + seconds
    rid = 1000
    sent = got = 0
    while time.monotonic() < deadline:
        start = time.monotonic()
        for n in range(count):
            # ifInOctets / ifOutOctets / ifInErrors ... of interfaces 1..N
            column, ifindex = (10, 16, 14, 20)[n % 4], 1 + n // 4
            rid += 1
            s.sendto(message(0xA0, rid, tlv(0x30, oid(IF_TABLE + (column, ifindex)) + b"\x05\x00")), (server, 161))
            sent += 1
        try:
            while got < sent:
                s.recvfrom(2048)
                got += 1
        except socket.timeout:
            pass
        time.sleep(max(0.0, min(interval - (time.monotonic() - start), deadline - time.monotonic())))
    sys.stderr.write(f"snmp: {got}/{sent} answered\n")
    return 0 if sent and got >= sent * 0.95 else 1


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--port", type=int, default=161)
    pl = sub.add_parser("poll")
    pl.add_argument("server")
    pl.add_argument("seconds", type=float)
    pl.add_argument("--interval", type=float, default=10)
    pl.add_argument("--count", type=int, default=200)
    a = ap.parse_args()
    if a.cmd == "serve":
        serve(a.port)
        return 0
    return poll(a.server, a.seconds, a.interval, a.count)


if __name__ == "__main__":
    sys.exit(main())
