"""All evaluation metrics of one set of predictions, as flat `family/name` keys.

The keys are what `evaluate.select_key` names: `bbox/AP`, `segm/AP50`, `segm/AP-plate`, `segm/AP50-plate`,
`dv_mAP`, `dv_AP-plate`, `EIR`.
"""

from __future__ import annotations

from typing import Any

from steps.config import EvaluateConfig
from steps.metrics.coco_ap import coco_evaluate
from steps.metrics.dv_map import dv_map
from steps.metrics.eir import eir


def all_metrics(gt: dict[str, Any], results: list[dict[str, Any]], config: EvaluateConfig) -> dict[str, float]:
    """COCO bbox and segm AP, dv_mAP (plate class sliced) and EIR, after the score threshold.

    dv_mAP and EIR are left out when the dataset has no `config.plate_label` category.
    """
    kept = [res for res in results if float(res["score"]) >= config.score_threshold]
    metrics: dict[str, float] = {}
    for iou_type in ("bbox", "segm"):
        coco = coco_evaluate(gt, kept, iou_type)
        metrics.update({f"{iou_type}/{key}": value for key, value in coco.items() if not key.startswith("per_class")})
        for suffix in ("", "50", "75"):
            metrics.update({f"{iou_type}/AP{suffix}-{name}": value for name, value in coco[f"per_class{suffix}"].items()})
    if config.plate_label not in {c["name"] for c in gt.get("categories", [])}:
        return metrics  # not a plate dataset: dv_mAP and EIR are not defined
    dv = dv_map(gt, kept, slices=config.dv_slices, slice_iou=config.dv_iou, classes=[config.plate_label])
    metrics["dv_mAP"] = dv["dv_mAP"]
    metrics.update({f"dv_AP-{name}": value for name, value in dv["per_class"].items()})
    metrics["EIR"] = eir(gt, kept, plate_label=config.plate_label, char_score=config.eir_char_score)["EIR"]
    return metrics
