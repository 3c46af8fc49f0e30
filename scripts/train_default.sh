#!/usr/bin/env bash
# Reproduce the shipped default model (preset world-xs, issue 15's recipe) from nothing but this repository:
# train the local-time VAE, make the `simple` Tenku World (one object: uniform motion, bounces, falls), cache
# its latents, train the factorised DiT from scratch, ship the EMA weights in half precision into
# tenku/assets/world-xs.
#
#   scripts/train_default.sh                         # whole recipe (resumes any stage that was interrupted)
#   VAE_MINUTES=60 DIT_STEPS=23000 AVERAGE_FROM=0 scripts/train_default.sh   # the shipped run's figures
#
# The shipped DiT trained steps 0-14,200 in fp32 and 14,200-23,000 in bf16 autocast; `precision: auto` now trains
# every step in bf16 on a CPU with native bf16 (the two learn alike: README, "bf16").
#
# The VAE trains for a budget of training minutes, the DiT for a number of steps at a constant learning rate; its
# last EMA weights are shipped, or with AVERAGE_FROM > 0 the mean of its EMA weights exported every 1,000 steps
# (snapshots/) from AVERAGE_FROM to DIT_STEPS (`tenku average`). With ANNEAL_END > DIT_STEPS
# it forks into an anneal (cosine decay ending at step ANNEAL_END) and ships that instead: on the shipped run the
# anneal from 14,200 to 17,200 scored no better (README).
# Every stage checkpoints every 100 steps and exports its model; rerun the script to continue from the last checkpoint (it resumes, never starts over).
# The VAE is warm-started from the previous default's VAE (commit ffb436a, read from git): its kernel-3 causal
# time convs folded into the local VAE's (tenku.models.vae.fold_time_taps), then fine-tuned.
set -euo pipefail
cd "$(dirname "$0")/.."
T=.venv/bin/tenku
VAE_MINUTES=${VAE_MINUTES:-60}
DIT_STEPS=${DIT_STEPS:-23000}
ANNEAL_END=${ANNEAL_END:-0}
AVERAGE_FROM=${AVERAGE_FROM:-0}
DIT_CLIPS=${DIT_CLIPS:-8000}

# train RUN_DIR ARGS...: train into RUN_DIR, resuming if it holds a run; it exports RUN_DIR/model at the end.
train() {
  local run=$1; shift
  local resume=(); [ -f "$run/config.json" ] && resume=(--resume)
  nice $T train "$@" --out "$run" "${resume[@]}"
}
last_step() { ls "$1/checkpoints" | grep -v '\.tmp$' | sed 's/step_0*//' | sort -n | tail -1; }  # complete only

# 1. The VAE: the previous default's VAE as the starting point, then the local-time recipe on 2,048 clips at
#    three aspect ratios and the DiT's clip lengths (1 and 17 frames), 16 held-out clips.
prev=runs/world-xs-ffb436a
if [ ! -f "$prev/vae.safetensors" ]; then
  mkdir -p "$prev"
  for f in config.json vae.safetensors dit.safetensors; do
    git show "ffb436a:tenku/assets/world-xs/$f" > "$prev/$f"
  done
fi
[ -f data/vae-train/manifest.jsonl ] || $T world make --out data/vae-train --count 2048 --split train --seed 1 \
    --sizes 64x64 48x80 80x48 --frames-choices 1 17 17 33
[ -f data/vae-val/manifest.jsonl ] || $T world make --out data/vae-val --count 16 --split train --seed 2 \
    --height 64 --width 64 --frames 17
train runs/world-xs-vae-local vae --config recipes/world-xs-vae-local.yaml --init "$prev" --frames 1 17 \
    --data data/vae-train/manifest.jsonl --val-data data/vae-val/manifest.jsonl --set max_train_minutes="$VAE_MINUTES"

# 2. The DiT's data: the `simple` mix, 64x64, a quarter single frames (the image stage), cached once with the VAE.
DATA=data/world-simple-$DIT_CLIPS
[ -f "$DATA/manifest.jsonl" ] || $T world make --out "$DATA" --count "$DIT_CLIPS" --split train --seed 0 \
    --mix simple --height 64 --width 64 --frames-choices 1 17 17 17 -q
CACHE=data/world-simple-cache/vae-step-$(last_step runs/world-xs-vae-local)-clips-$DIT_CLIPS
$T cache --model runs/world-xs-vae-local/model --manifest "$DATA/manifest.jsonl" --out "$CACHE" \
    --buckets 64x64 --frames 1 17 -q

# 3. The DiT, from scratch: factorised (frame 0 as an image, then animated), timesteps shifted toward noise, a
#    constant learning rate, with a small WorldBench pass every 1,000 steps in metrics.jsonl; then (ANNEAL_END >
#    DIT_STEPS) the anneal, forked from its last checkpoint (the LR schedule is a function of the step).
snap=(); [ "$AVERAGE_FROM" -gt 0 ] && snap=(--set snapshot_every=1000)  # EMA snapshots only to average them
wb=(--set worldbench_every=1000 --set worldbench_mix=simple --set worldbench_count=32 --set worldbench_animate=true)
train runs/world-xs-dit-2stage dit --config recipes/world-xs-dit-2stage-s6.yaml --data "$CACHE" \
    --vae runs/world-xs-vae-local/model --steps "$DIT_STEPS" "${snap[@]}" "${wb[@]}"
SHIP=runs/world-xs-dit-2stage/model
if [ "$AVERAGE_FROM" -gt 0 ]; then  # the mean of the EMA snapshots AVERAGE_FROM, +1000, ..., DIT_STEPS
  snaps=(); for s in $(seq "$AVERAGE_FROM" 1000 "$DIT_STEPS"); do snaps+=("runs/world-xs-dit-2stage/snapshots/$(printf step_%08d "$s")"); done
  $T average "${snaps[@]}" --out runs/world-xs-dit-2stage/averaged
  SHIP=runs/world-xs-dit-2stage/averaged
fi
if [ "$ANNEAL_END" -gt "$DIT_STEPS" ]; then
  [ -d runs/world-xs-dit-2stage-anneal ] || { cp -r runs/world-xs-dit-2stage runs/world-xs-dit-2stage-anneal
                                             rm -rf runs/world-xs-dit-2stage-anneal/model; }
  train runs/world-xs-dit-2stage-anneal dit --config recipes/world-xs-dit-2stage-s6-anneal.yaml --data "$CACHE" \
      --vae runs/world-xs-vae-local/model --steps "$ANNEAL_END" "${wb[@]}"
  SHIP=runs/world-xs-dit-2stage-anneal/model
fi

# 4. Ship: EMA weights in float16 inside the package.
SHIP=$SHIP .venv/bin/python - <<'PY'
import os
import torch
from tenku.checkpoint import load_model_dir, save_model_dir
cfg, vae, dit = load_model_dir(os.environ["SHIP"])
cfg.sample.steps = 10  # WorldBench `id` at 10 steps equals 20 within noise (README "The default model")
cfg.sample.guidance, cfg.sample.image_guidance = 3.0, 4.0  # per stage, measured (README "The default model")
print(save_model_dir("tenku/assets/world-xs", cfg, vae, dit, dtype=torch.float16))
PY
