#!/usr/bin/env bash
# Re-records Vigil's labelled captures in the lab (see README.md).
#
#   record.sh                 everything: training set, then evaluation set
#   record.sh train           lab/captures/train/benign-*.pcap
#   record.sh eval            lab/captures/eval/*.pcap (benign-only runs and one per attack)
#   record.sh NAME...         only these captures (benign-1, eval-benign-1, scan-syn, ...)
#   record.sh styles DIR [STYLE...]    one capture per benign style (lab.sh generators):
#                                      DIR/<style>.pcap, as long as styles.py lists for it
#                                      (VLAB_STYLE_SECONDS overrides)
#   record.sh train-styles [STYLE...] the styles' training captures: train/<style>.pcap, with
#                                      other seeds (700 + place) and runs half as long again
#                                      as the held-out ones (styles DIR uses 500 + place)
#   record.sh attacks DIR [ATTACK...]  one capture per attack over benign background:
#                                      DIR/<attack>.pcap (default: the attacks the ICMP
#                                      rate limit matters for, and the three added with it)
#
# Each capture runs on a freshly built lab; labels.json in each folder is
# regenerated from the pcaps afterwards. Environment: VLAB_OUT (default
# lab/captures) writes train and eval elsewhere, e.g. for a dry run;
# VLAB_ICMP_RATELIMIT=lifted records with the victim's ICMP rate limit lifted
# (how train/ and eval/ were recorded; default: the kernel's limit).
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
  rm -f "$OUT"/*/*.pcap.part ${PART:+"$PART"}
  "$LAB" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Children run in the background and are waited for, so that a signal reaches
# this script at once and cleanup ends them.
PART=
start_capture() {
  PART=$1
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
  local name=$1 seed=$2 dir=${3:-$OUT/eval}
  local file=$dir/$name.pcap
  echo "== $file: attack $name, background seed $seed"
  "$LAB" up >/dev/null
  mkdir -p "$dir"
  start_capture "$file.part"
  # The background runs longer than needed; it is cut once the capture ends.
  "$LAB" benign 400 "$seed" 2>/dev/null &
  BG=$!
  sleep "$PRE"
  local atk rc=0
  "$LAB" attack "$name" >"$dir/.$name.log" 2>&1 &
  atk=$!
  wait "$atk" || rc=$?
  [ $rc = 0 ] || echo "   (attack tool exited $rc; see $dir/.$name.log)"
  sleep "$POST"
  stop_capture
  stop_background
  rm -f "$dir/.$name.log"
  finish "$file"
}

# One benign style on its own (lab.sh generate), no other traffic.
record_style() {
  local name=$1 seconds=$2 seed=$3 file=$4
  echo "== $file: style $name, ${seconds}s, seed $seed"
  "$LAB" up >/dev/null
  mkdir -p "$(dirname "$file")"
  start_capture "$file.part"
  "$LAB" generate "$name" "$seconds" "$seed" &
  BG=$!
  wait "$BG" || echo "   (the style reported failures)"
  BG=
  stop_capture
  finish "$file"
}

label() {
  /usr/bin/python3 "$LAB_DIR/tools/labels.py" "$1" "$LAB" \
    "Vigil lab captures ($2; victim ICMP rate limit: ${VLAB_ICMP_RATELIMIT:-default}): see lab/README.md for the format"
}

# Attacks whose capture depends on the victim's ICMP rate limit, and those added with the default limit.
DEFAULT_ICMP_ATTACKS=(scan-udp scan-udp-silent ftp-brute ssh-slow)

want() {
  [ ${#SELECTED[@]} -eq 0 ] && return 0
  local s
  for s in "${SELECTED[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}

if [ "${1:-}" = styles ] || [ "${1:-}" = attacks ] || [ "${1:-}" = train-styles ]; then
  mode=$1
  if [ "$mode" = train-styles ]; then
    # Never the held-out recordings' seeds or lengths: a style's training capture and its
    # held-out one are two different runs.
    dir=$OUT/train seed_base=700 stretch=15
    shift 1
  else
    dir=${2:?"usage: record.sh $mode DIR [NAME...]"} seed_base=500 stretch=10
    shift 2
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$mode" != attacks ]; then
    # Seeds follow the style's place in the list, so re-recording one style
    # alone gives it the same seed.
    mapfile -t list < <(/usr/bin/python3 "$LAB_DIR/tools/styles.py" list)
    i=0
    for line in "${list[@]}"; do
      IFS=$'\t' read -r n seconds _ <<<"$line"
      i=$((i + 1))
      if [ $# -gt 0 ]; then
        case " $* " in *" $n "*) ;; *) continue ;; esac
      fi
      record_style "$n" "${VLAB_STYLE_SECONDS:-$((seconds * stretch / 10))}" $((seed_base + i)) "$dir/$n.pcap"
    done
    if [ "$mode" = styles ]; then
      label "$dir" "one benign style per capture"
    else
      label "$dir" "benign only; benign-N.pcap: benign.py's mix, recorded with the ICMP rate limit lifted; <style>.pcap: one benign style each"
    fi
  else
    names=("$@")
    [ ${#names[@]} -gt 0 ] || names=("${DEFAULT_ICMP_ATTACKS[@]}")
    i=0
    for n in "${names[@]}"; do
      i=$((i + 1))
      record_attack "$n" $((600 + i)) "$dir"
    done
    label "$dir" "attacks over benign background"
  fi
  du -sh "$dir"
  exit 0
fi

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
