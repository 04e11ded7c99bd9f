"""Learning-rate schedule: linear warmup, then cosine decay (or steps) to the last iteration.

The rate is a pure function of the iteration, so a resumed run (even with a longer total)
continues the schedule without carrying scheduler objects between runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

# Warmup starts at this fraction of the base rate (detectron2's default).
WARMUP_FACTOR = 0.001
# Step schedule: decay by 10x at these fractions of the run (train.lr_steps' default).
STEP_MILESTONES = (2 / 3, 8 / 9)

ScheduleKind = Literal["cosine", "step"]


def lr_factor(
    iteration: int, total: int, warmup_iters: int, kind: ScheduleKind = "cosine", milestones: Sequence[float] = STEP_MILESTONES
) -> float:
    """Multiplier of the base rate for the update at `iteration` (0-based) of `total`."""
    if iteration < warmup_iters:
        alpha = iteration / warmup_iters
        warmup = WARMUP_FACTOR * (1 - alpha) + alpha
    else:
        warmup = 1.0
    if kind == "step":
        decay = 0.1 ** sum(iteration >= milestone * total for milestone in milestones)
    else:
        decay = 0.5 * (1 + math.cos(math.pi * min(iteration, total) / total))
    return warmup * decay


def describe(
    base_lr: float, total: int, warmup_iters: int, kind: ScheduleKind = "cosine", milestones: Sequence[float] = STEP_MILESTONES
) -> dict[str, Any]:
    """The schedule as stored in a checkpoint (what the `scheduler` entry records)."""
    return {"kind": kind, "base_lr": base_lr, "total": total, "warmup_iters": warmup_iters, "warmup_factor": WARMUP_FACTOR,
            "milestones": list(milestones) if kind == "step" else []}
