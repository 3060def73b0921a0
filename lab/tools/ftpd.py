#!/usr/bin/env python3
"""An FTP server for the lab's brute-force target: it greets, asks for the
password, and refuses every one (530, after a short delay, as vsftpd does);
after three failures on a connection it hangs up. IPv4 and IPv6 on one
socket."""
import argparse
import socket
import socketserver
import time


class Handler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 (vsFTPd 3.0.3)")
        failures = 0
        for raw in self.rfile:
            cmd = raw.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if cmd == "USER":
                self.reply("331 Please specify the password.")
            elif cmd == "PASS":
                time.sleep(0.5)
                self.reply("530 Login incorrect.")
                failures += 1
                if failures >= 3:
                    return
            elif cmd == "QUIT":
                self.reply("221 Goodbye.")
                return
            else:
                self.reply("530 Please login with USER and PASS.")


class DualStackServer(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=21)
    a = ap.parse_args()
    with DualStackServer(("::", a.port), Handler) as srv:
        srv.serve_forever()


if __name__ == "__main__":
    main()
