"""Short seed-0 runs whose metrics must not change when code is moved (a refactor's proof).

Runs baseline, separate and genseg on JSRT-9 and the baseline on hippocampus for 60 steps each on
the CPU, then prints every score of every run. With `--save FILE` the scores are written as JSON;
with `--compare FILE` they are checked against an earlier save and the script exits 1 on any
difference (exactly equal floats: on one CPU the same config and seed give identical metrics).

    python scripts/parity_runs.py --save results/parity/before.json     # before the change
    python scripts/parity_runs.py --compare results/parity/before.json  # after it

Scores depend on the CPU's precision (bf16 with AMX, fp32 without): compare on one machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

SHORT = [
    "trainer.steps=60",
    "trainer.val_every=20",
    "trainer.progress=false",
    "method.pretrain.steps=20",
    "method.pretrain.cache_dir=null",
]
RUNS = {
    "jsrt_baseline": ["dataset=jsrt", "method=baseline"],
    "jsrt_separate": ["dataset=jsrt", "method=separate"],
    "jsrt_genseg": ["dataset=jsrt", "method=genseg"],
    "hippocampus_baseline": ["experiment=hippocampus_cpu", "method=baseline"],
}


def scores(metrics: dict) -> dict:
    """Every number that says how good a run is (times left out)."""
    out = {"best_step": metrics["best_step"], "val_dice": metrics["val_dice"]}
    for name, result in {"test": metrics["test"], **metrics.get("ood", {})}.items():
        for key, value in result.items():
            if isinstance(value, int | float):
                out[f"{name}/{key}"] = value
    return out


def run_all(selected: list[str]) -> dict[str, dict]:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in selected:
            run_dir = Path(tmp) / name
            overrides = ["seed=0", *RUNS[name], *SHORT, f"hydra.run.dir={run_dir}"]
            if name.endswith("baseline"):  # baselines have no pre-training keys
                overrides = [o for o in overrides if not o.startswith("method.pretrain")]
            subprocess.run(["genseg", "train", *overrides], check=True, stdout=subprocess.DEVNULL)
            results[name] = scores(json.loads((run_dir / "metrics.json").read_text()))
            print(name, json.dumps(results[name]), flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", type=Path, help="write the scores to this JSON file")
    parser.add_argument("--compare", type=Path, help="compare with a JSON file written by --save")
    parser.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    args = parser.parse_args()
    results = run_all(args.runs)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if args.compare:
        before = json.loads(args.compare.read_text())
        differing = [
            f"{run} {key}: {before[run].get(key)} -> {value}"
            for run, now in results.items()
            for key, value in now.items()
            if before.get(run, {}).get(key) != value
        ]
        print("\n".join(differing) if differing else f"identical to {args.compare}")
        return 1 if differing else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
