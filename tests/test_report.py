"""The HTML reports: well-formed, complete, escaped, and pointing at images that exist."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from steps.reports.pages import ReportItem, write_evaluation_report, write_test_report

VOID = {"img", "meta", "br", "link", "input", "hr", "source", "wbr"}
HOSTILE_NAME = "<script>alert(\"x\")</script>'car'.jpg"


class Page(HTMLParser):
    """Collects tags, text and table rows, and checks that every element is closed in order."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.open: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.rows: list[tuple[str, list[str]]] = []  # (tr class, cell texts)
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append((dict(attrs).get("class") or "", []))
        if tag in {"td", "th"} and self.rows:
            self.rows[-1][1].append("")
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:] or 'nothing'}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.rows and self.open and self.open[-1] in {"td", "th", "b"} and self.rows[-1][1]:
            self.rows[-1][1][-1] += data

    def all_text(self) -> str:
        return "".join(self.text)

    def attrs_of(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def parsed(path: Path) -> Page:
    page = Page(path.read_text(encoding="utf-8"))
    assert page.open == [], f"unclosed elements: {page.open}"
    return page


def item(name: str, reads: list[str], truths: list[str] | None, detections: int = 3) -> ReportItem:
    return ReportItem(
        file_name=name,
        image=Image.new("RGB", (64, 48), (90, 120, 150)),
        plate_reads=reads,
        truth_strings=truths,
        num_detections=detections,
    )


def test_test_report_has_metrics_meta_and_one_existing_image_per_item(tmp_path: Path) -> None:
    items = [item("a.jpg", ["AB12"], ["AB12"]), item("b.jpg", ["CD34"], ["CD35"], 7), item("c.jpg", ["EF56"], None)]

    page_path = write_test_report(
        tmp_path / "report",
        items,
        {"segm/AP": 0.712345},
        "Test run",
        {"model id": "m1", "dataset version": "v3", "run id": "run-9"},
    )

    assert page_path == tmp_path / "report" / "index.html"
    page = parsed(page_path)
    text = page.all_text()
    assert ["segm/AP", "0.7123"] in [cells for _, cells in page.rows]
    for value in ("Test run", "m1", "v3", "run-9", "7 detections", "3 detections"):
        assert value in text
    sources = [attrs["src"] for attrs in page.attrs_of("img")]
    assert len(sources) == len(items)
    for source in sources:
        assert source is not None and not source.startswith(("/", "http"))
        assert (page_path.parent / source).is_file()
    # a.jpg read right, b.jpg wrong (with its truth shown), c.jpg has no truth: no mark at all
    assert text.count("✓") == 1 and text.count("✗") == 1
    assert "CD35" in text
    assert "1 of 2 images without an error" in text


def test_test_report_escapes_names_from_data(tmp_path: Path) -> None:
    page_path = write_test_report(tmp_path, [item(HOSTILE_NAME, ["<b>"], ["<b>"])], {"<k>": 0.5}, "t", {"<run>": "<r>"})

    raw = page_path.read_text(encoding="utf-8")
    page = parsed(page_path)
    assert "<script>" not in raw and "script" not in [tag for tag, _ in page.tags]
    assert HOSTILE_NAME in page.all_text()  # shown to the reader exactly as named
    (image,) = page.attrs_of("img")
    assert image["alt"] == HOSTILE_NAME  # quotes did not break out of the attribute
    assert image["src"] is not None and (tmp_path / image["src"]).is_file()
    assert "b" not in [tag for tag, _ in page.tags]
    assert ["<k>", "0.5000"] in [cells for _, cells in page.rows]
    assert "<run>" in page.all_text() and "<r>" in page.all_text()


def test_ground_truth_images_are_saved_and_linked(tmp_path: Path) -> None:
    with_truth = ReportItem(
        file_name="x.jpg", image=Image.new("RGB", (8, 8)), ground_truth_image=Image.new("RGB", (8, 8), "white")
    )

    page = parsed(write_test_report(tmp_path, [with_truth], {}, "t", {}))

    sources = [attrs["src"] for attrs in page.attrs_of("img")]
    assert len(sources) == 2 and all((tmp_path / str(s)).is_file() for s in sources)


EVALUATION = {  # the shape evaluate writes to evaluation.json
    "run_id": "run-7",
    "select_key": "segm/AP",
    "select_mode": "max",
    "best": "model_0000599.pth",
    "champion": {"model_id": "m-prod", "metrics": {"segm/AP": 0.6, "EIR": 0.25}},
    "promotion": {"promoted": True, "reason": "0.66 > <0.6>", "challenger_score": 0.66, "champion_score": 0.6,
                  "model_id": "m-new", "model_uri": None},
    "checkpoints": [
        {"checkpoint": "model_0000999.pth", "iteration": 999, "metrics": {"segm/AP": 0.61, "EIR": 0.5}},
        {"checkpoint": "model_0000199.pth", "iteration": 199, "metrics": {"segm/AP": 0.25, "EIR": 0.0}},
        {"checkpoint": "model_0000599.pth", "iteration": 599, "metrics": {"segm/AP": 0.66, "EIR": 0.75}},
    ],
}


def test_evaluation_report_highlights_the_best_checkpoint(tmp_path: Path) -> None:
    evaluation = {k: v for k, v in EVALUATION.items() if k != "best"}  # computed from key and mode

    page_path = write_evaluation_report(tmp_path, evaluation, None)

    assert page_path == tmp_path / "report.html"
    page = parsed(page_path)
    body_rows = [(cls, cells) for cls, cells in page.rows if cells and cells[0].startswith("model_")]
    # rows in iteration order; columns: checkpoint, iteration, the selection key first, then the rest
    assert [cells[1] for _, cells in body_rows] == ["199", "599", "999"]
    header = next(cells for _, cells in page.rows if cells and cells[0] == "checkpoint")
    assert header == ["checkpoint", "iteration", "segm/AP", "EIR"]
    highlighted = [cells for cls, cells in body_rows if "best" in cls]
    assert len(highlighted) == 1 and highlighted[0][0].startswith("model_0000599.pth")
    assert highlighted[0][2:] == ["0.6600", "0.7500"]
    # production's scores close the table, as a row that is never the highlighted one
    assert ["production: m-prod", "", "0.6000", "0.2500"] in [cells for cls, cells in page.rows if cls == "champion"]
    text = page.all_text()
    assert "max of segm/AP" in text and "highest" in text
    # the promotion decision is the headline: verdict, both scores, the reason (escaped, once)
    for shown in ("run-7", "Promoted to production", "challenger 0.6600 vs production 0.6000", "0.66 > <0.6>"):
        assert shown in text
    assert text.count("0.66 > <0.6>") == 1
    (chart,) = [attrs["src"] for attrs in page.attrs_of("img")]
    with Image.open(tmp_path / str(chart)) as image:
        assert image.format == "PNG" and image.width > 300


def test_evaluation_report_shows_the_gain_and_its_interval(tmp_path: Path) -> None:
    promotion = {**EVALUATION["promotion"], "gain": 0.06, "gain_low": 0.012, "gain_high": 0.101,
                 "interval_level": 0.9, "min_gain": 0.005}
    text = parsed(write_evaluation_report(tmp_path, {**EVALUATION, "promotion": promotion}, None)).all_text()
    assert "gain +0.0600, 90.0% interval [+0.0120, +0.1010] (promoted only above min_gain 0.005)" in text
    # A decision without a test (a first model, not enough evidence) shows no interval.
    plain = parsed(write_evaluation_report(tmp_path / "plain", EVALUATION, None)).all_text()
    assert "interval" not in plain


def test_evaluation_report_min_mode_picks_the_lowest(tmp_path: Path) -> None:
    evaluation = {**EVALUATION, "select_key": "EIR", "select_mode": "min", "best": None}

    page = parsed(write_evaluation_report(tmp_path, evaluation, None))

    (best,) = [cells for cls, cells in page.rows if "best" in cls]
    assert best[0].startswith("model_0000199.pth")
    assert "lowest" in page.all_text()


def test_evaluation_report_draws_and_copies_pr_curves(tmp_path: Path) -> None:
    ready_made = tmp_path / "given.png"
    Image.new("RGB", (40, 30), "white").save(ready_made)
    curves = {
        "segm plate IoU=0.50": {"recall": [0.0, 0.5, 1.0], "precision": [1.0, 0.8, -1.0]},
        "bbox <all>": ready_made,
    }

    page = parsed(write_evaluation_report(tmp_path / "out", EVALUATION, curves))

    sources = [str(attrs["src"]) for attrs in page.attrs_of("img")]
    assert len(sources) == 3  # the selection chart + two PR curves
    assert all((tmp_path / "out" / s).is_file() for s in sources)
    assert "bbox <all>" in page.all_text()


@pytest.mark.parametrize("mode", ["max", "min"])
def test_evaluation_report_without_finite_scores_still_renders(tmp_path: Path, mode: str) -> None:
    evaluation = {
        "select_key": "EIR",
        "select_mode": mode,
        # `name` is accepted for the checkpoint column as well as `checkpoint`
        "checkpoints": [{"name": "only.pth", "iteration": 1, "metrics": {"EIR": float("nan")}}],
    }

    page = parsed(write_evaluation_report(tmp_path, evaluation, None))

    assert "only.pth" in page.all_text()
    assert "n/a" in page.all_text() and "No chart" in page.all_text()
    assert not [cls for cls, _ in page.rows if "best" in cls]


def test_evaluation_report_follows_an_explicit_best(tmp_path: Path) -> None:
    # The evaluate step decides; the report shows its decision even when another row scores higher.
    page = parsed(write_evaluation_report(tmp_path, {**EVALUATION, "best": "model_0000999.pth"}, None))

    (best,) = [cells for cls, cells in page.rows if "best" in cls]
    assert best[0].startswith("model_0000999.pth")
