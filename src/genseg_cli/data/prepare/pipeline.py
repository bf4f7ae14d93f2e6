"""Running one conversion: check the request, unpack an archive, convert, publish.

A conversion writes into ``<dst>.partial`` and renames it at the end, so a failure never
leaves a half dataset at ``dst``.

>>> prepare_dataset("kvasir", src=Path("downloads/kvasir-seg"), dst=Path("data/kvasir"))
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genseg_cli.core.errors import GensegError
from genseg_cli.data.prepare.converters import CONVERTERS
from genseg_cli.data.prepare.job import PrepareResult
from genseg_cli.data.prepare.split_files import SPLIT_FILE

log = logging.getLogger(__name__)

# Entries a prepared dataset consists of; finding one at dst means a dataset is already there.
_OUTPUT_NAMES = ("images", "masks", SPLIT_FILE, "imagesTr", "labelsTr", "dataset.json")


def is_archive(path: Path) -> bool:
    """True for a tar (any compression) or zip file, e.g. MSD's Task04_Hippocampus.tar."""
    return path.is_file() and (tarfile.is_tarfile(path) or zipfile.is_zipfile(path))


@contextlib.contextmanager
def unpacked(src: Path, near: Path) -> Iterator[Path]:
    """`src` itself if it is a folder, else the archive unpacked into a temporary folder beside
    `near` (same disk as the output; removed afterwards). Members that would land outside the
    folder (absolute paths, '..', links) are refused by tarfile's "data" filter."""
    if src.is_dir():
        yield src
        return
    near.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".unpack-", dir=near) as tmp:
        log.info("unpacking %s", src)
        try:
            if tarfile.is_tarfile(src):
                with tarfile.open(src) as archive:
                    archive.extractall(tmp, filter="data")
            else:
                with zipfile.ZipFile(src) as archive:
                    archive.extractall(tmp)
        except (tarfile.TarError, zipfile.BadZipFile, OSError) as err:
            raise GensegError(f"cannot unpack {src}: {err}; re-download the archive") from err
        yield Path(tmp)


def _check_request(name: str, src: Path, dst: Path, max_size: Any, overwrite: bool) -> None:
    if not src.is_dir() and not is_archive(src):
        what = "is not a directory or a tar/zip archive" if src.exists() else "does not exist"
        raise GensegError(
            f"source {src} {what}; pass the download (archive or unpacked folder) with --src"
        )
    if name not in CONVERTERS:
        raise GensegError(f"unknown dataset '{name}'; known: {', '.join(sorted(CONVERTERS))}")
    valid_size = isinstance(max_size, int) and not isinstance(max_size, bool) and max_size > 0
    if max_size is not None and not valid_size:
        raise GensegError(f"max_size must be a positive integer or None, got {max_size!r}")
    real_src, real_dst = src.resolve(), dst.resolve()
    if real_dst == real_src or real_dst in real_src.parents or real_src in real_dst.parents:
        raise GensegError(f"destination {dst} overlaps the source {src}; choose another folder")
    if dst.exists() and not dst.is_dir():
        raise GensegError(f"destination {dst} exists and is not a directory")
    if dst.is_dir() and not overwrite:
        taken = [n for n in _OUTPUT_NAMES if (dst / n).exists()]
        if taken:
            raise GensegError(
                f"destination {dst} already holds a dataset ({', '.join(taken)}); "
                "pass --overwrite to replace it"
            )


def _publish(partial_dir: Path, dst: Path, overwrite: bool) -> None:
    """Move the finished conversion to ``dst``, replacing it only when ``overwrite``."""
    if not dst.exists():
        partial_dir.rename(dst)
    elif overwrite:
        # Move the old dataset aside (into a fresh, uniquely named folder so no user folder is
        # ever reused) and delete it last: a failed swap puts it back instead of losing both.
        holder = Path(tempfile.mkdtemp(prefix=f"{dst.name}.old-", dir=dst.parent))
        dst.rename(holder / dst.name)
        try:
            partial_dir.rename(dst)
        except BaseException:
            (holder / dst.name).rename(dst)
            holder.rmdir()
            raise
        shutil.rmtree(holder)
    else:
        # dst holds unrelated files only (checked before converting): keep them, add ours.
        for child in sorted(partial_dir.iterdir()):
            child.rename(dst / child.name)
        partial_dir.rmdir()


def prepare_dataset(
    name: str,
    src: Path | str,
    dst: Path | str,
    max_size: int | None = None,
    overwrite: bool = False,
    **options: Any,
) -> PrepareResult:
    """Convert the official layout of dataset ``name`` found in ``src`` into ``dst``.

    ``options`` go to converters that take extra settings (``jsrt``: ``labels``, ``size``).
    Raises GensegError for a bad request or a missing layout, DataContractError (a
    GensegError) for unreadable files; orphan images or masks are only warnings.
    """
    src, dst = Path(src), Path(dst)
    _check_request(name, src, dst, max_size, overwrite)
    converter = CONVERTERS[name]
    accepted = inspect.signature(converter).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise GensegError(f"dataset '{name}' takes no option(s) {', '.join(unknown)}")

    partial_dir = dst.with_name(dst.name + ".partial")
    if partial_dir.exists():
        log.info("removing %s left by an interrupted conversion", partial_dir)
        shutil.rmtree(partial_dir)
    partial_dir.mkdir(parents=True)
    try:
        with unpacked(src, dst.parent) as folder:
            result = converter(folder, partial_dir, max_size, **options)
        _publish(partial_dir, dst, overwrite)
    except BaseException:
        shutil.rmtree(partial_dir, ignore_errors=True)
        raise
    for warning in result.warnings:
        log.warning("%s: %s", name, warning)
    log.info("%s: %d pairs written to %s", name, result.n_pairs, dst)
    return dataclasses.replace(result, name=name, dst=dst)
