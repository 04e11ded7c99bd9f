"""Evaluation metrics: COCO AP (bbox, segm), dv_mAP and EIR. Definitions: docs/metrics.md."""

from __future__ import annotations

from typing import Any

from steps.metrics.coco_ap import coco_evaluate
from steps.metrics.dv_map import dv_map
from steps.metrics.eir import eir, read_plate, read_plates

__all__ = ["all_metrics", "coco_evaluate", "dv_map", "eir", "read_plate", "read_plates"]


def __getattr__(name: str) -> Any:
    # all_metrics on first use: it reads the configuration's pydantic models, which `trainyard
    # coco-eval` never needs (a tenth of a second of its start-up).
    if name == "all_metrics":
        from steps.metrics.summary import all_metrics

        return all_metrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
