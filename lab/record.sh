#!/usr/bin/env bash
# Re-records Vigil's labelled captures in the lab (see README.md).
#
#   record.sh                 everything: training set, then evaluation set
#   record.sh train           lab/captures/train/benign-*.pcap
#   record.sh eval            lab/captures/eval/*.pcap (benign-only runs and one per attack)
#   record.sh NAME...         only these captures (benign-1, eval-benign-1, scan-syn, ...)
#
# Each capture runs on a freshly built lab; labels.json in each folder is
# regenerated from the pcaps afterwards. Environment: VLAB_OUT (default
# lab/captures) writes elsewhere, e.g. for a dry run.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
LAB="$LAB_DIR/lab.sh"
OUT=${VLAB_OUT:-$LAB_DIR/captures}
export VLAB=${VLAB:-vlab-rec}

# Training set: long benign runs (seconds, seed).
TRAIN=("benign-1:240:101" "benign-2:180:102")
# Benign-only evaluation runs, recorded separately with other seeds.
EVAL_BENIGN=("eval-benign-1:90:201" "eval-benign-2:90:202")
# Attack captures: benign background for PRE seconds, the attack, then POST seconds.
PRE=25
POST=10

CAP=
BG=
cleanup() {
  [ -n "$BG" ] && kill -TERM "$BG" 2>/dev/null
  [ -n "$CAP" ] && kill -INT "$CAP" 2>/dev/null
  rm -f "$OUT"/*/*.pcap.part
  "$LAB" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Children run in the background and are waited for, so that a signal reaches
# this script at once and cleanup ends them.
start_capture() {
  ip netns exec "$VLAB-victim" tcpdump -i eth0 -s "${VLAB_SNAPLEN:-160}" -U -n -q -w "$1" 2>/dev/null &
  CAP=$!
  sleep 1
}
stop_capture() {
  sleep 1
  kill -INT "$CAP"; wait "$CAP" || true
  CAP=
}
stop_background() {
  kill -TERM "$BG" 2>/dev/null; wait "$BG" 2>/dev/null || true
  BG=
}

[ "$(id -u)" -eq 0 ] || { echo "record.sh: needs root (network namespaces)" >&2; exit 1; }

record_benign() {
  local file=$1 seconds=$2 seed=$3
  echo "== $file: ${seconds}s benign, seed $seed"
  "$LAB" up >/dev/null
  mkdir -p "$(dirname "$file")"
  start_capture "$file.part"
  "$LAB" benign "$seconds" "$seed" &
  BG=$!
  wait "$BG" || echo "   (benign generators reported failures)"
  BG=
  stop_capture
  finish "$file"
}

# The capture belongs to whoever owns the folder (tcpdump writes as its own user).
finish() {
  mv "$1.part" "$1"
  chown --reference="$(dirname "$1")" "$1"
  "$LAB" down >/dev/null
}

record_attack() {
  local name=$1 seed=$2 file=$OUT/eval/$1.pcap
  echo "== $file: attack $name, background seed $seed"
  "$LAB" up >/dev/null
  mkdir -p "$OUT/eval"
  start_capture "$file.part"
  # The background runs longer than needed; it is cut once the capture ends.
  "$LAB" benign 400 "$seed" 2>/dev/null &
  BG=$!
  sleep "$PRE"
  local atk rc=0
  "$LAB" attack "$name" >"$OUT/eval/.$name.log" 2>&1 &
  atk=$!
  wait "$atk" || rc=$?
  [ $rc = 0 ] || echo "   (attack tool exited $rc; see $OUT/eval/.$name.log)"
  sleep "$POST"
  stop_capture
  stop_background
  rm -f "$OUT/eval/.$name.log"
  finish "$file"
}

want() {
  [ ${#SELECTED[@]} -eq 0 ] && return 0
  local s
  for s in "${SELECTED[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}

SELECTED=()
DO_TRAIN=1
DO_EVAL=1
case "${1:-}" in
  train) DO_EVAL=0 ;;
  eval) DO_TRAIN=0 ;;
  "") ;;
  *) SELECTED=("$@") ;;
esac

if [ $DO_TRAIN = 1 ]; then
  for t in "${TRAIN[@]}"; do
    IFS=: read -r name seconds seed <<<"$t"
    want "$name" && record_benign "$OUT/train/$name.pcap" "$seconds" "$seed"
  done
fi
if [ $DO_EVAL = 1 ]; then
  for t in "${EVAL_BENIGN[@]}"; do
    IFS=: read -r name seconds seed <<<"$t"
    want "$name" && record_benign "$OUT/eval/${name#eval-}.pcap" "$seconds" "$seed"
  done
  i=0
  for a in $("$LAB" attacks); do
    i=$((i + 1))
    want "$a" && record_attack "$a" $((300 + i))
  done
fi

for d in train eval; do
  if ls "$OUT/$d"/*.pcap >/dev/null 2>&1; then
    /usr/bin/python3 "$LAB_DIR/tools/labels.py" "$OUT/$d" "$LAB"
  fi
done
du -sh "$OUT"
