"""A local HTTP server (127.0.0.1 only) standing in for the internet, and tiny archives in the
real layout of the downloads it serves; shared by the download and main-job tests."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from genseg_cli.data import remote
from genseg_cli.data.remote import PublicPlan
from tests.data.prepare.fake_downloads import mask, rgb


@dataclass
class Server:
    root: Path  # what it serves
    base: str  # http://127.0.0.1:PORT
    requests: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    seen: list[str]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        self.seen.append(self.path)


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a client closing early (torchvision probes redirects) is not a test failure


@contextlib.contextmanager
def serve(root: Path) -> Iterator[Server]:
    """Serve the files under `root` (created) until the block ends; requests are recorded."""
    root.mkdir(parents=True, exist_ok=True)
    seen: list[str] = []
    handler = type("Handler", (_Quiet,), {"seen": seen})
    httpd = _Server(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(root, f"http://127.0.0.1:{httpd.server_address[1]}", seen)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            out.write(path, path.relative_to(folder.parent))
    return archive


def kvasir_archive(work: Path, into: Path, train: list[str], val: list[str]) -> Path:
    """Kvasir-SEG's release in small: `into/kvasir-seg.zip` holding Kvasir-SEG/images/*.jpg and
    Kvasir-SEG/masks/*.jpg, and the authors' split lists `into/train.txt` and `into/val.txt`."""
    top = work / "Kvasir-SEG"
    for seed, key in enumerate([*train, *val]):
        rgb(top / "images" / f"{key}.jpg", seed=seed)
        mask(top / "masks" / f"{key}.jpg", x0=2 + seed % 3)
    (into / "train.txt").write_text("\n".join(train) + "\n")
    (into / "val.txt").write_text("\n".join(val) + "\n")
    return zip_folder(top, into / "kvasir-seg.zip")


def use_plan(monkeypatch: pytest.MonkeyPatch, plan: PublicPlan) -> None:
    """Make the registry answer `plan` for its dataset (the CLI reads it through `remote`)."""
    real = remote.download_plan
    monkeypatch.setattr(
        remote, "download_plan", lambda spec: plan if spec.name == plan.name else real(spec)
    )
