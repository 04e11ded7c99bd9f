"""A train run's checkpoints, and how the fan-out evaluation splits them into pods.

Each evaluate pod writes its scores as one object under the run's artifact prefix, keyed by its
group (the pipeline) or its branch (the sweep), so select reads them all as one key-only input
artifact and a retried pod overwrites its own object (workflows/pipeline.py `SCORES_KEY`).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from steps.errors import InputError

CHECKPOINT = re.compile(r"model_(\d+)\.pth$")
# A sweep branch's name: also the last part of its scores' object key, so nothing else is allowed.
BRANCH = re.compile(r"b\d{1,3}")


def branch_name(text: str) -> str:
    """argparse type of --branch: `b0`..`b999` (or empty: not a sweep branch)."""
    if text and not BRANCH.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a branch name (b0, b1, ..., as `--sweep` names them)")
    return text


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every checkpoint in a train output folder, oldest first."""
    found = [(int(m.group(1)), p) for p in folder.rglob("model_*.pth") if (m := CHECKPOINT.search(p.name))]
    if not found:
        raise InputError(f"{folder}: no checkpoints (model_<iteration>.pth); did the train step finish?")
    return sorted(found)


def checkpoint_groups(folder: Path, per_pod: int) -> list[dict[str, str]]:
    """The list Argo's `withParam` fans the evaluation out over (one pod per item): the
    checkpoints' file names, `per_pod` to a group, as `{{item.checkpoints}}` (comma-separated) and
    `{{item.group}}`, the group's name in its scores' object key: its first checkpoint's stem,
    the same whenever the run is retried."""
    paths = [path for _, path in list_checkpoints(folder)]
    return [{"group": paths[i].stem, "checkpoints": ",".join(p.name for p in paths[i:i + per_pod])}
            for i in range(0, len(paths), per_pod)]


def write_groups(folder: Path, per_pod: int, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(checkpoint_groups(folder, per_pod)))


def write_branch(folder: Path, branch: str, overrides: str, uri: str, out: Path) -> None:
    """A sweep branch as the item its evaluate pod gets: `{{item.branch}}`, `{{item.overrides}}` and
    `{{item.source}}` (the durable copy). Its pod scores every checkpoint there (`--only all`), so
    no pod's arguments list a branch's checkpoints."""
    list_checkpoints(folder)  # a branch without checkpoints fails here, not in its evaluate pod
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"branch": branch, "overrides": overrides, "source": uri}))


def write_scores(path: Path, scores: list[dict]) -> None:
    """A pod's scores object (`--output-scores`), whole or not at all: Argo's wait container uploads
    a pod's outputs even when its main container was killed (executor/postmain.go `PostMain`)."""
    from steps.jsonio import dumps
    from steps.storage import atomic_file

    with atomic_file(path, "w") as file:
        file.write(dumps(scores))


ALL = "all"  # --only all: every checkpoint of the train run (a sweep branch's pod)


def pick(checkpoints: list[tuple[int, Path]], only: str) -> list[tuple[int, Path]]:
    """The checkpoints named in `only` (comma-separated file names, as in a group), or all of them."""
    if only == ALL:
        return checkpoints
    wanted = [name for name in only.split(",") if name]
    by_name = {path.name: (iteration, path) for iteration, path in checkpoints}
    unknown = [name for name in wanted if name not in by_name]
    if unknown or not wanted:
        raise InputError(f"--only {only!r}: no checkpoint {unknown[0] if unknown else '(empty)'!r} in the train "
                         f"output (known: {', '.join(by_name)})")
    return [by_name[name] for name in wanted]
