#!/usr/bin/env bash
# A small grid for a 2-core CPU that ends with `genseg report` (about 15 minutes):
# PH2, the strong and the vanilla baseline, 20 and 40 labels, seeds 0 and 1, 300 steps at 128 px.
# GenSeg costs about 3x a baseline step on CPU: add method=genseg for a longer grid.
#   bash scripts/cpu_grid.sh                  # then read outputs/ph2_demo/report/
set -euo pipefail
OUT=${GENSEG_OUTPUT_DIR:-outputs}/ph2_demo
genseg train -m dataset=ph2 method=baseline,baseline_noaug n_labeled=20,40 seed=0,1 \
  trainer.steps=300 trainer.val_every=50 trainer.progress=false hydra.sweep.dir="$OUT"
genseg report sweep_dir="$OUT"
