#!/usr/bin/env bash
# The extended tier on a lent GPU, as one short prepared run (issue 31): first thing in a
# session whose `status` shows a GPU.
#
#   bash benchmarks/gpu_extended.sh train   # throughput figures, then N=512 and N=1024 (ar first, then ni)
#   bash benchmarks/gpu_extended.sh fetch K # parts K..K+3 of the packed results into $OUT (next call, while warm)
#
# Every training run is the zoo's resumable ensemble trainer (`onionbench models train`),
# under one wall-clock budget (BUDGET_S, default 480 s): a run cut short leaves its last
# 1,000-step checkpoint, which resumes on any device, the CPU included. Results go to
# WORK (default /root/onionbench-gpu, outside the work tree) and are packed as one
# tar.gz split into 15 MiB parts, since the device tool brings back at most 64 MiB (8 files
# of 16 MiB) per call: `train` puts the throughput table and parts 0-2 under $OUT, `fetch 3`,
# `fetch 7`, ... the rest (call it at once: an idle machine goes back after 30 s). Here: `cat part-* | tar xz`, then `onionbench models embed`
# for N=512 and `models publish` for N=1024 (over 20 MB: not committed).
#
# Knobs for the CPU dry run in tests/test_gpu_script.py: DEVICE, SIZES, STEPS, BUDGET_S, WORK, PY.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
SIZES=${SIZES:-512 1024}
STEPS=${STEPS:-40000}
BUDGET_S=${BUDGET_S:-480}
WORK=${WORK:-/root/onionbench-gpu}
OUT=${OUT:-$WORK/out}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$WORK" "$OUT"
deadline=$(( $(date +%s) + BUDGET_S ))

left() { echo $(( deadline - $(date +%s) )); }

train_one() {  # hidden, variant: one ensemble of three seeds, cut at the deadline (checkpoint kept)
  local n=$1 v=$2 t
  t=$(left)
  if (( t < 20 )); then echo "skip N=$n $v: budget spent"; return 0; fi
  timeout --signal=INT "$t" "$PY" -m benchmark.cli models train --hidden "$n" --variant "$v" --seed 0 1 2 \
    --steps "$STEPS" --device "$DEVICE" --out "$WORK/zoo" --quiet \
    || echo "N=$n $v stopped at the budget (resume: the same command)"
}

pack() {  # everything trained so far, as 15 MiB parts
  rm -f "$WORK"/part-*
  (cd "$WORK" && tar czf - zoo throughput.json 2>/dev/null | split -b 15M -d - part-)
  ls "$WORK"/part-* | wc -l > "$WORK/parts.txt"
}

case "${1:-train}" in
  train)
    "$PY" benchmarks/train_throughput.py --device "$DEVICE" --sizes $SIZES --steps 20 --json "$WORK/throughput.json" \
      | tee "$OUT/throughput.txt"
    cp "$WORK/throughput.json" "$OUT/"
    for v in ar ni; do  # ar first: the open question is whether `ar` GRUs turn linear
      for n in $SIZES; do train_one "$n" "$v" & done
      wait
    done
    pack
    for p in $(ls "$WORK"/part-* | head -3); do cp "$p" "$OUT/"; done
    echo "parts: $(cat "$WORK/parts.txt") (this call brought $(ls "$OUT"/part-* | wc -l); the rest: fetch 3, fetch 7, ...)"
    ;;
  fetch)
    k=${2:?fetch needs a part number}
    for i in $(seq "$k" $(( k + 3 ))); do
      f="$WORK/part-$(printf '%02d' "$i")"
      if [[ -f $f ]]; then cp "$f" "$OUT/"; fi
    done
    ;;
  *) echo "usage: $0 train | fetch K" >&2; exit 2 ;;
esac
