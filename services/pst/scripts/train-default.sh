#!/usr/bin/env bash
# Reproduces the default models in services/pst/models exactly: training is deterministic (the hold-out
# split comes from each connection's position, counts and trees are serialized in a fixed order), so the
# same captures give byte-identical model files. Inputs:
#   lab/captures/train/benign-*.pcap          the lab's benign training captures (web, SSH, IPv4 and IPv6)
#   services/pst/training/benign-services.pcap.xz   this package's benign recording (scripts/gen-benign.sh):
#                                             HTTP, HTTPS, DNS over TCP, FTP control, SSH, a key-value
#                                             protocol and refused connections, between two namespaces
# usage: train-default.sh [OUT_DIR]   (default: services/pst/models)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
out=${1:-$root/services/pst/models}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
inputs=()
for f in "$root"/lab/captures/train/benign-*.pcap; do
  [ -f "$f" ] && inputs+=(--pcap "$f")
done
if [ ${#inputs[@]} -eq 0 ]; then
  echo "train-default.sh: no lab training captures in lab/captures/train (record them with lab/record.sh train)" >&2
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
