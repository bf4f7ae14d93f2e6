#!/usr/bin/env bash
# GPU check for a CUDA machine: card name, the main job (make train's genseg run on Kvasir-40),
# the whole JSRT-9 paper protocol for genseg, the tests that train on the device, per-method
# iteration times under the paper profile (256 px, batch 2) and the protocol for the baseline;
# ends with one markdown table (card, what, seconds).
#
#   bash scripts/gpu_check.sh                     # outputs in outputs/gpu_check
#   OUT=/tmp/gpu STEPS=30 bash scripts/gpu_check.sh
#
# A borrowed GPU may come with minutes, not hours, so every step has its own time limit (LIMIT_<STEP>
# seconds, below), BUDGET (seconds, optional) caps the whole script by shortening the later steps'
# limits to what is left, and the most wanted numbers come first (the main job, the genseg
# protocol, then the tests, the per-method iteration times and the baseline's protocol): a step
# that hits its limit is reported as cut, with how far it got, and the script goes on to the next.
# A failing step prints the end of its log and the script goes on too; the exit code is 1 when
# any step failed. The table grows in $OUT/summary.md as steps finish, so a run stopped from
# outside still says what it measured.
#
# Dry run on a machine without CUDA (checks the script, measures nothing of a GPU; the main job
# needs kvasir in GENSEG_DATA_DIR):
#   ALLOW_CPU=1 STEPS=2 WARMUP=1 PROTOCOL_OVERRIDES="trainer.steps=4 trainer.val_every=2" \
#       TEST_SELECTION="tests/engine/test_loop.py::test_unknown_precision_is_explained" \
#       bash scripts/gpu_check.sh
set -uo pipefail

# run from the repository root wherever it is called from, so relative paths (tests, conf,
# outputs) mean the same thing; an OUT given relative is taken from the root as well
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
OUT=${OUT:-outputs/gpu_check}
STEPS=${STEPS:-30}
WARMUP=${WARMUP:-10}
LIMIT_BENCHMARK=${LIMIT_BENCHMARK:-120}
LIMIT_MAIN=${LIMIT_MAIN:-900}
LIMIT_GENSEG=${LIMIT_GENSEG:-900}
LIMIT_TESTS=${LIMIT_TESTS:-300}
LIMIT_BASELINE=${LIMIT_BASELINE:-600}
BUDGET=${BUDGET:-0}
read -r -a PROTOCOL_OVERRIDES <<<"${PROTOCOL_OVERRIDES:-}"
# the tests whose runs go through run_training with trainer.device=auto, so that here they train
# baseline, separate and genseg on the GPU end to end, score, resume and run every stage
read -r -a TEST_SELECTION <<<"${TEST_SELECTION:-tests/engine/test_loop.py \
tests/methods/test_methods.py::TestJsrt::test_short_real_run_writes_every_output \
tests/stages/test_run_stages.py tests/engine/test_reliability.py}"
mkdir -p "$OUT"
SUMMARY=$OUT/summary.md
FAILED=0

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

# ROW: one line of the table, kept in $SUMMARY at once
row() {
    printf '| %s | %s | %s |\n' "$CARD" "$1" "$2" >>"$SUMMARY"
}

# NAME LIMIT CMD...: run CMD with its output in $OUT/NAME.log, for at most LIMIT seconds; sets
# ELAPSED (seconds) and STATUS (ok, cut, or failed); exit code 5 from pytest (everything
# deselected) is no failure of the code under test
STATUS="ok"
ELAPSED=0
logged() {
    local name=$1 limit=$2 start=$SECONDS rc=0
    shift 2
    # under a BUDGET a step gets at most what is left of it (10 s kept for the summary)
    if ((BUDGET > 0)); then
        local left=$((BUDGET - SECONDS - 10))
        if ((left < 5)); then
            STATUS="skipped (no time left of BUDGET=$BUDGET s)"
            ELAPSED=0
            echo "== $name: $STATUS"
            return
        fi
        ((left < limit)) && limit=$left
    fi
    echo "== $name (at most ${limit} s): $*"
    timeout --signal=TERM --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1 || rc=$?
    ELAPSED=$((SECONDS - start))
    if ((rc == 0 || rc == 5)); then
        STATUS="ok"
        echo "   done in ${ELAPSED} s"
    elif ((rc == 124 || rc == 137)); then
        STATUS="cut"
        echo "   cut at its limit of ${limit} s"
    else
        STATUS="failed"
        FAILED=1
        echo "FAILED ($rc): $name; last lines of $OUT/$name.log:" >&2
        tail -n 40 "$OUT/$name.log" >&2
    fi
}

