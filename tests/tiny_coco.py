"""A tiny synthetic COCO dataset and helpers shared by the training tests of every backend.

6 images of a drawn rectangle (plate) and triangle (char), plus one unannotated image that
training must skip: enough to run the real training loops end to end on a CPU in seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from steps.config import Config
from steps.models.checkpoints import list_checkpoints

REPO = Path(__file__).resolve().parents[1]
IMAGE_W, IMAGE_H = 160, 120
CATEGORIES = [{"id": 1, "name": "plate", "supercategory": ""}, {"id": 2, "name": "char", "supercategory": ""}]


def make_coco_dataset(root: Path, images: int = 6, seed: int = 0) -> Path:
    """train/val/test.json + images/: each image has a filled rectangle (plate) and triangle (char).

    Objects stay under 20 px, below what the smallest (32 px) anchors match at IoU 0.5: few positive
    RoIs reach the mask head, which is what keeps an iteration cheap on a CPU.
    """
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    image_entries, annotations = [], []
    for i in range(images):
        picture = Image.fromarray(rng.integers(0, 60, (IMAGE_H, IMAGE_W, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(picture)
        x, y = int(rng.integers(5, 70)), int(rng.integers(5, 90))
        w, h = int(rng.integers(12, 20)), int(rng.integers(8, 16))
        rectangle = [x, y, x + w, y, x + w, y + h, x, y + h]
        draw.polygon(rectangle, fill=(220, 220, 40))
        tx, ty = int(rng.integers(80, IMAGE_W - 20)), int(rng.integers(5, IMAGE_H - 20))
        triangle = [tx, ty + 14, tx + 7, ty, tx + 14, ty + 14]
        draw.polygon(triangle, fill=(40, 200, 220))
        picture.save(root / "images" / f"img{i}.png")
        image_entries.append({"id": i + 1, "file_name": f"img{i}.png", "width": IMAGE_W, "height": IMAGE_H})
        for k, (category, polygon, box) in enumerate([(1, rectangle, [x, y, w, h]), (2, triangle, [tx, ty, 14, 14])]):
            annotations.append(
                {"id": 2 * i + k + 1, "image_id": i + 1, "category_id": category, "segmentation": [[float(v) for v in polygon]],
                 "bbox": box, "area": box[2] * box[3], "iscrowd": 0}
            )
    # One unannotated image: training must skip it.
    Image.new("RGB", (IMAGE_W, IMAGE_H)).save(root / "images" / "empty.png")
    image_entries.append({"id": images + 1, "file_name": "empty.png", "width": IMAGE_W, "height": IMAGE_H})
    coco = {"images": image_entries, "annotations": annotations, "categories": CATEGORIES}
    for split in ("train", "val", "test"):
        (root / f"{split}.json").write_text(json.dumps(coco))
    return root


def metric_iterations(out_dir: Path) -> list[int]:
    return [entry["iteration"] for entry in json.loads((out_dir / "metrics.json").read_text())]


def checkpoint_iterations(out_dir: Path) -> list[int]:
    return [iteration for iteration, _ in list_checkpoints(out_dir / "checkpoints")]


_TRAIN_IN_SUBPROCESS = """
import json, sys
from pathlib import Path
from steps.config import Config
from steps.models import get_backend
config = Config.model_validate(json.loads(sys.argv[1]))
get_backend(config.model.backend).train(Path(sys.argv[2]), Path(sys.argv[3]), config)
"""

# Two torchvision training processes as `train.gpus=2` starts them (gloo on a CPU-only machine).
_TRAIN_TWO_PROCESSES_IN_SUBPROCESS = """
import json, sys
from pathlib import Path
from steps.config import Config
from steps.models import distributed, torchvision_backend
config = Config.model_validate(json.loads(sys.argv[1]))
args = (Path(sys.argv[2]), Path(sys.argv[3]), config)
distributed.run_workers(lambda: distributed.spawn(torchvision_backend._train_worker, 2, args), args[1] / "checkpoints")
"""


def train_and_sigterm(
    config: Config, dataset: Path, out: Path, after_line: str, processes: int = 1, timeout: float = 120
) -> tuple[int, str, int]:
    """Train in a subprocess, send it SIGTERM once a line starts with `after_line`.

    Returns (exit code, all output, iteration of the checkpoint SIGTERM wrote).
    """
    python_path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    script = _TRAIN_IN_SUBPROCESS if processes == 1 else _TRAIN_TWO_PROCESSES_IN_SUBPROCESS
    process = subprocess.Popen(
        [sys.executable, "-c", script, config.model_dump_json(), str(dataset), str(out)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": python_path}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if line.startswith(after_line):
            process.send_signal(signal.SIGTERM)
            break
    rest, _ = process.communicate(timeout=timeout)
    output = "".join(lines) + rest
    found = re.search(r"SIGTERM: checkpoint written at iteration (\d+)", output)
    return process.returncode, output, int(found.group(1)) if found else -1



def assert_same_predictions(predictor: object, images_dir: Path, score_threshold: float = 0.05) -> None:
    """Batched inference (2 images per call, decoded ahead) gives one-by-one's predictions.

    Same-sized images: the batch is not padded, so only float rounding may differ (a batched
    convolution sums in another order). Each one-by-one detection must have a batched one of the
    same class with the same box (1e-2 px), score (1e-4) and mask (at most 1% of the image's pixels
    differ: an untrained mask head sits near the 0.5 cut, where rounding flips a few pixels).
    """
    from steps.masks import decode
    from steps.models.batching import predict_images

    paths = sorted(images_dir.glob("img*.png"))[:4]
    inputs = [(path, i + 1) for i, path in enumerate(paths)]
    single = [predictor.predict(path, image_id, score_threshold) for path, image_id in inputs]  # type: ignore[attr-defined]
    batched = list(predict_images(predictor, inputs, score_threshold, batch_size=2))
    assert any(single), "the model predicts something to compare"
    for image_id, (ones, many) in enumerate(zip(single, batched), start=1):
        assert len(many) == len(ones), f"image {image_id}: {len(ones)} detections one by one, {len(many)} batched"
        for res in ones:
            assert res["image_id"] == image_id
            close = [other for other in many if other["category_id"] == res["category_id"]
                     and np.allclose(other["bbox"], res["bbox"], atol=1e-2) and abs(other["score"] - res["score"]) < 1e-4]
            assert close, f"image {image_id}: no batched match for {res['bbox']} score {res['score']}"
            mine, theirs = decode(res["segmentation"]), decode(close[0]["segmentation"])
            assert (mine != theirs).sum() <= 0.01 * mine.size
