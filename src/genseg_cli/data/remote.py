"""Where each dataset's official download lives: the `download:` node of `conf/dataset/<name>.yaml`.

Three forms (see conf/dataset/*.yaml):

- public archive(s): ``url``/``filename``/``md5`` or ``sha256`` (one file) or ``files: [...]``
  (several, unpacked into one folder; a file that is not an archive is copied beside them,
  renamed to its ``stage_as``),
  optional ``select: [folder names]`` when the converter must see only part of the archive;
- ``monai_decathlon: Task04_Hippocampus``: URL and md5 read from MONAI's ``DecathlonDataset``
  at run time, so they follow the installed MONAI instead of a copy here;
- ``manual: true`` with ``page``, ``why`` and ``get``: behind a registration or licence form.

This module only reads the registry entry; :mod:`genseg_cli.data.download` does the fetching.
With ``GENSEG_MIRROR=BASE`` set, every file is fetched from ``BASE/<filename>`` instead of its
``url`` (a local or institutional copy); its published checksum is still verified.

>>> download_plan(dataset_spec("kvasir")).files[0].filename
'kvasir-seg.zip'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from genseg_cli.core.errors import GensegError

HASHES = ("sha256", "md5")
MIRROR = "GENSEG_MIRROR"  # a base URL serving every download file under its registry filename
MIRROR_SCHEMES = ("http://", "https://", "file://")


@dataclass(frozen=True)
class Source:
    """One file to fetch. At most one checksum; none means `genseg data check` is the only test."""

    url: str
    filename: str  # its name in <DIR>/.downloads (unique: datasets share that folder)
    md5: str | None = None
    sha256: str | None = None
    stage_as: str | None = None  # a side file's name beside the unpacked archives, if not filename

    @property
    def checksum(self) -> tuple[str, str] | None:
        """(algorithm, hex digest) of the published checksum, or None."""
        if self.sha256:
            return "sha256", self.sha256.lower()
        if self.md5:
            return "md5", self.md5.lower()
        return None


@dataclass(frozen=True)
class PublicPlan:
    """A dataset whose archives can be fetched without registration."""

    name: str
    files: tuple[Source, ...]
    select: tuple[str, ...] = ()  # folder names (any case) handed to the converter; () = all
    origin: str = ""  # the yaml's `from:`: where the URL and checksum were taken


@dataclass(frozen=True)
class ManualPlan:
    """A dataset the user must fetch by hand (registration, licence form, login)."""

    name: str
    page: str
    why: str
    get: str

    def instruction(self, data_dir: Path | str | None = None) -> str:
        """One line: where to get the download and the exact prepare command to run next."""
        where = f" --data-dir {data_dir}" if data_dir is not None else ""
        return (
            f"see {self.page} ({self.why}); get {self.get}; then run "
            f"`genseg data prepare {self.name} --src <archive or folder>{where}`"
        )


def mirror_url(source: Source) -> str:
    """Where `source` is fetched from: `$GENSEG_MIRROR/<filename>` when the variable is set,
    else its own URL.

    >>> mirror_url(Source("https://example.org/a/k.zip", "kvasir-seg.zip"))  # no GENSEG_MIRROR
    'https://example.org/a/k.zip'
    """
    base = os.environ.get(MIRROR, "").strip()
    if not base:
        return source.url
    if not base.startswith(MIRROR_SCHEMES):
        raise GensegError(
            f"{MIRROR}={base} is not a URL; set it to http(s)://HOST/PATH/ (or file:///DIR/) "
            f"holding each download under its file name, or unset it"
        )
    return f"{base.rstrip('/')}/{source.filename}"


def _node(spec: DictConfig) -> dict | None:
    node = spec.get("download")
    if node is None:
        return None
    return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]


def _source(name: str, entry: dict) -> Source:
    for key in ("url", "filename"):
        if not entry.get(key):
            raise GensegError(f"conf/dataset/{name}.yaml: a download file lacks `{key}`")
    return Source(
        url=str(entry["url"]),
        filename=str(entry["filename"]),
        md5=entry.get("md5"),
        sha256=entry.get("sha256"),
        stage_as=entry.get("stage_as"),
    )


def decathlon_source(task: str) -> Source:
    """URL and md5 of one Medical Segmentation Decathlon task, as MONAI publishes them."""
    from monai.apps import DecathlonDataset  # heavy import: only when an MSD task is fetched

    if task not in DecathlonDataset.resource:
        known = ", ".join(sorted(DecathlonDataset.resource))
        raise GensegError(f"MONAI knows no Decathlon task '{task}'; known: {known}")
    return Source(
        url=DecathlonDataset.resource[task], filename=f"{task}.tar", md5=DecathlonDataset.md5[task]
    )


def is_manual(spec: DictConfig) -> bool:
    node = _node(spec)
    return bool(node and node.get("manual"))


def is_downloadable(spec: DictConfig) -> bool:
    """True when `genseg data download` can fetch the dataset without the user's help."""
    node = _node(spec)
    return bool(node) and not node.get("manual")  # type: ignore[union-attr]


def download_plan(spec: DictConfig) -> PublicPlan | ManualPlan | None:
    """The plan of the registry entry `spec`; None when it has no `download:` node."""
    node, name = _node(spec), str(spec.name)
    if node is None:
        return None
    if node.get("manual"):
        return ManualPlan(
            name=name,
            page=str(node.get("page") or "the dataset's official page"),
            why=str(node.get("why") or "registration needed"),
            get=str(node.get("get") or "the official archive"),
        )
    if node.get("monai_decathlon"):
        files: tuple[Source, ...] = (decathlon_source(str(node["monai_decathlon"])),)
        origin = f"monai.apps.DecathlonDataset.resource/md5['{node['monai_decathlon']}']"
    else:
        entries = node.get("files") or [node]
        files = tuple(_source(name, entry) for entry in entries)
        origin = str(node.get("from") or "")
    select = node.get("select") or ()
    select = (select,) if isinstance(select, str) else tuple(str(s) for s in select)
    return PublicPlan(name=name, files=files, select=select, origin=origin)


def fetch_hint(spec: DictConfig, data_dir: Path) -> str:
    """The command (or manual step) that puts `spec`'s dataset into `data_dir`, for messages."""
    node, name = _node(spec), str(spec.name)
    if node is None:
        if spec.get("prepare"):
            return f"run `genseg data prepare {spec.prepare} --src <official download>`"
        return "put images/ and masks/ there"
    if node.get("manual"):
        plan = download_plan(spec)
        assert isinstance(plan, ManualPlan)
        return f"download it by hand: {plan.instruction(data_dir)}"
    return (
        f"run `genseg data download {name} --to {data_dir}` "
        f"(or `genseg data prepare {name} --src <archive>` with an archive you already have)"
    )
