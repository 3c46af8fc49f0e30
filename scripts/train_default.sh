#!/usr/bin/env bash
# Reproduce the shipped default model (preset world-xs) from nothing: make Tenku World, train the VAE,
# cache latents, train the DiT, ship the EMA weights in half precision into tenku/assets/world-xs.
#
#   scripts/train_default.sh                         # whole recipe (resumes any stage that was interrupted)
#   VAE_MINUTES=40 DIT_MINUTES=60 scripts/train_default.sh
#   VAE_MINUTES=0 scripts/train_default.sh           # 0 minutes: no more training of that stage, export only
#   DIT_INIT=runs/old-dit/model scripts/train_default.sh   # start the DiT from an earlier run's weights (after
#                                                    # more VAE training its latents drift; fine-tuning beats restarting)
#   ANNEAL_STEPS=7000 DIT_MINUTES=0 scripts/train_default.sh  # then anneal the DiT: cosine LR decay to 5% over
#                                                    # 7,000 steps, from its weights; ships the annealed one
#
# Each stage trains for a wall-clock budget, then finishes its run (export) from the last checkpoint; rerun
# the script to continue training from where it stopped (it resumes, it never starts over).
set -euo pipefail
cd "$(dirname "$0")/.."
T=.venv/bin/tenku
VAE_MINUTES=${VAE_MINUTES:-60}
DIT_MINUTES=${DIT_MINUTES:-120}
CACHE_CLIPS=${CACHE_CLIPS:-12000}

# 1. The world: 20,000 training clips at three aspect ratios, 1 to 33 frames, 8 fps.
[ -f data/world-train/manifest.jsonl ] || $T world make --out data/world-train --count 20000 --split train \
    --seed 0 --sizes 64x64 48x80 80x48 --frames-choices 1 9 17 33 --fps 8

# run_for MINUTES RUN_DIR ARGS...: train (resuming if the run exists) for a time budget, then export.
run_for() {
  local minutes=$1 run=$2; shift 2
  local resume=(); [ -f "$run/config.json" ] && resume=(--resume)
  [ "$minutes" -gt 0 ] && { timeout --signal=KILL "${minutes}m" nice $T train "$@" --out "$run" "${resume[@]}" || true; }
  local step; step=$(last_step "$run")
  $T train "$@" --out "$run" --resume --steps "$step"   # 0 more steps: export $run/model from the checkpoint
}
last_step() { ls "$1/checkpoints" | grep -v '\.tmp$' | sed 's/step_0*//' | sort -n | tail -1; }  # complete only

# 2. The VAE.
run_for "$VAE_MINUTES" runs/world-xs-vae vae --config recipes/world-xs-vae.yaml --data data/world-train/manifest.jsonl

# The live weights, with latent stats measured for them: on short runs the EMA still lags far behind.
.venv/bin/python scripts/export_vae.py runs/world-xs-vae runs/world-xs-vae/live

# 3. Latents + text states for a subset of the clips, once per VAE checkpoint and clip count (latents of another
#    VAE are stale; `tenku cache` refuses to resume into a folder made from another manifest).
head -n "$CACHE_CLIPS" data/world-train/manifest.jsonl > data/world-train/subset.jsonl
CACHE=data/world-xs-cache/vae-step-$(last_step runs/world-xs-vae)-clips-$CACHE_CLIPS  # a cache holds one manifest
$T cache --model runs/world-xs-vae/live --manifest data/world-train/subset.jsonl --out "$CACHE" \
    --buckets 64x64 48x80 80x48 --frames 1 9 17 -q

# 4. The DiT.
dit_init=(); [ -n "${DIT_INIT:-}" ] && dit_init=(--init "$DIT_INIT")
run_for "$DIT_MINUTES" runs/world-xs-dit dit --config recipes/world-xs-dit.yaml --data "$CACHE" \
    --vae runs/world-xs-vae/live "${dit_init[@]}"

# 4b. Optional anneal. A fixed step count, not a time budget: a cosine schedule needs to know its end. Resumes.
SHIP=runs/world-xs-dit/model
if [ "${ANNEAL_STEPS:-0}" -gt 0 ]; then
  resume=(); [ -f runs/world-xs-dit-anneal/config.json ] && resume=(--resume)
  nice $T train dit --config recipes/world-xs-dit.yaml --set schedule=cosine --set min_lr_ratio=0.05 \
      --set warmup_steps=100 --steps "$ANNEAL_STEPS" --data "$CACHE" --vae runs/world-xs-vae/live \
      --init runs/world-xs-dit/model --out runs/world-xs-dit-anneal "${resume[@]}"
  SHIP=runs/world-xs-dit-anneal/model
fi

# 5. Ship: EMA weights in float16 inside the package.
SHIP=$SHIP .venv/bin/python - <<'PY'
import os
import torch
from tenku.checkpoint import load_model_dir, save_model_dir
cfg, vae, dit = load_model_dir(os.environ["SHIP"])
print(save_model_dir("tenku/assets/world-xs", cfg, vae, dit, dtype=torch.float16))
PY
