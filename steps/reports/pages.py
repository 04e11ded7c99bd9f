"""Self-contained HTML reports: the test step's `index.html` and the evaluate step's `report.html`.

No external assets (the Argo UI shows an artifact's index.html as is): inline CSS, images and
matplotlib charts saved beside the page and linked relatively. Pages are jinja2 templates
(`steps/reports/templates/`) with autoescaping on, so every value that comes from data is escaped.
Each page reads the resolved `config.yaml` its step saved beside it for the class groups and the
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

from steps.decision_figures import shown
from steps.reports import charts
from steps.reports.class_metrics import COLUMNS, class_rows, group_values, headline
from steps.reports.outcomes import ImageOutcome

_TEMPLATES = Path(__file__).parent / "templates"
# Per-class keys (segm/AP50-plate ...) go to the class table, not the flat metrics table.
_PER_CLASS_MARKERS = ("/AP-", "/AP50-", "/AP75-", "_AP-")


@dataclass(frozen=True)
class ReportItem:
    """One test image in the report: its drawings, how its detections fared, what was read on it."""

    file_name: str
    image: Image.Image  # predictions already drawn (steps.reports.visualize.draw_predictions)
    plate_reads: list[str] = field(default_factory=list)
    truth_strings: list[str] | None = None  # None: no plate strings to compare (no plates, or no truth)
    num_detections: int = 0
    ground_truth_image: Image.Image | None = None  # shown beside the prediction
    outcome: ImageOutcome | None = None  # TP/FP/missed against the ground truth; None: no ground truth
    production_image: Image.Image | None = None  # the production model's predictions on the same image
    production_outcome: ImageOutcome | None = None

    @property
    def all_read(self) -> bool | None:
        """Whether every truth string was read exactly; None without truth."""
        if self.truth_strings is None:
            return None
        return sorted(self.truth_strings) == sorted(self.plate_reads)

    @property
    def judged(self) -> bool:
        return self.outcome is not None or self.truth_strings is not None

    @property
    def errors(self) -> int:
        """Missed objects, false detections and misread plates: what sorts the images."""
        misread = 0 if self.all_read in (None, True) else 1
        return (self.outcome.errors if self.outcome else 0) + misread


@dataclass(frozen=True)
class Production:
    """The production model's scores on the same test images, for the side-by-side columns."""

    model_id: str
    metrics: Mapping[str, float]


def write_test_report(
    out_dir: Path,
    items: list[ReportItem],
    metrics: Mapping[str, float],
    title: str,
    meta: dict[str, str],
    production: Production | None = None,
    gt: Mapping[str, object] | None = None,
    intervals: Mapping[str, tuple[float, float]] | None = None,
) -> Path:
    """Write `out_dir/index.html` and its drawn images under `out_dir/images/`; return the page.

    Images with errors (objects missed, false detections, plates misread) come first, most errors
    first, each drawing beside its ground truth (and the production model's, when given).
    `metrics`: this model's flat scores; `production`: the production model's on the same images;
    `gt`: the test split, for each class's support; `intervals`: 95% intervals of the headline
    figures (steps/reports/intervals.py).
    """
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    config = _saved_config(out_dir)
    groups = _groups(config)
    cards = []
    for number, item in enumerate(items):
        # The number keeps names unique; the slug keeps them readable and safe in a URL.
        stem = f"{number:04d}_{_slug(PureWindowsPath(item.file_name).stem)}"
        panels = [{"src": _save_image(item.image, images_dir, stem), "caption": "this model",
                   "alt": item.file_name, "counts": _counts(item.outcome)}]
        if item.production_image is not None:
            panels.append({"src": _save_image(item.production_image, images_dir, f"{stem}_production"),
                           "caption": "production", "alt": f"production on {item.file_name}",
                           "counts": _counts(item.production_outcome)})
        if item.ground_truth_image is not None:
            panels.append({"src": _save_image(item.ground_truth_image, images_dir, f"{stem}_gt"),
                           "caption": "ground truth", "alt": f"ground truth of {item.file_name}", "counts": ""})
        cards.append({
            "file_name": item.file_name, "panels": panels, "errors": item.errors,
            "state": ("bad" if item.errors else "ok") if item.judged else "",
            "rows": [_plate_row(read, truth, item.truth_strings is not None) for read, truth in _pairs(item)],
            "plates": item.truth_strings is not None or bool(item.plate_reads),
            "detections": item.num_detections, "judged": item.judged,
        })
    judged = [card for card in cards if card["judged"]]
    summary = f"{sum(1 for c in judged if not c['errors'])} of {len(judged)} images without an error. " if judged else ""
    summary += f"{len(items)} image{'' if len(items) == 1 else 's'} shown."
    wrong = sorted((c for c in judged if c["errors"]), key=lambda c: -c["errors"])  # stable: split order within
    # Plates are named only where the dataset has them: another dataset's reader was never told of plates.
    misread = ", plates misread" if any(card["plates"] for card in cards) else ""
    groups_of_cards = [
        {"title": f"Errors: objects missed, false detections{misread} (most first)", "cards": wrong},
        {"title": "Everything found, nothing false", "cards": [c for c in judged if not c["errors"]]},
        {"title": "Without ground truth", "cards": [c for c in cards if not c["judged"]]},
    ]
    links = _links(out_dir, evaluation=next(
        (page for task in EVALUATION_TASKS if (page := _existing(_local_artifact(out_dir, task, "evaluation") / "report.html"))),
        None))
    numeric = {k: v for k, v in metrics.items() if _number(v)}
    theirs = {k: v for k, v in (production.metrics if production else {}).items() if _number(v)}
    page = out_dir / "index.html"
    _render(page, "test.html.j2", title=title, meta=meta, links=links, summary=summary, groups=groups_of_cards,
            figures=_figures(numeric, groups, intervals, theirs or None, gt),
            class_rows=_class_table(numeric, groups, gt, theirs or None),
            production=production.model_id if production else None,
            metrics=[{"key": k, "value": v, "production": theirs.get(k), "diff": _diff(v, theirs.get(k))}
                     for k, v in numeric.items() if not any(m in k for m in _PER_CLASS_MARKERS)],
            thresholds=_thresholds(config, reads=any(card["plates"] for card in cards)))
    return page


