"""`python -m steps.train`: fetch a recorded dataset version and train on it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import add_config_arguments, run_cli
from steps.config import load_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.train",
        description="Train Mask R-CNN on a recorded dataset version. Writes checkpoints/, metrics.json, "
        "tensorboard/ and config.yaml to --output, and resumes from the checkpoints already there.",
    )
    parser.add_argument("--repo", help="dataset repo (git URL or path); default: dataset.repo")
    parser.add_argument("--dataset-version", help="training dataset tag, e.g. datasets/v1")
    parser.add_argument("--dataset-dir", type=Path, help="train on this COCO folder instead of a repo version")
    parser.add_argument("--output", type=Path, required=True, help="output folder (the checkpoints artifact)")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides, args.set_list)

    from steps.dataset_repo import checkout_dataset
    from steps.models import get_backend

    backend = get_backend(config.model.backend)  # fails fast when the backend is not installed
    if args.dataset_dir:
        backend.train(args.dataset_dir, args.output, config)
        return 0
    if not args.dataset_version:
        parser.error("give --dataset-version (with --repo) or --dataset-dir")
    with checkout_dataset(args.repo or config.dataset.repo, args.dataset_version, config.dataset.dataset_dir) as data:
        summary = backend.train(data, args.output, config)
    print(f"train: done: {summary}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
