"""`genseg data download` against a local HTTP server (127.0.0.1 only), and the registry's
missing-data messages that name it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from genseg_cli.cli import main
from genseg_cli.core.errors import GensegError
from genseg_cli.data import remote
from genseg_cli.data.download import DOWNLOADS, download_dataset
from genseg_cli.data.registry import dataset_root, dataset_spec, require_present
from genseg_cli.data.remote import PublicPlan, Source
from tests.data.local_server import Server, kvasir_archive, md5, serve, use_plan, zip_folder
from tests.data.prepare.fake_downloads import mask, rgb

IDS = [f"cju{i:02d}" for i in range(8)]
TRAIN, VAL = IDS[:6], IDS[6:]


# --------------------------------------------------------------------------- the server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with serve(tmp_path / "www") as running:
        yield running


# --------------------------------------------------------------------------- fixture downloads


def kvasir_download(server: Server, work: Path) -> PublicPlan:
    """A tiny Kvasir-SEG zip (Kvasir-SEG/images/*.jpg, masks/*.jpg) and the split lists,
    served as the registry's three files are."""
    archive = kvasir_archive(work, server.root, TRAIN, VAL)
    return PublicPlan(
        "kvasir",
        (
            Source(server.url("kvasir-seg.zip"), "kvasir-seg.zip", md5=md5(archive)),
            Source(server.url("train.txt"), "kvasir-seg-train.txt", stage_as="train.txt"),
            Source(server.url("val.txt"), "kvasir-seg-val.txt", stage_as="val.txt"),
        ),
    )


@pytest.fixture
def kvasir(server: Server, tmp_path: Path) -> PublicPlan:
    return kvasir_download(server, tmp_path / "src")


def error_line(err: str) -> str:
    """The one error line of stderr (torchvision's progress bars share stderr)."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- download


def test_download_prepares_and_checks(monkeypatch, kvasir, tmp_path: Path, capsys):
    data = tmp_path / "data"
    use_plan(monkeypatch, kvasir)
    assert main(["data", "download", "kvasir", "--to", str(data)]) == 0
    out = capsys.readouterr().out
    assert "prepared 8 pairs of kvasir" in out and "kvasir is valid" in out
    assert "kvasir-seg-train.txt has no published checksum" in out  # said, not hidden
    assert "kvasir-seg.zip has no" not in out
    assert sorted(p.stem for p in (data / "kvasir" / "images").iterdir()) == IDS
    assert sorted(p.stem for p in (data / "kvasir" / "masks").iterdir()) == IDS
    rows = (data / "kvasir" / "split.csv").read_text().splitlines()
    assert "cju00,train" in rows and "cju07,val" in rows  # the side files reached the converter
    assert not (data / DOWNLOADS).exists()  # archives deleted after a successful prepare
    assert [p.name for p in data.iterdir()] == ["kvasir"]  # no staging folder left behind
    assert main(["data", "check", "kvasir", "--data-dir", str(data)]) == 0


def test_keep_archive_keeps_the_verified_file(kvasir, tmp_path: Path):
    result = download_dataset("kvasir", tmp_path, plan=kvasir, keep_archive=True)
    kept = sorted(p.name for p in (tmp_path / DOWNLOADS).iterdir())
    assert kept == ["kvasir-seg-train.txt", "kvasir-seg-val.txt", "kvasir-seg.zip"]
    assert result.archives_kept and result.n_pairs == 8 and result.has_split


def test_present_dataset_is_not_downloaded_again(monkeypatch, kvasir, server, tmp_path, capsys):
    download_dataset("kvasir", tmp_path, plan=kvasir)
    server.requests.clear()
    use_plan(monkeypatch, kvasir)
    assert main(["data", "download", "kvasir", "--to", str(tmp_path)]) == 0
    assert "already in" in capsys.readouterr().out
    assert server.requests == []


def test_checksum_mismatch_keeps_the_prepared_dataset(monkeypatch, kvasir, tmp_path, capsys):
    download_dataset("kvasir", tmp_path, plan=kvasir)
    before = tree(tmp_path / "kvasir")
    wrong = "0" * 32
    archive = Source(kvasir.files[0].url, "kvasir-seg.zip", md5=wrong)
    use_plan(monkeypatch, PublicPlan("kvasir", (archive, *kvasir.files[1:])))

    capsys.readouterr()
    code = main(["data", "download", "kvasir", "--to", str(tmp_path), "--overwrite"])
    err = capsys.readouterr().err
    line = error_line(err)
    assert code == 2 and "Traceback" not in err
    assert "kvasir-seg.zip.part" in line and wrong in line
    assert md5(tmp_path / DOWNLOADS / "kvasir-seg.zip.part") in line  # the checksum it got
    assert "run the command again" in line
    assert tree(tmp_path / "kvasir") == before  # nothing prepared was deleted or changed
    assert not (tmp_path / DOWNLOADS / "kvasir-seg.zip").exists()  # never taken as finished


def test_corrupt_kept_archive_is_named_with_its_fix(kvasir, tmp_path: Path):
    (tmp_path / DOWNLOADS).mkdir()
    (tmp_path / DOWNLOADS / "kvasir-seg.zip").write_bytes(b"not what the server has")
    with pytest.raises(GensegError, match=r"kvasir-seg\.zip: expected md5 .* delete .*kvasir-seg"):
        download_dataset("kvasir", tmp_path, plan=kvasir)
    assert not (tmp_path / "kvasir").exists()


def test_stale_part_file_is_fetched_afresh(kvasir, server, tmp_path: Path):
    downloads = tmp_path / DOWNLOADS
    downloads.mkdir()
    stale = downloads / "kvasir-seg.zip.part"
    stale.write_bytes((server.root / "kvasir-seg.zip").read_bytes()[:100] + b"interrupted")
    result = download_dataset("kvasir", tmp_path, plan=kvasir, keep_archive=True)
    assert result.n_pairs == 8
    assert not stale.exists()
    assert md5(downloads / "kvasir-seg.zip") == kvasir.files[0].md5


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("where", ["404", "refused"])
def test_network_errors_are_one_line(monkeypatch, server, tmp_path, capsys, where):
    url = (
        server.url("missing.zip")
        if where == "404"
        else f"http://127.0.0.1:{closed_port()}/kvasir-seg.zip"
    )
    use_plan(monkeypatch, PublicPlan("kvasir", (Source(url, "kvasir-seg.zip", md5="0" * 32),)))
    assert main(["data", "download", "kvasir", "--to", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot download {url}" in error_line(err) and "Traceback" not in err
    if where == "404":
        assert "HTTP 404" in error_line(err)
    assert not (tmp_path / "kvasir").exists()


def test_url_flag_replaces_a_single_archive_and_keeps_its_checksum(server, tmp_path, capsys):
    (server.root / "mirror.zip").write_bytes(b"a different file")
    url = server.url("mirror.zip")
    assert main(["data", "download", "nlm_mc", "--to", str(tmp_path), "--url", url]) == 2
    err = capsys.readouterr().err
    assert server.requests and server.requests[-1] == "/mirror.zip"
    assert "checksum mismatch" in err and dataset_spec("nlm_mc").download.sha256 in err


def test_mirror_serves_every_file_by_name_and_keeps_the_checksums(
    monkeypatch, kvasir, server, tmp_path, capsys
):
    """GENSEG_MIRROR=BASE fetches BASE/<filename> instead of each registry URL; the published
    checksum is still the one verified."""
    mirror = server.root / "mirror"
    mirror.mkdir()
    for source in kvasir.files:  # the mirror holds each file under its registry filename
        served = server.root / source.url.rsplit("/", 1)[1]
        (mirror / source.filename).write_bytes(served.read_bytes())
    elsewhere = [
        replace(s, url=f"http://127.0.0.1:{closed_port()}/x/{s.filename}") for s in kvasir.files
    ]
    use_plan(monkeypatch, replace(kvasir, files=tuple(elsewhere)))
    monkeypatch.setenv("GENSEG_MIRROR", f"{server.base}/mirror/")
    assert main(["data", "download", "kvasir", "--to", str(tmp_path / "data")]) == 0
    # every request went to the mirror, one file name each (torchvision asks twice per file)
    assert sorted(set(server.requests)) == sorted(f"/mirror/{s.filename}" for s in kvasir.files)
    assert "kvasir is valid" in capsys.readouterr().out
    # a file on the mirror that is not the published one is refused
    (mirror / "kvasir-seg.zip").write_bytes(b"another archive")
    assert main(["data", "download", "kvasir", "--to", str(tmp_path / "again")]) == 2
    line = error_line(capsys.readouterr().err)
    assert "checksum mismatch" in line and kvasir.files[0].md5 in line
    assert not (tmp_path / "again" / "kvasir").exists()


@pytest.mark.parametrize("base", ["127.0.0.1:8000/files", "ftp://host/files"])
def test_mirror_that_is_not_a_url_is_one_line(monkeypatch, kvasir, tmp_path, capsys, base):
    use_plan(monkeypatch, kvasir)
    monkeypatch.setenv("GENSEG_MIRROR", base)
    assert main(["data", "download", "kvasir", "--to", str(tmp_path)]) == 2
    line = error_line(capsys.readouterr().err)
    assert f"GENSEG_MIRROR={base} is not a URL" in line and "unset it" in line
    assert not (tmp_path / "kvasir").exists()


def test_unreachable_mirror_names_the_variable(monkeypatch, kvasir, tmp_path, capsys):
    use_plan(monkeypatch, kvasir)
    monkeypatch.setenv("GENSEG_MIRROR", f"http://127.0.0.1:{closed_port()}")
    assert main(["data", "download", "kvasir", "--to", str(tmp_path)]) == 2
    line = error_line(capsys.readouterr().err)
    assert "/kvasir-seg.zip" in line and "check the mirror (GENSEG_MIRROR)" in line


def test_select_takes_one_dataset_out_of_shared_archives(server, tmp_path: Path):
    """Two archives holding DermIS and DermQuest side by side, as the Waterloo release does."""
    sources = []
    for n, group in ((1, "melanoma"), (2, "notmelanoma")):
        top = tmp_path / "src" / f"Skin Image Data Set-{n}"
        for folder in ("dermIS" if n == 1 else "dermis", "dermquest"):
            for i in range(2):
                key = f"{folder.lower()}{n}{i}"
                rgb(top / "skin_data" / group / folder / f"{key}_orig.jpg", seed=i)
                mask(top / "skin_data" / group / folder / f"{key}_contour.png")
        archive = zip_folder(top, server.root / f"set-{n}.zip")
        sources.append(Source(server.url(archive.name), archive.name, md5=md5(archive)))
    plan = PublicPlan("dermis", tuple(sources), select=("dermis",))
    result = download_dataset("dermis", tmp_path / "data", plan=plan)
    ids = sorted(p.stem for p in (tmp_path / "data" / "dermis" / "images").iterdir())
    assert ids == ["dermis10", "dermis11", "dermis20", "dermis21"] and result.n_pairs == 4


def test_manual_dataset_says_where_and_what_to_run(tmp_path: Path, capsys):
    assert main(["data", "download", "jsrt", "--to", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "http://db.jsrt.or.jp/eng.php" in out
    assert f"genseg data prepare jsrt --src <archive or folder> --data-dir {tmp_path}" in out
    assert len(out.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_decathlon_source_is_monais():
    from monai.apps import DecathlonDataset

    plan = remote.download_plan(dataset_spec("hippocampus"))
    assert isinstance(plan, PublicPlan)
    (source,) = plan.files
    assert source.url == DecathlonDataset.resource["Task04_Hippocampus"]
    assert source.checksum == ("md5", DecathlonDataset.md5["Task04_Hippocampus"])


@pytest.mark.parametrize("name", ["busi", "isic", "kvasir", "nlm_mc", "dermis"])
def test_published_checksums_are_well_formed(name):
    plan = remote.download_plan(dataset_spec(name))
    assert isinstance(plan, PublicPlan) and plan.origin
    archives = [s for s in plan.files if s.filename.endswith(".zip")]
    assert archives and all(s.checksum and len(s.checksum[1]) == 64 for s in archives)


def test_list_marks_downloadable_datasets(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line.strip()}
    assert rows["kvasir"][1] == "no*" and rows["jsrt"][1] == "no"
    assert any(line.startswith("no*:") and "genseg data download" in line for line in lines)
    assert all(len(line) <= 80 for line in lines)


# --------------------------------------------------------------------------- missing data


def missing(name: str, data_dir: Path) -> str:
    spec = dataset_spec(name)
    with pytest.raises(GensegError) as info:
        require_present(spec, dataset_root(spec, data_dir))
    return str(info.value)


def test_missing_public_dataset_names_the_download_command(tmp_path: Path):
    message = missing("kvasir", tmp_path)
    assert "kvasir/images is missing" in message
    assert f"genseg data download kvasir --to {tmp_path}" in message


def test_missing_data_dir_names_the_variable_and_the_download(tmp_path: Path):
    message = missing("hippocampus", tmp_path / "data")
    assert f"data directory {tmp_path / 'data'} does not exist" in message
    assert "GENSEG_DATA_DIR" in message
    assert f"genseg data download hippocampus --to {tmp_path / 'data'}" in message


@pytest.mark.parametrize("data_dir_exists", [True, False])
def test_missing_jsrt_names_the_page_and_the_prepare_command(tmp_path: Path, data_dir_exists):
    data_dir = tmp_path / "data"
    if data_dir_exists:
        data_dir.mkdir()
    message = missing("jsrt", data_dir)
    assert "http://db.jsrt.or.jp/eng.php" in message
    assert f"genseg data prepare jsrt --src <archive or folder> --data-dir {data_dir}" in message
    assert "genseg data download" not in message
    assert ("GENSEG_DATA_DIR" in message) != data_dir_exists
