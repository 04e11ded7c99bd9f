"""All evaluation metrics of one set of predictions, as flat `family/name` keys.

The keys are what `evaluate.select_key` names: `bbox/AP`, `segm/AP50`, `segm/AP-plate`,
`segm/AP50-plate`, `dv_mAP`, `dv_AP-plate`, `EIR`. `metric_keys` lists them from the ground truth
alone, so that a mistyped key is refused before any model is run; `family_metrics` computes only
the family one key belongs to (the bootstrap recomputes one key many times).
"""

from __future__ import annotations

from typing import Any

from steps.config import EvaluateConfig
from steps.errors import ConfigError
from steps.metrics.coco_ap import coco_evaluate
from steps.metrics.coco_stats import SUMMARY_KEYS
from steps.metrics.dv_map import dv_map
from steps.metrics.eir import eir

FAMILIES = ("bbox", "segm", "dv", "EIR")


def all_metrics(gt: dict[str, Any], results: list[dict[str, Any]], config: EvaluateConfig) -> dict[str, float]:
    """COCO bbox and segm AP, dv_mAP (plate class sliced) and EIR, after the score threshold.

    dv_mAP and EIR are left out when the dataset has no `config.plate_label` category.
    """
    metrics: dict[str, float] = {}
    for family in FAMILIES:
        metrics.update(family_metrics(family, gt, results, config))
    return metrics


def family_of(key: str) -> str:
    """The family a metric key belongs to: `segm/AP50` -> segm, `dv_AP-plate` -> dv, `EIR` -> EIR."""
    if key.startswith("dv_"):
        return "dv"
    return key.split("/", 1)[0]


def above_threshold(results: list[dict[str, Any]], config: EvaluateConfig) -> list[dict[str, Any]]:
    """The predictions every metric scores: score >= evaluate.score_threshold."""
    return [res for res in results if float(res["score"]) >= config.score_threshold]


def family_metrics(family: str, gt: dict[str, Any], results: list[dict[str, Any]],
                   config: EvaluateConfig, checked: bool = False) -> dict[str, float]:
    """The metrics of one family (see FAMILIES); {} for dv/EIR on a dataset without plates.

    `checked`: for bbox and segm, `results` already passed coco_ap.check_predictions (see
    coco_evaluate).
    """
    kept = above_threshold(results, config)
    if family in ("bbox", "segm"):
        coco = coco_evaluate(gt, kept, family, checked=checked)  # type: ignore[arg-type]
        metrics = {f"{family}/{key}": value for key, value in coco.items() if not key.startswith("per_class")}
        for suffix in ("", "50", "75"):
            metrics.update({f"{family}/AP{suffix}-{name}": value for name, value in coco[f"per_class{suffix}"].items()})
        return metrics
    if not _has_plates(gt, config):
        return {}  # not a plate dataset: dv_mAP and EIR are not defined
    if family == "dv":
        dv = dv_map(gt, kept, slices=config.dv_slices, iou_threshold=config.dv_mask_iou, slice_iou=config.dv_iou,
                    classes=[config.plate_label])
        return {"dv_mAP": dv["dv_mAP"], **{f"dv_AP-{name}": value for name, value in dv["per_class"].items()}}
    if family == "EIR":
        return {"EIR": eir(gt, kept, plate_label=config.plate_label, read_score=config.read_score,
                           char_nms_iou=config.char_nms_iou)["EIR"]}
    raise ValueError(f"unknown metric family {family!r} (known: {', '.join(FAMILIES)})")


def metric_keys(gt: dict[str, Any], config: EvaluateConfig) -> set[str]:
    """Every key all_metrics can return on this ground truth (per-class keys for every category)."""
    names = [c["name"] for c in gt.get("categories", [])]
    per_class = [f"AP{suffix}-{n}" for suffix in ("", "50", "75") for n in names]
    keys = {f"{family}/{key}" for family in ("bbox", "segm") for key in (*SUMMARY_KEYS, *per_class)}
    if _has_plates(gt, config):
        keys |= {"dv_mAP", "EIR", *(f"dv_AP-{n}" for n in names)}
    return keys


def resolve_select_key(config: EvaluateConfig, keys: set[str], tie_break: bool = True) -> str:
    """Set `select_key` to the first of its preferences that is one of this dataset's metric
    `keys` (metric_keys, or what the checkpoints were scored with) and return it; refuse a
    select_key (or, with `tie_break`, tie_break_key) the dataset has no metric for, before any
    checkpoint is scored."""
    wanted = [config.select_key] if isinstance(config.select_key, str) else list(config.select_key)
    chosen = next((key for key in wanted if key in keys), None)
    for field, value in (("select_key", chosen), ("tie_break_key", config.tie_break_key))[: 2 if tie_break else 1]:
        if value is None or value not in keys:
            known = ", ".join(sorted(k for k in keys if "-" not in k))
            shown = value if value is not None else (wanted[0] if len(wanted) == 1 else wanted)
            raise ConfigError(f"evaluate.{field}: {shown!r} is not a metric of this dataset (known: {known}, and per "
                              "class bbox/AP-<class>, segm/AP50-<class>, segm/AP75-<class>, dv_AP-<class>); "
                              f"a list such as [segm/AP50-plate, segm/AP] falls back to the next key")
    config.select_key = chosen
    return chosen


def _has_plates(gt: dict[str, Any], config: EvaluateConfig) -> bool:
    return config.plate_label in {c["name"] for c in gt.get("categories", [])}
