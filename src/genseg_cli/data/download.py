"""`genseg data download NAME`: fetch a public dataset's official archive(s), verify, prepare.

Files land in ``<DIR>/.downloads/<filename>.part`` and are renamed to ``<filename>`` only once
complete and verified, so a half or corrupt file is never taken for a finished one; a ``.part``
left by an interrupted run is deleted and fetched again from the start. After a successful
prepare the archives are deleted unless ``keep_archive`` (they are large: ISIC 2018 is ~13 GB);
after a failed prepare they stay, so a retry does not download again.

HTTP and the progress bar are torchvision's (``download_url``); the URLs and checksums come
from the registry (:mod:`genseg_cli.data.remote`; ``GENSEG_MIRROR`` replaces the URLs, never the
checksums). Nothing at ``<DIR>/<name>`` is touched before every file is verified, and
``prepare_dataset`` replaces an existing dataset only with ``overwrite`` and atomically.

>>> download_dataset("kvasir", to=Path("data"))
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import shutil
import socket
import tempfile
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from genseg_cli.core.errors import GensegError
from genseg_cli.data import remote
from genseg_cli.data.codecs import codec_for
from genseg_cli.data.registry import dataset_spec
from genseg_cli.data.remote import ManualPlan, PublicPlan, Source

log = logging.getLogger(__name__)

DOWNLOADS = ".downloads"
PART = ".part"
# Per socket operation, not per file: a stalled server fails after this long instead of hanging
# forever (torchvision's urlopen sets no timeout of its own).
TIMEOUT_S = 60.0
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


@dataclass
class DownloadResult:
    """What a download produced: the prepared dataset and what happened to the archives."""

    name: str
    dst: Path
    n_pairs: int
    has_split: bool
    archives: list[Path]
    archives_kept: bool
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- fetching


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of a file, read in 1 MiB chunks (hashlib.file_digest needs Python 3.11)."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, source: Source, fresh: bool) -> None:
    """Raise a one-line error when `path` does not match the published checksum."""
    if source.checksum is None:
        return
    algorithm, expected = source.checksum
    got = file_digest(path, algorithm)
    if got == expected:
        return
    fix = (
        "the download is damaged or the file changed upstream; run the command again "
        f"(the {PART} file is fetched afresh) or delete it"
        if fresh
        else f"delete {path} and run the command again"
    )
    raise GensegError(
        f"checksum mismatch for {path}: expected {algorithm} {expected}, got {got}; {fix}; "
        "nothing was prepared"
    )


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _network_error(url: str, err: BaseException, mirrored: bool = False) -> GensegError:
    if isinstance(err, urllib.error.HTTPError):
        what = f"HTTP {err.code} {err.reason}"
    elif isinstance(err, urllib.error.URLError):
        what = str(err.reason)
    elif isinstance(err, TimeoutError):
        what = f"no answer for {TIMEOUT_S:.0f} s"
    else:
        what = str(err) or type(err).__name__
    check = f"the mirror ({remote.MIRROR})" if mirrored else "the connection (or the URL)"
    return GensegError(f"cannot download {url}: {what}; check {check} and run the command again")


def fetch(source: Source, folder: Path) -> Path:
    """`folder/<filename>`, downloaded and verified unless a verified copy is already there."""
    from torchvision.datasets.utils import download_url

    folder.mkdir(parents=True, exist_ok=True)
    final, part = folder / source.filename, folder / (source.filename + PART)
    if final.is_file():
        _verify(final, source, fresh=False)
        log.info("using %s, downloaded before", final)
        return final
    # A leftover .part is restarted from zero: torchvision would take any existing file as done.
    part.unlink(missing_ok=True)
    url = remote.mirror_url(source)
    log.info("downloading %s", url if url == source.url else f"{url} (mirror of {source.url})")
    try:
        with _socket_timeout(TIMEOUT_S):
            download_url(url, str(folder), filename=part.name, md5=None)
    except (OSError, http.client.HTTPException, RuntimeError) as err:  # URLError is an OSError
        raise _network_error(url, err, mirrored=url != source.url) from err
    _verify(part, source, fresh=True)
    part.rename(final)
    return final


# --------------------------------------------------------------------------- unpacking


def _must_be_archive(path: Path) -> bool:
    return path.name.lower().endswith(_ARCHIVE_SUFFIXES)


def _merge(folder: Path, into: Path) -> None:
    """Move the contents of `folder` into `into`; folders of the same name are merged."""
    for child in sorted(folder.iterdir()):
        target = into / child.name
        if target.is_dir() and child.is_dir():
            _merge(child, target)
        elif target.exists() and target.is_dir() != child.is_dir():
            raise GensegError(f"two downloads hold {child.name} as a file and as a folder")
        else:
            if target.exists():  # e.g. the same __MACOSX entry in two archives
                log.info("%s appears in two downloads; keeping the later one", child.name)
            os.replace(child, target)


def _select(folder: Path, names: tuple[str, ...], into: Path, dataset: str) -> Path:
    """Move every folder named one of `names` (any case) from `folder` into `into`.

    Some archives hold several datasets (the Waterloo skin set has DermIS and DermQuest side
    by side); the converter must see only this dataset's part.
    """
    wanted = {n.casefold() for n in names}
    found: list[Path] = []
    for parent, dirs, _ in os.walk(folder):
        dirs.sort()
        for name in dirs:
            if name.casefold() in wanted:
                found.append(Path(parent) / name)
        # neither inside a match nor in macOS resource forks (__MACOSX/ mirrors the real tree)
        dirs[:] = [
            d
            for d in dirs
            if d.casefold() not in wanted and d != "__MACOSX" and not d.startswith(".")
        ]
    if not found:
        raise GensegError(
            f"the download of {dataset} has no folder named {' or '.join(names)}; the archive "
            "layout may have changed: unpack it and run `genseg data prepare` on the right folder"
        )
    into.mkdir()
    for index, path in enumerate(found):
        path.rename(into / f"{index}_{path.name}")  # numbered: two folders may share a name
    return into


def _stage(plan: PublicPlan, files: list[Path], near: Path, tmp: Path) -> Path:
    """One folder holding every unpacked archive and extra file, as the converter expects."""
    from genseg_cli.data.prepare import is_archive, unpacked

    merged = tmp / "all"
    merged.mkdir()
    for source, path in zip(plan.files, files, strict=True):
        if is_archive(path):
            with unpacked(path, near) as folder:
                _merge(folder, merged)
        elif _must_be_archive(path):
            raise GensegError(
                f"{path} is not a valid archive (the server may have sent an error page); "
                "delete it and run the command again"
            )
        else:  # a side file, e.g. Kvasir-SEG's official train.txt / val.txt
            shutil.copy2(path, merged / (source.stage_as or path.name))
    return _select(merged, plan.select, tmp / "selected", plan.name) if plan.select else merged


# --------------------------------------------------------------------------- the command


def unverified(plan: PublicPlan) -> list[str]:
    """A warning per file without a published checksum (said before the download starts)."""
    return [
        f"{s.filename} has no published checksum: it is verified by `genseg data check` only"
        for s in plan.files
        if s.checksum is None
    ]


def resolve_plan(name: str, url: str | None = None) -> PublicPlan:
    """The registry's public plan for `name`, with `url` replacing its single file's URL."""
    plan = remote.download_plan(dataset_spec(name))
    if plan is None:
        spec = dataset_spec(name)
        how = (
            f"prepare your copy with `genseg data prepare {name} --src <archive or folder>`"
            if spec.get("prepare")
            else "it is your own folder (dataset.root=PATH)"
        )
        raise GensegError(f"dataset '{name}' has no download source; {how}")
    if isinstance(plan, ManualPlan):
        raise GensegError(f"{name} cannot be downloaded by genseg: {plan.instruction()}")
    if url:
        if len(plan.files) != 1:
            raise GensegError(
                f"--url replaces the one archive of a dataset; {name} has {len(plan.files)} files"
            )
        plan = replace(plan, files=(replace(plan.files[0], url=url),))
    return plan


def download_dataset(
    name: str,
    to: Path | str,
    plan: PublicPlan | None = None,
    overwrite: bool = False,
    keep_archive: bool = False,
    max_size: int | None = None,
) -> DownloadResult:
    """Fetch `name`'s archives into `<to>/.downloads`, verify them, prepare `<to>/<name>`.

    `plan` replaces the registry's (tests, mirrors). Raises GensegError for a manual dataset,
    a network error, a checksum mismatch or a dataset already at `<to>/<name>` (unless
    `overwrite`); none of these touches `<to>/<name>`.
    """
    from genseg_cli.data.prepare import prepare_dataset

    spec = dataset_spec(name)
    plan = plan or resolve_plan(name)
    to = Path(to).expanduser().resolve()
    dst = to / name
    if codec_for(spec.dims).is_present(dst) and not overwrite:
        raise GensegError(f"{dst} already holds {name}; pass --overwrite to download it again")
    files = [fetch(source, to / DOWNLOADS) for source in plan.files]
    with tempfile.TemporaryDirectory(prefix=".stage-", dir=to) as tmp:
        src = _stage(plan, files, to, Path(tmp))
        result = prepare_dataset(
            spec.prepare or name, src=src, dst=dst, max_size=max_size, overwrite=overwrite
        )
    if not keep_archive:
        for path in files:
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # only when empty: other downloads may be kept there
            (to / DOWNLOADS).rmdir()
    return DownloadResult(
        name=name,
        dst=result.dst,
        n_pairs=result.n_pairs,
        has_split=result.has_split,
        archives=files,
        archives_kept=keep_archive,
        warnings=result.warnings,
    )
