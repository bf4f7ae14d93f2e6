#!/usr/bin/env bash
# The quality grid of the CPU profile (128 px / 32x48x32 volumes, 1500 / 1000 steps), paired by
# seed: the four methods on JSRT (9 labels; OOD NLM-MC, NLM-SZ), PH2 (40; OOD DermIS, DermQuest)
# and BUSI (100), three seeds each, then baseline vs genseg on hippocampus (10 volumes).
# Ends with one report per dataset (summary.md: mean +- std; paired.md: per-seed differences).
# About 10 hours on a 2-core CPU; DATASETS="jsrt ph2" bash scripts/quality_grid_cpu.sh for part.
set -euo pipefail
OUT=${GENSEG_OUTPUT_DIR:-outputs}/quality
METHODS=baseline_noaug,baseline,separate,genseg
for dataset in ${DATASETS:-jsrt ph2 busi hippocampus}; do
  if [ "$dataset" = hippocampus ]; then
    genseg train -m experiment=hippocampus_cpu method=baseline,genseg seed=0,1,2 \
      trainer.progress=false hydra.sweep.dir="$OUT/$dataset"
  else
    genseg train -m dataset="$dataset" method=$METHODS seed=0,1,2 \
      trainer.progress=false hydra.sweep.dir="$OUT/$dataset"
  fi
  genseg report sweep_dir="$OUT/$dataset"
done
