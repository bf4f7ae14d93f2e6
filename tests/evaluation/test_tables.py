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
