"""Training speed of each available backend: the default R50-FPN config on synthetic plates.

Generates synthetic license-plate images (steps.datasets.sample_data, converted with steps.datasets.labelme2coco) at
the default 800/1333 resize, trains each backend from scratch for a fixed number of iterations
with the default config (batch size, AMP on CUDA, ...) and prints, per backend: images/s, step time
(mean and median, after warm-up iterations) and peak GPU memory (torch.cuda.max_memory_allocated).
Step times are the per-iteration `seconds` the backends log to metrics.json (data, forward,
backward, update). Not a test: run it by hand on a GPU node, e.g.

    python scripts/bench_train_gpu.py --iterations 50
    PYTHONPATH=/path/to/detectron2 python scripts/bench_train_gpu.py   # with detectron2 too

Without CUDA it runs on the CPU with fewer iterations and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not
from steps.config import Config, load_config  # noqa: E402
from steps.errors import ConfigError  # noqa: E402
from steps.models import BACKENDS, get_backend  # noqa: E402


def make_dataset(root: Path, images: int, width: int, height: int) -> Path:
    from steps.datasets.labelme2coco import labelme2coco
    from steps.datasets.sample_data import generate_sample

    generate_sample(root / "labelme", num_images=images, seed=0, image_size=(width, height))
    return labelme2coco(root / "labelme", root / "coco").output_dir


def bench_config(backend: str, args: argparse.Namespace) -> Config:
    """The default config (R50-FPN, 800/1333, AMP on CUDA), or the model of `args.config` (a config
    file: the demo's, configs/local.yaml), trained from scratch, logging every step."""
    config = load_config(args.config) if getattr(args, "config", None) else Config()
    config.model.backend = backend
    config.model.pretrained = "none"  # GPU nodes in CI or a lab may have no internet: no downloads
    if not getattr(args, "config", None):
        config.model.min_size, config.model.max_size = args.min_size, args.max_size
    config.train.iterations = args.warmup + args.iterations
    config.train.checkpoint_period = config.train.iterations  # one checkpoint, after the timed steps
    config.train.log_period = 1
    config.train.num_workers = args.workers
    config.train.device = "auto"
    if args.batch_size:
        config.train.batch_size = args.batch_size
    if getattr(args, "amp", None) is not None:
        config.train.amp = args.amp
    return config


def run_one(backend: str, dataset: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    config = bench_config(backend, args)
    out = work / f"{backend}-{config.train.batch_size}-{config.train.amp}"
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    get_backend(backend).train(dataset, out, config)
    seconds = [entry["seconds"] for entry in json.loads((out / "metrics.json").read_text())][args.warmup:]
    mean = statistics.fmean(seconds)
    return {
        "backend": backend,
        "batch": config.train.batch_size,
        "amp": config.train.amp and torch.cuda.is_available(),
        "images_per_s": config.train.batch_size / mean,
        "step_mean_s": mean,
        "step_p50_s": statistics.median(seconds),
        "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
        "timed_steps": len(seconds),
    }


def print_table(rows: list[dict[str, Any]], skipped: dict[str, str], device: str) -> None:
    print(f"\ndevice: {device}")
    print(f"{'backend':<12} {'batch':>5} {'images/s':>9} {'step mean':>10} {'step p50':>9} {'peak GPU mem':>13}")
    for r in rows:
        memory = f"{r['peak_gpu_gib']:.2f} GiB" if r["peak_gpu_gib"] is not None else "n/a (CPU)"
        print(f"{r['backend']:<12} {r['batch']:>5} {r['images_per_s']:>9.2f} {r['step_mean_s']:>9.3f}s {r['step_p50_s']:>8.3f}s {memory:>13}")
    for name, reason in skipped.items():
        print(f"{name:<12} skipped: {reason}")


def main() -> int:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=50 if cuda else 2, help="timed iterations per backend")
    parser.add_argument("--warmup", type=int, default=10 if cuda else 1, help="untimed iterations first (cuDNN autotuning, loader start)")
    parser.add_argument("--batch-size", type=int, default=0, help="images per iteration (default: the config's, 4)")
    parser.add_argument("--images", type=int, default=32, help="synthetic images to train on")
    parser.add_argument("--image-size", default="1280x800", help="synthetic image WIDTHxHEIGHT")
    parser.add_argument("--min-size", type=int, default=800)
    parser.add_argument("--max-size", type=int, default=1333)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="data-loader workers")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated, of: " + ", ".join(BACKENDS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    width, height = (int(v) for v in args.image_size.lower().split("x"))
    device = torch.cuda.get_device_name(0) if cuda else f"no GPU: CPU only ({os.cpu_count()} cores), {args.iterations} timed iterations"
    print(f"bench: {device}", flush=True)

    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="trainyard-bench-") as scratch:
        work = Path(scratch)
        dataset = make_dataset(work / "data", args.images, width, height)
        for name in args.backends.split(","):
            try:
                get_backend(name)
            except ConfigError as exc:
                skipped[name] = str(exc).split(";")[0]
                continue
            print(f"\nbench: {name}: {args.warmup} warm-up + {args.iterations} timed iterations", flush=True)
            rows.append(run_one(name, dataset, work, args))
    print_table(rows, skipped, device)
    if args.json:
        args.json.write_text(json.dumps({"device": device, "results": rows, "skipped": skipped}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
