"""Validation results in TensorBoard, beside the training losses: AP per checkpoint and drawn predictions.

Select writes them under its evaluation folder (`tensorboard/`, one run per sweep branch), so
`tensorboard --logdir <run>` shows the training losses and the validation curves of a run
together. The events are ordinary TensorBoard event files (torch.utils.tensorboard).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from steps.reports.class_metrics import group_values
from steps.config import Config

KEYS = ("segm/AP", "segm/AP50", "bbox/AP", "dv_mAP", "EIR")
IMAGES = 4  # drawn validation images of the selected checkpoint


def write_validation(folder: Path, rows: Sequence[Mapping[str, object]], config: Config, gt: dict,
                     images_dir: Path, best: Mapping[str, object], best_results: list[dict]) -> Path:
    """Scalars `validation/<key>` per checkpoint (by iteration; a sweep's branches as runs of their
    own) and the selected checkpoint's drawings on the first validation images. Returns the logdir."""
    from torch.utils.tensorboard import SummaryWriter

    keys = list(dict.fromkeys([config.evaluate.select_key, *KEYS]))
    by_branch: dict[str, list[Mapping[str, object]]] = {}
    for row in rows:
        by_branch.setdefault(str(row.get("branch") or ""), []).append(row)
    for branch, own in by_branch.items():
        with SummaryWriter(str(folder / branch) if branch else str(folder)) as writer:
            for row in own:
                metrics = row["metrics"]  # type: ignore[index]
                values = {**{k: metrics.get(k) for k in keys}, **group_values(metrics, config.evaluate.class_groups)}  # type: ignore[union-attr]
                for key, value in values.items():
                    if isinstance(value, int | float) and math.isfinite(value):
                        writer.add_scalar(f"validation/{key}", float(value), int(row["iteration"]))  # type: ignore[call-overload]
            if branch == str(best.get("branch") or ""):
                _images(writer, config, gt, images_dir, best_results, int(best["iteration"]))  # type: ignore[call-overload]
    return folder


def _images(writer: object, config: Config, gt: dict, images_dir: Path, results: list[dict], step: int) -> None:
    from steps.reports.outcomes import judge
    from steps.reports.visualize import draw_predictions

    shown_at = config.test.score_threshold
    for image in gt["images"][:IMAGES]:
        try:
            picture = Image.open(images_dir / image["file_name"]).convert("RGB")
        except OSError:
            continue  # a drawing is a courtesy: an image that cannot be read here costs only its picture
        shown = [r for r in results if r["image_id"] == image["id"] and r["score"] >= shown_at]
        annotations = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
        outcome = judge(shown, annotations, picture.height, picture.width)
        drawn = draw_predictions(picture, shown, gt["categories"], config.evaluate.plate_label, outcome=outcome)
        writer.add_image(f"validation/{image['file_name']}", np.asarray(drawn), step, dataformats="HWC")  # type: ignore[attr-defined]
