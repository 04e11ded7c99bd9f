"""Each image's split, kept with the data: a ledger committed at every dataset tag.

Record commits `<dataset_dir>.splits.json` beside the training dataset's `.dvc` file, in the
commit the dataset tag names: every image ever split (this version's and the earlier ones'),
with its split. The next record reads the ledgers of the repo's dataset tags, so an image keeps
the split it was first given whatever database, machine or rerun records the next version; the
database's memory (`image_splits`) only fills in images of versions recorded before ledgers
existed. A ledger is data from the dataset repo: it is checked like any other input.
"""

from __future__ import annotations

import json
from pathlib import Path

from steps.datasets import vcs
from steps.datasets.split import SPLITS
from steps.errors import InputError

SUFFIX = ".splits.json"
TAG_REFS = "refs/tags/datasets/"
MAX_BYTES = 64 * 1024 * 1024  # a million image names fit many times over


def ledger_name(dataset_dir: str) -> str:
    """The ledger's path in the repo: beside `<dataset_dir>.dvc`."""
    return f"{dataset_dir.rstrip('/')}{SUFFIX}"


def read_ledgers(workdir: Path, dataset_dir: str) -> dict[str, str]:
    """Image name -> split from the ledgers of every dataset tag in the checkout, oldest tag first;
    an image named by several keeps the first split it was given."""
    name = ledger_name(dataset_dir)
    # The last --sort is the primary key: oldest first, ties by name.
    refs = vcs.git(workdir, "for-each-ref", "--sort=refname", "--sort=creatordate", "--format=%(refname)",
                   TAG_REFS).split()
    found: dict[str, str] = {}
    for ref in refs:
        if not vcs.git(workdir, "ls-tree", "--name-only", ref, "--", name).strip():
            continue  # recorded before ledgers existed
        where = f"{ref.removeprefix('refs/tags/')}:{name}"
        if int(vcs.git(workdir, "cat-file", "-s", f"{ref}:{name}")) > MAX_BYTES:
            raise InputError(f"{where}: larger than {MAX_BYTES // 2**20} MiB; not a splits ledger record wrote")
        for image, split in parse(vcs.git(workdir, "show", f"{ref}:{name}"), where).items():
            found.setdefault(image, split)
    return found


def parse(text: str, where: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not JSON ({exc}); the splits ledger record committed was changed") from None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, dict) or not all(isinstance(k, str) and v in SPLITS for k, v in images.items()):
        raise InputError(f"{where}: expected {{\"images\": {{file name: train/val/test}}}}; the splits ledger "
                         "record committed was changed")
    return images


def write_ledger(workdir: Path, dataset_dir: str, splits: dict[str, str]) -> str:
    """Write the ledger into the checkout (replacing whatever the annotation commit had there,
    never through a link); returns its path in the repo, for the commit."""
    name = ledger_name(dataset_dir)
    path = workdir / name
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        raise InputError(f"{name}: a folder in the dataset repo where record keeps the splits ledger; rename it")
    with path.open("x", encoding="utf-8") as handle:  # "x": a file of our own, never a link's target
        json.dump({"images": dict(sorted(splits.items()))}, handle, indent=0)
        handle.write("\n")
    return name
