"""Suites: every shipped suite loads; a mistake in a suite file is one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from genseg_cli.benchmark.suite import load_suite
from genseg_cli.core.config import conf_dir
from genseg_cli.core.errors import GensegError

SUITES = sorted(p.stem for p in (conf_dir() / "benchmark").glob("*.yaml"))


@pytest.mark.parametrize("name", SUITES)
def test_every_shipped_suite_loads_and_names_its_reference(name: str) -> None:
    suite = load_suite(name)
    assert suite.reference in suite.methods
    assert len(suite.blocks()) == len(suite.seeds) * len(suite.datasets)


def test_the_cpu_suite_holds_five_datasets_six_methods_and_five_seeds() -> None:
    suite = load_suite("cpu")
    assert [d.name for d in suite.datasets] == ["jsrt", "ph2", "busi", "kvasir", "fuseg"]
    assert {"baseline", "baseline_noaug", "separate", "genseg"} <= set(suite.methods)
    assert {"baseline+fixmatch", "genseg+fixmatch"} <= set(suite.methods)
    assert len(suite.seeds) >= 5


def test_blocks_go_seed_by_seed_so_every_dataset_gains_a_seed_in_turn() -> None:
    names = [b.name for b in load_suite("cpu").blocks()]
    assert names[:2] == ["jsrt-n9-s0", "ph2-n40-s0"]
    assert names[5] == "jsrt-n9-s1"


def test_a_run_s_overrides_hold_its_block_method_and_the_suite_s_settings() -> None:
    suite = load_suite("cpu")
    block = suite.blocks()[0]
    overrides = suite.run_overrides(block, "genseg+fixmatch")
    for expected in (
        "dataset=jsrt", "n_labeled=9", "seed=0", "profile=cpu", "method=genseg", "ssl=fixmatch",
        "trainer.num_threads=1", "dataset.ood=[nlm_mc,nlm_sz]", "evaluation.ood=true",
    ):  # fmt: skip
        assert expected in overrides
    kvasir = next(b for b in suite.blocks() if b.dataset == "kvasir")
    assert "evaluation.ood=false" in suite.run_overrides(kvasir, "baseline")


BAD = {
    "unknown key": ("referense: baseline\n", "unknown key 'referense'"),
    "reference not a method": ("reference: nnunet\n", "reference 'nnunet' is not one of"),
    "method name with a slash": ("methods:\n  a/b: {method: baseline}\n", "method name 'a/b'"),
    "budget missing": ("datasets:\n  jsrt: {ood: []}\n", "datasets.jsrt"),
    "unknown dataset key": ("datasets:\n  jsrt: {budget: 9, odd: []}\n", "unknown key 'odd'"),
    "seeds repeated": ("seeds: [0, 0]\n", "seeds"),
}
BASE = {
    "profile": "profile: debug\n",
    "reference": "reference: baseline\n",
    "seeds": "seeds: [0]\n",
    "datasets": "datasets:\n  jsrt: {budget: 9}\n",
    "methods": "methods:\n  baseline: {method: baseline}\n",
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_suite_is_one_error_naming_the_file_and_key(case: str, tmp_path: Path) -> None:
    text, expected = BAD[case]
    parts = dict(BASE)
    key = text.split(":")[0]
    if key in parts:
        parts[key] = text
    else:
        parts["extra"] = text
    path = tmp_path / "mine.yaml"
    path.write_text("".join(parts.values()))
    with pytest.raises(GensegError) as err:
        load_suite(str(path))
    message = str(err.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_an_unknown_suite_name_suggests_the_closest() -> None:
    with pytest.raises(GensegError, match="did you mean smoke"):
        load_suite("smok")


@pytest.mark.parametrize("name", SUITES)
def test_every_method_of_every_suite_composes_and_builds(name: str) -> None:
    """A misspelt key or option in a suite fails here, not hours into a benchmark."""
    from genseg_cli.core.config import compose
    from genseg_cli.core.runtime import resolve_runtime
    from genseg_cli.data.spec import DataSpec
    from genseg_cli.engine.loop import build_method

    suite = load_suite(name)
    runtime = resolve_runtime("cpu", "fp32", False)
    for i, entry in enumerate(suite.datasets):
        block = next(b for b in suite.blocks() if b.dataset == entry.name)
        for method in suite.methods:
            cfg = compose("train", suite.run_overrides(block, method))
            assert cfg.n_labeled == block.budget and cfg.seed == block.seed
            if i == 0:  # the networks a method builds do not depend on the dataset's name
                build_method(cfg, runtime, DataSpec.from_config(cfg))
