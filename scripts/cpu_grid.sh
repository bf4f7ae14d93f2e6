#!/usr/bin/env bash
# A small grid that runs on a 2-core CPU in under an hour and ends with `genseg report`:
# PH2, baseline vs genseg, 20 and 40 labels, seeds 0 and 1, 600 steps at 128 px.
#   bash scripts/cpu_grid.sh                  # then read outputs/cpu_grid/report/
set -euo pipefail
OUT=${GENSEG_OUTPUT_DIR:-outputs}/cpu_grid
genseg train -m dataset=ph2 method=baseline,genseg n_labeled=20,40 seed=0,1 \
  trainer.steps=600 trainer.val_every=50 trainer.progress=false \
  hydra.sweep.dir="$OUT"
genseg report sweep_dir="$OUT"
