"""Per-slice mask IoU along a plate's long axis: the shape test behind dv_mAP.

The ground truth's extent along its own axis (plate_axis of its polygon points) is cut into N
equal intervals; each interval defines a band of the image (pixels whose centre projects into
it). The two end bands extend outwards without limit, so the bands cover the whole image and a
prediction that overshoots the plate's ends counts against the end slices.
"""

from __future__ import annotations

import numpy as np

from steps.metrics.plates import plate_axis


def slice_ious(gt_mask: np.ndarray, pred_mask: np.ndarray, gt_points: np.ndarray, slices: int) -> np.ndarray:
    """IoU of prediction and ground truth inside each of `slices` bands, ordered along the axis.

    A band where both masks are empty scores 1.0 (nothing to get wrong there).
    """
    axis = plate_axis(gt_points)
    projected = np.asarray(gt_points, dtype=np.float64).reshape(-1, 2) @ axis
    low, high = float(projected.min()), float(projected.max())
    step = (high - low) / slices

    # Only pixels in either mask matter: work on their bounding box.
    rows, cols = np.nonzero(gt_mask | pred_mask)
    if rows.size == 0:
        return np.ones(slices)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    gt, pred = gt_mask[r0:r1, c0:c1], pred_mask[r0:r1, c0:c1]
    ys, xs = np.mgrid[r0:r1, c0:c1]
    centres = (xs + 0.5) * axis[0] + (ys + 0.5) * axis[1]
    band = np.floor((centres - low) / step) if step > 0 else np.zeros_like(centres)
    band = np.clip(band, 0, slices - 1).astype(np.int64)

    intersection = np.bincount(band[gt & pred], minlength=slices)
    union = np.bincount(band[gt | pred], minlength=slices)
    return np.where(union > 0, intersection / np.maximum(union, 1), 1.0)
