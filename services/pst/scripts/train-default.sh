#!/usr/bin/env bash
# Reproduces the default models in services/pst/models exactly: training is deterministic (the hold-out
# split comes from each connection's position, counts and trees are serialized in a fixed order), so the
# same captures give byte-identical model files. Inputs:
#   lab/captures/train/*.pcap                 the lab's benign training corpus: benign.py's mix (benign-N.pcap:
#                                             web, SSH, DNS-like UDP, ping, IPv4 and IPv6) and one capture per
#                                             benign style (<style>.pcap: other HTTP servers and clients, scp,
#                                             rsync, git, DNS over TCP, NTP, SNMP, ICMP monitoring)
#   services/pst/training/benign-services.pcap.xz   this package's benign recording (scripts/gen-benign.sh):
#                                             HTTP, HTTPS, DNS over TCP, FTP control, SSH, a key-value
#                                             protocol and refused connections, between two namespaces
# usage: train-default.sh [OUT_DIR [TRAIN_DIR]]   (default: services/pst/models, lab/captures/train)
# TRAIN_DIR replaces the lab's training folder: `vigil eval --leave-one-out` trains each fold on the
# folder minus one style.
set -euo pipefail
# The captures are read in byte order of their names, whatever the locale: the order is in the model's hash.
export LC_ALL=C
root=$(cd "$(dirname "$0")/../../.." && pwd)
out=${1:-$root/services/pst/models}
train=${2:-$root/lab/captures/train}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inputs=()
for f in "$train"/*.pcap; do
  [ -f "$f" ] && inputs+=(--pcap "$f")
done
if [ ${#inputs[@]} -eq 0 ]; then
  echo "train-default.sh: no lab training captures in $train (record them with lab/record.sh train and train-styles)" >&2
  exit 1
fi
xz -dc "$root/services/pst/training/benign-services.pcap.xz" > "$tmp/benign-services.pcap"
inputs+=(--pcap "$tmp/benign-services.pcap")
[ -f "$root/services/pst/dist/cli.js" ] || (cd "$root" && npx tsc -b services/pst)
mkdir -p "$out"
rm -f "$out"/*.pst.json
node --input-type=module -e '
  const { trainCommand } = await import(process.argv[1]);
  process.exitCode = await trainCommand.run(process.argv.slice(2));
' "$root/services/pst/dist/cli.js" "${inputs[@]}" --out "$out"
