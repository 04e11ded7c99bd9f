"""`trainyard sample-data DIR`: a synthetic plate dataset repo (labelme + git + DVC)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample-data", help="generate a synthetic license-plate dataset repo (labelme + git + DVC)",
                       description="Write labelme files (JPEG + JSON) of synthetic plates into DIR/annotations, make DIR "
                       "a git repo with DVC, commit them and tag the annotation version.")
    p.add_argument("dir", type=Path, help="dataset repo folder to create")
    p.add_argument("--images", type=int, help="number of images (default: as many as `make demo` makes, 300)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--version", default="annotations/v1", help="annotation tag (default annotations/v1)")
    p.add_argument("--remote", help="DVC remote URL, e.g. gs://bucket/dvc (default: a folder inside DIR)")
    p.add_argument("--kind", choices=["plates", "shapes"], default="plates",
                   help="plates (default: plates and their digits) or shapes (12 classes of coloured shapes, "
                   "rectangles and polygons: a dataset without plates)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steps.errors import ConfigError
    from workflows.local.sample_repo import SAMPLE_IMAGES, create_sample_repo

    if args.images is None:
        args.images = SAMPLE_IMAGES
    if args.images < 1:  # zero images would tag an empty annotation version
        raise ConfigError(f"--images {args.images}: must be at least 1")
    create_sample_repo(args.dir, args.images, args.seed, args.version, args.remote, args.kind)
    return 0
