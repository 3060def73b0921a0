#!/usr/bin/env python3
"""A masscan-style UDP sweep: one empty datagram to each port of a range, in a
random order, from one source port, at a fixed rate, without waiting for or
reading any answer (the target stays silent: it drops the probes).

Usage: udp-sweep.py DST FIRST_PORT LAST_PORT RATE_PER_S
Prints one JSON line: probes sent and seconds taken."""
import json
import random
import socket
import sys
import time


def main() -> None:
    dst, first, last, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    ports = list(range(first, last + 1))
    random.Random(0x5ca7).shuffle(ports)
    s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("", 61000))
    start = time.monotonic()
    for i, port in enumerate(ports):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        s.sendto(b"", (dst, port))
    print(json.dumps({"sent": len(ports), "seconds": round(time.monotonic() - start, 3)}))


if __name__ == "__main__":
    main()
