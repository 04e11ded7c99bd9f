"""Record: annotation tag -> COCO training dataset, pushed with DVC, tagged, and in the database.

Order matters so that nothing is half-recorded: the data reaches the DVC remote before a tag can
point at it, and the tag is pushed inside the database transaction (under a per-version lock),
so a failure anywhere leaves neither a tag nor rows behind, and of two recorders of one version
exactly one records it. Recording an existing version returns it unchanged.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from steps.datasets import vcs
from steps.datasets.coco import CocoBuild, InvalidFiles, build_coco, image_strata, write_coco_dataset
from steps.confine import OutsideFolder, inside
from steps.datasets.split import assign_splits
from steps.config import Config
from steps.datasets.repo import confine_checkout
from steps.db import URL_ENV, Database, resolve_url
from steps.errors import ExternalError, InputError, excerpt
from steps.datasets.labelme import read_labels_file
from steps.datasets.labelme2coco import find_labelme_files
from steps.log import get as get_logger
from steps.record.metadata import DatasetRow, ImageRow, find_dataset, image_splits, insert_dataset, lock_version
from steps.record.split_ledger import read_ledgers, write_ledger

ANNOTATION_PREFIX = "annotations/"
DATASET_PREFIX = "datasets/"
# A labelme labels file inside the annotations folder fixes the categories when dataset.labels is empty.
LABELS_FILE = "labels.txt"
_SHOWN = 10  # warnings and skipped files printed to the log; report.json has them all
# The subject of every dataset tag and commit: "Record training dataset datasets/v3 from annotations/v3",
# and in its body the id of the database that recorded it ("database: <id>", steps/db.py).
_RECORD_MESSAGE = "Record training dataset"
_DATABASE_LINE = re.compile(r"^database: ([0-9a-f]{32})$", re.MULTILINE)


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


def _existing(db: Database, repo: str, version: str) -> tuple[RecordResult | None, bool]:
    """(the recorded version when both the database and the repo have it, whether the repo has a
    tag for it that the database does not know); an error when only the database has it."""
    with db.transaction() as tx:
        existing = find_dataset(tx, version)
    tagged = version in vcs.remote_tags(repo, version)
    if existing and tagged:
        _log(f"{version} is already recorded (commit {existing['git_commit'][:10]}); nothing to do")
        return RecordResult(version, False, existing["counts"], existing["categories"], existing["skipped"]), False
    if existing:
        raise InputError(
            f"{version} is in the database but {repo} has no such tag: point {URL_ENV} and --repo at the "
            "same deployment (or delete the dataset's rows if its tag was deleted on purpose)"
        )
    return None, tagged


def _repair_stale_tag(db: Database, identity: str, workdir: Path, repo: str, version: str) -> RecordResult | None:
    """Delete a dataset tag that has no database rows, left by a record run that was killed
    between pushing it and committing; returns the dataset instead if it was recorded meanwhile.

    A recorder pushes the tag while holding the version's lock, so once we hold the lock, a tag
    without rows belongs to no recording in progress. Only tags that record made for this database
    (by their message) are deleted: a tag made by hand is a person's decision, and one made for
    another database is that database's dataset, which a move would break.
    """
    with db.transaction() as tx:
        lock_version(tx, version)
        existing = find_dataset(tx, version)
        if existing:
            _log(f"{version} was recorded concurrently (commit {existing['git_commit'][:10]}); using it")
            return RecordResult(version, False, existing["counts"], existing["categories"], existing["skipped"])
        if version not in vcs.git(workdir, "tag", "--list", "--", version).split():
            return None  # deleted since we looked (its recorder's cleanup): nothing to repair
        subject = vcs.tag_subject(workdir, version)
        if not subject.startswith(f"{_RECORD_MESSAGE} {version} "):
            raise InputError(
                f"{version} is tagged in {repo} but not in the database, and the tag was not made by record "
                f"({excerpt(subject or 'no message')}): point {URL_ENV} and --repo at the same deployment, or "
                f"delete the tag (git push --delete origin refs/tags/{version}) and record again"
            )
        made_for = _DATABASE_LINE.findall(vcs.tag_message(workdir, version))
        if made_for != [identity]:
            which = f"database {made_for[-1]}" if made_for else "a database this version of record cannot tell"
            raise InputError(
                f"{version} is tagged in {repo} by record for another database ({which}), which knows it as its "
                f"dataset: the tag is never moved. Point {URL_ENV} at that database, or record this annotation "
                "version into a dataset repo of this database's own"
            )
        if version in vcs.remote_tags(repo, version):
            _log(f"{version} is tagged in {repo} but has no database rows (a record run was interrupted after "
                 "pushing it); deleting the tag and recording again")
            vcs.delete_remote_tag(workdir, version)
    vcs.delete_local_tag(workdir, version)
    return None


def _labels(config: Config, ann_dir: Path) -> tuple[list[str] | None, str]:
    """The category list and where it comes from: dataset.labels, the annotations' labels.txt, or none."""
    if config.dataset.labels:
        return list(config.dataset.labels), "dataset.labels"
    labels_file = ann_dir / LABELS_FILE
    if labels_file.is_file():
        where = f"{config.dataset.annotations_dir}/{LABELS_FILE}"
        try:
            inside(ann_dir, labels_file, "annotation folder")
        except OutsideFolder as exc:
            raise InputError(f"{where} {exc}; commit the labels file itself") from None
        return read_labels_file(labels_file), where
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
        build = build_coco(files, labels, on_invalid=config.dataset.on_invalid, root=ann_dir,
                           labels_source=labels_source, max_instances=config.dataset.max_instances_per_image)
    except InvalidFiles as exc:
        raise InputError(
            f"{where}: {exc}\nfix them in a new annotation version, or set dataset.on_invalid=skip to record "
            "the others and list these in the dataset's report.json"
        ) from None
    _show(f"skipped {len(build.skipped)} invalid file(s) (dataset.on_invalid=skip):",
          [f"{item.file}: {item.reason}" for item in build.skipped])
    _show(f"{len(build.warnings)} warning(s):", build.warnings)
    return build, labels_source


