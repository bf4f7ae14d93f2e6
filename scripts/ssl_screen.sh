#!/usr/bin/env bash
# One-seed screening of the semi-supervised objectives against the strong baseline (CPU profile:
# 128 px, 1500 steps): BUSI-100 and Kvasir-40, seed ${SEED:-0}, one run after the other, then one
# report over both (DATASETS, METHODS, SEED and OUT choose another grid). Same split and seed
# for every method, so the report's paired table compares like with like. About 60 minutes on
# 2 cores.
#   bash scripts/ssl_screen.sh            # then read $OUT/report/{summary,paired}.md
set -euo pipefail
OUT=${OUT:-${GENSEG_OUTPUT_DIR:-outputs}/grid/ssl_screen}
SEED=${SEED:-0}
METHODS=${METHODS:-"ssl=none ssl=fixmatch ssl=mean_teacher"}
DATASETS=${DATASETS:-"busi kvasir"}
for name in $DATASETS; do
  dataset=$name
  [ "$name" = kvasir ] && dataset="kvasir evaluation.ood=false"   # CVC-ClinicDB is not here
  for method in $METHODS; do
    run=$(echo "$dataset $method seed$SEED" | tr ' =' '_-' | cut -c1-70)
    [ -f "$OUT/$run/metrics.json" ] && continue   # finished earlier: keep it
    genseg train dataset=$dataset method=baseline $method seed=$SEED \
      trainer.progress=false hydra.run.dir="$OUT/$run"
  done
done
genseg report sweep_dir="$OUT"
