#!/usr/bin/env bash
# One-seed screening of the semi-supervised objectives against the strong baseline (CPU profile:
# 128 px, 1500 steps): BUSI-100 and Kvasir-40, seed ${SEED:-0}, one run after the other, then one
# report over both. Same split and seed for every method, so the report's paired table compares
# like with like. About 60 minutes on 2 cores.
#   bash scripts/ssl_screen.sh            # then read $OUT/report/{summary,paired}.md
set -euo pipefail
OUT=${OUT:-${GENSEG_OUTPUT_DIR:-outputs}/grid/ssl_screen}
SEED=${SEED:-0}
METHODS=${METHODS:-"ssl=none ssl=fixmatch ssl=mean_teacher"}
for dataset in "busi" "kvasir evaluation.ood=false"; do
  for method in $METHODS; do
    name=$(echo "$dataset $method" | tr ' =' '_-' | cut -c1-60)
    [ -f "$OUT/$name/metrics.json" ] && continue   # finished earlier: keep it
    genseg train dataset=$dataset method=baseline $method seed=$SEED \
      trainer.progress=false hydra.run.dir="$OUT/$name"
  done
done
genseg report sweep_dir="$OUT"