# (a) the card
if [[ ${ALLOW_CPU:-0} == 1 ]]; then
    CARD="cpu (dry run)"
else
    CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
    python -c 'import torch; assert torch.cuda.is_available(), "torch sees no CUDA device"' || exit 1
fi
echo "card: $CARD"
printf '| card | what | seconds |\n|---|---|---|\n' >"$SUMMARY"
python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'

# LOG: seconds per training step between the first and the last "step N/M" line of a run's log
# (validation and checkpoints included), to compare with the benchmark's iteration time
step_seconds() {
    python - "$1" <<'PY'
import re, sys
from datetime import datetime
marks = []
for line in open(sys.argv[1]):
    found = re.match(r"\[(\S+ \S+)\]\[[^]]*\]\[INFO\] step (\d+)/", line)
    if found:
        marks.append((datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f"), int(found[2])))
if len(marks) > 1:
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    print(f"{(t1 - t0).total_seconds() / (s1 - s0):.4f} s per step over steps {s0}-{s1}")
PY
}

# NAME LIMIT TITLE ARGS...: one whole `genseg train ARGS` run, timed; a cut run says how far it got
whole_run() {
    local name=$1 limit=$2 title=$3 run=$OUT/$1
    shift 3
    logged "$name" "$limit" genseg train "$@" trainer.progress=false hydra.run.dir="$run" \
        "${PROTOCOL_OVERRIDES[@]}"
    if [[ $STATUS == ok ]]; then
        local dice
        dice=$(python -c 'import json, sys; print("%.4f" % json.load(open(sys.argv[1]))["test"]["dice_mean"])' \
            "$run/metrics.json")
        row "$title (test Dice $dice; $(step_seconds "$run/train.log"))" "$ELAPSED"
    else
        # the last "step N/M" line of the run's log says how far a cut run got
        local reached
        reached=$(grep -o 'step [0-9]*/[0-9]*' "$run/train.log" 2>/dev/null | tail -n 1)
        row "$title: $STATUS at ${reached:-no step logged} ($(step_seconds "$run/train.log" 2>/dev/null))" \
            "$ELAPSED"
    fi
}

# METHOD LIMIT: the whole JSRT-9 paper protocol for one method
protocol() {
    whole_run "jsrt_$1" "$2" "genseg train JSRT-9 $1, profile=paper" dataset=jsrt backbone=unet \
        n_labeled=9 method="$1" profile=paper
}

# (b) the main job as `make train` runs it (GenSeg on Kvasir-SEG, 40 labels; on CUDA the profile
# is the paper's), then the paper protocol for genseg on JSRT-9
whole_run main_job "$LIMIT_MAIN" "the main job: genseg train dataset=kvasir n_labeled=40 method=genseg" \
    dataset=kvasir n_labeled=40 method=genseg
protocol genseg "$LIMIT_GENSEG"

# (c) the tests on the device
# -v: one line per finished test, so a run cut at its limit still names the tests that failed
logged pytest "$LIMIT_TESTS" python -m pytest -v -rs -p no:cacheprovider -n "${TEST_WORKERS:-8}" \
    "${TEST_SELECTION[@]}"
tail -n 3 "$OUT/pytest.log"
row "pytest ${TEST_SELECTION[*]}: $STATUS, $(tail -n 1 "$OUT/pytest.log" | tr -d '=|')" "$ELAPSED"

# (d) per-method iteration times under the paper profile, beside the plain reference loop
rm -f "$OUT/benchmark.csv"
# (the override goes first: --methods takes every word after it)
logged benchmark "$LIMIT_BENCHMARK" python scripts/benchmark_methods.py profile=paper \
    --steps "$STEPS" --warmup "$WARMUP" --reference --csv "$OUT/benchmark.csv" \
    --methods baseline separate genseg baseline+fixmatch genseg+fixmatch
cat "$OUT/benchmark.log"
if [[ -f $OUT/benchmark.csv ]]; then
    while IFS=, read -r size method _ _ seconds; do
        seconds=${seconds%$'\r'} # the csv module ends its lines with \r\n
        # the upper-step row is one upper step's time, every other row a mean iteration's
        unit="s / iteration"
        [[ $method == upper* ]] && unit="s per call"
        row "$unit, $method, $size px, batch 2" "${seconds:-skipped}"
    done < <(tail -n +2 "$OUT/benchmark.csv")
else
    row "benchmark_methods.py ($STATUS)" "$ELAPSED"
fi

# (e) the protocol for the baseline
protocol baseline "$LIMIT_BASELINE"

# (f) the summary
echo
cat "$SUMMARY"
exit "$FAILED"
