"""Both report pages rendered from realistic step outputs: what a reader looks for is there, in order.

The per-class table leads with the plate class and the mean of the character classes, the
promotion decision is the evaluation page's headline, failures come first on the test page, the
two pages link to each other, and the drawing threshold is explained. With Debian's chromium
installed, both pages are also rendered headless to a screenshot (scripts/screenshot-reports.sh).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from PIL import Image

from steps.reports.pages import ReportItem, write_evaluation_report, write_test_report
from tests.test_report import parsed

DIGITS = [str(d) for d in range(10)]


def _metrics(plate_ap50: float, char_ap50: float) -> dict[str, float]:
    metrics = {"segm/AP": 0.3, "segm/AP50": 0.4, "bbox/AP": 0.32, "dv_mAP": 0.5, "EIR": 0.25}
    for name, ap50 in [("plate", plate_ap50)] + [(d, char_ap50) for d in DIGITS]:
        metrics |= {f"segm/AP-{name}": ap50 * 0.6, f"segm/AP50-{name}": ap50, f"segm/AP75-{name}": ap50 * 0.5}
    metrics["segm/AP50-7"] = math.nan  # a class the split lacks
    return metrics


def _config(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"evaluate": {"plate_label": "plate", "score_threshold": 0.05,
                           "class_groups": {"plate": ["plate"], "characters": ["*"]}},
              "test": {"score_threshold": 0.5}, "promotion": {"margin": 0.01}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))  # as save_config writes it


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """The local runner's layout: <run>/train/checkpoints, <run>/select/evaluation, <run>/test/report."""
    run = tmp_path / "local-20260101-000000"
    train = run / "train" / "checkpoints"
    (train / "tensorboard").mkdir(parents=True)
    log = [{"iteration": i, "loss": 3.0 / i ** 0.3, "loss_mask": 1.0 / i ** 0.3, "loss_classifier": 0.5, "lr": 0.02 * (1 - i / 200)}
           for i in range(10, 201, 10)]
    (train / "metrics.json").write_text(json.dumps(log))
    _config(run / "select" / "evaluation")
    _config(run / "test" / "report")
    return run


def _evaluation_page(run: Path) -> Path:
    evaluation = {
        "run_id": run.name, "dataset_version": "datasets/v1", "select_key": "segm/AP", "select_mode": "max",
        "best": "model_0000200.pth",
        "checkpoints": [{"checkpoint": f"model_{i:07d}.pth", "iteration": i, "metrics": _metrics(i / 210, i / 800)}
                        for i in (50, 100, 150, 200)],
        "champion": {"model_id": "m-old", "metrics": _metrics(0.5, 0.1)},
        "promotion": {"promoted": False, "reason": "segm/AP 0.30 does not beat <production> by 0.01",
                      "model_id": "m-new", "challenger_score": 0.3, "champion_score": 0.3},
    }
    curve = {"recall": [i / 100 for i in range(101)], "precision": [1 - (i / 100) ** 3 for i in range(101)]}
    return write_evaluation_report(run / "select" / "evaluation", evaluation,
                                   {"segm PR@0.5 plate": curve, "segm PR@0.5 mean of classes": curve},
                                   training_dir=run / "train" / "checkpoints")


def _test_page(run: Path) -> Path:
    picture = Image.new("RGB", (320, 240), (90, 120, 150))
    items = [
        ReportItem("right.jpg", picture, ["1234"], ["1234"], 5, picture),
        ReportItem("wrong.jpg", picture, ["1284"], ["1234"], 5, picture),
        ReportItem("missed.jpg", picture, [], ["5678"], 0, picture),
    ]
    return write_test_report(run / "test" / "report", items, _metrics(0.9, 0.3), "trainyard test report: m-new",
                             {"model": "m-new"})


