#!/usr/bin/env bash
# A paired screening grid: every method on every dataset and seed, one run after the other (same
# split and seed for every method), then one report over the grid (runs.csv, summary.md,
# paired.md under $OUT/report). Runs that finished earlier are kept, so a stopped grid continues.
#   DATASETS  datasets (kvasir is scored in-domain only: its OOD set is not here)
#   METHODS   methods separated by ';', each its overrides separated by spaces
#   SEEDS     seeds (default "0 1 2"); EXTRA: overrides for every run (e.g. a cheaper profile)
#   OUT       the grid folder
#   @baseline in a method's overrides stands for the folder of the same dataset and seed's
#             method=baseline run (list it first): ssl=self_training ssl.teacher_run=@baseline
#   DATASETS=busi METHODS="method=baseline; method=genseg mlo.levers=[appearance]" \
#     bash scripts/screen.sh
# scripts/ssl_screen.sh and scripts/lever_screen.sh call this with their own defaults.
set -euo pipefail
: "${DATASETS:?set DATASETS, e.g. DATASETS=\"busi ph2\"}"
: "${METHODS:?set METHODS, e.g. METHODS=\"method=baseline; method=genseg\"}"
: "${OUT:?set OUT, the grid folder}"
SEEDS=${SEEDS:-"0 1 2"}
EXTRA=${EXTRA:-}
IFS=';' read -r -a methods <<< "$(echo "$METHODS" | tr '\n' ' ')"
# a run's folder name: dataset, overrides (without the teacher, which names no setting) and seed
run_name() {
  local named
  named=$(echo "$2" | sed 's/ *ssl.teacher_run=@baseline//')
  echo "$1 $named seed$3" | tr ' ,[]=' '_+__-' | cut -c1-100
}
for seed in $SEEDS; do
  for name in $DATASETS; do
    dataset=$name
    [ "$name" = kvasir ] && dataset="kvasir evaluation.ood=false"   # CVC-ClinicDB is not here
    for method in "${methods[@]}"; do
      overrides=$(echo "$method" | xargs)   # trim
      run=$(run_name "$name" "$overrides" "$seed")
      [ -f "$OUT/$run/metrics.json" ] && continue   # finished earlier: keep it
      overrides=${overrides//@baseline/$OUT/$(run_name "$name" method=baseline "$seed")}
      # shellcheck disable=SC2086  # the overrides are words on purpose
      genseg train dataset=$dataset $overrides seed="$seed" $EXTRA \
        trainer.progress=false hydra.run.dir="$OUT/$run"
    done
  done
done
genseg report sweep_dir="$OUT"
