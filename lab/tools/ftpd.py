#!/usr/bin/env python3
"""An FTP server for the lab's brute-force target: it greets, asks for the
password, and refuses every one (530, after a short delay, as vsftpd does);
after three failures on a connection it hangs up. IPv4 and IPv6 on one
socket."""
import argparse
import socketserver
import time

from dualstack import serve_tcp


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=21)
    a = ap.parse_args()
    serve_tcp(Handler, a.port)


if __name__ == "__main__":
    main()
