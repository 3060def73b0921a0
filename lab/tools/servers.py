"""Server implementations a benign style brings up on the victim for its run
(started in the victim's namespace, stopped when the style ends), besides the
services `lab.sh up` starts for good (httpd.py on :80, sshd, udpd.py on :53).

  py-http10   python3 -m http.server :8000 (HTTP/1.0: the server closes after
              each response, so it sends the first FIN)
  busybox     busybox httpd :8081 (one request per connection, server closes)
  nginx       Debian's nginx :8080 (HTTP/1.1, keep-alive 65 s)
  dns-tcp     dnstcp.py :53/tcp (the UDP side is udpd.py)
  ntp         ntp.py serve :123/udp
  snmp        snmp.py serve :161/udp
"""
import os
import shutil
import subprocess
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable

# name: (port, protocol, binary that must exist)
SERVERS = {
    "py-http10": (8000, "tcp", PY),
    "busybox": (8081, "tcp", "busybox"),
    "nginx": (8080, "tcp", "nginx"),
    "dns-tcp": (53, "tcp", PY),
    "ntp": (123, "udp", PY),
    "snmp": (161, "udp", PY),
}


def missing(name: str) -> str | None:
    binary = SERVERS[name][2]
    if shutil.which(binary) or os.path.exists(f"/usr/sbin/{binary}"):
        return None
    return f"{binary} is not installed (scripts/deps/lab.apt)"


def nginx_conf(state: str, port: int) -> str:
    d = f"{state}/nginx"
    os.makedirs(d, exist_ok=True)
    conf = f"{d}/nginx.conf"
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  types {{ text/html html; text/css css; application/octet-stream bin; }}
  sendfile on;
  keepalive_timeout 65;
  server {{
    listen {port};
    listen [::]:{port};
    root {state}/www;
  }}
}}
""")
    return conf


def command(name: str, state: str) -> list[str]:
    port = SERVERS[name][0]
    www = f"{state}/www"
    if name == "py-http10":
        return [PY, "-m", "http.server", str(port), "--bind", "::", "--directory", www]
    if name == "busybox":
        return ["busybox", "httpd", "-f", "-p", f"[::]:{port}", "-h", www]
    if name == "nginx":
        return ["nginx", "-c", nginx_conf(state, port), "-g", "daemon off;"]
    if name == "dns-tcp":
        return [PY, f"{TOOLS}/dnstcp.py", "--port", str(port)]
    if name == "ntp":
        return [PY, f"{TOOLS}/ntp.py", "serve", "--port", str(port)]
    if name == "snmp":
        return [PY, f"{TOOLS}/snmp.py", "serve", "--port", str(port)]
    raise KeyError(name)


def ready(ns: str, name: str) -> bool:
    """Probed over the victim's loopback, so the probe never reaches the capture."""
    port, proto, _ = SERVERS[name]
    if proto == "udp":
        out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hlun", f"sport = :{port}"], capture_output=True, text=True).stdout
    else:
        out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
    return bool(out.strip())


class Servers:
    """Starts the named servers in the victim's namespace; stop() ends them."""

    def __init__(self, prefix: str, state: str, names: list[str]) -> None:
        self.ns = f"{prefix}-victim"
        self.state = state
        self.procs: list[subprocess.Popen] = []
        for name in names:
            log = open(f"{state}/{name}.log", "ab")
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns, *command(name, state)],
                                               stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True))
        for name in names:
            for _ in range(100):
                if ready(self.ns, name):
                    break
                time.sleep(0.05)
            else:
                self.stop()
                raise RuntimeError(f"server {name} did not come up (see {state}/{name}.log)")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []


