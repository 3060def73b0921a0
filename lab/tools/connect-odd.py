#!/usr/bin/env python3
"""Real, completed connections with odd segments, from this host's own address.

The control of the forged-handshake test: each connection completes its
handshake (the kernel acknowledges the victim's ISN + 1), then sends one byte
of urgent data (PSH|URG|ACK) and aborts with a RST. Unlike a blind spoofer's,
these handshakes are verifiable.

Usage: connect-odd.py DST PORT[,PORT...] CONNECTIONS
Stops after three failures once some completed (blocked). Prints one JSON
line: connections completed and failed.
"""
import json
import socket
import struct
import sys
import time


def main() -> None:
    dst, ports, count = sys.argv[1], [int(p) for p in sys.argv[2].split(",")], int(sys.argv[3])
    done = failed = 0
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1)
        try:
            s.connect((dst, ports[i % len(ports)]))
            s.send(b"!", socket.MSG_OOB)
            # Linger 0: close sends a RST instead of a FIN.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            done += 1
        except OSError:
            failed += 1
            # Blocked: a few failures in a row are enough to tell.
            if failed >= 3 and done > 0:
                break
        finally:
            s.close()
        time.sleep(0.02)
    print(json.dumps({"completed": done, "failed": failed}))


if __name__ == "__main__":
    main()
