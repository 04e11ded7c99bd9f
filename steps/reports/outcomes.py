"""Each detection of an image judged against its ground truth: true positive, false positive or missed.

The matching is COCO's at one IoU threshold: detections in descending score order, each takes
the unmatched ground-truth object of its class with the highest mask IoU, if that IoU reaches the
threshold (0.5, as AP50). What is left over is a false positive (with the best IoU it had with
any object of its class, to tell a poor mask from a detection out of nowhere) or a missed object.
The reports draw and count these, and sort their images by what went wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from steps import masks

IOU = 0.5


@dataclass(frozen=True)
class Judged:
    prediction: dict
    outcome: str  # "TP" | "FP"
    iou: float  # with the matched object (TP) or the closest object of its class (FP), 0 if none


@dataclass
class ImageOutcome:
    detections: list[Judged] = field(default_factory=list)
    missed: list[dict] = field(default_factory=list)  # ground-truth annotations no detection matched

    @property
    def true_positives(self) -> int:
        return sum(1 for d in self.detections if d.outcome == "TP")

    @property
    def false_positives(self) -> int:
        return sum(1 for d in self.detections if d.outcome == "FP")

    @property
    def errors(self) -> int:
        """What went wrong on the image: missed objects and false detections."""
        return len(self.missed) + self.false_positives


def judge(predictions: Sequence[dict], annotations: Sequence[dict], height: int, width: int,
          iou_threshold: float = IOU) -> ImageOutcome:
    """Match one image's predictions (COCO results with masks) to its annotations, class by class."""
    outcome = ImageOutcome()
    classes = {int(p["category_id"]) for p in predictions} | {int(a["category_id"]) for a in annotations}
    judged: dict[int, Judged] = {}
    for category in sorted(classes):
        preds = sorted((p for p in predictions if int(p["category_id"]) == category), key=lambda p: -float(p["score"]))
        truths = [a for a in annotations if int(a["category_id"]) == category and not a.get("iscrowd")]
        ious = masks.iou_matrix([_rle(p, height, width) for p in preds], [_rle(a, height, width) for a in truths])
        taken = np.zeros(len(truths), dtype=bool)
        for row, prediction in enumerate(preds):
            free = np.where(taken, -1.0, ious[row]) if len(truths) else np.zeros(0)
            best = int(np.argmax(free)) if len(free) else -1
            if best >= 0 and free[best] >= iou_threshold:
                taken[best] = True
                judged[id(prediction)] = Judged(prediction, "TP", float(free[best]))
            else:
                closest = float(ious[row].max()) if len(truths) else 0.0
                judged[id(prediction)] = Judged(prediction, "FP", closest)
        outcome.missed += [truth for truth, hit in zip(truths, taken) if not hit]
    outcome.detections = [judged[id(p)] for p in predictions]
    return outcome


def _rle(item: dict, height: int, width: int) -> dict:
    segmentation = item.get("segmentation")
    if segmentation:
        return masks.segmentation_to_rle(segmentation, height, width)
    x, y, w, h = (float(v) for v in item["bbox"])  # no mask: its box, as a mask
    box = np.zeros((height, width), dtype=bool)
    box[int(y):int(np.ceil(y + h)), int(x):int(np.ceil(x + w))] = True
    return masks.encode(box)
