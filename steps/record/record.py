"""Record: annotation tag -> COCO training dataset, pushed with DVC, tagged, and in the database.

Order matters so that nothing is half-recorded: the data reaches the DVC remote before a tag can
point at it, and the tag is pushed inside the database transaction (under a per-version lock),
so a failure anywhere leaves neither a tag nor rows behind, and of two recorders of one version
exactly one records it. Recording an existing version returns it unchanged.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from steps import vcs
from steps.coco import CocoBuild, InvalidFiles, build_coco, image_strata, split_images, write_coco_dataset
from steps.config import Config
from steps.db import Database, resolve_url
from steps.errors import ConfigError, ExternalError, InputError
from steps.labelme import read_labels_file
from steps.labelme2coco import find_labelme_files
from steps.log import get as get_logger
from steps.record.metadata import DatasetRow, ImageRow, find_dataset, insert_dataset, lock_version

ANNOTATION_PREFIX = "annotations/"
DATASET_PREFIX = "datasets/"
# A labelme labels file inside the annotations folder fixes the categories when dataset.labels is empty.
LABELS_FILE = "labels.txt"
_SHOWN = 10  # warnings and skipped files printed to the log; report.json has them all


@dataclass(frozen=True)
class RecordResult:
    version: str
    created: bool
    counts: dict[str, int]
    categories: list[str]
    skipped: int = 0

log = get_logger("record")


def dataset_version_for(annotation_version: str) -> str:
    """`annotations/v3` is recorded as `datasets/v3`; any other tag `t` as `datasets/t`."""
    name = annotation_version.removeprefix(ANNOTATION_PREFIX)
    return DATASET_PREFIX + name


def _log(message: str) -> None:
    log.info(f"record: {message}")


def _existing(db: Database, repo: str, version: str) -> RecordResult | None:
    """The recorded version when both the database and the repo have it; an error when only one does."""
    with db.transaction() as tx:
        existing = find_dataset(tx, version)
    tagged = version in vcs.remote_tags(repo, version)
    if existing and tagged:
        _log(f"{version} is already recorded (commit {existing['git_commit'][:10]}); nothing to do")
        return RecordResult(version, False, existing["counts"], existing["categories"], existing["skipped"])
    if existing:
        raise InputError(
            f"{version} is in the database but {repo} has no such tag: point database.url and --repo at the "
            "same deployment (or delete the dataset's rows if its tag was deleted on purpose)"
        )
    if tagged:
        raise InputError(
            f"{version} is tagged in {repo} but not in the database: point database.url and --repo at the same "
            f"deployment, or, if a record run died after pushing the tag, delete it (git push --delete origin "
            f"refs/tags/{version}) and record again"
        )
    return None


def _labels(config: Config, ann_dir: Path) -> tuple[list[str] | None, str]:
    """The category list and where it comes from: dataset.labels, the annotations' labels.txt, or none."""
    if config.dataset.labels:
        return list(config.dataset.labels), "dataset.labels"
    labels_file = ann_dir / LABELS_FILE
    if labels_file.is_file():
        return read_labels_file(labels_file), f"{config.dataset.annotations_dir}/{LABELS_FILE}"
    return None, "every label found"


def _show(title: str, lines: list[str]) -> None:
    if lines:
        _log(title)
        for line in lines[:_SHOWN]:
            log.info(f"  {line}")
        if len(lines) > _SHOWN:
            log.info(f"  ... and {len(lines) - _SHOWN} more")


def _convert(config: Config, where: str, ann_dir: Path) -> tuple[CocoBuild, str]:
    files = find_labelme_files(ann_dir)
    if not files:
        raise InputError(f"{where}: no labelme .json files under {config.dataset.annotations_dir}/")
    labels, labels_source = _labels(config, ann_dir)
    _log(f"converting {len(files)} labelme files (categories: {labels_source})")
    try:
        build = build_coco(
            files, labels, on_invalid=config.dataset.on_invalid, root=ann_dir, labels_source=labels_source
        )
    except InvalidFiles as exc:
        raise InputError(
            f"{where}: {exc}\nfix them in a new annotation version, or set dataset.on_invalid=skip to record "
            "the others and list these in the dataset's report.json"
        ) from None
    _show(f"skipped {len(build.skipped)} invalid file(s) (dataset.on_invalid=skip):",
          [f"{item.file}: {item.reason}" for item in build.skipped])
    _show(f"{len(build.warnings)} warning(s):", build.warnings)
    return build, labels_source


