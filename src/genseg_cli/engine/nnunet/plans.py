"""nnU-Net's fingerprint, experiment plan and preprocessing of the run's raw dataset, with the
plan's batch size, patch size and widths set where method.* asks (smoke runs, small CPUs)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Iterator

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import write_json
from genseg_cli.engine.nnunet.layout import DATASET_ID, Folders

AUGMENT_WORKERS = "nnUNet_n_proc_DA"  # nnU-Net's own spelling of its variables
PLANS = "nnUNetPlans"  # the default planner's plans (nnU-Net's classic U-Net)


@contextlib.contextmanager
def _planning_workers() -> Iterator[None]:
    """The planner sets torch's threads to nnUNet_n_proc_DA, which must then be at least 1."""
    before = os.environ.get(AUGMENT_WORKERS, "0")
    os.environ[AUGMENT_WORKERS] = str(max(1, int(before)))
    try:
        yield
    finally:
        os.environ[AUGMENT_WORKERS] = before


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def plan_and_preprocess(folders: Folders, configuration: str, settings: dict) -> dict:
    """Run nnU-Net's planning and preprocessing of `configuration`; return the plan used."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (
        extract_fingerprints,
        plan_experiments,
        preprocess,
    )

    with _planning_workers(), contextlib.redirect_stdout(_Null()):
        extract_fingerprints(
            [DATASET_ID],
            num_processes=1,
            check_dataset_integrity=False,
            clean=True,
            verbose=False,
            show_progress_bar=False,
        )
        plans_id = plan_experiments([DATASET_ID])
    if plans_id != PLANS:
        raise GensegError(f"nnU-Net named its plans {plans_id}, not {PLANS}")
    path = folders.preprocessed_dataset / f"{PLANS}.json"
    plans = json.loads(path.read_text())
    chosen = plans["configurations"].get(configuration)
    if chosen is None or "architecture" not in chosen:
        planned = ", ".join(k for k, v in plans["configurations"].items() if "architecture" in v)
        raise GensegError(
            f"method.configuration={configuration}: nnU-Net planned no such configuration for "
            f"this dataset (planned: {planned}); use method.configuration=auto"
        )
    adjust(chosen, settings)
    write_json(path, plans)
    logging.disable(logging.INFO)  # a line per copied label, logged by distutils on the root
    try:
        with _planning_workers(), contextlib.redirect_stdout(_Null()):
            preprocess(
                [DATASET_ID],
                PLANS,
                configurations=(configuration,),
                num_processes=[1],
                verbose=False,
                show_progress_bar=False,
            )
    finally:
        logging.disable(logging.NOTSET)
    arch = chosen["architecture"]["arch_kwargs"]
    return {
        "plans": PLANS,
        "patch_size": list(chosen["patch_size"]),
        "batch_size": int(chosen["batch_size"]),
        "spacing": list(chosen["spacing"]),
        "features_per_stage": list(arch["features_per_stage"]),
        "network": chosen["architecture"]["network_class_name"].rsplit(".", 1)[-1],
    }


def adjust(configuration: dict, settings: dict) -> None:
    """Set the planned configuration's batch size (method.batch_size), cap its patch
    (method.max_patch, kept a multiple of the network's total stride on each axis) and scale
    its widths (method.width: the first stage's, the others in nnU-Net's ratios)."""
    if settings.get("batch_size"):
        configuration["batch_size"] = int(settings["batch_size"])
    arch = configuration["architecture"]["arch_kwargs"]
    if settings.get("max_patch"):
        cap = int(settings["max_patch"])
        strides = arch["strides"]
        patch = []
        for axis, side in enumerate(configuration["patch_size"]):
            total = math.prod(int(s[axis]) if isinstance(s, list) else int(s) for s in strides)
            patch.append(min(int(side), max(total, cap // total * total)))
        configuration["patch_size"] = patch
    if settings.get("width"):
        first = float(arch["features_per_stage"][0])
        width = int(settings["width"])
        arch["features_per_stage"] = [
            max(1, round(f * width / first)) for f in arch["features_per_stage"]
        ]
