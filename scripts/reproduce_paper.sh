#!/usr/bin/env bash
# The paper's grid at the paper profile (256 px, batch 2, RMSprop, 5000 steps; 3 seeds), for a
# GPU machine: JSRT 9/35/175, the ISIC budgets (with ISIC 2018 prepared; PH2 here otherwise),
# breast ultrasound 100, Kvasir 40, FUSeg 100. Ends with one report per dataset.
#   bash scripts/reproduce_paper.sh            # all of it (days on one GPU)
#   LAUNCHER=slurm bash scripts/reproduce_paper.sh   # one Slurm job per run
set -euo pipefail
OUT=${GENSEG_OUTPUT_DIR:-outputs}/paper
LAUNCH=()
[ "${LAUNCHER:-}" = slurm ] && LAUNCH=(hydra/launcher=slurm)
METHODS=baseline_noaug,baseline,separate,genseg
run() {  # name, then overrides
  local name=$1; shift
  genseg train -m profile=paper method=$METHODS seed=0,1,2 "${LAUNCH[@]}" \
    hydra.sweep.dir="$OUT/$name" "$@"
  genseg report sweep_dir="$OUT/$name"
}
run jsrt dataset=jsrt n_labeled=9,35,175
if [ -d "${GENSEG_DATA_DIR:-data}/isic" ]; then
  run isic dataset=isic n_labeled=40,200 trainer.steps=10000
else
  run ph2 dataset=ph2 n_labeled=40,100
fi
run busi dataset=busi n_labeled=100
run kvasir dataset=kvasir n_labeled=40
run fuseg dataset=fuseg n_labeled=100
run hippocampus dataset=hippocampus n_labeled=10,50