def _counts(outcome: ImageOutcome | None) -> str:
    if outcome is None:
        return ""
    return f"{outcome.true_positives} TP · {outcome.false_positives} FP · {len(outcome.missed)} missed"


def _figures(metrics: Mapping[str, float], groups: Mapping[str, list[str]], intervals: Mapping[str, tuple[float, float]] | None,
             production: Mapping[str, float] | None, gt: Mapping[str, object] | None) -> list[dict[str, object]]:
    """The headline tiles: the figure, its 95% interval and support, and production's beside it."""
    theirs = headline(production, groups) if production else {}
    images = len(gt.get("images", [])) if gt is not None else None  # type: ignore[arg-type]
    tiles = []
    for label, value in headline(metrics, groups).items():
        low_high = (intervals or {}).get(label)
        tiles.append({"label": label, "value": value, "interval": low_high,
                      "support": f"{images} image{'' if images == 1 else 's'}" if images is not None else "",
                      "production": theirs.get(label), "diff": _diff(value, theirs.get(label))})
    return tiles


def _class_table(metrics: Mapping[str, float], groups: Mapping[str, list[str]], gt: Mapping[str, object] | None,
                 production: Mapping[str, float] | None) -> list[dict[str, object]]:
    theirs = {row.name: row for row in class_rows(production, groups)} if production else {}
    return [{"row": row, "production": theirs[row.name].values["AP50"] if row.name in theirs else None}
            for row in class_rows(metrics, groups, gt)]


def _diff(ours: object, theirs: object) -> float | None:
    return float(ours) - float(theirs) if _number(ours) and _number(theirs) else None  # type: ignore[arg-type]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _groups(config: Mapping[str, object]) -> dict[str, list[str]]:
    """evaluate.class_groups of the saved config; {} (per-class tables only) when unset or malformed."""
    groups = _setting(config, "evaluate", "class_groups", {})
    if not isinstance(groups, dict):
        return {}
    return {str(k): [str(m) for m in v] for k, v in groups.items() if isinstance(v, list)}


