#!/usr/bin/env python3
"""Writes the detection regression captures of issue 13 and their labels.json into OUT_DIR.

What an independent lab and real networks showed Vigil getting wrong, rebuilt packet by packet
(Ethernet pcap, real TCP sequence numbers so handshakes verify, checksums set), so the test
that replays them needs neither a lab nor the network. Seeded: the same files every run.

Benign (no address may be blocked):
  http10-poll      curl fetching one file per connection every 0.2-1 s from an HTTP/1.0 server
                   that closes first (server FIN), three clients
  parallel-get     six parallel downloads of 1 MB, twice (large packets from established connections)
  ssh-loop         `ssh host 'uname -a; ls /'` in a loop (key auth, command output; segments as recorded)
  snmp-burst       a poller's 200 small SNMP requests in 86 ms, every one answered, every 10 s
  udp-leftover     a media relay's UDP session, then its leftover datagrams answered with
                   port-unreachables by our host
Attacks (the attacker must be blocked):
  udp-scan-ratelimited  UDP probes of 600 ports in 60 s; our host answers 1 unreachable per second
  udp-scan-silent       masscan-style UDP probes of 1000 ports in 10 s, no answer at all
  ftp-brute        30 failed FTP logins in 60 s (one login per connection)
  ssh-slow-guess   11 short SSH sessions (password refused; segments as recorded) in 70 s

  regress.py OUT_DIR"""
import json
import os
import random
import struct
import sys

from forge import checksum  # the Internet checksum (RFC 1071), shared with forge.py

LOCAL = "10.88.0.10"
T0 = 1_800_000_000.0
SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10


def ip_bytes(a):
    return bytes(int(x) for x in a.split("."))


def mac(a):
    return b"\x02\x88" + ip_bytes(a)


class Capture:
    def __init__(self):
        self.frames = []
        self.ident = 1

    def ip(self, t, src, dst, proto, l4):
        self.ident = (self.ident + 1) & 0xFFFF
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), self.ident, 0x4000, 64, proto, 0, ip_bytes(src), ip_bytes(dst))
        hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
        self.frames.append((t, mac(dst) + mac(src) + b"\x08\x00" + hdr + l4))

    def tcp(self, t, src, dst, sport, dport, seq, ack, flags, n):
        payload = bytes(n)
        seg = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 64240, 0, 0) + payload
        pseudo = ip_bytes(src) + ip_bytes(dst) + struct.pack("!BBH", 0, 6, len(seg))
        seg = seg[:16] + struct.pack("!H", checksum(pseudo + seg)) + seg[18:]
        self.ip(t, src, dst, 6, seg)

    def udp(self, t, src, dst, sport, dport, n):
        seg = struct.pack("!HHHH", sport, dport, 8 + n, 0) + bytes(n)
        self.ip(t, src, dst, 17, seg)

    def unreachable(self, t, src, dst, offending):
        """ICMP port unreachable from src about the datagram `offending` (IP header + 8 bytes) it got from dst."""
        body = struct.pack("!BBHI", 3, 3, 0, 0) + offending
        body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        self.ip(t, src, dst, 1, body)

    def write(self, path):
        self.frames.sort(key=lambda f: f[0])
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for t, data in self.frames:
                sec = int(t)
                f.write(struct.pack("<IIII", sec, int(round((t - sec) * 1e6)) % 1_000_000, len(data), len(data)))
                f.write(data)
        return len(self.frames)


