"""nnU-Net's folders inside a run, and the raw dataset written there from the run's own split.

Everything nnU-Net reads or writes lives under `<run>/nnunet/` (raw, preprocessed, results):
never the user's global nnU-Net paths. The raw dataset holds the run's labelled train and
validation samples exactly as genseg read them (so 16-bit and RGB images are converted as for
every method), plus the pairs of `method.extra_pairs` when given; `splits_final.json` makes
fold 0 train on genseg's train ids (and the extra pairs) and validate on its validation ids. No
test or out-of-domain image is ever written: those are predicted from memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from genseg_cli.core.errors import GensegError
from genseg_cli.core.files import write_json
from genseg_cli.data.samples import Sample
from genseg_cli.data.spec import DataSpec

DATASET_ID = 1
PNG, NIFTI = ".png", ".nii.gz"
COMPILE = "nnUNet_compile"
EXTRA_PREFIX = "extra_"  # extra pairs' case names, apart from the dataset's own ids


@dataclass(frozen=True)
class Folders:
    """The run's nnU-Net folders and its one dataset (Dataset001_<name>)."""

    root: Path
    dataset: str

    @classmethod
    def of(cls, run_dir: Path, dataset_name: str) -> Folders:
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", dataset_name) or "data"
        return cls(run_dir / "nnunet", f"Dataset{DATASET_ID:03d}_{safe}")

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def preprocessed(self) -> Path:
        return self.root / "preprocessed"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def raw_dataset(self) -> Path:
        return self.raw / self.dataset

    @property
    def preprocessed_dataset(self) -> Path:
        return self.preprocessed / self.dataset

    def make(self) -> None:
        for folder in (self.raw, self.preprocessed, self.results):
            folder.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def nnunet_environment(folders: Folders, augment_workers: int, threads: int) -> Iterator[None]:
    """nnU-Net's environment variables pointed at the run's folders while nnU-Net works, then
    restored. nnunetv2 reads its paths when it uses them, so one process may run many runs."""
    values = {
        "nnUNet_raw": str(folders.raw),
        "nnUNet_preprocessed": str(folders.preprocessed),
        "nnUNet_results": str(folders.results),
        "nnUNet_n_proc_DA": str(augment_workers),
        "nnUNet_def_n_proc": str(max(1, threads)),  # nnU-Net's worker pools and torch threads
        COMPILE: os.environ.get(COMPILE, "f"),  # no torch.compile unless asked for
        "nnUNet_wandb_enabled": "0",
    }
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def file_ending(spec: DataSpec) -> str:
    return PNG if spec.dims == 2 else NIFTI


def channel_names(spec: DataSpec, names: Sequence[str] | None) -> dict[str, str]:
    """dataset.json's channel names: nnU-Net z-scores every channel not named CT."""
    if names:
        return {str(i): str(n) for i, n in enumerate(names)}
    if spec.dims == 2:
        return {"0": "L"} if spec.image_channels == 1 else {"0": "R", "1": "G", "2": "B"}
    return {str(i): "image" for i in range(spec.image_channels)}


def labels(spec: DataSpec) -> dict[str, int]:
    """dataset.json's labels: background 0, then the dataset's classes 1..n."""
    names = spec.class_names if spec.dims == 3 else ("target",)
    return {"background": 0, **{str(n): i for i, n in enumerate(names, 1)}}


def write_sitk(path: Path, array: np.ndarray, spacing: Sequence[float] | None) -> None:
    """A volume as NIfTI through SimpleITK, nnU-Net's own reader: it reads the array back with
    the same axis order and `spacing` (genseg's order), whatever orientation the file states."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in reversed(spacing or (1.0,) * array.ndim)])
    sitk.WriteImage(image, str(path), True)


def write_case(
    folder: Path,
    case: str,
    image: np.ndarray,
    mask: np.ndarray,
    spec: DataSpec,
    spacing: Sequence[float] | None = None,
) -> None:
    """One case: 2D image uint8 H x W x C and mask (bool or 0/1) as PNGs (nnU-Net reads an RGB
    PNG as its three channels); 3D image D x H x W and label map as NIfTI."""
    if spec.dims == 2:
        pixels = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
        Image.fromarray(np.ascontiguousarray(pixels)).save(
            folder / "imagesTr" / f"{case}_0000{PNG}"
        )
        Image.fromarray(mask.astype(np.uint8)).save(folder / "labelsTr" / f"{case}{PNG}")
        return
    write_sitk(folder / "imagesTr" / f"{case}_0000{NIFTI}", image.astype(np.float32), spacing)
    write_sitk(folder / "labelsTr" / f"{case}{NIFTI}", mask.astype(np.uint8), spacing)


def write_raw_dataset(
    folders: Folders,
    train: Sequence[Sample],
    val: Sequence[Sample],
    spec: DataSpec,
    names: Sequence[str] | None,
    extra: Path | None,
) -> dict[str, list[str]]:
    """Write the raw dataset and return fold 0 ({"train": ids, "val": ids})."""
    out = folders.raw_dataset
    if out.exists():  # an attempt stopped while writing: start the folder again
        shutil.rmtree(out)
    (out / "imagesTr").mkdir(parents=True)
    (out / "labelsTr").mkdir()
    for sample in [*train, *val]:
        if "/" in sample.id or os.sep in sample.id:
            raise GensegError(f"id '{sample.id}' cannot name an nnU-Net case (a path separator)")
        write_case(out, sample.id, sample.image, sample.mask, spec, sample.spacing)
    extra_ids = copy_extra_pairs(extra, out, spec) if extra is not None else []
    clash = sorted(set(extra_ids) & {s.id for s in [*train, *val]})
    if clash:
        raise GensegError(f"method.extra_pairs: case {clash[0]} has the name of a real id")
    fold = {"train": [s.id for s in train] + extra_ids, "val": [s.id for s in val]}
    ending = file_ending(spec)
    write_json(
        out / "dataset.json",
        {
            "channel_names": channel_names(spec, names),
            "labels": labels(spec),
            "numTraining": len(fold["train"]) + len(fold["val"]),
            "file_ending": file_ending(spec),
            "description": f"genseg run: {spec.name}, its train and validation ids",
            # the files listed: nnU-Net then lists no folder (a pool of forked workers each time)
            "dataset": {
                case: {
                    "images": [f"imagesTr/{case}_{i:04d}{ending}" for i in image_files(spec)],
                    "label": f"labelsTr/{case}{ending}",
                }
                for case in [*fold["train"], *fold["val"]]
            },
        },
    )
    return fold


def write_split(folders: Folders, fold: dict[str, list[str]]) -> None:
    """splits_final.json with the one fold nnU-Net trains (fold 0)."""
    write_json(folders.preprocessed_dataset / "splits_final.json", [fold])


def case_ids(folder: Path, ending: str) -> set[str]:
    """The case names of an nnU-Net images or labels folder (channel suffix dropped)."""
    found = set()
    for path in folder.iterdir():
        name = path.name[: -len(ending)] if path.name.endswith(ending) else path.stem
        found.add(re.sub(r"_\d{4}$", "", name) if folder.name.startswith("images") else name)
    return found


def check_raw_dataset(folders: Folders, fold: dict[str, list[str]], ending: str) -> None:
    """The raw dataset holds exactly the fold's cases: a guard against a split leaking."""
    expected = set(fold["train"]) | set(fold["val"])
    for sub in ("imagesTr", "labelsTr"):
        found = case_ids(folders.raw_dataset / sub, ending)
        if found != expected:
            extra, missing = sorted(found - expected)[:3], sorted(expected - found)[:3]
            raise GensegError(
                f"nnU-Net's raw {sub} does not match the run's split (extra {extra}, missing "
                f"{missing}); delete {folders.root} and train again"
            )


