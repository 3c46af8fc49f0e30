#!/usr/bin/env bash
# Every figure the README gives for a model directory (default: the shipped one), in one run (~25 min on 2
# CPU cores). Tables go to runs/eval/*.txt, WorldBench folders to runs/wb-SPLIT, the contact sheet to docs/.
#
#   scripts/eval_default.sh                      # the shipped model
#   MODEL=runs/world-xs-dit/model scripts/eval_default.sh
#   CEILING=0 MODEL=... scripts/eval_default.sh  # skip the VAE ceiling (same VAE as the last evaluation)
#   MIX=full scripts/eval_default.sh             # the splits of another scene mix (default: simple, the mix the
#                                                # shipped model was trained on; `id` of the full world is always run)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
MODEL=${MODEL:-tenku/assets/world-xs}
MIX=${MIX:-simple}
mkdir -p runs/eval

# The VAE's ceiling: WorldBench on ground-truth clips after a VAE round trip.
[ "${CEILING:-1}" = 0 ] || $PY bench/vae_ceiling.py "$MODEL" --count 64 --mix "$MIX" | tee runs/eval/vae_ceiling.txt

# wb NAME ARGS...: WorldBench, 64 clips, seed 0, into runs/NAME and runs/eval/NAME.txt (the detector floor on
# ground truth beside each score).
wb() {
  local name=$1; shift
  rm -rf "runs/$name"
  .venv/bin/tenku worldbench run --model "$MODEL" --count 64 --seed 0 --out "runs/$name" "$@" | tee "runs/eval/$name.txt"
}
for split in id paraphrase ood combo; do wb "wb-$split" --split "$split" --mix "$MIX"; done
[ "$MIX" = full ] || wb wb-id-full --split id --mix full

# Sampling: `id` again at other guidance scales than the model's default (its config.json sample.guidance) and
# with half the sampler steps; GUIDANCES="2 7", HALF_STEPS=1.
for g in ${GUIDANCES:-2 7}; do wb "wb-id-g$g" --split id --mix "$MIX" --guidance "$g"; done
steps=$($PY -c "from tenku.checkpoint import load_model_config; print(load_model_config('$MODEL').sample.steps // 2)")
[ "${HALF_STEPS:-1}" = 0 ] || wb "wb-id-s$steps" --split id --mix "$MIX" --steps "$steps"

# Contact sheet (ground truth above the model's video), the default command's time and memory, conditioning.
$PY scripts/sample_sheet.py runs/wb-id docs/default_samples.png
$PY bench/generate_default.py --runs 3 --model "$MODEL" | tee runs/eval/generate_default.txt
$PY bench/conditioning_quality.py --model "$MODEL" --seconds 60 | tee runs/eval/conditioning.txt
$PY bench/long_video.py --model "$MODEL" | tee runs/eval/long_video.txt
