"""Self-contained HTML reports: the test step's `index.html` and the evaluate step's `report.html`.

No external assets (the Argo UI shows an artifact's index.html as is): inline CSS, images and
matplotlib charts saved beside the page and linked relatively. Pages are jinja2 templates
(`steps/templates/`) with autoescaping on, so every value that comes from data is escaped.
Each page reads the resolved `config.yaml` its step saved beside it for the plate label and the
thresholds it explains.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath  # the Windows flavour splits on '/' and '\\'
from urllib.parse import quote

import yaml
from PIL import Image

from steps import charts
from steps.class_metrics import COLUMNS, class_rows, headline

_TEMPLATES = Path(__file__).parent / "templates"
# Per-class keys (segm/AP50-plate ...) go to the class table, not the flat metrics table.
_PER_CLASS_MARKERS = ("/AP-", "/AP50-", "/AP75-", "_AP-")


@dataclass(frozen=True)
class ReportItem:
    """One test image in the report: its drawing and what was read on it."""

    file_name: str
    image: Image.Image  # predictions already drawn (steps.visualize.draw_predictions)
    plate_reads: list[str] = field(default_factory=list)
    truth_strings: list[str] | None = None  # None: no ground truth for this image
    num_detections: int = 0
    ground_truth_image: Image.Image | None = None  # shown beside the prediction

    @property
    def all_read(self) -> bool | None:
        """Whether every truth string was read exactly; None without truth."""
        if self.truth_strings is None:
            return None
        return sorted(self.truth_strings) == sorted(self.plate_reads)


def write_test_report(
    out_dir: Path,
    items: list[ReportItem],
    metrics_table: dict[str, float | str],
    title: str,
    meta: dict[str, str],
) -> Path:
    """Write `out_dir/index.html` and its drawn images under `out_dir/images/`; return the page.

    Failures (a plate missed, misread or invented) come first, each drawing beside its ground
    truth. `metrics_table` may hold per-class keys (`segm/AP50-plate`): they make the class table.
    """
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    config = _saved_config(out_dir)
    plate = _setting(config, "evaluate", "plate_label", "plate")
    cards = []
    for number, item in enumerate(items):
        # The number keeps names unique; the slug keeps them readable and safe in a URL.
        stem = f"{number:04d}_{_slug(PureWindowsPath(item.file_name).stem)}"
        truth_src = None
        if item.ground_truth_image is not None:
            truth_src = _save_image(item.ground_truth_image, images_dir, f"{stem}_gt")
        cards.append({
            "file_name": item.file_name, "src": _save_image(item.image, images_dir, stem), "truth_src": truth_src,
            "state": {True: "ok", False: "bad", None: ""}[item.all_read], "all_read": item.all_read,
            "rows": [_plate_row(read, truth, item.truth_strings is not None) for read, truth in _pairs(item)],
            "detections": item.num_detections,
        })
    judged = [item.all_read for item in items if item.all_read is not None]
    summary = f"{sum(judged)} of {len(judged)} images with every plate read exactly. " if judged else ""
    summary += f"{len(items)} image{'' if len(items) == 1 else 's'} shown."
    groups = [
        {"title": "Failures: plates missed, misread or invented", "cards": [c for c in cards if c["all_read"] is False]},
        {"title": "Every plate read exactly", "cards": [c for c in cards if c["all_read"] is True]},
        {"title": "Without ground truth", "cards": [c for c in cards if c["all_read"] is None]},
    ]
    numeric = {k: v for k, v in metrics_table.items() if isinstance(v, int | float)}
    run = out_dir.parent.parent  # the local runner's layout: <run>/<task>/<artifact>
    links = _links(out_dir, evaluation=next(
        (page for task in EVALUATION_TASKS if (page := _existing(run / task / "evaluation" / "report.html"))), None))
    page = out_dir / "index.html"
    _render(page, "test.html.j2", title=title, meta=meta, links=links, summary=summary, groups=groups,
            figures=headline(numeric, plate), class_rows=class_rows(numeric, plate),
            metrics={k: v for k, v in metrics_table.items() if not any(m in k for m in _PER_CLASS_MARKERS)},
            thresholds=_thresholds(config))
    return page


def write_evaluation_report(
    out_dir: Path, evaluation: dict, pr_curves: dict | None, training_dir: Path | None = None,
) -> Path:
    """Write `out_dir/report.html`: the promotion verdict, per-class results, every checkpoint, charts.

    `evaluation` (the evaluate step's evaluation.json):
      {"select_key": "segm/AP", "select_mode": "max", "best": "<checkpoint>" (optional: computed),
       "checkpoints": [{"checkpoint": str, "iteration": int, "metrics": {key: float}}, ...],
       "champion": {"model_id": str, "metrics": {...}} or None (production, shown as a last row),
       "promotion": {"promoted", "reason", "model_id", "challenger_score", "champion_score"} (optional),
       other plain values: listed in the header}
    `pr_curves` (optional): {caption: {"recall": [...], "precision": [...]}} drawn into one chart,
    or {caption: path of a PNG} copied beside the page. `training_dir`: the train step's output
    (metrics.json for the loss curves, tensorboard/ linked).
    """
    out_dir = Path(out_dir)
    charts_dir = out_dir / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    config = _saved_config(out_dir)
    plate = _setting(config, "evaluate", "plate_label", "plate")
    key, mode = str(evaluation["select_key"]), str(evaluation.get("select_mode", "max"))
    checkpoints = sorted(evaluation["checkpoints"], key=lambda c: int(c.get("iteration", 0)))
    best = evaluation.get("best") or _best_name(checkpoints, key, mode)
    best_row = next((c for c in checkpoints if _name(c) == best), None)
    champion = evaluation.get("champion")

    rows = [{"name": _name(c), "iteration": c.get("iteration", ""), "best": _name(c) == best,
             "cells": _with_means(c["metrics"], plate)} for c in checkpoints]
    champion_row = {"name": champion.get("model_id", ""), "cells": _with_means(champion["metrics"], plate)} if champion else None
    every = [r["cells"] for r in rows] + ([champion_row["cells"]] if champion_row else [])
    preferred = [key, f"segm/AP50-{plate}", _CHARS_AP50, "segm/AP", "bbox/AP", "dv_mAP", "EIR"]
    columns = [col for col in dict.fromkeys(preferred) if any(col in values for values in every)]

    figures = []
    chart_rows = [{"iteration": r["iteration"], **r["cells"]} for r in rows]
    selected = best_row.get("iteration") if best_row else None
    champion_values = champion_row["cells"] if champion_row else None
    selection = charts.metrics_by_checkpoint(chart_rows, columns, selected, champion_values, charts_dir / "selection.png",
                                             "metrics by checkpoint (validation)")
    if selection:
        figures.append({"src": _link(selection, out_dir), "caption": f"by iteration; ringed: the selected checkpoint ({key}); "
                        "dotted: production"})
    log = _training_log(training_dir)
    curves = charts.training_curves(log, charts_dir / "training.png") if log else None
    if curves:
        figures.append({"src": _link(curves, out_dir), "caption": "training loss and learning rate (metrics.json)"})
    figures += _pr_figures(pr_curves or {}, charts_dir)

    header = {"selection": f"{mode} of {key}", "selected checkpoint": str(best)}
    for name, value in evaluation.items():
        if name not in {"select_key", "select_mode", "best", "checkpoints", "champion", "promotion", "branches", "partial"}:
            header.update(_scalars(name, value))
    tensorboard = training_dir / "tensorboard" if training_dir is not None else None
    links = _links(out_dir, test=_local_test_report(out_dir),
                   tensorboard=tensorboard if tensorboard is not None and tensorboard.is_dir() else None,
                   config=_existing(out_dir / "config.yaml"))
    page = out_dir / "report.html"
    _render(page, "evaluation.html.j2", title="Evaluation", meta=header, links=links, key=key, mode=mode, best=best,
            promotion=_promotion(evaluation.get("promotion"), champion, config),
            figures=headline(best_row["metrics"], plate) if best_row else {},
            class_rows=class_rows(best_row["metrics"], plate) if best_row else [],
            columns=columns, rows=rows, champion=champion_row, charts=figures,
            # A sweep's branches side by side: settings, checkpoints scored, the best one's scores.
            branches=[{**b, "cells": _with_means(b.get("metrics", {}), plate)} for b in evaluation.get("branches") or []],
            config_text=_read_text(out_dir / "config.yaml"),
            partial=evaluation.get("partial"))  # what a partial evaluation or sweep lacks (steps/select/scores.py)
    return page


_CHARS_AP50 = "segm/AP50 characters"


def _with_means(metrics: Mapping[str, object], plate: str) -> dict[str, object]:
    """A checkpoint's metrics plus the mean character-class AP50 (a column of its own)."""
    rows = [row for row in class_rows(metrics, plate) if row.kind == "mean"]  # type: ignore[arg-type]
    return {**metrics, _CHARS_AP50: rows[0].values["AP50"]} if rows else dict(metrics)


def _promotion(promotion: Mapping[str, object] | None, champion: Mapping[str, object] | None,
               config: Mapping[str, object]) -> dict[str, object] | None:
    if not promotion:
        return None
    model = promotion.get("model_id") or "this run's model"
    promoted = bool(promotion.get("promoted"))
    return {
        "promoted": promoted,
        "headline": f"Promoted to production: {model}" if promoted else f"Not promoted: {model} stays a registered candidate",
        "challenger": promotion.get("challenger_score"),
        "champion": promotion.get("champion_score"),
        "has_champion": champion is not None or promotion.get("champion_score") is not None,
        "margin": _setting(config, "promotion", "margin", None),
        "reason": str(promotion.get("reason", "")),
        "interval": _gain_interval(promotion),
    }


def _gain_interval(promotion: Mapping[str, object]) -> str | None:
    """The gain and its bootstrap interval, when the decision made one (docs/metrics.md#promotion)."""
    values = [promotion.get(k) for k in ("gain", "gain_low", "gain_high", "interval_level", "min_gain")]
    if not all(isinstance(v, (int, float)) for v in values):
        return None
    gain, low, high, level, min_gain = (float(v) for v in values)  # type: ignore[arg-type]
    return f"gain {gain:+.4f}, {level:.1%} interval [{low:+.4f}, {high:+.4f}] (promoted only above min_gain {min_gain:g})"


def _pr_figures(curves: Mapping[str, object], charts_dir: Path) -> list[dict[str, str]]:
    drawn = {str(name): curve for name, curve in curves.items() if isinstance(curve, Mapping)}
    figures = []
    if drawn:
        path = charts.pr_curves(drawn, charts_dir / "pr_curves.png", "precision / recall")
        if path:
            figures.append({"src": _link(path, charts_dir.parent), "caption": "precision over recall: " + "; ".join(drawn)})
    for number, (caption, curve) in enumerate(curves.items()):
        if isinstance(curve, str | Path):
            target = charts_dir / f"pr_{number:02d}_{_slug(str(caption))}{Path(curve).suffix or '.png'}"
            shutil.copyfile(curve, target)
            figures.append({"src": _link(target, charts_dir.parent), "caption": str(caption)})
    return figures


def _training_log(training_dir: Path | None) -> list[dict]:
    if training_dir is None:
        return []
    try:
        log = json.loads((Path(training_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return []
    return [e for e in log if isinstance(e, dict)] if isinstance(log, list) else []


# The tasks whose `evaluation` folder holds the evaluation report: select after a fan-out, evaluate
# when it ran alone (python -m steps.evaluate without --only).
EVALUATION_TASKS = ("select", "evaluate")


def _local_test_report(out_dir: Path) -> Path | None:
    """The test report of the same local run (`<run>/select/evaluation` -> `<run>/test/report`).

    It is written after this page, so only the local runner's layout tells where it will be; on a
    cluster each artifact lives apart and the Argo UI lists both.
    """
    if out_dir.parent.name not in EVALUATION_TASKS or not (out_dir.parent.parent / "train").is_dir():
        return None
    return out_dir.parent.parent / "test" / "report" / "index.html"


def _links(out_dir: Path, test: Path | None = None, evaluation: Path | None = None, tensorboard: Path | None = None,
           config: Path | None = None) -> list[dict[str, str | None]]:
    links: list[dict[str, str | None]] = []
    if evaluation is not None:
        links.append({"text": "← evaluation report", "href": _relative(evaluation, out_dir), "code": None})
    if test is not None:
        links.append({"text": "test report →", "href": _relative(test, out_dir), "code": None})
    if config is not None:
        links.append({"text": "config.yaml", "href": _relative(config, out_dir), "code": None})
    if tensorboard is not None:
        links.append({"text": "TensorBoard:", "href": None, "code": f"tensorboard --logdir {tensorboard.resolve()}"})
    return links


def _thresholds(config: Mapping[str, object]) -> dict[str, object] | None:
    draw = _setting(config, "test", "score_threshold", None)
    score = _setting(config, "evaluate", "score_threshold", None)
    read = _setting(config, "evaluate", "read_score", None)
    return {"draw": draw, "score": score, "read": read} if draw is not None and score is not None else None


def _saved_config(out_dir: Path) -> dict:
    """The resolved config its step saved beside the page; {} when absent or unreadable."""
    try:
        loaded = yaml.safe_load((out_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _setting(config: Mapping[str, object], section: str, name: str, default: object) -> object:
    values = config.get(section)
    return values.get(name, default) if isinstance(values, dict) else default


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _relative(target: Path, page_dir: Path) -> str:
    return quote(Path(os.path.relpath(target.resolve(), page_dir.resolve())).as_posix())


def _render(page: Path, template: str, **values: object) -> None:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["metric"] = _format
    env.globals["class_columns"] = COLUMNS
    page.write_text(env.get_template(template).render(**values), encoding="utf-8")


def _pairs(item: ReportItem) -> list[tuple[str | None, str | None]]:
    """(read, truth) rows: exact matches, then each other read with its closest leftover truth.

    None on one side: a read with no plate left to compare, or a plate that nothing read.
    """
    truths = list(item.truth_strings or [])
    pairs: list[tuple[str | None, str | None]] = []
    unmatched = []
    for read in item.plate_reads:
        if read in truths:
            truths.remove(read)
            pairs.append((read, read))
        else:
            unmatched.append(read)
    for read in unmatched:
        closest = max(truths, key=lambda truth: difflib.SequenceMatcher(None, read, truth).ratio(), default=None)
        if closest is not None:
            truths.remove(closest)
        pairs.append((read, closest))
    return pairs + [(None, truth) for truth in truths]


def _plate_row(read: str | None, truth: str | None, judged: bool) -> dict[str, str | None]:
    mark = "" if not judged else ("ok" if read is not None and read == truth else "bad")
    return {"read": read, "truth": truth, "mark": mark}


def _name(checkpoint: Mapping[str, object]) -> object:
    """A checkpoint row's name: evaluate writes `checkpoint`; `name` is accepted too."""
    return checkpoint.get("checkpoint", checkpoint.get("name"))


def _scalars(name: str, value: object) -> dict[str, str]:
    """Header entries for a value: itself if plain, or one entry per plain value of a dict."""
    if isinstance(value, dict):
        return {f"{name} {k}".replace("_", " "): _format(v) for k, v in value.items() if _plain(v)}
    return {name.replace("_", " "): _format(value)} if _plain(value) else {}


def _plain(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _link(path: Path, page_dir: Path) -> str:
    return _relative(path, page_dir)


def _save_image(image: Image.Image, folder: Path, stem: str) -> str:
    """Save as JPEG under `folder`; return the link relative to the page one level above it."""
    name = f"{stem}.jpg"
    # 4:4:4 chroma keeps the thin coloured outlines and tag text crisp.
    image.convert("RGB").save(folder / name, format="JPEG", quality=90, subsampling=0)
    return f"{folder.name}/{quote(name)}"


def _slug(text: str) -> str:
    """Letters, digits, '-' and '_' only: safe as a file name and in a URL."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in text)[:60] or "image"


def _best_name(checkpoints: Sequence[dict], key: str, mode: str) -> object:
    scored = [c for c in checkpoints if _finite(c["metrics"].get(key))]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return _name(pick(scored, key=lambda c: float(c["metrics"][key])))


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _format(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)
