"""EIR, exact inference rate: the share of ground-truth plates read exactly right.

A plate's truth is its ground-truth characters (those whose box centre lies inside the plate
polygon) read row by row, each row left to right along the plate's axis. Its reading is the characters predicted
inside the best-matching predicted plate mask, read the same way (steps.metrics.plates, which the test
report uses too, so what a report shows is what was scored). One threshold, `read_score`, applies
to plates and characters alike; overlapping characters of any classes are suppressed to the
best-scoring one before reading. Definitions: docs/metrics.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from steps.masks import decode, iou_matrix
from steps.metrics.ground_truth import Image, index
from steps.metrics.plates import glyph, inside_mask, inside_polygon, read_string

# Characters whose boxes overlap more than this are one glyph read twice (evaluate.char_nms_iou).
CHAR_NMS_IOU = 0.5


def eir(
    gt: dict[str, Any],
    results: list[dict[str, Any]],
    plate_label: str = "plate",
    read_score: float = 0.5,
    plate_iou: float = 0.5,
    char_nms_iou: float = CHAR_NMS_IOU,
    *,
    char_score: float | None = None,
) -> dict[str, Any]:
    """{"EIR": exact / plates, "plates": n, "exact": k, "reads": [{"image_id", "truth", "read"}]}.

    A ground-truth plate is read through the predicted plate scoring at least `read_score` with the
    highest mask IoU (at least `plate_iou`); `read` is None when no predicted plate qualifies.
    Only characters scoring at least `read_score` are read (`char_score`: its former name).
    EIR is NaN when the ground truth has no plate.
    """
    if char_score is not None:
        read_score = char_score
    data = index(gt, results, needs=("segmentation",))
    (plate_id,) = data.category_ids([plate_label], "evaluate.plate_label")
    reads = []
    for image in data.images.values():
        plates = [ann for ann in image.annotations if ann["category_id"] == plate_id]
        if not plates:
            continue
        predicted = [p for p in image.predictions if p["category_id"] == plate_id and float(p["score"]) >= read_score]
        ious = iou_matrix([image.rle(p) for p in predicted], [image.rle(ann) for ann in plates])
        for j, plate in enumerate(plates):
            truth = _truth(image, plate, plate_id, data.names)
            best = _best_plate(predicted, ious[:, j], plate_iou)
            read = None if best is None else read_plate(
                best, image.predictions, data.names, plate_id, read_score, char_nms_iou)
            reads.append({"image_id": image.id, "truth": truth, "read": read})
    exact = sum(r["read"] == r["truth"] for r in reads)
    rate = exact / len(reads) if reads else float("nan")
    return {"EIR": rate, "plates": len(reads), "exact": exact, "reads": reads}


def read_plates(
    image_results: list[dict[str, Any]],
    names: dict[int, str],
    plate_label: str = "plate",
    read_score: float = 0.5,
    char_nms_iou: float = CHAR_NMS_IOU,
) -> list[tuple[dict[str, Any], str]]:
    """Every predicted plate of one image scoring at least `read_score`, with its reading, for
    drawing reports: the same rule as EIR. `names` maps category id -> name.
    """
    plate_ids = [cid for cid, name in names.items() if name == plate_label]
    return [
        (res, read_plate(res, image_results, names, res["category_id"], read_score, char_nms_iou))
        for res in image_results
        if res["category_id"] in plate_ids and float(res["score"]) >= read_score
    ]


def read_plate(
    plate: dict[str, Any],
    predictions: list[dict[str, Any]],
    names: dict[int, str],
    plate_id: int,
    read_score: float,
    char_nms_iou: float = CHAR_NMS_IOU,
) -> str:
    """Characters predicted inside `plate`'s mask (score >= read_score), duplicates suppressed
    across classes, read along the plate's axis."""
    mask = decode(plate["segmentation"])
    inside = []
    for res in predictions:
        if res["category_id"] == plate_id or float(res["score"]) < read_score:
            continue
        x, y = _centre(res["bbox"])
        if inside_mask(mask, x, y):
            inside.append(res)
    characters = [glyph(names[int(res["category_id"])], res["bbox"]) for res in suppress(inside, char_nms_iou)]
    rows, cols = np.nonzero(mask)
    return read_string(np.stack([cols + 0.5, rows + 0.5], axis=1), characters)


def suppress(characters: list[dict[str, Any]], iou: float) -> list[dict[str, Any]]:
    """Class-agnostic suppression: best score first, drop any whose box overlaps a kept one by more
    than `iou`. The model suppresses duplicates within a class only, so one glyph predicted as two
    classes would otherwise be read twice."""
    kept: list[dict[str, Any]] = []
    for res in sorted(characters, key=lambda r: -float(r["score"])):
        if all(box_iou(res["bbox"], other["bbox"]) <= iou for other in kept):
            kept.append(res)
    return kept


def box_iou(a: list[float], b: list[float]) -> float:
    """IoU of two [x, y, w, h] boxes."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _truth(image: Image, plate: dict[str, Any], plate_id: int, names: dict[int, str]) -> str:
    segmentation = plate["segmentation"]
    if isinstance(segmentation, dict):  # an RLE plate: test pixels instead of polygons
        mask = decode(segmentation)
        rows, cols = np.nonzero(mask)
        points = np.stack([cols + 0.5, rows + 0.5], axis=1)

        def inside(x: float, y: float) -> bool:
            return inside_mask(mask, x, y)
    else:
        points = np.concatenate([np.asarray(poly, dtype=np.float64).reshape(-1, 2) for poly in segmentation])

        def inside(x: float, y: float) -> bool:
            return any(inside_polygon(poly, x, y) for poly in segmentation)

    characters = []
    for ann in image.annotations:
        if ann["category_id"] == plate_id:
            continue
        x, y = _centre(ann["bbox"])
        if inside(x, y):
            characters.append(glyph(names[int(ann["category_id"])], ann["bbox"]))
    return read_string(points, characters)


def _best_plate(predicted: list[dict[str, Any]], ious: np.ndarray, plate_iou: float) -> dict[str, Any] | None:
    if not predicted:
        return None
    # Highest IoU; ties go to the higher score.
    best = max(range(len(predicted)), key=lambda i: (ious[i], float(predicted[i]["score"])))
    return predicted[best] if ious[best] >= plate_iou else None


def _centre(bbox: list[float]) -> tuple[float, float]:
    x, y, w, h = (float(v) for v in bbox)
    return x + w / 2, y + h / 2
