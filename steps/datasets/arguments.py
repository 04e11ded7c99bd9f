"""Where a step reads its dataset: a recorded version of the dataset repo, or a COCO folder on disk."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from steps.config import Config


def add_dataset_arguments(parser: argparse.ArgumentParser, action: str) -> None:
    """Where a step reads its dataset: a recorded version of the dataset repo, or a COCO folder."""
    parser.add_argument("--repo", help="dataset repo (git URL or path); default: dataset.repo")
    parser.add_argument("--dataset-version", help="training dataset tag, e.g. datasets/v1")
    parser.add_argument("--dataset-dir", type=Path,
                        help=f"{action} this COCO folder (train/val/test.json + images/) instead of a repo version")


@contextmanager
def dataset_folder(parser: argparse.ArgumentParser, args: argparse.Namespace, config: Config) -> Iterator[Path]:
    """The COCO folder of --dataset-dir, or the checked-out --dataset-version (removed afterwards)."""
    if args.dataset_dir:
        if not (args.dataset_dir / "images").is_dir():
            parser.error(f"--dataset-dir {args.dataset_dir}: not a COCO dataset folder (no images/ inside)")
        yield args.dataset_dir
        return
    if not args.dataset_version:
        parser.error("give --dataset-version (with --repo) or --dataset-dir")
    from steps.datasets.repo import checkout_dataset

    with checkout_dataset(args.repo or config.dataset.repo, args.dataset_version, config.dataset.dataset_dir) as data:
        yield data
