#!/usr/bin/env python3
"""Benign generators for the Vigil lab, one style each, so that each can be
recorded into its own labelled capture and evaluated by models that never saw
it (leave-one-style-out). Unlike benign.py's mix, a style is one kind of
client against one server implementation, as a single application would be.

  styles.py list                     name, seconds recorded in the held-out set, what it is
  styles.py missing STYLE            the tools STYLE needs that are not installed (empty: none)
  styles.py run STYLE --prefix vlab --state DIR --seconds 30 --seed 1 \
            --victim4 10.77.0.10 --victim6 fd77::10 --clients c1 c2 c3

A style brings up its server on the victim (servers.py) for its run. Exit 0
when at most a tenth of the client actions failed, 2 when a tool it needs is
missing (the reason on stderr)."""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402
from procs import run_counted, terminate_all  # noqa: E402

TOOLS = os.path.dirname(os.path.abspath(__file__))
PAGES = 24


def log(msg: str) -> None:
    sys.stderr.write(f"styles: {msg}\n")


class Client:
    """One client namespace running one style's loop until the deadline."""

    def __init__(self, name: str, index: int, a: argparse.Namespace) -> None:
        self.name = name
        self.index = index
        self.ns = f"{a.prefix}-{name}"
        self.a = a
        self.rng = random.Random(a.seed * 1000 + index)
        self.key = f"{a.state}/ssh/client_key"
        self.tmp = f"/tmp/vigil-lab-{a.prefix}-{name}"
        os.makedirs(self.tmp, exist_ok=True)
        self.deadline = time.monotonic() + a.seconds
        self.done = 0
        self.failed = 0

    # ----------------------------------------------------------- plumbing --
    def left(self) -> float:
        return self.deadline - time.monotonic()

    def sleep(self, s: float) -> None:
        time.sleep(max(0.0, min(s, self.left())))

    def run(self, cmd: list[str], timeout: float = 30, env: dict[str, str] | None = None) -> bool:
        return run_counted(self, cmd, timeout, log, env)

    def v(self, six: bool) -> str:
        return self.a.victim6 if six else self.a.victim4

    def url(self, six: bool, port: int, path: str) -> str:
        host = f"[{self.a.victim6}]" if six else self.a.victim4
        return f"http://{host}:{port}{path}"

    def asset(self) -> str:
        """Mostly small objects, as an API client or a script fetching status pages would."""
        r = self.rng.random()
        if r < 0.45:
            return "/index.html"
        if r < 0.75:
            return "/style.css"
        if r < 0.95:
            return f"/pages/p{self.rng.randrange(PAGES)}.html"
        return f"/img/i{self.rng.randrange(8)}.bin"

    def ssh_opts(self) -> list[str]:
        return ["-F", "/dev/null", "-i", self.key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5"]

    def six(self) -> bool:
        """The third client talks IPv6; the others IPv4."""
        return self.index == 2

    # -------------------------------------------------------------- styles --
    def http10_curl(self) -> None:
        """curl in a loop, one file per connection every 0.2-1 s, against an
        HTTP/1.0 server that closes after each response."""
        while self.left() > 0:
            self.run(["curl", "-sf", "--max-time", "10", "-o", "/dev/null", self.url(self.six(), 8000, self.asset())], 15)
            self.sleep(self.rng.uniform(0.2, 1.0))

    def http10_wget(self) -> None:
        """wget in a loop against busybox httpd: the index or a page, now and
        then with its stylesheet, each file on its own connection."""
        while self.left() > 0:
            page = "/index.html" if self.rng.random() < 0.5 else f"/pages/p{self.rng.randrange(PAGES)}.html"
            paths = [page] + (["/style.css"] if self.rng.random() < 0.4 else [])
            self.run(["wget", "-q", "-T", "10", "-t", "1", "-O", "/dev/null", *[self.url(self.six(), 8081, p) for p in paths]], 20)
            self.sleep(self.rng.uniform(0.5, 3.0))

    def http_poll_nginx(self) -> None:
        """Health-check pollers at fixed intervals (1, 2 and 5 s), a new
        connection per poll, against nginx."""
        interval = (1.0, 5.0, 2.0)[self.index % 3]
        self.sleep(self.rng.uniform(0, interval))
        while self.left() > 0:
            t = time.monotonic()
            self.run(["curl", "-sf", "--max-time", "5", "-o", "/dev/null", self.url(self.six(), 8080, "/index.html")], 10)
            self.sleep(interval - (time.monotonic() - t))

    def http_poll_python(self) -> None:
        """Metrics scrapers at fixed intervals (2, 3 and 5 s) keeping one
        HTTP/1.1 connection open between polls, against the python server."""
        interval = (2.0, 5.0, 3.0)[self.index % 3]
        self.sleep(self.rng.uniform(0, interval))
        self.run([sys.executable, f"{TOOLS}/http-client.py", "poll", self.url(self.six(), 80, "/index.html"),
                  str(interval), str(max(0.0, self.left()))], self.left() + 20)

    def http_parallel(self) -> None:
        """Six parallel downloads (curl --parallel, six connections: six
        images of 20-110 KB) from nginx, then a pause."""
        self.sleep(self.rng.uniform(0, 3))
        while self.left() > 0:
            urls = [self.url(self.six(), 8080, f"/img/i{(self.rng.randrange(8))}.bin") for _ in range(6)]
            self.run(["curl", "-sf", "--max-time", "20", "--parallel", "--parallel-max", "6", "--parallel-immediate",
                      *sum((["-o", "/dev/null", u] for u in urls), [])], 25)
            self.sleep(self.rng.uniform(8, 15))

    def http_browser(self) -> None:
        """A browser: pages with their stylesheet and one or two images over
        a pool of up to six keep-alive connections, reused across clicks
        (nginx for two clients, the python server for the third)."""
        port = 80 if self.index == 2 else 8080
        self.run([sys.executable, f"{TOOLS}/http-client.py", "browse", self.url(self.six(), port, ""),
                  str(max(0.0, self.left())), str(self.a.seed * 1000 + self.index)], self.left() + 30)

    def ssh_commands(self) -> None:
        """ssh host 'uname -a; ls /' in a loop: many short sessions."""
        while self.left() > 0:
            self.run(["ssh", *self.ssh_opts(), f"vlab@{self.v(self.six())}", "uname -a; ls /"], 15)
            self.sleep(self.rng.uniform(0.5, 2.0))

    def scp(self) -> None:
        """scp up and down, a small file at a time."""
        host = f"[{self.a.victim6}]" if self.six() else self.a.victim4
        while self.left() > 0:
            if self.rng.random() < 0.5:
                self.run(["scp", "-q", *self.ssh_opts(), "/etc/services", f"vlab@{host}:{self.a.state}/upload/{self.name}"], 20)
            else:
                self.run(["scp", "-q", *self.ssh_opts(), f"vlab@{host}:{self.a.state}/www/pages/p{self.rng.randrange(PAGES)}.html",
                          f"{self.tmp}/"], 20)
            self.sleep(self.rng.uniform(2, 6))

    def rsync(self) -> None:
        """rsync over ssh: mirror the web pages, then keep them in sync while
        a few local copies change (delta transfers)."""
        host = f"[{self.a.victim6}]" if self.six() else self.a.victim4
        dest = f"{self.tmp}/mirror/"
        shutil.rmtree(dest, ignore_errors=True)
        ssh = " ".join(["ssh", *self.ssh_opts()])
        while self.left() > 0:
            self.run(["rsync", "-a", "-e", ssh, f"vlab@{host}:{self.a.state}/www/pages/", dest], 30)
            for _ in range(self.rng.randint(1, 3)):
                f = f"{dest}p{self.rng.randrange(PAGES)}.html"
                if os.path.exists(f):
                    with open(f, "a") as fh:
                        fh.write("<!-- local edit -->\n")
            self.sleep(self.rng.uniform(4, 8))

    def git(self) -> None:
        """git over ssh: clone, then fetch and push small commits."""
        host = f"[{self.a.victim6}]" if self.six() else self.a.victim4
        work = f"{self.tmp}/repo"
        shutil.rmtree(work, ignore_errors=True)
        env = {**os.environ, "GIT_SSH_COMMAND": " ".join(["ssh", *self.ssh_opts()])}
        git = ["git", "-c", "user.name=lab", "-c", "user.email=lab@vigil.invalid", "-C", work]
        self.run(["git", "clone", "-q", f"ssh://vlab@{host}{self.a.state}/git/lab.git", work], 30, env)
        branch = f"c-{self.name}"
        while self.left() > 0:
            if self.rng.random() < 0.5:
                with open(f"{work}/{self.name}.txt", "a") as fh:
                    fh.write(f"{time.time()}\n")
                self.run([*git, "add", "-A"], 10)
                self.run([*git, "commit", "-q", "-m", "lab change"], 10)
                self.run([*git, "push", "-q", "origin", f"HEAD:refs/heads/{branch}"], 30, env)
            else:
                self.run([*git, "fetch", "-q", "origin"], 30, env)
            self.sleep(self.rng.uniform(3, 7))

    def dns(self, tcp: bool) -> None:
        while self.left() > 0:
            names = [f"host{self.rng.randrange(500)}.lab" for _ in range(self.rng.randint(1, 3))]
            opts = ["+tcp", "+keepopen"] if tcp else ["+notcp"]
            self.run(["dig", f"@{self.v(self.six())}", "+tries=1", "+time=2", "+short", *opts, *names], 10)
            self.sleep(self.rng.uniform(0.5, 3.0))

    def dns_udp(self) -> None:
        """dig queries over UDP (1-3 names each) every 0.5-3 s."""
        self.dns(False)

    def dns_tcp(self) -> None:
        """dig +tcp queries, several per connection (+keepopen)."""
        self.dns(True)

    def ntp(self) -> None:
        """An NTP client: iburst (four polls 2 s apart), then every 8 s."""
        self.sleep(self.rng.uniform(0, 2))
        self.run([sys.executable, f"{TOOLS}/ntp.py", "poll", self.v(self.six()), str(max(0.0, self.left())), "--interval", "8"],
                 self.left() + 10)

    def snmp(self) -> None:
        """A monitoring server (first client) polls 200 interface counters in
        one burst every 10 s; the others poll 20 every 5 s."""
        count, interval = (200, 10.0) if self.index == 0 else (20, 5.0)
        self.sleep(self.rng.uniform(0, 2))
        self.run([sys.executable, f"{TOOLS}/snmp.py", "poll", self.v(self.six()), str(max(0.0, self.left())),
                  "--interval", str(interval), "--count", str(count)], self.left() + 10)

    def icmp(self) -> None:
        """ICMP monitoring: ping every second."""
        self.sleep(self.rng.uniform(0, 1))
        n = max(1, int(self.left()))
        self.run(["ping", "-6" if self.six() else "-4", "-q", "-i", "1", "-c", str(n), "-W", "2", self.v(self.six())], n + 10)


# name: (client method, servers on the victim, tools needed, seconds recorded in the held-out set, what it is)
STYLES = {
    "http10-curl": (Client.http10_curl, ["py-http10"], ["curl"], 20, "curl loop, one file per connection, python http.server HTTP/1.0 :8000"),
    "http10-wget": (Client.http10_wget, ["busybox"], ["wget", "busybox"], 30, "wget loop against busybox httpd :8081 (server closes)"),
    "http-poll-nginx": (Client.http_poll_nginx, ["nginx"], ["curl", "nginx"], 30, "fixed-interval pollers (1/5/2 s), new connection each, nginx :8080"),
    "http-poll-python": (Client.http_poll_python, [], [], 30, "fixed-interval scrapers (2/5/3 s) on one keep-alive connection, python HTTP/1.1 :80"),
    "http-parallel": (Client.http_parallel, ["nginx"], ["curl", "nginx"], 20, "six parallel downloads (curl --parallel) from nginx :8080"),
    "http-browser": (Client.http_browser, ["nginx"], ["nginx"], 30, "browser-like: a pool of up to 6 keep-alive connections, nginx :8080 and python :80"),
    "ssh-commands": (Client.ssh_commands, [], ["ssh"], 20, "ssh host 'uname -a; ls /' in a loop"),
    "scp": (Client.scp, [], ["scp"], 30, "scp up and down, a small file each"),
    "rsync-ssh": (Client.rsync, [], ["rsync", "ssh"], 30, "rsync over ssh: a mirror and its delta updates"),
    "git-ssh": (Client.git, [], ["git", "ssh"], 30, "git clone, fetch and push over ssh"),
    "dns-udp": (Client.dns_udp, [], ["dig"], 30, "dig over UDP against the DNS-like server :53"),
    "dns-tcp": (Client.dns_tcp, ["dns-tcp"], ["dig"], 30, "dig +tcp +keepopen against dnstcp.py :53"),
    "ntp": (Client.ntp, ["ntp"], [], 60, "NTP polling (iburst, then every 8 s) against ntp.py :123"),
    "snmp-poll": (Client.snmp, ["snmp"], [], 30, "SNMP: 200 GETs in one burst every 10 s (c1), 20 every 5 s (c2, c3)"),
    "icmp-monitor": (Client.icmp, [], ["ping"], 60, "ping every second"),
}


def missing_tools(style: str) -> list[str]:
    _, names, tools, _, _ = STYLES[style]
    out = [t for t in tools if not (shutil.which(t) or os.path.exists(f"/usr/sbin/{t}"))]
    out += [why for n in names if (why := servers.missing(n))]
    return sorted(set(out))


def prepare(style: str, state: str) -> None:
    """State a style needs on the victim's side, made once per lab (in the
    state dir, so that lab tests remove it with the lab)."""
    if style == "scp":
        os.makedirs(f"{state}/upload", exist_ok=True)
        subprocess.run(["chown", "vlab:", f"{state}/upload"], check=True)
    if style == "git-ssh":
        repo = f"{state}/git/lab.git"
        if not os.path.exists(f"{repo}/HEAD"):
            os.makedirs(repo, exist_ok=True)
            subprocess.run(["git", "init", "-q", "--bare", repo], check=True)
            seed = f"{state}/git/seed"
            shutil.rmtree(seed, ignore_errors=True)
            subprocess.run(["git", "clone", "-q", repo, seed], check=True, capture_output=True)
            shutil.copytree(f"{state}/www/pages", f"{seed}/pages")
            g = ["git", "-c", "user.name=lab", "-c", "user.email=lab@vigil.invalid", "-C", seed]
            subprocess.run([*g, "add", "-A"], check=True)
            subprocess.run([*g, "commit", "-q", "-m", "pages"], check=True)
            subprocess.run([*g, "push", "-q", "origin", "HEAD"], check=True, capture_output=True)
            shutil.rmtree(seed)
            subprocess.run(["chown", "-R", "vlab:", f"{state}/git"], check=True)


def stop(_sig, _frame) -> None:
    terminate_all()
    raise SystemExit(0)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "list":
        for name, (_, _, _, seconds, what) in STYLES.items():
            print(f"{name}\t{seconds}\t{what}")
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["run", "missing"])
    ap.add_argument("style")
    ap.add_argument("--prefix", default="vlab")
    ap.add_argument("--state", default="")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--victim4", default="")
    ap.add_argument("--victim6", default="")
    ap.add_argument("--clients", nargs="+", default=["c1", "c2", "c3"])
    a = ap.parse_args()
    if a.style not in STYLES:
        log(f"unknown style \"{a.style}\" (styles: {', '.join(STYLES)})")
        return 1
    gone = missing_tools(a.style)
    if a.cmd == "missing":
        print(", ".join(gone))
        return 0
    if gone:
        log(f"{a.style}: missing {', '.join(gone)}")
        return 2
    method, names, _, _, _ = STYLES[a.style]
    prepare(a.style, a.state)
    srv = servers.Servers(a.prefix, a.state, names)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    clients = [Client(c, i, a) for i, c in enumerate(a.clients)]
    try:
        threads = [threading.Thread(target=method, args=(c,), daemon=True) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        srv.stop()
        for c in clients:
            shutil.rmtree(c.tmp, ignore_errors=True)
    done = sum(c.done for c in clients)
    failed = sum(c.failed for c in clients)
    log(f"{a.style}: {done} actions done, {failed} failed")
    return 0 if done > 0 and failed <= done // 10 else 1


if __name__ == "__main__":
    sys.exit(main())
