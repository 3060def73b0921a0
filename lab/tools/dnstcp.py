#!/usr/bin/env python3
"""DNS over TCP on the victim (RFC 7766 framing: a two-byte length before each
message; several queries may share a connection), with the same answers as
the UDP service (udpd.py)."""
import argparse
import os
import socket
import socketserver
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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


class DualStackServer(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=53)
    a = ap.parse_args()
    with DualStackServer(("::", a.port), Handler) as srv:
        srv.serve_forever()


if __name__ == "__main__":
    main()
