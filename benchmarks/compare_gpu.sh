#!/usr/bin/env bash
# `bbo compare` of an image or layout benchmark on one GPU machine, inside a wall-time budget, with
# what it ran brought back into $OUT:
#
#   OUT=/path/to/out bash benchmarks/compare_gpu.sh CONFIG [bbo compare options...]
#   BBO_WALL=200 OUT=/tmp/gpu-out bash benchmarks/compare_gpu.sh CONFIG --budget 200 ...   # a CPU rehearsal
#
# Wheels the machine lacks (diffusers, pydantic, ...: `bash benchmarks/pretrain_gpu_wheels.sh`, plus
# pebble and cma) are installed from .whl/ when that folder exists. RDKit is not needed (only the
# molecule oracles import it; molecule configs do not run this way). The run directory is packed
# into $OUT every minute and at the end (runs.tgz.00, .01, ...: `cat runs.tgz.* | tar -xz`), so a run cut off by the
# budget still brings back every finished run and the checkpoints to resume the others with the
# same `bbo compare` command here.
set -euo pipefail
: "${OUT:?set OUT to the folder that should receive the runs}"
config="${1:?name the benchmark YAML}"
shift
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$(dirname "$0")/.."
source benchmarks/gpu_env.sh
runs="${BBO_COMPARE_DIR:-/tmp/gpu-compare}"
wall="${BBO_WALL:-540}"
mkdir -p "$runs"
# BBO_RESTORE: a carried folder of runs.tgz.* pieces from an earlier call, to resume from
if [ -n "${BBO_RESTORE:-}" ]; then cat "$BBO_RESTORE"/runs.tgz.* | tar -xz -C "$runs"; fi

pack() {  # pieces under the 16 MiB a returned file may have; pictures are remade here
  tar -C "$runs" --exclude='*.png' --exclude='*.lock' -czf "$OUT/runs.tgz" .
  rm -f "$OUT"/runs.tgz.[0-9]*
  split -b 15M -d "$OUT/runs.tgz" "$OUT/runs.tgz."
  rm -f "$OUT/runs.tgz"
}
( while sleep 60; do pack 2> /dev/null || true; done ) &
watcher=$!
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2> /dev/null | tee "$OUT/device.txt" || true
start=$(date +%s)
status=0
timeout "$wall" python3 -c "from bbo.cli import app; app()" compare "$config" --out "$runs" "$@" \
  2>&1 | tee "$OUT/compare.log" || status=$?
echo "compare exit $status after $(( $(date +%s) - start )) s" | tee -a "$OUT/compare.log"
kill "$watcher" 2> /dev/null || true
pack
ls -la "$OUT"