def test_evaluation_page_leads_with_the_verdict_per_class_results_and_links(run_dir: Path) -> None:
    page_path = _evaluation_page(run_dir)
    page = parsed(page_path)
    text = page.all_text()

    # the verdict before anything else, once
    assert text.index("Not promoted: m-new") < text.index("Per class")
    assert text.count("does not beat <production> by 0.01") == 1
    # class x AP/AP50/AP75 of the selected checkpoint: plate, the character mean, then each class
    class_rows = [cells for cls, cells in page.rows if cls in {"group", "class"}]
    assert class_rows[0][:4] == ["plate", f"{0.6 * 200 / 210:.4f}", f"{200 / 210:.4f}", f"{0.5 * 200 / 210:.4f}"]
    assert class_rows[1][0] == "characters (mean of 10)"
    assert class_rows[1][2] == f"{200 / 800:.4f}"  # the NaN class is left out of the mean
    assert ["7", "n/a"] == [class_rows[2 + DIGITS.index("7")][0], class_rows[2 + DIGITS.index("7")][2]]
    assert len(class_rows) == 12
    # the checkpoint table has a handful of columns, not one per class
    header = next(cells for _, cells in page.rows if cells and cells[0] == "checkpoint")
    assert header == ["checkpoint", "iteration", "segm/AP", "plate mask AP50", "characters mask AP50", "segm/AP50",
                      "bbox/AP", "dv_mAP", "EIR"]
    # links: the test report of the same run, the config, and the TensorBoard command
    links = [a["href"] for a in page.attrs_of("a")]
    assert "../../test/report/index.html" in links and "config.yaml" in links
    assert f"tensorboard --logdir {(run_dir / 'train' / 'checkpoints' / 'tensorboard').resolve()}" in text
    assert "evaluate:" in text or "plate_label: plate" in text  # the resolved config is on the page
    # charts: metrics by checkpoint, training curves, one PR chart
    sources = [str(a["src"]) for a in page.attrs_of("img")]
    assert sorted(Path(s).name for s in sources) == ["pr_curves.png", "selection.png", "training.png"]
    for source in sources:
        with Image.open(page_path.parent / source) as image:
            assert image.format == "PNG" and image.width >= 500


def test_test_page_shows_failures_first_with_truth_beside_and_per_class_metrics(run_dir: Path) -> None:
    _evaluation_page(run_dir)
    page_path = _test_page(run_dir)
    page = parsed(page_path)
    text = page.all_text()

    assert text.index("Errors") < text.index("wrong.jpg") < text.index("Everything found") < text.index("right.jpg")
    assert text.index("missed.jpg") < text.index("right.jpg")
    assert "1 of 3 images without an error" in text
    # each image beside its ground truth
    alts = [str(a["alt"]) for a in page.attrs_of("img")]
    assert alts[:2] == ["wrong.jpg", "ground truth of wrong.jpg"]
    # per-class table and the headline figures; no per-class keys in the flat metrics table
    assert ["plate", f"{0.9 * 0.6:.4f}", "0.9000", "0.4500", "", ""] in [cells for cls, cells in page.rows if cls == "group"]
    assert "plate mask AP50" in text and "characters mask AP50" in text
    assert not [cells for _, cells in page.rows if cells and cells[0].startswith("segm/AP50-")]
    # the drawing threshold and the scoring threshold, both named
    assert "test.score_threshold" in text and "evaluate.score_threshold" in text
    assert "../../select/evaluation/report.html" in [a["href"] for a in page.attrs_of("a")]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_both_pages_render_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    pages = [_evaluation_page(run_dir), _test_page(run_dir)]
    script = Path(__file__).resolve().parents[1] / "scripts" / "screenshot-reports.sh"
    for page in pages:
        shot = tmp_path / f"{page.stem}.png"
        subprocess.run([str(script), str(page), str(shot)], check=True, timeout=120, capture_output=True)
        with Image.open(shot) as image:
            assert image.size == (1400, 2000)
            # a rendered page, not a blank one: many distinct colours
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 200
