"""Run a model over a COCO split and score it (metrics: steps.metrics.all_metrics).

Predictions are matched to the ground truth by category NAME: a model's category ids are
positions in the label list it was trained on, which shift when a later annotation version adds
a label. A dataset class the model cannot predict is scored as missing (no predictions: AP 0);
a model class the dataset does not have is dropped (there is nothing to score it against).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.config import EvaluateConfig
from steps.errors import InputError


@dataclass(frozen=True)
class CategoryMap:
    """Model category id -> ground-truth category id, by name, and what does not line up."""

    to_gt: dict[int, int]
    missing: list[str]  # dataset classes the model cannot predict (scored as missing)
    extra: list[str]  # model classes the dataset does not have (their predictions are dropped)

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"cannot predict {', '.join(self.missing)} (scored as missing: AP 0)")
        if self.extra:
            parts.append(f"predicts {', '.join(self.extra)}, which the dataset does not have (dropped)")
        return "; ".join(parts)


def category_map(model_categories: list[dict[str, Any]], gt: dict) -> CategoryMap:
    gt_ids = {str(c["name"]): int(c["id"]) for c in gt.get("categories", [])}
    model_ids = {str(c["name"]): int(c["id"]) for c in model_categories}
    if len(model_ids) != len(model_categories):
        raise InputError("the model's checkpoint names a category twice; it cannot be matched to the dataset by name")
    shared = [name for name in model_ids if name in gt_ids]
    if not shared:
        raise InputError(
            f"the model's categories ({', '.join(model_ids)}) share no name with the dataset's "
            f"({', '.join(gt_ids)}); it was trained on another kind of data"
        )
    return CategoryMap(
        to_gt={model_ids[name]: gt_ids[name] for name in shared},
        missing=[name for name in gt_ids if name not in model_ids],
        extra=[name for name in model_ids if name not in gt_ids],
    )


def predict_split(predictor: Any, gt: dict, images_dir: Path, score_threshold: float, label: str = "",
                  prefix: str = "  ", batch_size: int = 1) -> list[dict]:
    """COCO results for every image of the split, in the split's category ids, with a progress line
    (rate, ETA) every 10 s. `batch_size` images go through the model at once (evaluate.batch_size,
    test.batch_size)."""
    from steps.models.batching import predict_images  # torch-free callers import this module too
    from steps.progress import Progress

    mapping = category_map(predictor.categories, gt)
    if mapping.missing or mapping.extra:
        print(f"evaluate: {label or 'the model'} {mapping.describe()}", flush=True)
    results: list[dict] = []
    images = gt["images"]
    progress = Progress(len(images), "images predicted", prefix)
    inputs = [(images_dir / image["file_name"], image["id"]) for image in images]
    for index, predicted in enumerate(predict_images(predictor, inputs, score_threshold, batch_size), start=1):
        for res in predicted:
            category = mapping.to_gt.get(int(res["category_id"]))
            if category is not None:
                results.append({**res, "category_id": category})
        progress.update(index)
    return results


def score(gt: dict, results: list[dict], config: EvaluateConfig) -> dict[str, float]:
    """Flat metrics: `bbox/AP`, `segm/AP50`, ..., `dv_mAP`, `EIR` (all in [0, 1])."""
    from steps.metrics import all_metrics

    return all_metrics(gt, results, config)


def load_split(dataset_dir: Path, split: str) -> dict:
    """The split's COCO ground truth, checked: the C mask code trusts what it is given."""
    from steps.jsonio import read_json
    from steps.metrics.ground_truth import check_ground_truth

    path = dataset_dir / f"{split}.json"
    gt = read_json(path, "COCO ground truth", "the dataset folder should be the record step's output")
    try:
        check_ground_truth(gt)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    return gt
