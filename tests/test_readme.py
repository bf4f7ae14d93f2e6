"""The README guides and the docs stay true: the README is short, every page it or a docs page
links exists, the product never speaks of its development, and the backbone table in
docs/backbones.md is what the configs build (every `conf/backbone/` entry has a row, and each
row's parameter count is that of the network `genseg train` composes: 2D, one input channel, one
class at 128 px; 3D, hippocampus)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genseg_cli.core.config import compose, conf_dir
from genseg_cli.nets.segmenters import build_segmenter

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
BACKBONES = DOCS / "backbones.md"
# what `grep -rniw` searches for the product's words about itself (README, docs, results, code)
PRODUCT = ["README.md", "docs", "results", "src", "conf", "scripts", "tests"]
TEXT_SUFFIXES = {".md", ".py", ".yaml", ".yml", ".sh", ".csv", ".txt", ".json", ".log", ".toml", ""}
# development history: the word for a working period (as grep -w matches it), issue numbers,
# stories of earlier defaults; the words are split so that this file does not match itself
HISTORY = [
    re.compile(r"(?<![\w])sess" + r"ions?(?![\w])", re.IGNORECASE),
    re.compile(r"\biss" + r"ues?\s*#?\d+", re.IGNORECASE),
    re.compile(r"\bold\s+def" + r"ault", re.IGNORECASE),
]


def product_files(root: Path = REPO) -> list[Path]:
    files = []
    for name in PRODUCT:
        path = root / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in candidates:
            if file.is_file() and file.suffix in TEXT_SUFFIXES and "__pycache__" not in file.parts:
                files.append(file)
    return files


def history_lines(files: list[Path]) -> list[str]:
    """'path:line: text' for every line that speaks of the product's development."""
    found = []
    for file in files:
        try:
            text = file.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(pattern.search(line) for pattern in HISTORY):
                found.append(f"{file.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    return found


def test_readme_is_at_most_300_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move the long parts to docs/"


def test_no_development_history_in_the_product() -> None:
    found = history_lines(product_files())
    assert not found, "the product speaks of its development:\n" + "\n".join(found)


def test_the_history_check_finds_what_grep_finds(tmp_path: Path) -> None:
    """The patterns catch each form once and leave ONNX Runtime's class name alone."""
    file = tmp_path / "x.md"
    file.write_text(
        "a Sess" + "ion 17 grid\n"
        "two sess" + "ions\n"
        "runtime = onnxruntime.InferenceSession(path)\n"
        "see iss" + "ue 14\n"
        "the old def" + "ault was 1.0\n"
        "an upper_session_name\n"
    )
    found = []
    for number, line in enumerate(file.read_text().splitlines(), 1):
        if any(pattern.search(line) for pattern in HISTORY):
            found.append(number)
    assert found == [1, 2, 4, 5]


def test_the_results_section_holds_the_benchmark_markers() -> None:
    text = README.read_text()
    results = text.split("## Results", 1)[1]
    assert "results/cpu/benchmark.md" in results
    start, end = results.index("<!-- benchmark:cpu -->"), results.index("<!-- /benchmark:cpu -->")
    assert start < end


def links(page: Path) -> list[str]:
    """Relative link targets of a Markdown page (no URLs, no in-page anchors)."""
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    return [t for t in targets if "://" not in t]


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_linked_page_exists(page: Path) -> None:
    missing = [t for t in links(page) if not (page.parent / t).exists()]
    # the upper level's page is written beside this one; every other link must resolve now
    missing = [t for t in missing if Path(t).name != "upper-level.md"]
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {Path(t).name for t in links(README)}
    pages = {p.name for p in DOCS.glob("*.md")}
    assert pages <= linked, f"docs pages the README does not link: {sorted(pages - linked)}"


def backbone_rows() -> dict[str, str]:
    """backbone name -> its parameters cell, from docs/backbones.md's table."""
    rows = {}
    for line in BACKBONES.read_text().splitlines():
        match = re.match(r"\| `(\w+)` \|.*\| ([^|]+) \|$", line.strip())
        if match:
            rows[match.group(1)] = match.group(2)
        elif rows and not line.startswith("|"):
            break
    return rows


def test_every_backbone_has_a_row() -> None:
    configs = {p.stem for p in (conf_dir() / "backbone").glob("*.yaml")}
    # deeplabv3 is listed inside deeplabv3_r50's row (the same network under a second name)
    assert set(backbone_rows()) | {"deeplabv3"} == configs


@pytest.mark.parametrize("name", sorted(backbone_rows()))
def test_parameter_counts_match_the_built_networks(name: str) -> None:
    cell = backbone_rows()[name]
    counts = [float(x) for x in re.findall(r"([\d.]+)M", cell)]
    cfg = compose("train", [f"backbone={name}"])
    built = [sum(p.numel() for p in build_segmenter(cfg.backbone, 2).parameters()) / 1e6]
    if "3D" in cell:
        volume = compose("train", [f"backbone={name}", "dataset=hippocampus"])
        built.append(sum(p.numel() for p in build_segmenter(volume.backbone, 3).parameters()) / 1e6)
    assert [round(b, 1) for b in built] == counts, f"{name}: docs {cell}, built {built}"