def write_evaluation_report(
    out_dir: Path, evaluation: dict, pr_curves: dict | None, training_dir: Path | None = None,
    gt: Mapping[str, object] | None = None, intervals: Mapping[str, tuple[float, float]] | None = None,
    tensorboard: str | None = None,
) -> Path:
    """Write `out_dir/report.html`: the promotion verdict, per-class results, every checkpoint, charts.

    `evaluation` (the evaluate step's evaluation.json):
      {"select_key": "segm/AP", "select_mode": "max", "best": "<checkpoint>" (optional: computed),
       "checkpoints": [{"checkpoint": str, "iteration": int, "metrics": {key: float}, "branch": str (a sweep's)}, ...],
       "champion": {"model_id": str, "metrics": {...}} or None (production, shown as a last row),
       "promotion": {"promoted", "reason", "model_id", "challenger_score", "champion_score"} (optional),
       "branches": [...] (a sweep's), other plain values: listed in the header}
    `pr_curves` (optional): {caption: {"recall": [...], "precision": [...]}} drawn into one chart,
    or {caption: path of a PNG} copied beside the page. `training_dir`: the train step's output
    (metrics.json for the loss curves); `tensorboard`: the logdir to name (default: its tensorboard/).
    `gt`: the validation split, for the support of each class; `intervals`: the headline figures'
    95% intervals (steps/reports/intervals.py).
    """
    out_dir = Path(out_dir)
    charts_dir = out_dir / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    config = _saved_config(out_dir)
    groups = _groups(config)
    key, mode = str(evaluation["select_key"]), str(evaluation.get("select_mode", "max"))
    checkpoints = sorted(evaluation["checkpoints"], key=lambda c: (str(c.get("branch", "")), int(c.get("iteration", 0))))
    best = evaluation.get("best") or _best_name(checkpoints, key, mode)
    best_row = next((c for c in checkpoints if _name(c) == best), None)
    champion = evaluation.get("champion")

    rows = [{"name": _name(c), "iteration": c.get("iteration", ""), "best": _name(c) == best, "branch": c.get("branch"),
             "cells": _with_groups(c["metrics"], groups)} for c in checkpoints]
    champion_row = {"name": champion.get("model_id", ""), "cells": _with_groups(champion["metrics"], groups)} if champion else None
    every = [r["cells"] for r in rows] + ([champion_row["cells"]] if champion_row else [])
    # A group column that is the selection key itself (`plate mask AP50` for segm/AP50-plate) would be shown twice.
    grouped = [column for cells in every for column in group_values(cells, groups)
               if cells[column] != cells.get(key) or key != f"segm/AP50-{column.removesuffix(' mask AP50')}"]
    preferred = [key, *grouped, "segm/AP", "segm/AP50", "bbox/AP", "dv_mAP", "EIR"]
    columns = [col for col in dict.fromkeys(preferred) if any(col in values for values in every)][:8]

    figures = []
    selected = best_row.get("iteration") if best_row else None
    champion_values = champion_row["cells"] if champion_row else None
    branches = evaluation.get("branches") or []
    if branches:
        # A sweep: one line per branch (its select_key over its own checkpoints), not one line
        # that zigzags through every branch's checkpoints.
        lines = {str(b["branch"]): [{"iteration": r["iteration"], key: r["cells"].get(key)} for r in rows
                                    if r["branch"] == b["branch"]] for b in branches}
        selection = charts.branches_by_checkpoint(lines, key, (best_row or {}).get("branch"), selected,
                                                  (champion_values or {}).get(key), charts_dir / "selection.png",
                                                  f"{key} by checkpoint, per branch (validation)")
    else:
        chart_rows = [{"iteration": r["iteration"], **r["cells"]} for r in rows]
        selection = charts.metrics_by_checkpoint(chart_rows, columns[:5], selected, champion_values, charts_dir / "selection.png",
                                                 "metrics by checkpoint (validation)")
    if selection:
        figures.append({"src": _link(selection, out_dir), "caption": ("one line per branch; " if branches else "")
                        + f"by iteration; ringed: the selected checkpoint ({key}); dotted: production"})
    log = _training_log(training_dir)
    curves = charts.training_curves(log, charts_dir / "training.png") if log else None
    if curves:
        figures.append({"src": _link(curves, out_dir), "caption": "training loss and learning rate (metrics.json)"
                        + (" of the selected branch" if branches else "")})
    figures += _pr_figures(pr_curves or {}, charts_dir)

    header = {"selection": f"{mode} of {key}", "selected checkpoint": str(best)}
    if gt is not None:
        header["validation images"] = str(len(gt.get("images", [])))  # type: ignore[arg-type]
    for name, value in evaluation.items():
        if name not in {"select_key", "select_mode", "best", "checkpoints", "champion", "promotion", "branches", "partial"}:
            header.update(_scalars(name, value))
    if tensorboard is None and training_dir is not None and (training_dir / "tensorboard").is_dir():
        tensorboard = str((training_dir / "tensorboard").resolve())
    if tensorboard is not None and (out_dir / "tensorboard").is_dir():
        # The training losses and this step's validation AP and drawings, side by side.
        tensorboard = f"--logdir_spec train:{tensorboard},validation:{(out_dir / 'tensorboard').resolve()}"
    elif tensorboard is not None:
        tensorboard = f"--logdir {tensorboard}"
    links = _links(out_dir, test=None if branches else _local_test_report(out_dir), tensorboard=tensorboard,
                   config=_existing(out_dir / "config.yaml"))
    theirs = champion["metrics"] if champion else None
    table = _class_table(best_row["metrics"], groups, gt, theirs) if best_row else []
    page = out_dir / "report.html"
    _render(page, "evaluation.html.j2", title="Evaluation", meta=header, links=links, key=key, mode=mode, best=best,
            promotion=_promotion(evaluation.get("promotion"), champion),
            figures=_figures(best_row["metrics"], groups, intervals, theirs, gt) if best_row else [],
            class_rows=table, production=champion.get("model_id") if champion else None,
            groups=any(item["row"].kind == "group" for item in table),
            columns=columns, rows=rows, champion=champion_row, charts=figures,
            # A sweep's branches side by side: settings, checkpoints scored, the best one's scores.
            branches=[{**b, "cells": _with_groups(b.get("metrics", {}), groups)} for b in branches],
            config_text=_read_text(out_dir / "config.yaml"),
            partial=evaluation.get("partial"))  # what a partial evaluation or sweep lacks (steps/select/scores.py)
    return page


