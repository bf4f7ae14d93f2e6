#!/usr/bin/env bash
# Screening of the semi-supervised objectives against the strong baseline (CPU profile: 128 px,
# 1500 steps) on BUSI-100 and Kvasir-40; about 20 minutes per seed and dataset on 2 cores.
# Any of DATASETS, METHODS, SEEDS, OUT, EXTRA may be set (see scripts/screen.sh), e.g.
#   SEEDS="0 1 2" DATASETS=busi \
#     METHODS="method=baseline ssl=fixmatch; method=genseg ssl=fixmatch" bash scripts/ssl_screen.sh
# Self-training takes each seed's baseline run as its teacher (@baseline; the baseline first):
#   METHODS="method=baseline; method=baseline ssl=self_training ssl.teacher_run=@baseline" \
#     bash scripts/ssl_screen.sh
set -euo pipefail
export OUT=${OUT:-${GENSEG_OUTPUT_DIR:-outputs}/grid/ssl_screen}
export SEEDS=${SEEDS:-${SEED:-0}}
export METHODS=${METHODS:-"method=baseline; method=baseline ssl=fixmatch; method=baseline ssl=mean_teacher"}
export DATASETS=${DATASETS:-"busi kvasir"}
exec bash "$(dirname "$0")/screen.sh"
