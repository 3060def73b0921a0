#!/usr/bin/env python3
"""NTP for the lab: a minimal server (mode 4 replies, stratum 2, the host's
clock) and a client that polls it the way ntpd/chrony do: a burst of four
requests 2 s apart (iburst), then one per poll interval.

  ntp.py serve [--port 123]
  ntp.py poll SERVER SECONDS [--interval 8]     (in a client namespace)

No clock is ever set: the client only reads the server's answer."""
import argparse
import socket
import struct
import sys
import time

from dualstack import udp_socket

EPOCH = 2208988800  # seconds from 1900 (NTP era 0) to 1970


def ntp_time(t: float) -> bytes:
    s = int(t) + EPOCH
    return struct.pack("!II", s & 0xFFFFFFFF, int((t % 1) * (1 << 32)))


def serve(port: int) -> None:
    s = udp_socket(port)
    while True:
        data, peer = s.recvfrom(512)
        recv = time.time()
        if len(data) < 48 or data[0] & 7 != 3:  # only client requests
            continue
        version = (data[0] >> 3) & 7
        head = struct.pack("!BBbb", (version << 3) | 4, 2, data[2], -20)
        head += struct.pack("!II", 0x00000100, 0x00000200) + b"LAB\0"
        # reference, originate (the client's transmit time), receive, transmit
        reply = head + ntp_time(recv - 30) + data[40:48] + ntp_time(recv) + ntp_time(time.time())
        s.sendto(reply, peer)


def poll(server: str, seconds: float, interval: float) -> int:
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    # ntpd and chrony send from port 123 too.
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 123))
    s.settimeout(2)
    deadline = time.monotonic() + seconds
    sent = ok = 0
    gaps = [2.0, 2.0, 2.0]
    while time.monotonic() < deadline:
        req = bytearray(48)
        req[0] = (4 << 3) | 3  # version 4, client
        req[2] = 6  # poll exponent
        req[40:48] = ntp_time(time.time())
        s.sendto(bytes(req), (server, 123))
        sent += 1
        try:
            data, _ = s.recvfrom(512)
            if len(data) >= 48 and data[24:32] == req[40:48]:
                ok += 1
        except socket.timeout:
            pass
        time.sleep(max(0.0, min(gaps.pop(0) if gaps else interval, deadline - time.monotonic())))
    sys.stderr.write(f"ntp: {ok}/{sent} answered\n")
    return 0 if ok == sent else 1


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--port", type=int, default=123)
    pl = sub.add_parser("poll")
    pl.add_argument("server")
    pl.add_argument("seconds", type=float)
    pl.add_argument("--interval", type=float, default=8)
    a = ap.parse_args()
    if a.cmd == "serve":
        serve(a.port)
        return 0
    return poll(a.server, a.seconds, a.interval)


if __name__ == "__main__":
    sys.exit(main())
