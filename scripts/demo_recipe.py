"""Try a training recipe for the demo: how well it reads plates for the training time it takes.

Generates sample plates (steps.datasets.sample_data) for training and, with another seed, a test
set; trains the demo's config (configs/local.yaml) with the given overrides, writing a checkpoint
every `train.checkpoint_period`; then prints, per checkpoint, the test set's EIR (plates read
exactly, at evaluate.read_score), plate mask AP50 and bbox AP50 over every class. The recipe
measurements of docs/demo.md come from it. Not a test: a recipe takes minutes on 2 cores.

    python scripts/demo_recipe.py --set train.iterations=400 --set train.checkpoint_period=100
    python scripts/demo_recipe.py --font 0.13,0.22 --set model.fpn_channels=256   # the old demo's plates and width
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not
from steps.config import load_config  # noqa: E402
from steps.datasets import sample_data  # noqa: E402
from steps.datasets.labelme2coco import labelme2coco  # noqa: E402
from steps.evaluate.scoring import predict_split  # noqa: E402
from steps.metrics import all_metrics  # noqa: E402
from steps.metrics.eir import eir  # noqa: E402
from steps.models import get_backend  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def make_split(folder: Path, images: int, seed: int, size: tuple[int, int]) -> Path:
    sample_data.generate_sample(folder / "labelme", num_images=images, seed=seed, image_size=size)
    return labelme2coco(folder / "labelme", folder / "coco").output_dir  # every image in train.json


def pair(text: str, kind: type) -> tuple:
    low, high = (kind(part) for part in text.split(","))
    return low, high


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "local.yaml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override (repeatable)")
    parser.add_argument("--images", type=int, default=200, help="training images (default 200)")
    parser.add_argument("--test-images", type=int, default=45, help="test images, another seed (default 45)")
    parser.add_argument("--size", default="320x240", help="image WIDTHxHEIGHT (default the demo's, 320x240)")
    parser.add_argument("--font", type=lambda t: pair(t, float), help="plate font size as a share of the shorter "
                        f"side, LOW,HIGH (default {','.join(map(str, sample_data.FONT_FRACTION))})")
    parser.add_argument("--plates", type=lambda t: pair(t, int), help="plates per image, LOW,HIGH "
                        f"(default {','.join(map(str, sample_data.PLATES_PER_IMAGE))})")
    args = parser.parse_args()
    if args.font:
        sample_data.FONT_FRACTION = args.font
    if args.plates:
        sample_data.PLATES_PER_IMAGE = args.plates
    size = tuple(int(v) for v in args.size.lower().split("x"))
    config = load_config(args.config, args.set)
    backend = get_backend(config.model.backend)
    with tempfile.TemporaryDirectory(prefix="trainyard-recipe-") as scratch:
        work = Path(scratch)
        train = make_split(work / "train", args.images, 0, size)
        test = make_split(work / "test", args.test_images, 7, size)
        started = time.perf_counter()
        summary = backend.train(train, work / "run", config)
        seconds = time.perf_counter() - started
        steps = [entry["seconds"] for entry in json.loads((work / "run" / "metrics.json").read_text())]
        print(f"\nrecipe: {' '.join(args.set) or 'configs/local.yaml as is'}; {args.images} images {args.size}")
        print(f"trained {config.train.iterations} iterations in {seconds:.0f} s ({sorted(steps)[len(steps) // 2]:.2f} s "
              f"per logged step, median); final loss {summary.final_loss:.3f}")
        gt = json.loads((test / "train.json").read_text())
        print(f"{'checkpoint':<20} {'EIR':>6} {'read':>7} {'plate AP50':>10} {'bbox AP50':>9}")
        for checkpoint in summary.checkpoints:
            results = predict_split(backend.load(checkpoint, "cpu"), gt, test / "images", config.evaluate.score_threshold,
                                    prefix="    ")
            reading = eir(gt, results, config.evaluate.plate_label, config.evaluate.read_score)
            metrics = all_metrics(gt, results, config.evaluate)
            print(f"{checkpoint.name:<20} {reading['EIR']:>6.3f} {reading['exact']:>3}/{reading['plates']:<3} "
                  f"{metrics['segm/AP50-plate']:>10.3f} {metrics['bbox/AP50']:>9.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
