#!/usr/bin/env python3
"""Benign traffic generators for the Vigil lab.

Each client namespace runs its own loop of user-like activities (web browsing
bursts, downloads, SSH sessions and scp, DNS-like UDP lookups, ping) with
think times in between. Every choice comes from a random generator seeded
per client, so a run has the same shape every time (wall-clock jitter aside).

  benign.py --prefix vlab --state DIR --seconds 120 --seed 1 \
            --victim4 10.77.0.10 --victim6 fd77::10 --clients c1 c2 c3
  benign.py dns-query SERVER COUNT SEED     (run inside a client namespace)
"""
import argparse
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

from procs import run_counted, terminate_all

PAGES = 24
FILES = ["small-256k.bin", "medium-1m.bin", "large-2m.bin"]


def log(msg: str) -> None:
    sys.stderr.write(f"benign: {msg}\n")


def stop(_sig, _frame) -> None:
    """SIGTERM/SIGINT: end the activities in flight (like a user closing the
    laptop) and leave at once."""
    terminate_all()
    os._exit(0)


class Client:
    def __init__(self, name: str, args: argparse.Namespace, seed: int) -> None:
        self.name = name
        self.ns = f"{args.prefix}-{name}"
        self.args = args
        self.rng = random.Random(seed)
        self.key = f"{args.state}/ssh/client_key"
        self.done = 0
        self.failed = 0

    def run(self, cmd: list[str], timeout: float) -> None:
        run_counted(self, cmd, timeout, log)

    def victim(self) -> str:
        return self.args.victim6 if self.rng.random() < 0.3 else self.args.victim4

    def url_host(self, v: str) -> str:
        return f"[{v}]" if ":" in v else v

    def ssh_opts(self) -> list[str]:
        return ["-F", "/dev/null", "-i", self.key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5"]

    # ------------------------------------------------------------ activities --
    def browse(self) -> None:
        host = self.url_host(self.victim())
        # One keep-alive connection fetching a page and its assets, then
        # a few follow-up clicks that may open new connections.
        page = self.rng.randrange(PAGES)
        urls = [f"http://{host}/pages/p{page}.html", f"http://{host}/style.css", f"http://{host}/img/i{page % 8}.bin"]
        self.run(["curl", "-s", "--max-time", "20", *sum((["-o", "/dev/null", u] for u in urls), [])], 25)
        for _ in range(self.rng.randint(0, 3)):
            time.sleep(self.rng.uniform(0.3, 3.0))
            self.run(["curl", "-s", "--max-time", "20", "-o", "/dev/null",
                      f"http://{host}/pages/p{self.rng.randrange(PAGES)}.html"], 25)

    def download(self) -> None:
        host = self.url_host(self.victim())
        f = self.rng.choices(FILES, weights=[5, 3, 1])[0]
        rate = self.rng.choice(["300k", "1M", "3M"])
        self.run(["curl", "-s", "--max-time", "40", "--limit-rate", rate, "-o", "/dev/null",
                  f"http://{host}/files/{f}"], 45)

    def ssh(self) -> None:
        cmd = self.rng.choice(["uptime", "ls -la /tmp", "uname -a; id", "df -h /", "cat /etc/os-release",
                               "ps -e | head -20", "sleep 1; date"])
        self.run(["ssh", *self.ssh_opts(), f"vlab@{self.victim()}", cmd], 20)

    def scp(self) -> None:
        v = self.victim()
        host = f"[{v}]" if ":" in v else v
        if self.rng.random() < 0.5:
            self.run(["scp", "-q", *self.ssh_opts(), "/etc/services", f"vlab@{host}:/tmp/vlab-{self.name}.txt"], 20)
        else:
            self.run(["scp", "-q", *self.ssh_opts(), f"vlab@{host}:/etc/services", "/dev/null"], 20)

    def dns(self) -> None:
        self.run([sys.executable, __file__, "dns-query", self.victim(), str(self.rng.randint(1, 6)),
                  str(self.rng.randrange(1 << 30))], 15)

    def ping(self) -> None:
        v = self.victim()
        self.run(["ping", "-6" if ":" in v else "-4", "-q", "-c", str(self.rng.randint(1, 4)), "-i", "0.3", "-W", "2", v], 10)

    ACTIVITIES = [("browse", 8), ("download", 1), ("ssh", 3), ("scp", 1), ("dns", 4), ("ping", 2)]

    def loop(self, deadline: float) -> None:
        names = [a for a, _ in self.ACTIVITIES]
        weights = [w for _, w in self.ACTIVITIES]
        # Clients do not start in lockstep.
        time.sleep(self.rng.uniform(0, 2))
        while time.monotonic() < deadline:
            getattr(self, self.rng.choices(names, weights)[0])()
            pause = min(self.rng.expovariate(1 / 2.5), 8.0)
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))


def dns_query(server: str, count: int, seed: int) -> int:
    rng = random.Random(seed)
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(2)
    ok = 0
    for _ in range(count):
        name = f"host{rng.randrange(500)}.lab"
        qid = rng.randrange(1 << 16)
        q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
        s.sendto(q, (server, 53))
        try:
            data, _ = s.recvfrom(2048)
            if data[:2] == q[:2]:
                ok += 1
        except socket.timeout:
            pass
        time.sleep(rng.uniform(0.05, 0.5))
    return 0 if ok == count else 1


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "dns-query":
        return dns_query(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--victim4", required=True)
    ap.add_argument("--victim6", required=True)
    ap.add_argument("--clients", nargs="+", required=True)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    deadline = time.monotonic() + a.seconds
    clients = [Client(c, a, a.seed * 1000 + i) for i, c in enumerate(a.clients)]
    threads = [threading.Thread(target=c.loop, args=(deadline,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = sum(c.done for c in clients)
    failed = sum(c.failed for c in clients)
    log(f"{done} activities done, {failed} failed")
    return 0 if done > 0 and failed <= done // 10 else 1


if __name__ == "__main__":
    sys.exit(main())
