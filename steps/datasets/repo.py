"""Creating a dataset repo and fetching a training dataset from one.

A dataset repo is a git repo with DVC: `annotations/` (labelme files) and `dataset/` (the COCO
training dataset) are DVC-tracked folders; tags tell versions apart: `annotations/vN` for an
annotation version, `datasets/vN` for the training dataset recorded from it (docs/datasets.md).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from steps.datasets import vcs
from steps.confine import OutsideFolder, inside
from steps.datasets.dvc_settings import use_our_dvc_settings
from steps.errors import InputError

LOCAL_REMOTE = ".dvcstore"  # default DVC remote of a local dataset repo: a git-ignored folder inside it


def init_dataset_repo(repo: Path, remote: str | None = None, remote_options: dict[str, str] | None = None,
                      final: Path | None = None) -> None:
    """`git init` + `dvc init` + a default DVC remote (a local folder unless `remote` is given).

    `remote_options` are DVC remote settings committed with the repo, e.g. for a GCS emulator
    `{"endpointurl": "http://127.0.0.1:4443", "allow_anonymous_login": "true"}`. Credentials do
    not belong here: on a cluster they come from Workload Identity.
    `final`: the folder `repo` is renamed to once complete (it is built aside). The local remote
    committed is then final's; until the rename, pushes go to repo's own (`.dvc/config.local`,
    never committed), which the rename turns into final's.
    """
    if repo.exists() and not repo.is_dir():
        raise InputError(f"{repo}: exists and is not a folder; give the path of a new or empty folder")
    try:
        repo.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent is a file, or not writable
        raise InputError(f"{repo}: cannot create the folder ({exc.strerror or exc}); choose another path") from None
    if not (repo / ".git").exists():
        vcs.git(repo, "init", "--quiet", "--initial-branch=main")
    if not (repo / ".dvc").exists():
        vcs.dvc(repo, "init", "--quiet")
        url = remote or str(((final or repo) / LOCAL_REMOTE).resolve())
        vcs.dvc(repo, "remote", "add", "--default", "--", "storage", url)
        if final is not None and not remote:
            (repo / ".dvc" / "config.local").write_text(
                f"['remote \"storage\"']\n    url = {(repo / LOCAL_REMOTE).resolve()}\n")
        for key, value in (remote_options or {}).items():
            vcs.dvc(repo, "remote", "modify", "--", "storage", key, value, what=f"dvc remote modify {key}")
        if not remote:
            (repo / ".gitignore").write_text(f"/{LOCAL_REMOTE}\n")
        vcs.git(repo, "add", "--all")
        vcs.git(repo, "commit", "--quiet", "-m", "Set up the dataset repo (git + DVC)")


def commit_annotations(repo: Path, folder: str, tag: str) -> str:
    """DVC-track `folder`, push its data, commit and tag it as an annotation version."""
    vcs.check_tag(tag, "annotation version")
    if tag in vcs.git(repo, "tag", "--list").split():
        raise InputError(f"{repo}: tag {tag!r} already exists; choose a new annotation version")
    vcs.dvc_add_and_push(repo, folder)
    return vcs.commit_and_tag(repo, [f"{folder}.dvc", ".gitignore"], f"Annotations {tag}", tag)


def confine_checkout(clone: Path, where: str, names: list[str]) -> None:
    """Refuse a checkout in which a committed symlink leads one of `names` (paths that git, DVC or
    a step read or write) out of it, or whose DVC settings would (steps/datasets/dvc_settings.py): the repo's
    content must never reach a file of the host. DVC then runs there with our cache settings."""
    for name in (".dvc", ".dvc/config.local", ".gitignore", ".dvcignore", *names):
        try:
            inside(clone, clone / name, "dataset repo")
        except OutsideFolder as exc:
            raise InputError(f"{where}: {name} {exc}; a committed symlink must not point out of the repo") from None
    use_our_dvc_settings(clone, where)


@contextmanager
def checkout_dataset(repo_url: str, version: str, dataset_dir: str) -> Iterator[Path]:
    """Check out a recorded training dataset and `dvc pull` it; yields the dataset folder."""
    with tempfile.TemporaryDirectory(prefix="trainyard-dataset-") as scratch:
        clone = Path(scratch) / "repo"
        vcs.checkout(repo_url, version, clone)
        confine_checkout(clone, f"{repo_url}@{version}", [dataset_dir, f"{dataset_dir}.dvc"])
        if not (clone / f"{dataset_dir}.dvc").is_file():
            raise InputError(f"{repo_url}@{version}: no {dataset_dir}.dvc; is {version!r} a recorded dataset version?")
        vcs.dvc_pull(clone, dataset_dir)
        yield clone / dataset_dir
