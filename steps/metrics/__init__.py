"""Evaluation metrics: COCO AP (bbox, segm), dv_mAP and EIR. Definitions: docs/metrics.md."""

from __future__ import annotations

from steps.metrics.coco_ap import coco_evaluate
from steps.metrics.dv_map import dv_map
from steps.metrics.eir import eir, read_plate, read_plates
from steps.metrics.summary import all_metrics

__all__ = ["all_metrics", "coco_evaluate", "dv_map", "eir", "read_plate", "read_plates"]
