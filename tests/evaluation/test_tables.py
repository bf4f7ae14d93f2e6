from rich.console import Console

from genseg_cli.evaluation.tables import results_table

SCORES = {"n": 3, "dice_mean": 0.9, "dice_std": 0.01, "iou_mean": 0.8, "iou_std": 0.02}


def test_results_table_prints_every_set_name_as_written():
    """An OOD set named after a user folder with brackets is text, not rich markup."""
    metrics = {"test": SCORES, "ood": {"/data/[b]scans": SCORES}}
    console = Console(record=True, width=200)
    console.print(results_table(metrics, "run"))
    text = console.export_text()
    assert "test (in-domain)" in text and "/data/[b]scans (OOD)" in text
    assert "0.9000 ± 0.0100" in text


def test_absent_ood_set_is_a_row_and_the_caption_says_how_to_get_it():
    metrics = {
        "test": SCORES,
        "ood": {},
        "ood_absent": {"cvc_clinicdb": "not in /data, not scored; to score it, download it"},
    }
    console = Console(record=True, width=200)
    console.print(results_table(metrics, "run"))
    text = console.export_text()
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "not scored" in rows["cvc_clinicdb (OOD)"]
    assert "cvc_clinicdb: not in /data, not scored; to score it, download it" in text
