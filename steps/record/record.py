"""Record: annotation tag -> COCO training dataset, pushed with DVC, tagged, and in the database.

Order matters so that nothing is half-recorded: the data reaches the DVC remote before a tag can
point at it, and the tag is pushed inside the database transaction, so a failure anywhere
leaves neither a tag nor rows behind. Recording an existing version returns it unchanged.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from steps import vcs
from steps.coco import build_coco, split_images, write_coco_dataset
from steps.config import Config
from steps.db import Database, resolve_url
from steps.errors import ConfigError, InputError
from steps.record.metadata import DatasetRow, ImageRow, find_dataset, insert_dataset, lock_version

ANNOTATION_PREFIX = "annotations/"
DATASET_PREFIX = "datasets/"


@dataclass(frozen=True)
class RecordResult:
    version: str
    created: bool
    counts: dict[str, int]
    categories: list[str]


def dataset_version_for(annotation_version: str) -> str:
    """`annotations/v3` is recorded as `datasets/v3`; any other tag `t` as `datasets/t`."""
    name = annotation_version.removeprefix(ANNOTATION_PREFIX)
    return DATASET_PREFIX + name


def record(config: Config, repo: str, annotation_version: str = "") -> RecordResult:
    if not repo:
        raise ConfigError("no dataset repo: pass --repo or set dataset.repo")
    annotation_version = annotation_version or config.dataset.annotation_version
    if not annotation_version:
        annotation_version = vcs.newest_tag(repo, ANNOTATION_PREFIX)
        print(f"record: newest annotation version is {annotation_version}", flush=True)
    version = dataset_version_for(annotation_version)
    db = Database(resolve_url(config.database.url))
    db.migrate()

    with db.transaction() as tx:
        existing = find_dataset(tx, version)
    tagged = version in vcs.remote_tags(repo, version)
    if existing and tagged:
        print(f"record: {version} is already recorded (commit {existing['git_commit'][:10]}); nothing to do", flush=True)
        return RecordResult(version, False, existing["counts"], existing["categories"])
    if existing or tagged:
        has, lacks = ("the database", f"{repo}") if existing else (f"{repo}", "the database")
        raise InputError(
            f"{version} is in {has} but not in {lacks}: the database and the dataset repo do not belong "
            "together; point database.url and --repo at the same deployment"
        )

    with tempfile.TemporaryDirectory(prefix="trainyard-record-") as scratch:
        workdir = Path(scratch) / "repo"
        print(f"record: checking out {annotation_version} of {repo}", flush=True)
        vcs.checkout(repo, annotation_version, workdir)
        ann_dir = config.dataset.annotations_dir
        if not (workdir / f"{ann_dir}.dvc").is_file() and not (workdir / ann_dir).is_dir():
            raise InputError(
                f"{repo}@{annotation_version}: no {ann_dir}/ (nor {ann_dir}.dvc); set dataset.annotations_dir"
            )
        if (workdir / f"{ann_dir}.dvc").is_file():
            vcs.dvc_pull(workdir, ann_dir)
        files = sorted((workdir / ann_dir).rglob("*.json"))
        if not files:
            raise InputError(f"{repo}@{annotation_version}: no labelme .json files under {ann_dir}/")
        print(f"record: converting {len(files)} labelme files", flush=True)
        build = build_coco(files, config.dataset.labels or None)
        for warning in build.warnings:
            print(f"record: warning: {warning}", flush=True)
        names = [image["file_name"] for image in build.images]
        split = split_images(names, config.dataset.val_fraction, config.dataset.test_fraction, config.dataset.split_seed)
        out_name = config.dataset.dataset_dir
        counts = write_coco_dataset(build, split, workdir / out_name)
        categories = [c["name"] for c in build.categories]
        print(f"record: split train={counts.get('train', 0)} val={counts.get('val', 0)} test={counts.get('test', 0)}; "
              f"{len(categories)} categories", flush=True)

        print(f"record: dvc add + push {out_name}/", flush=True)
        md5 = vcs.dvc_add_and_push(workdir, out_name)
        settings = {
            "val_fraction": config.dataset.val_fraction,
            "test_fraction": config.dataset.test_fraction,
            "split_seed": config.dataset.split_seed,
            "labels": categories,
        }
        message = f"Record training dataset {version} from {annotation_version}"
        commit = vcs.commit_and_tag(workdir, [f"{out_name}.dvc", ".gitignore"], message, version)
        images = _image_rows(build, split)
        row = DatasetRow(version, annotation_version, commit, md5, counts, categories, settings)

        with db.transaction() as tx:
            lock_version(tx, version)
            existing = find_dataset(tx, version)
            if existing:  # another recorder won the race while we converted
                print(f"record: {version} was recorded concurrently; using it", flush=True)
                return RecordResult(version, False, existing["counts"], existing["categories"])
            insert_dataset(tx, row, images)
            vcs.push_tag(workdir, version)  # last: if it fails, the rows roll back

    print(f"record: recorded {version} (commit {commit[:10]}, dvc md5 {md5})", flush=True)
    return RecordResult(version, True, counts, categories)


def _image_rows(build, split: dict[str, str]) -> list[ImageRow]:
    shapes_per_image: dict[int, list[str]] = {}
    names = {c["id"]: c["name"] for c in build.categories}
    for ann in build.annotations:
        shapes_per_image.setdefault(ann["image_id"], []).append(names[ann["category_id"]])
    rows = []
    for image in build.images:
        source = build.sources[image["file_name"]]
        labels = shapes_per_image.get(image["id"], [])
        rows.append(
            ImageRow(
                file_name=image["file_name"],
                width=image["width"],
                height=image["height"],
                sha256=hashlib.sha256(Path(source).read_bytes()).hexdigest(),
                num_shapes=len(labels),
                labels=labels,
                split=split[image["file_name"]],
            )
        )
    return rows
