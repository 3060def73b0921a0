#!/usr/bin/env python3
"""HTTP/1.1 clients that keep their connections open, for styles.py.

  http-client.py poll URL INTERVAL SECONDS     a scraper: GET URL every INTERVAL s on one connection
  http-client.py browse BASE SECONDS SEED      a browser: a page, then its assets over a pool of up to
                                               six keep-alive connections, reused across clicks

Exit 1 when more than a tenth of the requests failed."""
import http.client
import random
import sys
import threading
import time
import urllib.parse

failures = 0
requests = 0
lock = threading.Lock()


class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.c: http.client.HTTPConnection | None = None

    def get(self, path: str) -> None:
        global failures, requests
        for attempt in (0, 1):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection(self.host, self.port, timeout=10)
                self.c.request("GET", path, headers={"User-Agent": "Mozilla/5.0 (vigil-lab)", "Accept": "*/*"})
                r = self.c.getresponse()
                r.read()
                if r.will_close:
                    self.c.close()
                    self.c = None
                with lock:
                    requests += 1
                    if r.status != 200:
                        failures += 1
                return
            except (OSError, http.client.HTTPException):
                # The server closed an idle connection: reconnect once, as browsers do.
                if self.c:
                    self.c.close()
                self.c = None
                if attempt:
                    with lock:
                        requests += 1
                        failures += 1


def split(url: str) -> tuple[str, int, str]:
    u = urllib.parse.urlsplit(url)
    return u.hostname or "", u.port or 80, u.path or "/"


def poll(url: str, interval: float, seconds: float) -> None:
    host, port, path = split(url)
    c = Conn(host, port)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t = time.monotonic()
        c.get(path)
        time.sleep(max(0.0, min(interval - (time.monotonic() - t), deadline - time.monotonic())))


def browse(base: str, seconds: float, seed: int) -> None:
    host, port, _ = split(base + "/")
    rng = random.Random(seed)
    pool = [Conn(host, port) for _ in range(6)]
    deadline = time.monotonic() + seconds
    page = rng.randrange(24)
    while time.monotonic() < deadline:
        pool[0].get(f"/pages/p{page}.html")
        assets = ["/style.css", f"/img/i{page % 8}.bin"] + [f"/img/i{rng.randrange(8)}.bin" for _ in range(rng.randint(0, 1))]
        # A browser opens more connections only when several assets are waiting.
        threads = [threading.Thread(target=lambda i=i: [pool[i].get(p) for p in assets[i::len(pool)]])
                   for i in range(min(len(pool), len(assets)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(max(0.0, min(rng.uniform(3, 10), deadline - time.monotonic())))
        page = rng.randrange(24)


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "poll":
        poll(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "browse":
        browse(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
    sys.stderr.write(f"http-client: {requests - failures}/{requests} requests ok\n")
    return 0 if requests and failures <= requests // 10 else 1


if __name__ == "__main__":
    sys.exit(main())
