#!/usr/bin/env python3
"""DNS over TCP on the victim (RFC 7766 framing: a two-byte length before each
message; several queries may share a connection), with the same answers as
the UDP service (udpd.py)."""
import argparse
import os
import socketserver
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dualstack import serve_tcp  # noqa: E402
from udpd import answer  # noqa: E402


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(10)
        try:
            while True:
                head = self.rfile.read(2)
                if len(head) < 2:
                    return
                query = self.rfile.read(int.from_bytes(head, "big"))
                reply = answer(query)
                if reply is None:
                    return
                self.wfile.write(len(reply).to_bytes(2, "big") + reply)
        except OSError:
            return


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=53)
    a = ap.parse_args()
    serve_tcp(Handler, a.port)


if __name__ == "__main__":
    main()
