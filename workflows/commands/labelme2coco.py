"""`trainyard labelme2coco INPUT_DIR OUTPUT_DIR`: labelme files -> a COCO dataset, nothing else needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_SHOWN = 10  # skipped files and warnings printed; report.json has them all


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "labelme2coco", help="convert a folder of labelme files into a COCO instance-segmentation dataset",
        description="Check every labelme file under INPUT_DIR and write a COCO instance-segmentation dataset to "
        "OUTPUT_DIR: train.json (and val.json with --val-fraction), images/ and report.json. No git, DVC or "
        "database needed. With a labels file, categories follow its order (ids from 1; __ignore__ and "
        "_background_ are not categories) and any other label is an error.",
    )
    p.add_argument("input_dir", type=Path, metavar="INPUT_DIR", help="folder of labelme .json files (subfolders too)")
    p.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR", help="dataset folder to create")
    p.add_argument("--labels", type=Path, metavar="FILE", help="labelme labels file: one label per line")
    p.add_argument("--val-fraction", type=float, default=0.0, metavar="F",
                   help="share of images for val.json, stratified by category (default 0: train.json only)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the train/val split (default 0)")
    p.add_argument("--on-invalid", choices=("fail", "skip"), default="fail",
                   help="fail: write nothing if any file is invalid (default); skip: convert the others and "
                   "list the invalid ones with their reason in report.json")
    p.add_argument("--clip-tolerance", type=float, default=2.0, metavar="PX",
                   help="points up to PX pixels outside the image are clipped with a warning; "
                   "farther is an error (default 2)")
    p.add_argument("--link", action="store_true",
                   help="hard-link images into OUTPUT_DIR/images instead of copying them")
    p.add_argument("--decode-images", action="store_true",
                   help="decode every image fully to check it (slower; by default the header and the "
                   "end marker are checked)")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes (default: the available cores)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT_DIR if it exists and is not empty")
    p.set_defaults(func=run)


def _show(title: str, lines: list[str]) -> None:
    print(title, file=sys.stderr)
    for line in lines[:_SHOWN]:
        print(f"  {line}", file=sys.stderr)
    if len(lines) > _SHOWN:
        print(f"  ... and {len(lines) - _SHOWN} more", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from steps.blas_threads import one_blas_thread

    with one_blas_thread():
        from steps.datasets.labelme2coco import labelme2coco

    result = labelme2coco(
        args.input_dir, args.output_dir, labels_file=args.labels, val_fraction=args.val_fraction, seed=args.seed,
        on_invalid=args.on_invalid, link=args.link, clip_tolerance=args.clip_tolerance,
        decode_images=args.decode_images, workers=args.workers, overwrite=args.overwrite,
    )
    report = result.output_dir / "report.json"
    if result.skipped:
        _show(f"labelme2coco: skipped {len(result.skipped)} invalid file(s) (all in {report}):",
              [f"{item.file}: {item.reason}" for item in result.skipped])
    if result.warnings:
        _show(f"labelme2coco: {len(result.warnings)} warning(s) (all in {report}):", result.warnings)
    splits = ", ".join(f"{name} {count}" for name, count in result.counts.items())
    print(f"labelme2coco: {sum(result.counts.values())} images, {result.annotations} annotations, "
          f"{len(result.categories)} categories -> {result.output_dir} ({splits})")
    return 0