class Conn:
    """One TCP connection from client to server with real sequence numbers; `at` is its clock."""

    def __init__(self, cap, rnd, t, client, cport, server, sport):
        self.cap, self.rnd, self.at = cap, rnd, t
        self.ends = {True: (client, cport), False: (server, sport)}
        self.seq = {True: rnd.getrandbits(32), False: rnd.getrandbits(32)}

    def send(self, from_client, flags, n=0, dt=0.0004):
        self.at += dt
        (src, sp), (dst, dp) = self.ends[from_client], self.ends[not from_client]
        ack = self.seq[not from_client] if flags & ACK else 0
        self.cap.tcp(self.at, src, dst, sp, dp, self.seq[from_client], ack, flags, n)
        self.seq[from_client] += n + (1 if flags & (SYN | FIN) else 0)

    def open(self, rtt=0.0004):
        self.send(True, SYN, 0, 0)
        self.send(False, SYN | ACK, 0, rtt)
        self.send(True, ACK, 0, rtt)

    def data(self, from_client, total, dt=0.0004, mss=1448, ack_every=2):
        """`total` bytes in segments of at most mss, the last one pushed; the receiver ACKs every ack_every segments."""
        k = 0
        while total > 0:
            n = min(mss, total)
            total -= n
            self.send(from_client, ACK | (PSH if total == 0 else 0), n, dt)
            k += 1
            if k % ack_every == 0 or total == 0:
                self.send(not from_client, ACK, 0, 0.0001)

    def exchange(self, steps):
        """steps: (from_client, bytes, delay before) messages, each one pushed segment ACKed by the other side."""
        for from_client, n, delay in steps:
            self.send(from_client, PSH | ACK, n, delay)
            self.send(not from_client, ACK, 0, 0.0002)

    def close(self, client_first=True, dt=0.0004):
        self.send(client_first, FIN | ACK, 0, dt)
        self.send(not client_first, FIN | ACK, 0, 0.0003)
        self.send(client_first, ACK, 0, 0.0003)


def http10_poll(cap, rnd, benign):
    for i, client in enumerate(["10.88.0.21", "10.88.0.22", "10.88.0.23"]):
        benign.append(client)
        t = T0 + 0.05 * i
        port = 40000 + 1000 * i
        while t < T0 + 60:
            c = Conn(cap, rnd, t, client, port, LOCAL, 80)
            c.open()
            c.exchange([(True, 78 + rnd.randrange(20), 0.0002)])
            c.data(False, 180 + rnd.randrange(6000))
            c.close(client_first=False)
            port += 1
            t += rnd.uniform(0.2, 1.0)


def parallel_get(cap, rnd, benign):
    client = "10.88.0.21"
    benign.append(client)
    for burst in range(2):
        t = T0 + 20 * burst
        for k in range(6):
            c = Conn(cap, rnd, t + 0.002 * k, client, 50000 + 10 * burst + k, LOCAL, 80)
            c.open()
            c.exchange([(True, 120, 0.0002)])
            c.data(False, 1_000_000, dt=0.0011)
            c.close(client_first=True)


# OpenSSH sessions as recorded (OpenSSH 9.2 client and server, loopback): (from client, flags, payload, delay before).
# `ssh -i key host 'uname -a; ls /'`, 43 segments:
SSH_EXEC = [(True, "S", 0, 0), (False, "S.", 0, 0.0), (True, ".", 0, 0.0), (True, "P.", 41, 0.0048), (False, ".", 0, 0.0), (False, "P.", 41, 0.0163),
            (True, ".", 0, 0.0001), (True, "P.", 1560, 0.0002), (False, "P.", 1088, 0.0063), (True, ".", 0, 0.0419), (True, "P.", 1208, 0.0569),
            (False, "P.", 1564, 0.0195), (True, ".", 0, 0.0), (True, "P.", 16, 0.0311), (False, ".", 0, 0.0404), (True, "P.", 44, 0.0), (False, ".", 0, 0.0),
            (False, "P.", 44, 0.0001), (True, "P.", 60, 0.0007), (False, "P.", 76, 0.0067), (True, "P.", 140, 0.0002), (False, "P.", 100, 0.0013),
            (True, "P.", 308, 0.0005), (False, "P.", 28, 0.0139), (True, "P.", 112, 0.0009), (False, "P.", 256, 0.0308), (True, ".", 0, 0.0407),
            (False, "P.", 184, 0.0), (True, ".", 0, 0.0), (True, "P.", 120, 0.0001), (False, "P.", 72, 0.0021), (True, "P.", 36, 0.0004), (False, ".", 0, 0.0414),
            (False, "P.", 352, 0.2047), (False, "P.", 72, 0.0), (True, ".", 0, 0.0001), (True, "P.", 36, 0.0001), (False, ".", 0, 0.0), (True, "P.", 60, 0.0),
            (False, ".", 0, 0.0), (True, "F.", 0, 0.0), (False, "F.", 0, 0.0013), (True, ".", 0, 0.0)]
