"""labelme files -> a COCO instance-segmentation dataset with a deterministic split.

Same inputs give byte-identical output: files are converted in parallel but collected in path
order, images are ordered by file name, ids are assigned in that order (from 1: pycocotools
treats id 0 as "no match"), and JSON is written with sorted keys. A file that fails a check is
either the reason the whole conversion fails (`on_invalid="fail"`, nothing written) or left out
and listed in `report.json` (`on_invalid="skip"`); a file is never half used.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from steps.datasets.split import SPLITS, split_counts, split_images
from steps.errors import ConfigError, ExternalError, InputError
from steps.datasets.image_decode import decode_rgb, open_image
from steps.datasets.labelme import category_names, embedded_image, parse_labelme
from steps.datasets.look_alikes import look_alike_warning, look_alikes
from steps.datasets.labelme_convert import ConvertedFile, ConvertSettings, ImageSource, convert_file
from steps.datasets.labelme_shapes import AREA_SHAPES, Polygon, polygon_area
from steps.parallel import parallel_map

__all__ = [
    "AREA_SHAPES", "SPLITS", "CocoBuild", "InvalidFiles", "Polygon", "SkippedFile", "build_coco", "image_strata",
    "polygon_area", "split_counts", "split_images", "write_coco_dataset",
]

OnInvalid = Literal["fail", "skip"]
REPORT_NAME = "report.json"
_LISTED = 20  # invalid files named in an error message; the rest are counted
_WRITERS = 16  # threads writing image files
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # the disk, the quota or a file size limit is full


@dataclass(frozen=True)
class SkippedFile:
    file: str
    reason: str


@dataclass
class CocoBuild:
    """Every image and annotation of the input, before the split."""

    images: list[dict[str, Any]]
    annotations: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    # Image file name (as in `images`) -> where its bytes come from.
    sources: dict[str, ImageSource] = field(default_factory=dict)
    # Shapes left out or clipped, one line each ("file: shape i ('label') ...").
    warnings: list[str] = field(default_factory=list)
    # Files left out with on_invalid="skip", with the reason.
    skipped: list[SkippedFile] = field(default_factory=list)
    # Image file name -> number of shapes in its labelme file.
    num_shapes: dict[str, int] = field(default_factory=dict)


class InvalidFiles(InputError):
    """Some labelme files failed their checks (on_invalid="fail"); `problems` lists them all."""

    def __init__(self, problems: list[SkippedFile], total: int):
        self.problems = problems
        lines = [f"{p.file}: {p.reason}" for p in problems]
        if len(lines) == 1:
            message = f"{lines[0]} (nothing was written)"
        else:
            shown = "\n".join(f"  {line}" for line in lines[:_LISTED])
            more = f"\n  ... and {len(lines) - _LISTED} more" if len(lines) > _LISTED else ""
            message = f"{len(lines)} of {total} labelme files are invalid (nothing was written):\n{shown}{more}"
        super().__init__(message)


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def _duplicates(converted: list[ConvertedFile], names: dict[Path, str]) -> dict[Path, str]:
    """Files whose image name another file also uses (case-insensitively: macOS and Windows
    cannot hold both), with the reason; none of them is used, since which one is meant is unknown."""
    by_name: dict[str, list[ConvertedFile]] = {}
    for item in converted:
        if item.ok:
            by_name.setdefault(item.file_name.casefold(), []).append(item)
    reasons = {}
    for group in by_name.values():
        if len(group) > 1:
            for item in group:
                others = ", ".join(names[o.json_path] for o in group if o is not item)
                reasons[item.json_path] = (
                    f"image name {item.file_name!r} is also used by {others}; "
                    "image file names must be unique across the annotations (rename one)"
                )
    return reasons


def build_coco(
    files: Sequence[Path],
    labels: list[str] | None = None,
    *,
    on_invalid: OnInvalid = "fail",
    root: Path | None = None,
    labels_source: str = "dataset.labels",
    clip_tolerance: float = 2.0,
    decode_images: bool = False,
    workers: int | None = None,
    hash_images: bool = True,
    max_instances: int = ConvertSettings.max_instances,
) -> CocoBuild:
    """Check and convert labelme files into COCO images, annotations and categories.

    `labels` fixes the category order (ids 1..N; `__ignore__`/`_background_` are not categories)
    and makes any other label an error; without it every label found is a category, sorted.
    `root` is the annotation folder: no file outside it is read (each JSON's own folder when
    None), and file names in messages and the report are relative to it. `hash_images=False`
    leaves `ImageSource.sha256` None (the dataset record stores it; a plain conversion does not).
    """
    if on_invalid not in ("fail", "skip"):
        raise ConfigError(f"on_invalid: {on_invalid!r} is not one of 'fail', 'skip'")
    names = category_names(list(labels), labels_source) if labels else None
    settings = ConvertSettings(
        labels=tuple(names) if names else None,
        labels_source=labels_source,
        clip_tolerance=clip_tolerance,
        decode_images=decode_images,
        root=Path(root) if root is not None else None,
        hash_images=hash_images,
        max_instances=max_instances,
    )
    paths = sorted({Path(f) for f in files})
    converted = parallel_map(convert_file, paths, workers, settings=settings)
    shown = {item.json_path: _display(item.json_path, root) for item in converted}
    duplicates = _duplicates(converted, shown)
    problems = [
        SkippedFile(shown[item.json_path], "; ".join(item.errors) or duplicates[item.json_path])
        for item in converted
        if not item.ok or item.json_path in duplicates
    ]
    if problems and on_invalid == "fail":
        raise InvalidFiles(problems, len(converted))
    good = [item for item in converted if item.ok and item.json_path not in duplicates]
    if not good and converted:
        first = problems[0]
        raise InputError(f"none of the {len(converted)} labelme files is valid; the first: {first.file}: {first.reason}")

    names = names or sorted({instance.label for item in good for instance in item.instances})
    category_ids = {name: number for number, name in enumerate(names, start=1)}
    build = CocoBuild(
        images=[],
        annotations=[],
        categories=[{"id": category_ids[name], "name": name, "supercategory": ""} for name in names],
        skipped=problems,
        warnings=[f"{shown[item.json_path]}: {warning}" for item in good for warning in item.warnings]
        + [look_alike_warning(pair) for pair in look_alikes(names)],
    )
    for image_id, item in enumerate(sorted(good, key=lambda item: item.file_name), start=1):
        build.images.append({"id": image_id, "file_name": item.file_name, "width": item.width, "height": item.height})
        assert item.source is not None
        build.sources[item.file_name] = item.source
        build.num_shapes[item.file_name] = item.num_shapes
        for instance in item.instances:
            build.annotations.append({
                "id": len(build.annotations) + 1,
                "image_id": image_id,
                "category_id": category_ids[instance.label],
                "segmentation": instance.segmentation,
                "area": instance.area,
                "bbox": instance.bbox,
                "iscrowd": 0,
            })
    return build


def image_strata(build: CocoBuild) -> dict[str, str]:
    """Each image's stratum for the split: the rarest category it holds ("" for none).

    Rarity counts images, so that every category's images spread over the splits.
    """
    names = {c["id"]: c["name"] for c in build.categories}
    per_image: dict[int, set[str]] = {}
    for ann in build.annotations:
        per_image.setdefault(ann["image_id"], set()).add(names[ann["category_id"]])
    frequency = Counter(label for labels in per_image.values() for label in labels)
    return {
        image["file_name"]: min(per_image.get(image["id"], ()), key=lambda label: (frequency[label], label), default="")
        for image in build.images
    }


def _coco_dict(build: CocoBuild, images: list[dict[str, Any]]) -> dict[str, Any]:
    image_ids = {image["id"] for image in images}
    return {
        # Some COCO readers (older pycocotools loadRes) expect these keys to exist.
        "info": {"description": "converted from labelme by trainyard"},
        "licenses": [],
        "images": images,
        "annotations": [ann for ann in build.annotations if ann["image_id"] in image_ids],
        "categories": build.categories,
    }


def report(build: CocoBuild, split: dict[str, str]) -> dict[str, Any]:
    """What `report.json` holds: counts, skipped files with reasons, warnings."""
    return {
        "images": len(build.images),
        "annotations": len(build.annotations),
        "split": dict(sorted(Counter(split[image["file_name"]] for image in build.images).items())),
        "skipped": [asdict(item) for item in build.skipped],
        "warnings": build.warnings,
    }


def write_coco_dataset(
    build: CocoBuild,
    split: dict[str, str],
    out_dir: Path,
    *,
    splits: Sequence[str] = SPLITS,
    link: bool = False,
) -> dict[str, int]:
    """Write `<split>.json` for each of `splits`, `images/` and `report.json` into `out_dir`,
    replacing it as a whole; returns the image count per split.

    Everything is written into a temporary folder beside `out_dir` first and renamed at the end,
    so a failure leaves the previous `out_dir` (or none) in place, never a half-written one.
    `link` hard-links image files instead of copying them (falling back to a copy).
    """
    out_dir = Path(out_dir)
    missing = [image["file_name"] for image in build.images if split.get(image["file_name"]) not in splits]
    if missing:
        raise ValueError(f"write_coco_dataset: no {'/'.join(splits)} split for {missing[:3]}")
    counts: dict[str, int] = {}
    staging = None
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.writing-", dir=out_dir.parent))
        (staging / "images").mkdir()
        for name in splits:
            images = [image for image in build.images if split[image["file_name"]] == name]
            (staging / f"{name}.json").write_text(json.dumps(_coco_dict(build, images), sort_keys=True) + "\n")
            counts[name] = len(images)
        # Threads: creating a file waits on the file system far more than on the CPU (16 threads
        # copy 2000 images ~10x faster than one on a VM disk).
        with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
            list(pool.map(lambda image: _write_image(build.sources[image["file_name"]],
                                                     staging / "images" / image["file_name"], link), build.images))
        (staging / REPORT_NAME).write_text(json.dumps(report(build, split), indent=1, sort_keys=True) + "\n")
        _replace_dir(staging, out_dir)
    except OSError as exc:  # disk full, quota, permissions: the previous out_dir is still there
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        where = f" ({exc.filename})" if exc.filename else ""
        kept = "the previous dataset there is unchanged" if out_dir.exists() else "nothing was written"
        full = "; free some space or choose another folder" if exc.errno in _NO_SPACE else ""
        reason = f"{exc.strerror or exc}{where}"
        raise ExternalError(f"{out_dir}: writing the dataset failed: {reason}; {kept}{full}") from None
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts


def _write_image(source: ImageSource, target: Path, link: bool) -> None:
    if source.path is not None and not source.rewrite:
        if link:
            try:
                os.link(source.path, target)
                return
            except OSError:  # another file system, or links not allowed: copy instead
                pass
        shutil.copyfile(source.path, target)
        return
    if source.path is not None:
        data = source.path.read_bytes()
    else:  # embedded: read again here rather than carry every image's bytes through the build
        data = embedded_image(parse_labelme(source.json_path.read_bytes()))
        assert data is not None
    if not source.rewrite:
        target.write_bytes(data)
        return
    # The annotation is of the image as shown (rotated per EXIF, as labelme does; 16-bit samples
    # scaled): store it that way, so that every reader, whatever it does with EXIF, sees that.
    with open_image(data) as opened:
        fmt = opened.format or "PNG"
    encoded = io.BytesIO()  # encoded in memory: PIL writing to a file ignores a failed write
    decode_rgb(data).save(encoded, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    target.write_bytes(encoded.getvalue())


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target`; an existing `target` is swapped out first and then deleted."""
    if not target.exists():
        new.rename(target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    old.rmdir()
    target.rename(old)
    try:
        new.rename(target)
    except BaseException:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)
