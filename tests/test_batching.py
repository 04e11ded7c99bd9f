"""steps.models.batching: batches in order, images decoded ahead, errors at the image that caused them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from steps.errors import InputError
from steps.models.batching import predict_images, prefetched


class Recorder:
    """A predictor that answers each image with its mean pixel value and remembers its batches."""

    categories: list[dict[str, Any]] = []

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def predict_batch(self, images: list[np.ndarray], image_ids: list[int], score_threshold: float) -> list[list[dict]]:
        self.batches.append(list(image_ids))
        return [[{"image_id": i, "mean": float(image.mean()), "shape": image.shape}] for image, i in zip(images, image_ids)]


def _images(folder: Path, count: int) -> list[tuple[Path, int]]:
    inputs = []
    for i in range(count):
        path = folder / f"{i}.png"
        Image.fromarray(np.full((4 + i, 6, 3), i * 10, dtype=np.uint8)).save(path)
        inputs.append((path, i + 1))
    return inputs


def test_batches_keep_the_order_and_decode_every_image(tmp_path: Path) -> None:
    inputs = _images(tmp_path, 7)
    predictor = Recorder()
    results = list(predict_images(predictor, inputs, 0.5, batch_size=3))
    assert predictor.batches == [[1, 2, 3], [4, 5, 6], [7]]
    assert [r[0]["image_id"] for r in results] == [1, 2, 3, 4, 5, 6, 7]
    assert [r[0]["mean"] for r in results] == [i * 10.0 for i in range(7)]
    assert [r[0]["shape"] for r in results] == [(4 + i, 6, 3) for i in range(7)]


def test_an_unreadable_image_fails_where_it_is_and_not_before(tmp_path: Path) -> None:
    inputs = _images(tmp_path, 4)
    (tmp_path / "2.png").write_bytes(b"not an image")
    predictor = Recorder()
    results = predict_images(predictor, inputs, 0.5, batch_size=2)
    assert next(results)[0]["image_id"] == 1
    next(results)
    with pytest.raises(InputError, match="2.png: cannot read image"):
        next(results)
    assert predictor.batches == [[1, 2]]


def test_a_predictor_without_batches_is_called_per_image(tmp_path: Path) -> None:
    class OneByOne:
        def predict(self, path: Path, image_id: int, score_threshold: float) -> list[dict]:
            return [{"image_id": image_id, "name": Path(path).name}]

    inputs = _images(tmp_path, 3)
    assert [r[0]["name"] for r in predict_images(OneByOne(), inputs, 0.5, batch_size=2)] == ["0.png", "1.png", "2.png"]


def test_prefetched_stops_its_thread_when_the_consumer_stops() -> None:
    produced: list[int] = []
    values = prefetched(lambda i: produced.append(i) or i, list(range(100)), ahead=2)
    assert next(values) == 0
    values.close()  # the consumer gives up early
    assert len(produced) < 100
