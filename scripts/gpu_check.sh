#!/usr/bin/env bash
# GPU check for a CUDA machine: card name, a GPU-relevant test subset, per-method iteration times
# under the paper profile (256 px, batch 2) and the whole JSRT-9 paper protocol for genseg and the
# baseline; ends with one markdown table (card, what, seconds).
#
#   bash scripts/gpu_check.sh                     # outputs in outputs/gpu_check
#   OUT=/tmp/gpu STEPS=30 bash scripts/gpu_check.sh
#
# Every step's output goes to $OUT/<step>.log; a failing step prints the end of its log and stops
# the script (set -e), so a partial run still says where it broke.
set -euo pipefail

# run from the repository root wherever it is called from, so relative paths (tests, conf,
# outputs) mean the same thing; an OUT given relative is taken from the root as well
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-outputs/gpu_check}
STEPS=${STEPS:-30}
mkdir -p "$OUT"

if [[ -z ${VIRTUAL_ENV:-} && -f .venv/bin/activate ]]; then
    # shellcheck disable=SC1091  # the venv is made at install time
    source .venv/bin/activate
fi
# the datasets sit beside the repository (../shared/datasets) unless told otherwise
if [[ -z ${GENSEG_DATA_DIR:-} ]]; then
    for candidate in ../shared/datasets shared/datasets; do
        if [[ -d $candidate/jsrt ]]; then
            GENSEG_DATA_DIR=$(cd "$candidate" && pwd)
            break
        fi
    done
fi
export GENSEG_DATA_DIR=${GENSEG_DATA_DIR:?set GENSEG_DATA_DIR to the folder holding jsrt/}

ROWS=()
ELAPSED=0

# NAME CMD...: run CMD with its output in $OUT/NAME.log and its wall time in ELAPSED; exit code
# ALLOWED_RC (when set) also counts as success
logged() {
    local name=$1 start=$SECONDS rc=0
    shift
    echo "== $name: $*"
    "$@" >"$OUT/$name.log" 2>&1 || rc=$?
    ELAPSED=$((SECONDS - start))
    if ((rc != 0 && rc != ${ALLOWED_RC:-0})); then
        echo "FAILED ($rc): $name; last lines of $OUT/$name.log:" >&2
        tail -n 40 "$OUT/$name.log" >&2
        return "$rc"
    fi
    echo "   done in ${ELAPSED} s"
}

# (a) the card
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
echo "card: $CARD"
python -c 'import torch; assert torch.cuda.is_available(), "torch sees no CUDA device"'

# (b) tests on the device: the short real runs of tests/methods (JSRT) and the stage tests of
# tests/stages/test_run_stages.py go through run_training with trainer.device=auto, so here they
# train baseline, separate and genseg on the GPU end to end and resume them; plus the tests about
# the device choice. The other method tests pin a CPU runtime and would check nothing GPU-specific.
tests=(tests/methods/test_methods.py tests/stages/test_run_stages.py tests/engine/test_loop.py
    -k "short_real_run or resume or cuda or device")
# exit code 5: every test deselected, which is no failure of the code under test
ALLOWED_RC=5 logged pytest python -m pytest -q -rs -p no:cacheprovider "${tests[@]}"
tail -n 3 "$OUT/pytest.log"
ROWS+=("| $CARD | pytest ${tests[*]} | $ELAPSED |")

# (c) per-method iteration times under the paper profile, beside the plain reference loop
rm -f "$OUT/benchmark.csv"
logged benchmark python scripts/benchmark_methods.py --steps "$STEPS" --warmup 10 --reference \
    --csv "$OUT/benchmark.csv" \
    --methods baseline separate genseg baseline+fixmatch genseg+fixmatch profile=paper
cat "$OUT/benchmark.log"
while IFS=, read -r size method _ _ seconds; do
    # the upper-step row is one upper step's time, every other row a mean iteration's
    unit="s / iteration"
    [[ $method == upper* ]] && unit="s per call"
    ROWS+=("| $CARD | $unit, $method, $size px, batch 2 | ${seconds:-skipped} |")
done < <(tail -n +2 "$OUT/benchmark.csv")

# (d) the whole JSRT-9 paper protocol, once per method
for method in genseg baseline; do
    logged "jsrt_$method" genseg train dataset=jsrt backbone=unet n_labeled=9 method="$method" \
        profile=paper trainer.progress=false hydra.run.dir="$OUT/jsrt_$method"
    dice=$(python -c 'import json, sys; print("%.4f" % json.load(open(sys.argv[1]))["test"]["dice_mean"])' \
        "$OUT/jsrt_$method/metrics.json")
    ROWS+=("| $CARD | genseg train JSRT-9 $method, profile=paper (test Dice $dice) | $ELAPSED |")
done

# (e) the summary
echo
echo "| card | what | seconds |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
