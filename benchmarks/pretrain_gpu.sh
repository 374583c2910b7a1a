#!/usr/bin/env bash
# The whole molecular prior (autoencoder, latent diffusion, decoder stage, consistency model) on one
# GPU inside 9 minutes of wall time, with everything that comes back written into $OUT.
#
#   OUT=/path/to/out bash benchmarks/pretrain_gpu.sh              # on a CUDA machine
#   BBO_REHEARSAL=1 OUT=/tmp/gpu-out bash benchmarks/pretrain_gpu.sh   # the same steps on a CPU, tiny
#
# Wheels the machine lacks (diffusers, selfies, pydantic, ...) are installed from .whl/ when that
# folder exists. The training is budgeted by wall time (`bbo pretrain molecule --minutes`: 55% the
# autoencoder, 25% the diffusion, 10% the decoder stage, each with its cosine decay over its own
# share; then the consistency distillation), so it ends inside the budget on hardware whose step
# rate is not known in advance. Stages checkpoint at least every minute; the prior directory is
# written once the diffusion is trained and again at the end, and a watcher packs the newest one
# into $OUT every minute, so a cut-off run still brings back a usable prior.
#
# The recipe, chosen from what limits the shipped CPU-trained prior (400,000 molecules, 12,000
# steps of batch 256 at beta 0.1, GRUs of 128/256 units; its posteriors pinned to 0.06-0.2 of the
# latent spread, 25 of 64 dimensions unused, a decoder natural only near training latents): all
# 1.58 million MOSES training molecules, the default GRU widths (256/512), batches of 1,024, a
# higher KL weight (beta 0.2) with free bits (0.1 nat per dimension) for a wider and fuller
# latent, and the decoder stage on latents pushed off the data by up to 1.5 standard deviations
# (the best setting measured on the CPU). The prior comes back as $OUT/prior.tar.00, .01, ...
# (pieces under the 16 MiB a returned file may have): `cat prior.tar.* | tar -x`. Measure the result with
# `python benchmarks/prior_quality.py DIR --n 10000 --ref 10000` and
# `python benchmarks/prior_locality.py moses-selfies DIR` (both need RDKit, which is not carried).
set -euo pipefail
: "${OUT:?set OUT to the folder that should receive the prior}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$(dirname "$0")/.."
source benchmarks/gpu_env.sh
work="${BBO_PRETRAIN_DIR:-/tmp/pretrain-molecule}"
mkdir -p "$work"

if [ -n "${BBO_REHEARSAL:-}" ]; then
  budget=(--minutes 0.2 --n-train 2000 --batch-size 64 --consistency-steps 20 --device cpu)
  wall=120
else
  # on an H200 the stages took their 90% of 7.5 minutes (405 s), start-up and tokenizing about
  # 85 s and the distillation 45 s (88 steps/s): 7.5 overran the 530 s cut-off by a few seconds
  # inside the distillation, so the budget leaves that room now
  budget=(--minutes 6.8 --batch-size 1024 --consistency-steps 4000 --device cuda)
  wall=530
fi
recipe=(--beta 0.2 --free-bits 0.1 --decoder-noise 1.5
        --vae-steps 1000000 --diffusion-steps 1000000 --decoder-steps 1000000)

# the shipped prior's vocabulary (built from the first 200,000 MOSES training molecules, as a fresh
# build would be) saves the half minute a build takes
[ -f "$work/vocab.json" ] || python3 -c "
import json, sys
json.dump(json.load(open('bbo/diffusion/zoo/moses-selfies/codec.json'))['config']['vocab'], open(sys.argv[1], 'w'))
" "$work/vocab.json"

pack() {
  if [ -f "$work/prior/config.json" ]; then
    # a prior being rewritten at that moment is skipped: the next minute, or the final pack, takes it
    tar -C "$work" -cf "$work/prior.tar.new" prior 2> /dev/null || return 0
    rm -f "$OUT"/prior.tar.*
    split -b 15M -d "$work/prior.tar.new" "$OUT/prior.tar."
  fi
  [ -f "$work/log.csv" ] && cp "$work/log.csv" "$OUT/log.csv"
  return 0
}
( while sleep 60; do pack; done ) &
watcher=$!
stop_watcher() { kill "$watcher" 2> /dev/null || true; wait "$watcher" 2> /dev/null || true; }
trap 'stop_watcher; pack' EXIT

{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU"; } > "$OUT/hardware.txt"
start=$(date +%s)
status=0
# the molecule recipe's own command line: `bbo pretrain molecule` without loading RDKit, not carried
timeout "$wall" python3 -m bbo.domains.molecule.cli --out "$work" \
  "${recipe[@]}" "${budget[@]}" > "$OUT/pretrain.log" 2>&1 || status=$?
echo "pretrain exit $status after $(( $(date +%s) - start )) s" | tee -a "$OUT/pretrain.log"
stop_watcher
pack
[ -f "$work/prior/config.json" ] && python3 - "$work/prior/config.json" <<'EOF' | tee -a "$OUT/pretrain.log" || true
import json, sys
info = json.load(open(sys.argv[1])).get("info", {})
print({k: info.get(k) for k in ("vae_steps", "diffusion_steps", "decoder_steps", "train_seconds", "hardware")})
EOF
exit "$status"
