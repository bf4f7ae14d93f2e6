#!/usr/bin/env bash
# A paired screening grid: every method on every dataset and seed (same split and seed for every
# method), then one report over the grid (runs.csv, summary.md, paired.md under $OUT/report).
# Runs that finished earlier are kept, so a stopped grid continues.
#   DATASETS  datasets (kvasir is scored in-domain only: its OOD set is not here)
#   METHODS   methods separated by ';', each its overrides separated by spaces
#   SEEDS     seeds (default "0 1 2"); EXTRA: overrides for every run (e.g. a cheaper profile)
#   OUT       the grid folder
#   JOBS      runs at once (default 1, one after the other, output on the terminal). With JOBS>1
#             each run writes $OUT/logs/<run>.log; a failed run is listed at the end (exit 1, no
#             report) and the others go on. On CPU give each run its share of the cores:
#             JOBS=2 EXTRA="trainer.num_threads=1" on 2 cores (about 1.15x the throughput of
#             one 2-thread run after the other: results/genseg_t1_vs_baselines_busi_fuseg); on a GPU machine
#             several runs share the device.
#   @baseline in a method's overrides stands for the folder of the same dataset and seed's
#             method=baseline run (list it): ssl=self_training ssl.teacher_run=@baseline. Such
#             runs start after every other run of the grid, so their baseline is finished.
#   DATASETS=busi METHODS="method=baseline; method=genseg mlo.levers=[appearance]" \
#     bash scripts/screen.sh
# scripts/ssl_screen.sh and scripts/lever_screen.sh call this with their own defaults.
set -euo pipefail
: "${DATASETS:?set DATASETS, e.g. DATASETS=\"busi ph2\"}"
: "${METHODS:?set METHODS, e.g. METHODS=\"method=baseline; method=genseg\"}"
: "${OUT:?set OUT, the grid folder}"
SEEDS=${SEEDS:-"0 1 2"}
EXTRA=${EXTRA:-}
JOBS=${JOBS:-1}
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "JOBS=$JOBS: give a whole number >= 1, e.g. JOBS=2" >&2; exit 2; }
IFS=';' read -r -a methods <<< "$(echo "$METHODS" | tr '\n' ' ')"
failed="$OUT/logs/failed.txt"
rm -f "$failed"
# a run's folder name: dataset, overrides (without the teacher, which names no setting) and seed
run_name() {
  local named
  named=$(echo "$2" | sed 's/ *ssl.teacher_run=@baseline//')
  echo "$1 $named seed$3" | tr ' ,[]=' '_+__-' | cut -c1-100
}
# start one run: in the foreground when JOBS=1, else in the background once a slot is free
launch() {
  local run=$1
  shift
  if [ "$JOBS" -eq 1 ]; then
    genseg train "$@"
    return
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  mkdir -p "$OUT/logs"
  echo "start $run (log: $OUT/logs/$run.log)"
  (genseg train "$@" > "$OUT/logs/$run.log" 2>&1 || echo "$run" >> "$failed") &
}
# pass 1: every run that needs no other run; pass 2: the runs that read their baseline's folder
for pass in 1 2; do
  for seed in $SEEDS; do
    for name in $DATASETS; do
      dataset=$name
      [ "$name" = kvasir ] && dataset="kvasir evaluation.ood=false"   # CVC-ClinicDB is not here
      for method in "${methods[@]}"; do
        overrides=$(echo "$method" | xargs)   # trim
        run_pass=1
        [[ "$overrides" == *@baseline* ]] && run_pass=2
        [ "$run_pass" = "$pass" ] || continue
        run=$(run_name "$name" "$overrides" "$seed")
        [ -f "$OUT/$run/metrics.json" ] && continue   # finished earlier: keep it
        overrides=${overrides//@baseline/$OUT/$(run_name "$name" method=baseline "$seed")}
        # shellcheck disable=SC2086  # the overrides are words on purpose
        launch "$run" dataset=$dataset $overrides seed="$seed" $EXTRA \
          trainer.progress=false hydra.run.dir="$OUT/$run"
      done
    done
  done
  wait
done
if [ -s "$failed" ]; then
  echo "failed runs (their logs are in $OUT/logs; rerun the script to retry only them):" >&2
  sed 's/^/  /' "$failed" >&2
  exit 1
fi
genseg report sweep_dir="$OUT"
