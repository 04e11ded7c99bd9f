"""Inference over many images in batches, the next images decoded while the model runs.

Predictors implement `predict_batch(images, image_ids, score_threshold)` on decoded RGB arrays;
`predict_images` feeds them: a background thread reads and decodes (PIL releases the GIL while it
decodes) up to two batches ahead, so the device never waits for a JPEG.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steps.models.coco_dataset import load_image


def decode(path: Path) -> np.ndarray:
    """H x W x 3 uint8 RGB, upright as annotators saw it (a writable array: torch shares its memory)."""
    return np.array(load_image(Path(path)))


def prefetched(function: Callable[[Any], Any], items: Sequence[Any], ahead: int) -> Iterator[Any]:
    """`function(item)` for each item in order, computed by a background thread up to `ahead` items
    in front of the consumer. An exception is raised here at the item that raised it."""
    slots: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def work() -> None:
        for item in items:
            if stop.is_set():
                return
            try:
                slots.put((True, function(item)))
            except BaseException as exc:  # handed to the consumer, raised there
                slots.put((False, exc))
                return

    thread = threading.Thread(target=work, name="decode-ahead", daemon=True)
    thread.start()
    try:
        for _ in items:
            ok, value = slots.get()
            if not ok:
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def predict_images(predictor: Any, images: Sequence[tuple[Path, int]], score_threshold: float,
                   batch_size: int = 1) -> Iterator[list[dict[str, Any]]]:
    """COCO results per (path, image id), in order, `batch_size` images per model call.

    A predictor without `predict_batch` (a minimal one) is called per image with its `predict`.
    """
    if not hasattr(predictor, "predict_batch"):
        for path, image_id in images:
            yield predictor.predict(path, image_id, score_threshold)
        return
    size = max(1, int(batch_size))
    arrays = prefetched(decode, [path for path, _ in images], ahead=2 * size)
    for start in range(0, len(images), size):
        ids = [image_id for _, image_id in images[start:start + size]]
        batch = [next(arrays) for _ in ids]
        yield from predictor.predict_batch(batch, ids, score_threshold)
