#!/usr/bin/env bash
# Screening of the semi-supervised objectives against the strong baseline (CPU profile: 128 px,
# 1500 steps), one run after the other, then one report over the grid. Same split and seed for
# every method, so the report's paired table compares like with like.
#   DATASETS  datasets (default "busi kvasir"; kvasir is scored in-domain only)
#   METHODS   one entry per method, its overrides joined by commas
#             (default "method=baseline method=baseline,ssl=fixmatch method=baseline,ssl=mean_teacher")
#   SEEDS     seeds (default "0"); OUT: the grid folder
# About 20 minutes per seed and dataset for the default methods on 2 cores.
#   SEEDS="0 1 2" METHODS="method=baseline,ssl=fixmatch method=genseg,ssl=fixmatch" \
#     DATASETS=busi bash scripts/ssl_screen.sh      # then read $OUT/report/{summary,paired}.md
set -euo pipefail
OUT=${OUT:-${GENSEG_OUTPUT_DIR:-outputs}/grid/ssl_screen}
SEEDS=${SEEDS:-${SEED:-0}}
METHODS=${METHODS:-"method=baseline method=baseline,ssl=fixmatch method=baseline,ssl=mean_teacher"}
DATASETS=${DATASETS:-"busi kvasir"}
for seed in $SEEDS; do
  for name in $DATASETS; do
    dataset=$name
    [ "$name" = kvasir ] && dataset="kvasir evaluation.ood=false"   # CVC-ClinicDB is not here
    for method in $METHODS; do
      overrides=${method//,/ }
      run=$(echo "$name $overrides seed$seed" | tr ' =' '_-' | cut -c1-80)
      [ -f "$OUT/$run/metrics.json" ] && continue   # finished earlier: keep it
      genseg train dataset=$dataset $overrides seed=$seed \
        trainer.progress=false hydra.run.dir="$OUT/$run"
    done
  done
done
genseg report sweep_dir="$OUT"
