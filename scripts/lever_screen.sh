#!/usr/bin/env bash
# A lever screen: each upper-level lever against default genseg, separate and the strong
# baseline on PH2-40 (out of domain: DermIS, DermQuest) and BUSI-100, three seeds, paired, one
# machine. CPU profile by default (about 3 hours per seed on 2 cores: a GPU or a cheaper
# EXTRA such as "trainer.steps=750" suits it better; a cheaper profile must first be shown to rank
# two levers the way the CPU profile does). Any of DATASETS, METHODS, SEEDS, OUT, EXTRA may be set.
# The last row is no lever but a generator option that lifted PH2's TSTR on every seed (results/).
set -euo pipefail
export OUT=${OUT:-${GENSEG_OUTPUT_DIR:-outputs}/grid/lever_screen}
export SEEDS=${SEEDS:-"0 1 2"}
export DATASETS=${DATASETS:-"ph2 busi"}
export METHODS=${METHODS:-"method=baseline; method=separate; method=genseg;
  method=genseg mlo.levers=[appearance]; method=genseg mlo.levers=[mask_warp];
  method=genseg mlo.generator_weights=true mlo.trust_region=1.0 mlo.arch_lr=1e-2;
  method=genseg generator.model.arch_temperature=0.2 mlo.arch_lr=1e-2;
  method=genseg mlo.learn_synthetic_weight=true;
  method=genseg mlo.sample_weights=difference;
  method=genseg generator.skip_augment=[albumentations.Affine]"}
exec bash "$(dirname "$0")/screen.sh"
