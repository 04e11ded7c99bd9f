"""The sample dataset repo a local run records from when no dataset repo is given.

It is made aside and renamed into place when complete, so a crash, a full disk or a second run
starting at the same moment never leaves (or finds) a half-made one at its path.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
import time
from pathlib import Path

from steps.errors import ExternalError, InputError

SAMPLE_VERSION = "annotations/v1"
# The demo's dataset: 300 images split 195/60/45 (dataset.val_fraction 0.2, test_fraction 0.15),
# so validation has the 50 images a promotion needs and the test split about 60 plates, enough to
# measure EIR (docs/demo.md). Generating them takes a few seconds.
SAMPLE_IMAGES = 300


def create_sample_repo(repo: Path, images: int = SAMPLE_IMAGES, seed: int = 0, version: str = SAMPLE_VERSION,
                       remote: str | None = None, kind: str = "plates") -> Path:
    """`kind`: plates (the demo's) or shapes (12 classes of coloured shapes, steps/datasets/sample_shapes.py)."""
    from steps.datasets.repo import commit_annotations, init_dataset_repo
    from steps.datasets.sample_data import generate_sample
    from steps.datasets.sample_shapes import generate_shapes

    repo = Path(repo).absolute()
    if repo.exists() and not repo.is_dir():
        raise InputError(f"{repo}: exists and is not a folder; give the path of a new or empty folder")
    if repo.is_dir() and any(repo.iterdir()):
        raise InputError(f"{repo} already exists and is not empty; choose a new folder")
    try:
        repo.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{repo.name}.making-", dir=repo.parent))
    except OSError as exc:
        raise InputError(f"{repo}: cannot create the folder ({exc.strerror or exc}); choose another path") from None
    try:
        init_dataset_repo(building, remote, final=repo)
        files = (generate_shapes if kind == "shapes" else generate_sample)(building / "annotations", num_images=images,
                                                                          seed=seed)
        commit_annotations(building, "annotations", version)
        (building / ".dvc" / "config.local").unlink(missing_ok=True)
        building.rename(repo)  # the moment it appears, complete; an empty folder there is replaced
    except ExternalError as exc:  # git or DVC failed (a full disk, too)
        raise ExternalError(f"{repo}: making the sample dataset failed: {exc}; nothing was kept") from None
    except OSError as exc:
        if repo.is_dir() and any(repo.iterdir()):
            raise InputError(f"{repo} was made by another run meanwhile; use it") from None
        full = "free some space or " if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else ""
        raise ExternalError(f"{repo}: making the sample dataset failed ({exc.strerror or exc}); nothing was kept; "
                            f"{full}choose another folder") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
    print(f"sample-data: {len(files)} labelme files in {repo}/annotations, committed and tagged {version}")
    return repo


def ensure_sample_repo(repo: Path, images: int = SAMPLE_IMAGES, version: str = SAMPLE_VERSION) -> Path:
    """The sample repo at `repo`, made when missing; one that is not complete (left by an older
    trainyard that made it in place and was interrupted) is set aside and made again. A smaller
    one made by an older trainyard is used as it is (its runs and splits are in the database),
    with a note on how to get the current one."""
    existed = repo.exists()  # looked at first: one that appears after this is a complete one
    if is_complete(repo, version):
        held = len(list((repo / "annotations").glob("*.json")))
        if held < images:
            print(f"note: {repo} holds {held} sample images, made by an earlier trainyard; the demo now makes "
                  f"{images}, enough to measure plate reading (EIR) on its test split. Remove that folder "
                  f"(or `make clean-all`) to have them made.")
        return repo
    if existed:
        aside = repo.with_name(f"{repo.name}.incomplete-{time.strftime('%Y%m%d-%H%M%S')}")
        print(f"{repo} is incomplete (no {version} tag): moved to {aside.name}, making a new one")
        repo.rename(aside)
    print(f"No dataset repo given: generating the sample dataset in {repo}")
    try:
        return create_sample_repo(repo, images, version=version)
    except InputError:
        if is_complete(repo, version):  # another run made it at the same time
            return repo
        raise


def is_complete(repo: Path, version: str = SAMPLE_VERSION) -> bool:
    from steps.datasets import vcs

    if not (repo / ".git").is_dir():
        return False
    try:
        return version in vcs.git(repo, "tag", "--list", "--", version).split()
    except ExternalError:
        return False
