"""A train run's checkpoints, and how the fan-out evaluation splits them into pods."""

from __future__ import annotations

import json
import re
from pathlib import Path

from steps.errors import InputError

CHECKPOINT = re.compile(r"model_(\d+)\.pth$")


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every checkpoint in a train output folder, oldest first."""
    found = [(int(m.group(1)), p) for p in folder.rglob("model_*.pth") if (m := CHECKPOINT.search(p.name))]
    if not found:
        raise InputError(f"{folder}: no checkpoints (model_<iteration>.pth); did the train step finish?")
    return sorted(found)


def checkpoint_groups(folder: Path, per_pod: int) -> list[str]:
    """The checkpoints' file names, `per_pod` to a group, each group one comma-separated string:
    the list Argo's `withParam` fans the evaluation out over (one pod per item)."""
    names = [path.name for _, path in list_checkpoints(folder)]
    return [",".join(names[i:i + per_pod]) for i in range(0, len(names), per_pod)]


def write_groups(folder: Path, per_pod: int, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(checkpoint_groups(folder, per_pod)))


def write_branch(folder: Path, branch: str, overrides: str, uri: str, out: Path) -> None:
    """A sweep branch as the item its evaluate pod gets: `{{item.branch}}`, `{{item.overrides}}`,
    `{{item.checkpoints}}` (all of them, one pod per branch) and `{{item.source}}` (durable copy)."""
    names = checkpoint_groups(folder, 10**9)[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"branch": branch, "overrides": overrides, "checkpoints": names, "source": uri}))


def pick(checkpoints: list[tuple[int, Path]], only: str) -> list[tuple[int, Path]]:
    """The checkpoints named in `only` (comma-separated file names, as in a group)."""
    wanted = [name for name in only.split(",") if name]
    by_name = {path.name: (iteration, path) for iteration, path in checkpoints}
    unknown = [name for name in wanted if name not in by_name]
    if unknown or not wanted:
        raise InputError(f"--only {only!r}: no checkpoint {unknown[0] if unknown else '(empty)'!r} in the train "
                         f"output (known: {', '.join(by_name)})")
    return [by_name[name] for name in wanted]