# ----- GenSeg's synthetic pairs (`genseg generate format=nnunet`) --------------------------------
def extra_cases(folder: Path, spec: DataSpec) -> list[str]:
    """The case names of an nnU-Net raw folder of pairs, checked against the run's data."""
    where = f"method.extra_pairs={folder}"
    meta_path = folder / "dataset.json"
    if not meta_path.is_file() or not (folder / "labelsTr").is_dir():
        raise GensegError(
            f"{where}: no dataset.json and labelsTr/ there; give a folder written by "
            "`genseg generate ... format=nnunet`"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as err:
        raise GensegError(f"{where}: dataset.json unreadable ({err})") from None
    ending = file_ending(spec)
    if meta.get("file_ending") != ending:
        raise GensegError(
            f"{where}: its file_ending {meta.get('file_ending')} is not {ending}, the "
            f"{spec.dims}D dataset '{spec.name}''s; generate the pairs from a run on it"
        )
    if len(meta.get("channel_names") or {}) != spec.image_channels:
        raise GensegError(
            f"{where}: its images have {len(meta.get('channel_names') or {})} channels, "
            f"dataset '{spec.name}' {spec.image_channels}"
        )
    if sorted((meta.get("labels") or {}).values()) != sorted(labels(spec).values()):
        raise GensegError(
            f"{where}: its labels {meta.get('labels')} differ from the run's {labels(spec)}"
        )
    cases = sorted(p.name[: -len(ending)] for p in (folder / "labelsTr").glob(f"*{ending}"))
    if not cases:
        raise GensegError(f"{where}: labelsTr/ holds no {ending} labels")
    images = folder / "imagesTr"
    lacking = [
        c
        for c in cases
        if not all((images / f"{c}_{i:04d}{ending}").is_file() for i in image_files(spec))
    ]
    if lacking:
        raise GensegError(f"{where}: no image in imagesTr/ for label {lacking[0]}{ending}")
    return cases


def image_files(spec: DataSpec) -> range:
    """The channel files of one case: one RGB PNG in 2D, one NIfTI per channel in 3D."""
    return range(1) if spec.dims == 2 else range(spec.image_channels)


def check_extra_pairs(folder: Path, spec: DataSpec) -> None:
    """Pre-flight of method.extra_pairs: the folder is a set of pairs this run can train on."""
    if not folder.is_dir():
        raise GensegError(f"method.extra_pairs={folder}: no such folder")
    extra_cases(folder, spec)


def copy_extra_pairs(folder: Path, out: Path, spec: DataSpec) -> list[str]:
    """Copy the extra pairs into the raw dataset as extra_<case>; return their case names. 3D
    volumes are rewritten through SimpleITK, so their axes follow the run's own volumes."""
    names = []
    for case in extra_cases(folder, spec):
        name = f"{EXTRA_PREFIX}{case}"
        ending = file_ending(spec)
        if spec.dims == 2:
            shutil.copyfile(
                folder / "imagesTr" / f"{case}_0000{ending}",
                out / "imagesTr" / f"{name}_0000{ending}",
            )
            shutil.copyfile(
                folder / "labelsTr" / f"{case}{ending}", out / "labelsTr" / f"{name}{ending}"
            )
        else:
            from genseg_cli.data.volumes import read_volume

            label, spacing = read_volume(folder / "labelsTr" / f"{case}{ending}")
            write_sitk(out / "labelsTr" / f"{name}{ending}", label.astype(np.uint8), spacing)
            for i in image_files(spec):
                image, _ = read_volume(folder / "imagesTr" / f"{case}_{i:04d}{ending}")
                write_sitk(
                    out / "imagesTr" / f"{name}_{i:04d}{ending}", image.astype(np.float32), spacing
                )
        names.append(name)
    return names
