#!/usr/bin/env python3
"""Writes labels.json for a folder of lab captures, from the pcaps themselves.

  labels.py DIR LAB_SH [DESCRIPTION]

The capture's file name says what it holds: benign-N.pcap is benign only,
<style>.pcap one benign style of styles.py (its description goes to "note"),
<attack>.pcap holds that attack over benign background. The attack's packets
are recognised by the attacking namespace's MAC address (fixed in lab.sh),
which also holds for forged source addresses; the attack start is the capture
time of the first IP packet from that MAC."""
import json
import os
import subprocess
import sys

ATTACKS = {
    "scan-syn": ("atk", "nmap -sS -T4 --top-ports 1000", "block"),
    "scan-connect": ("atk", "nmap -sT -T4 --top-ports 1000", "block"),
    "scan-xmas": ("atk", "nmap -sX -T4 --top-ports 1000", "block"),
    "scan-fin": ("atk", "nmap -sF -T4 --top-ports 1000", "block"),
    "scan-null": ("atk", "nmap -sN -T4 --top-ports 1000", "block"),
    "scan-udp": ("atk", "nmap -sU -T4 --top-ports 200", "block"),
    "scan-slow": ("atk", "nmap -sS -T2 --top-ports 100", "block"),
    "scan-ipv6": ("atk", "nmap -6 -sS -T4 --top-ports 1000", "block"),
    "flood-syn": ("atk", "hping3 -S -p 80 -i u250 -c 8000", "block"),
    "flood-udp": ("atk", "hping3 --udp -p 53 -d 64 -i u250 -c 8000", "block"),
    "flood-icmp": ("atk", "hping3 --icmp -d 56 -i u250 -c 8000", "block"),
    "flood-frag": ("atk", "hping3 --udp -p 53 -d 600 -f -m 200 -i u1000 -c 2000", "block"),
    # Forged sources: blocking them would block random innocent addresses.
    "flood-spoofed": ("atk2", "hping3 -S -p 80 --rand-source -i u250 -c 8000", "detect"),
    "ssh-brute": ("atk", "nmap -p 22 --script ssh-brute (4 users x 20 passwords)", "block"),
    "scan-udp-silent": ("atk", "udp-sweep.py: UDP ports 1-1000 at 100/s, dropped by the victim (no answer)", "block"),
    "ftp-brute": ("atk", "curl ftp://USER:PASS@victim/: 30 failed logins in 60 s, one connection each", "block"),
    "ssh-slow": ("atk", "sshpass ssh: 11 sessions in about 70 s, one wrong password each", "block"),
}
CLIENTS = ["c1", "c2", "c3"]


def lab(lab_sh: str, *args: str) -> str:
    return subprocess.run([lab_sh, *args], check=True, capture_output=True, text=True).stdout.strip()


def packets(pcap: str) -> list[tuple[float, str, str]]:
    """(time, source MAC, source IP or '') for every frame."""
    out = subprocess.run(
        ["tshark", "-n", "-r", pcap, "-T", "fields", "-E", "separator=,", "-e", "frame.time_epoch",
         "-e", "eth.src", "-e", "ip.src", "-e", "ipv6.src"],
        check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        ts, mac, v4, v6 = (line.split(",") + ["", "", ""])[:4]
        # ICMP errors quote the offending header: tshark then lists two sources.
        rows.append((float(ts), mac.lower(), (v4 or v6).split(",")[0]))
    return rows


def is_link_local(a: str) -> bool:
    return a == "::" or a.lower().startswith("fe80:")


def styles(lab_sh: str) -> dict[str, str]:
    """The benign styles (lab.sh generators) and what each is."""
    tools = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, os.path.join(tools, "styles.py"), "list"], check=True, capture_output=True, text=True).stdout
    return {n: what for n, _, what in (line.split("\t", 2) for line in out.splitlines() if line)}


def main(folder: str, lab_sh: str, description: str) -> None:
    style_notes = styles(lab_sh)
    victim = [lab(lab_sh, "addr4", "victim"), lab(lab_sh, "addr6", "victim")]
    benign = [a for c in CLIENTS for a in (lab(lab_sh, "addr4", c), lab(lab_sh, "addr6", c))]
    macs = {h: lab(lab_sh, "mac", h) for h in ("atk", "atk2")}
    captures = []
    for name in sorted(f for f in os.listdir(folder) if f.endswith(".pcap")):
        stem = name[:-5]
        rows = packets(os.path.join(folder, name))
        entry = {
            "file": name,
            "kind": "benign" if stem.startswith("benign-") or stem in style_notes else "attack",
            "packets": len(rows),
            "first_ts": rows[0][0] if rows else None,
            "last_ts": rows[-1][0] if rows else None,
            "benign": [a for a in benign if any(r[2] == a for r in rows)],
        }
        if stem in style_notes:
            entry["note"] = f"benign style {stem}: {style_notes[stem]}"
        if entry["kind"] == "attack":
            if stem not in ATTACKS:
                sys.exit(f"labels.py: {name}: no attack named {stem!r} (known: {', '.join(ATTACKS)})")
            host, tool, expect = ATTACKS[stem]
            # Link-local and unspecified sources are the host's own neighbour
            # discovery and multicast chatter, not the attack.
            attack_rows = [r for r in rows if r[1] == macs[host] and r[2] and not is_link_local(r[2])]
            if not attack_rows:
                sys.exit(f"labels.py: {name}: no packet from the attacker's MAC {macs[host]}")
            sources = sorted({r[2] for r in attack_rows})
            entry.update({
                "attack": stem,
                "tool": tool,
                "expect": expect,
                "attackers": sources if expect == "block" else [],
                "sender": lab(lab_sh, "addr4", host),
                "sender_mac": macs[host],
                "spoofed": expect != "block",
                "forged_sources": len(sources) if expect != "block" else 0,
                "attack_start": attack_rows[0][0],
                "attack_end": attack_rows[-1][0],
                "attack_packets": len(attack_rows),
            })
        captures.append(entry)
    doc = {
        "version": 1,
        "description": description,
        "local": [f"{victim[0]}/32", f"{victim[1]}/128"],
        "captures": captures,
    }
    with open(os.path.join(folder, "labels.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"labels: {os.path.join(folder, 'labels.json')}: {len(captures)} captures")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: labels.py DIR LAB_SH [DESCRIPTION]")
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else "Vigil lab captures: see lab/README.md for the format")
