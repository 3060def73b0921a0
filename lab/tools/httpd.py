#!/usr/bin/env python3
"""The victim's web server: HTTP/1.1 with keep-alive, IPv4 and IPv6 on one
socket, quiet logs."""
import argparse
import functools
import http.server
import socket


class DualStackServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--root", required=True)
    a = ap.parse_args()
    handler = functools.partial(Handler, directory=a.root)
    with DualStackServer(("::", a.port), handler) as srv:
        srv.serve_forever()


if __name__ == "__main__":
    main()