def _newest_annotation_version(repo: str) -> str:
    newest, others = vcs.newest_tag(repo, ANNOTATION_PREFIX)
    if others:
        _log(f"ignoring {len(others)} tag(s) that are not versions ({ANNOTATION_PREFIX}v<number>) when looking "
             f"for the newest: {', '.join(others[:_SHOWN])}{' ...' if len(others) > _SHOWN else ''}; "
             "record one of them with --annotation-version")
    _log(f"newest annotation version is {newest}")
    return newest


def _folder(workdir: Path, name: str, field: str) -> Path:
    """`workdir/name`, refused when a symlink in the checkout leads it out of the checkout."""
    try:
        inside(workdir, workdir / name, "dataset repo")
    except OutsideFolder as exc:
        raise InputError(f"{field} {name!r} {exc}; it must be a folder of the dataset repo") from None
    return workdir / name


def record(config: Config, repo: str, annotation_version: str = "") -> RecordResult:
    # Both reach git: refused here, before anything else, when git could read them as options.
    vcs.check_repo(repo)
    annotation_version = annotation_version or config.dataset.annotation_version
    if annotation_version:
        vcs.check_tag(annotation_version, "annotation version")
    else:
        annotation_version = _newest_annotation_version(repo)
    version = dataset_version_for(annotation_version)
    db = Database(resolve_url(config.database.url))
    db.migrate()
    identity = db.identity()
    done, stale_tag = _existing(db, repo, version)
    if done:
        return done

    dataset = config.dataset
    with tempfile.TemporaryDirectory(prefix="trainyard-record-") as scratch:
        workdir = Path(scratch) / "repo"
        _log(f"checking out {annotation_version} of {repo}")
        vcs.checkout(repo, annotation_version, workdir)
        if stale_tag:
            done = _repair_stale_tag(db, identity, workdir, repo, version)
            if done:
                return done
        where, ann_dir = f"{repo}@{annotation_version}", dataset.annotations_dir
        annotations = _folder(workdir, ann_dir, "dataset.annotations_dir")
        output = _folder(workdir, dataset.dataset_dir, "dataset.dataset_dir")
        confine_checkout(workdir, where, [f"{ann_dir}.dvc", f"{dataset.dataset_dir}.dvc"])
        tracked = (workdir / f"{ann_dir}.dvc").is_file()
        if not tracked and not annotations.is_dir():
            raise InputError(f"{where}: no {ann_dir}/ (nor {ann_dir}.dvc); set dataset.annotations_dir")
        if tracked:
            _log(f"dvc pull {ann_dir}/")
            vcs.dvc_pull(workdir, ann_dir)
            annotations = _folder(workdir, ann_dir, "dataset.annotations_dir")  # what DVC put there
        build, labels_source = _convert(config, where, annotations)
        names = [image["file_name"] for image in build.images]
        # An image keeps the split an earlier version gave it: the dataset tags' ledgers say which
        # (the database, for versions recorded before them); only new images are split, so
        # production is never scored on images it trained on, whichever database records.
        with db.transaction() as tx:
            previous = {**image_splits(tx), **read_ledgers(workdir, dataset.dataset_dir)}
        split = assign_splits(
            names, previous, dataset.val_fraction, dataset.test_fraction, dataset.split_seed, image_strata(build)
        )
        kept = sum(name in previous for name in names)
        if kept:
            _log(f"{kept} image(s) keep the split of earlier versions; {len(names) - kept} new one(s) split")
        # Hard links: the annotations' image files are not modified, and `dvc add` copies into its cache.
        counts = write_coco_dataset(build, split, output, link=True)
        categories = [c["name"] for c in build.categories]
        _log(f"split train={counts['train']} val={counts['val']} test={counts['test']}; {len(categories)} categories")

        _log(f"dvc add + push {dataset.dataset_dir}/")
        md5 = vcs.dvc_add_and_push(workdir, dataset.dataset_dir)
        message = f"{_RECORD_MESSAGE} {version} from {annotation_version}\n\ndatabase: {identity}"
        ledger = write_ledger(workdir, dataset.dataset_dir, {**previous, **split})
        commit = vcs.commit_and_tag(workdir, [f"{dataset.dataset_dir}.dvc", ".gitignore", ledger], message, version)
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
            try:
                vcs.push_tag(workdir, row.version)  # last: if it fails, the rows roll back
            except BaseException:  # a failure or SIGTERM during the push: it may have reached the remote
                _take_back_tag(workdir, row.version)  # still under the lock: no other recorder's tag
                raise
            pushed = True
    except BaseException:
        if pushed:  # the commit itself failed: take the tag back so that the version is not half-recorded
            try:
                vcs.delete_remote_tag(workdir, row.version)
            except ExternalError as exc:
                _log(f"could not delete the pushed tag {row.version} after the database failed: {exc}")
        raise
    return RecordResult(row.version, True, row.counts, row.categories, len(row.skipped))


def _take_back_tag(workdir: Path, version: str) -> None:
    """Delete the remote tag if it is the one this run pushed (an interrupted push may have landed)."""
    try:
        if vcs.remote_tag_object(workdir, version) == vcs.git(workdir, "rev-parse", f"refs/tags/{version}").strip():
            vcs.delete_remote_tag(workdir, version)
            _log(f"deleted the tag {version} again: its push was interrupted and nothing was recorded")
    except ExternalError as exc:
        _log(f"could not check or delete the tag {version} after its push failed: {exc}; "
             "the next record run repairs it")


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
