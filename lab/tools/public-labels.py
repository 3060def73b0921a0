#!/usr/bin/env python3
"""Writes lab/captures/public-labels.json: labels for the public captures in
../shared/data/pcaps/public (see its SOURCES.md for attribution), so that
`vigil eval ../shared/data/pcaps/public --labels lab/captures/public-labels.json`
scores Vigil on traffic nobody in the project recorded.

The table below is the hand-made part (read from each capture with tcpdump);
counts and times are taken from the files.

  public-labels.py PUBLIC_DIR OUT.json"""
import json
import os
import subprocess
import sys

# file: (kind, local, attackers, expect, note)
TABLE = {
    "chrissanders--synscan.pcapng": ("attack", ["64.13.134.52/32"], ["172.16.0.8"], "block", "SYN port scan"),
    "chrissanders--activeosfingerprinting.pcapng": ("attack", ["172.16.16.150/32"], ["172.16.16.128"], "block", "nmap -O OS fingerprinting (37 probes)"),
    "stratosphere--malicious-ssh-bruteforce.pcap": ("attack", ["147.32.80.37/32"], ["147.32.80.40"], "block", "nmap ssh-brute against port 902"),
    "stratosphere--icmp-portscan.pcap": ("attack", ["192.168.1.0/24"], ["192.168.1.109"], "block",
                                         "ICMP ping sweep of the LAN from inside it: attacker and targets share the local network"),
    "stopddos--pkt.TCP.synflood.spoofed.pcap": ("attack", ["10.10.10.10/32"], [], "detect", "SYN flood from forged sources (one-way)"),
    "stopddos--pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng": ("attack", ["10.10.10.10/32"], [], "detect", "SYN+ECN+CWR flood from forged sources (one-way)"),
    "stopddos--amp.TCP.reflection.SYNACK.pcap": ("attack", ["10.10.10.10/32"], [], "detect", "SYN-ACK reflection: replies of real servers to forged SYNs"),
    "stopddos--amp.UDP.isakmp.pcap": ("attack", ["10.10.10.10/32"], [], "detect", "ISAKMP amplification from reflectors"),
    "stopddos--amp.UDP.snmp.src161.pcapng": ("attack", ["10.10.10.10/32"], [], "detect", "SNMP amplification from reflectors"),
    "stopddos--amp.dns.RRSIG.fragmented.pcap": ("attack", ["10.10.10.10/32"], [], "detect", "fragmented DNS RRSIG amplification from reflectors"),
    "chrissanders--http_espn.pcapng": ("benign", None, [], None, "web browsing"),
    "chrissanders--http_google.pcapng": ("benign", None, [], None, "web browsing"),
    "chrissanders--http_ip4and6.pcapng": ("benign", None, [], None, "web browsing over IPv4 and IPv6"),
    "chrissanders--tcp_ports.pcapng": ("benign", ["172.16.16.128/32"], [], None, "a web client fetching from several servers"),
    "chrissanders--dns_tcp.pcapng": ("benign", None, [], None, "DNS over TCP"),
    "chrissanders--icmp_traceroute.pcapng": ("benign", None, [], None, "traceroute"),
    "chrissanders--ip_frag_source.pcapng": ("benign", None, [], None, "fragmented IPv4 ping"),
    "chrissanders--ipv6_fragments.pcapng": ("benign", None, [], None, "fragmented IPv6"),
    "chrissanders--tcp_handshake.pcapng": ("benign", None, [], None, "one TCP handshake"),
    "chrissanders--tcp_retransmissions.pcapng": ("benign", None, [], None, "TCP retransmissions"),
    "chrissanders--tcp_teardown.pcapng": ("benign", None, [], None, "TCP teardown"),
}


def rows(path: str) -> list[tuple[float, str]]:
    out = subprocess.run(["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=,", "-e", "frame.time_epoch",
                          "-e", "ip.src", "-e", "ipv6.src"], check=True, capture_output=True, text=True).stdout
    res = []
    for line in out.splitlines():
        ts, v4, v6 = (line.split(",") + ["", ""])[:3]
        res.append((float(ts), (v4 or v6).split(",")[0]))
    return res


def main(public: str, out: str) -> None:
    captures = []
    for name in sorted(TABLE):
        path = os.path.join(public, name)
        if not os.path.exists(path):
            sys.exit(f"public-labels.py: {path}: missing")
        kind, local, attackers, expect, note = TABLE[name]
        r = rows(path)
        ip = [x for x in r if x[1]]
        entry = {"file": name, "kind": kind, "packets": len(r), "first_ts": r[0][0], "last_ts": r[-1][0], "benign": [], "note": note}
        if local:
            entry["local"] = local
        if kind == "attack":
            if attackers:
                first = [x[0] for x in ip if x[1] in attackers]
                if not first:
                    sys.exit(f"public-labels.py: {name}: no packet from {attackers}")
                start = first[0]
            else:
                start = ip[0][0]
            reflected = "reflection" in note or "amplification" in note
            entry.update({"attack": name.split("--", 1)[1].rsplit(".", 1)[0], "expect": expect, "attackers": attackers,
                          "spoofed": expect == "detect" and not reflected, "attack_start": start})
            if reflected:
                # Reflectors are real servers sending real traffic: blocking
                # them is not blocking a forged address.
                entry["reflected"] = True
        captures.append(entry)
    doc = {"version": 1, "description": "Labels for ../shared/data/pcaps/public (attribution in its SOURCES.md); generated by lab/tools/public-labels.py",
           "captures": captures}
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"public-labels: {out}: {len(captures)} captures")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: public-labels.py PUBLIC_DIR OUT.json")
    main(sys.argv[1], sys.argv[2])
