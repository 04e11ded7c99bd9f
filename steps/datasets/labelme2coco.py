"""A folder of labelme files -> a COCO dataset folder: the conversion alone, no git, DVC or database.

OUTPUT_DIR gets `train.json` (and `val.json` when a validation share is asked for), `images/`
(COCO `file_name`s are relative to it) and `report.json` (counts, skipped files, warnings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from steps.datasets.coco import InvalidFiles, OnInvalid, SkippedFile, build_coco, image_strata, split_images, write_coco_dataset
from steps.errors import ConfigError, InputError
from steps.datasets.labelme import read_labels_file


@dataclass(frozen=True)
class Labelme2CocoResult:
    output_dir: Path
    counts: dict[str, int]
    categories: list[str]
    annotations: int
    skipped: list[SkippedFile]
    warnings: list[str]


def find_labelme_files(folder: Path) -> list[Path]:
    """Every `*.json` under `folder`, in subfolders too, except hidden ones (.git, .dvc, ...)."""
    return sorted(
        path for path in Path(folder).rglob("*.json")
        if not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def _check_folders(input_dir: Path, output_dir: Path, overwrite: bool) -> None:
    if not input_dir.is_dir():
        raise InputError(f"{input_dir}: no such folder; expected a folder of labelme .json files")
    source, target = input_dir.resolve(), output_dir.resolve()
    if target == source or target in source.parents or source in target.parents:
        raise InputError(
            f"{output_dir}: the output folder must not contain, or lie inside, the input folder {input_dir}"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"{output_dir}: exists and is not a folder")
    if output_dir.is_dir() and any(output_dir.iterdir()) and not overwrite:
        raise InputError(
            f"{output_dir}: folder exists and is not empty; choose another or pass --overwrite to replace it"
        )


def labelme2coco(
    input_dir: Path,
    output_dir: Path,
    *,
    labels_file: Path | None = None,
    val_fraction: float = 0.0,
    seed: int = 0,
    on_invalid: OnInvalid = "fail",
    link: bool = False,
    clip_tolerance: float = 2.0,
    decode_images: bool = False,
    workers: int | None = None,
    overwrite: bool = False,
) -> Labelme2CocoResult:
    """Convert every labelme file under `input_dir` into a COCO dataset in `output_dir`."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"--val-fraction {val_fraction}: must be >= 0 and < 1")
    if not (math.isfinite(clip_tolerance) and clip_tolerance >= 0):  # NaN compares false to everything
        raise ConfigError(f"--clip-tolerance {clip_tolerance}: must be a number of pixels >= 0")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers {workers}: must be at least 1 (leave it out to use the available cores)")
    _check_folders(input_dir, output_dir, overwrite)
    labels = read_labels_file(labels_file) if labels_file else None
    files = find_labelme_files(input_dir)
    if not files:
        raise InputError(f"{input_dir}: no labelme .json files found")
    try:
        build = build_coco(
            files, labels, on_invalid=on_invalid, root=input_dir, labels_source=str(labels_file or ""),
            clip_tolerance=clip_tolerance, decode_images=decode_images, workers=workers,
            hash_images=False,  # nothing here stores the digests
        )
    except InvalidFiles as exc:
        raise InputError(
            f"{exc}\nfix them, or pass --on-invalid skip to convert the others and list these in report.json"
        ) from None
    names = [image["file_name"] for image in build.images]
    split = split_images(names, val_fraction, 0.0, seed, strata=image_strata(build))
    splits = ("train", "val") if val_fraction > 0 else ("train",)
    counts = write_coco_dataset(build, split, output_dir, splits=splits, link=link)
    return Labelme2CocoResult(
        output_dir=output_dir,
        counts=counts,
        categories=[c["name"] for c in build.categories],
        annotations=len(build.annotations),
        skipped=build.skipped,
        warnings=build.warnings,
    )