# `sshpass -p WRONG ssh host` (one password refused after OpenSSH's delay), 30 segments:
SSH_PASSWORD_FAIL = [(True, "S", 0, 0), (False, "S.", 0, 0.0), (True, ".", 0, 0.0), (True, "P.", 41, 0.0019), (False, ".", 0, 0.0), (False, "P.", 41, 0.0106),
                     (True, ".", 0, 0.0), (True, "P.", 1560, 0.0016), (False, "P.", 1088, 0.0011), (True, ".", 0, 0.0434), (True, "P.", 1208, 0.0866),
                     (False, "P.", 1564, 0.0277), (True, ".", 0, 0.0), (True, "P.", 16, 0.0399), (False, ".", 0, 0.0418), (True, "P.", 44, 0.0), (False, ".", 0, 0.0),
                     (False, "P.", 44, 0.0001), (True, ".", 0, 0.0), (True, "P.", 60, 0.0001), (False, "P.", 76, 0.0067), (True, "P.", 84, 0.0005),
                     (False, ".", 0, 0.0406), (False, "P.", 60, 0.0761), (True, "P.", 84, 0.0003), (False, ".", 0, 0.0), (False, "P.", 76, 1.9112),
                     (True, "F.", 0, 0.0098), (False, "F.", 0, 0.0045), (True, ".", 0, 0.0)]
FLAGS = {"S": SYN, "S.": SYN | ACK, ".": ACK, "P.": PSH | ACK, "F.": FIN | ACK}


def recorded(c, template):
    for from_client, flags, n, delay in template:
        c.send(from_client, FLAGS[flags], n, delay or 0.00005)


def ssh_loop(cap, rnd, benign):
    client = "10.88.0.22"
    benign.append(client)
    t, port = T0, 41000
    while t < T0 + 60:
        c = Conn(cap, rnd, t, client, port, LOCAL, 22)
        recorded(c, SSH_EXEC)
        port += 1
        t = c.at + rnd.uniform(0.05, 0.3)


def snmp_burst(cap, rnd, benign):
    poller = "10.88.0.24"
    benign.append(poller)
    for k in range(6):
        t = T0 + 10 * k
        for i in range(200):
            ts = t + i * 0.086 / 200
            cap.udp(ts, poller, LOCAL, 45000 + k, 161, 40 + rnd.randrange(20))
            cap.udp(ts + 0.0002, LOCAL, poller, 161, 45000 + k, 60 + rnd.randrange(60))


def udp_leftover(cap, rnd, benign):
    relay = "10.88.0.25"
    benign.append(relay)
    t = T0
    for i in range(1500):  # 30 s of audio/video both ways at 50 packets/s
        ts = t + i * 0.02
        cap.udp(ts, relay, LOCAL, 3478, 52000, 160 + rnd.randrange(900))
        cap.udp(ts + 0.003, LOCAL, relay, 52000, 3478, 160 + rnd.randrange(900))
    # The call ends on our side; the relay's last datagrams get port-unreachables, rate limited.
    for i in range(40):
        ts = t + 30 + i * 0.02
        cap.udp(ts, relay, LOCAL, 3478, 52000, 200)
        if i % 10 == 0:
            cap.unreachable(ts + 0.0001, LOCAL, relay, bytes(28))