def record(config: Config, repo: str, annotation_version: str = "") -> RecordResult:
    if not repo:
        raise ConfigError("no dataset repo: pass --repo or set dataset.repo")
    annotation_version = annotation_version or config.dataset.annotation_version
    if not annotation_version:
        annotation_version = vcs.newest_tag(repo, ANNOTATION_PREFIX)
        _log(f"newest annotation version is {annotation_version}")
    version = dataset_version_for(annotation_version)
    db = Database(resolve_url(config.database.url))
    db.migrate()
    done = _existing(db, repo, version)
    if done:
        return done

    dataset = config.dataset
    with tempfile.TemporaryDirectory(prefix="trainyard-record-") as scratch:
        workdir = Path(scratch) / "repo"
        _log(f"checking out {annotation_version} of {repo}")
        vcs.checkout(repo, annotation_version, workdir)
        where, ann_dir = f"{repo}@{annotation_version}", dataset.annotations_dir
        tracked = (workdir / f"{ann_dir}.dvc").is_file()
        if not tracked and not (workdir / ann_dir).is_dir():
            raise InputError(f"{where}: no {ann_dir}/ (nor {ann_dir}.dvc); set dataset.annotations_dir")
        if tracked:
            _log(f"dvc pull {ann_dir}/")
            vcs.dvc_pull(workdir, ann_dir)
        build, labels_source = _convert(config, where, workdir / ann_dir)
        names = [image["file_name"] for image in build.images]
        split = split_images(
            names, dataset.val_fraction, dataset.test_fraction, dataset.split_seed, image_strata(build)
        )
        # Hard links: the annotations' image files are not modified, and `dvc add` copies into its cache.
        counts = write_coco_dataset(build, split, workdir / dataset.dataset_dir, link=True)
        categories = [c["name"] for c in build.categories]
        _log(f"split train={counts['train']} val={counts['val']} test={counts['test']}; {len(categories)} categories")

        _log(f"dvc add + push {dataset.dataset_dir}/")
        md5 = vcs.dvc_add_and_push(workdir, dataset.dataset_dir)
        message = f"Record training dataset {version} from {annotation_version}"
        commit = vcs.commit_and_tag(workdir, [f"{dataset.dataset_dir}.dvc", ".gitignore"], message, version)
        settings = {
            "val_fraction": dataset.val_fraction,
            "test_fraction": dataset.test_fraction,
            "split_seed": dataset.split_seed,
            "on_invalid": dataset.on_invalid,
            "labels": categories,
            "labels_source": labels_source,
        }
        skipped = tuple((item.file, item.reason) for item in build.skipped)
        row = DatasetRow(version, annotation_version, commit, md5, counts, categories, settings, skipped)
        result = _commit(db, workdir, row, _image_rows(build, split))
    if result.created:
        _log(f"recorded {version} (commit {commit[:10]}, dvc md5 {md5})")
    return result


def _commit(db: Database, workdir: Path, row: DatasetRow, images: list[ImageRow]) -> RecordResult:
    """Insert the rows and push the tag in one transaction, unless another recorder won the race."""
    pushed = False
    try:
        with db.transaction() as tx:
            lock_version(tx, row.version)
            existing = find_dataset(tx, row.version)
            if existing:  # another recorder won the race while we converted
                _log(f"{row.version} was recorded concurrently (commit {existing['git_commit'][:10]}); using it")
                return RecordResult(row.version, False, existing["counts"], existing["categories"], existing["skipped"])
            insert_dataset(tx, row, images)
            vcs.push_tag(workdir, row.version)  # last: if it fails, the rows roll back
            pushed = True
    except BaseException:
        if pushed:  # the commit itself failed: take the tag back so that the version is not half-recorded
            try:
                vcs.delete_remote_tag(workdir, row.version)
            except ExternalError as exc:
                _log(f"could not delete the pushed tag {row.version} after the database failed: {exc}")
        raise
    return RecordResult(row.version, True, row.counts, row.categories, len(row.skipped))


def _image_rows(build: CocoBuild, split: dict[str, str]) -> list[ImageRow]:
    labels_per_image: dict[int, list[str]] = {}
    names = {c["id"]: c["name"] for c in build.categories}
    for ann in build.annotations:
        labels_per_image.setdefault(ann["image_id"], []).append(names[ann["category_id"]])
    return [
        ImageRow(
            file_name=image["file_name"],
            width=image["width"],
            height=image["height"],
            sha256=build.sources[image["file_name"]].sha256,
            num_shapes=build.num_shapes[image["file_name"]],
            labels=labels_per_image.get(image["id"], []),
            split=split[image["file_name"]],
        )
        for image in build.images
    ]