def _with_groups(metrics: Mapping[str, object], groups: Mapping[str, list[str]]) -> dict[str, object]:
    """A checkpoint's metrics plus each class group's mask AP50 (a column of its own)."""
    return {**metrics, **group_values(metrics, groups)}


def _promotion(promotion: Mapping[str, object] | None, champion: Mapping[str, object] | None) -> dict[str, object] | None:
    """The verdict and the decision's figures, under evaluation.json's names (steps/decision_figures.py)."""
    if not promotion:
        return None
    model = promotion.get("model_id") or "this run's model"
    promoted = bool(promotion.get("promoted"))
    return {
        "promoted": promoted,
        "headline": f"Promoted to production: {model}" if promoted else f"Not promoted: {model} stays a registered candidate",
        "challenger_score": promotion.get("challenger_score"),
        "champion_score": promotion.get("champion_score"),
        "has_champion": champion is not None or promotion.get("champion_score") is not None,
        "reason": str(promotion.get("reason", "")),
        "interval": _gain_interval(promotion),
        "figures": shown(promotion),
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


# The tasks whose `evaluation` folder holds the evaluation report: select, after the fan-out.
EVALUATION_TASKS = ("select",)


def _local_test_report(out_dir: Path) -> Path | None:
    """The test report of the same local run (select's `evaluation` -> test's `report`).

    It is written after this page, so only the local runner's layout tells where it will be; on a
    cluster each artifact lives apart and the Argo UI lists both.
    """
    if not any(task.name in EVALUATION_TASKS for task in _local_task(out_dir)):
        return None
    return _local_artifact(out_dir, "test", "report") / "index.html"


def _local_task(out_dir: Path) -> list[Path]:
    """`<run>/<task>`, the local runner's folder of the task that writes `out_dir`, when there is one
    (its run folder holds `train`): each pod's files lie under it as in the pod."""
    return [folder for folder in out_dir.parents if folder.parent != folder and (folder.parent / "train").is_dir()][:1]


def _local_artifact(out_dir: Path, task: str, artifact: str) -> Path:
    """Another task's artifact of the same local run, at the place beside `out_dir` that it has in
    its own pod (the pipeline's templates keep their outputs side by side); or a path that does not
    exist, off a cluster's run."""
    for folder in _local_task(out_dir):
        return folder.parent / task / out_dir.parent.relative_to(folder) / artifact
    return out_dir.parent / "-" / artifact


def _links(out_dir: Path, test: Path | None = None, evaluation: Path | None = None, tensorboard: str | None = None,
           config: Path | None = None) -> list[dict[str, str | None]]:
    links: list[dict[str, str | None]] = []
    if evaluation is not None:
        links.append({"text": "← evaluation report", "href": _relative(evaluation, out_dir), "code": None})
    if test is not None:
        links.append({"text": "test report →", "href": _relative(test, out_dir), "code": None})
    if config is not None:
        links.append({"text": "config.yaml", "href": _relative(config, out_dir), "code": None})
    if tensorboard is not None:
        links.append({"text": "TensorBoard:", "href": None, "code": f"tensorboard {tensorboard}"})
    return links


def _thresholds(config: Mapping[str, object], reads: bool = True) -> dict[str, object] | None:
    """The scores the page draws, reads (only where plates are read) and scores at."""
    draw = _setting(config, "test", "score_threshold", None)
    score = _setting(config, "evaluate", "score_threshold", None)
    read = _setting(config, "evaluate", "read_score", None) if reads else None
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
    env.filters["short"] = _short
    env.filters["signed"] = _signed
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


def _short(value: object) -> str:
    """A headline figure: two decimals, which is all a test split of tens of images can carry."""
    return "n/a" if not _number(value) or math.isnan(float(value)) else f"{float(value):.2f}"  # type: ignore[arg-type]


def _signed(value: object) -> str:
    return "" if not _number(value) or math.isnan(float(value)) else f"{float(value):+.2f}"  # type: ignore[arg-type]