def background(cap, rnd, benign):
    """An HTTP/1.1 keep-alive client: the ordinary traffic around an attack."""
    client = "10.88.0.23"
    benign.append(client)
    c = Conn(cap, rnd, T0, client, 39000, LOCAL, 443)
    c.open()
    while c.at < T0 + 70:
        c.exchange([(True, 300 + rnd.randrange(200), rnd.uniform(0.5, 2.0))])
        c.data(False, 500 + rnd.randrange(20000))


def udp_scan_ratelimited(cap, rnd, attackers):
    atk = "10.88.0.66"
    attackers.append(atk)
    ports = rnd.sample(range(1, 65536), 600)
    last_reply = -1.0
    for i, port in enumerate(ports):
        ts = T0 + 5 + i * 0.1
        cap.udp(ts, atk, LOCAL, 53211, port, rnd.choice([0, 0, 12, 40]))
        if ts - last_reply >= 1.0:  # the kernel's default: about one unreachable a second
            cap.unreachable(ts + 0.0001, LOCAL, atk, bytes(28))
            last_reply = ts


def udp_scan_silent(cap, rnd, attackers):
    atk = "10.88.0.67"
    attackers.append(atk)
    for i, port in enumerate(rnd.sample(range(1, 65536), 1000)):
        cap.udp(T0 + 5 + i * 0.01, atk, LOCAL, 61000, port, 0)


def ftp_brute(cap, rnd, attackers):
    atk = "10.88.0.66"
    attackers.append(atk)
    t, port = T0 + 5, 44000
    for _ in range(30):
        c = Conn(cap, rnd, t, atk, port, LOCAL, 21)
        c.open()
        c.exchange([(False, 20, 0.001), (True, 11, 0.0003), (False, 34, 0.0003), (True, 14, 0.0003), (False, 22, 0.4),
                    (True, 6, 0.0003), (False, 14, 0.0003)])
        c.close(client_first=False)
        port += 1
        t += 2.0


def ssh_slow_guess(cap, rnd, attackers):
    atk = "10.88.0.66"
    attackers.append(atk)
    t, port = T0 + 5, 45000
    for _ in range(11):
        c = Conn(cap, rnd, t, atk, port, LOCAL, 22)
        recorded(c, SSH_PASSWORD_FAIL)
        port += 1
        t += 7.0


BENIGN = {"http10-poll": http10_poll, "parallel-get": parallel_get, "ssh-loop": ssh_loop, "snmp-burst": snmp_burst, "udp-leftover": udp_leftover}
ATTACKS = {"udp-scan-ratelimited": udp_scan_ratelimited, "udp-scan-silent": udp_scan_silent, "ftp-brute": ftp_brute, "ssh-slow-guess": ssh_slow_guess}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    captures = []
    for name, gen in {**BENIGN, **ATTACKS}.items():
        rnd = random.Random(name)
        cap = Capture()
        benign, attackers = [], []
        if name in ATTACKS:
            background(cap, rnd, benign)
            gen(cap, rnd, attackers)
        else:
            gen(cap, rnd, benign)
        n = cap.write(os.path.join(out, f"{name}.pcap"))
        label = {"file": f"{name}.pcap", "kind": "attack" if attackers else "benign", "packets": n,
                 "first_ts": cap.frames[0][0], "last_ts": cap.frames[-1][0], "benign": sorted(set(benign))}
        if attackers:
            label.update({"attack": name, "expect": "block", "attackers": attackers, "attack_start": T0 + 5})
        captures.append(label)
    labels = {"version": 1, "description": "Detection regression captures of issue 13 (lab/tools/regress.py)", "local": [f"{LOCAL}/32"], "captures": captures}
    with open(os.path.join(out, "labels.json"), "w") as f:
        json.dump(labels, f, indent=1)


if __name__ == "__main__":
    main()
