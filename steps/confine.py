"""Paths that must stay inside a folder, whatever the names and symlinks in between say.

Annotation files and dataset repos come from users: an `imagePath` of `../../etc/passwd`, an
absolute one, or a symlink committed into the repo must not make a step read or replace a file
outside the folder it was given. Checks use resolved paths, so `a/../b` inside the folder is fine
and a symlink pointing out of it is not.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath


class OutsideFolder(ValueError):
    """A path leaves its folder; the message says how, without the folder's name."""


class IsNotRegular(OSError):
    """A path names a folder, FIFO, device or socket where a file was expected."""


def is_absolute(name: str) -> bool:
    """Absolute on any system: `/x`, `C:\\x`, `C:x`, `\\\\server\\share`."""
    return PurePosixPath(name).is_absolute() or bool(PureWindowsPath(name).drive) or name.startswith("\\")


def inside(root: Path, path: Path, folder: str = "folder") -> Path:
    """`path` resolved (symlinks followed); OutsideFolder when that is not within resolved `root`.

    `folder` names `root` in the message, e.g. "leads out of the annotation folder".
    """
    # os.path on strings, as Path.resolve() does inside: a conversion calls this twice a file.
    base, target = os.path.realpath(root), os.path.realpath(path)
    if target != base and not target.startswith(os.path.join(base, "")):
        link = next((p for p in _between(Path(root), Path(path)) if p.is_symlink()), None)
        how = f" through the symlink {link.name} (to {os.readlink(link)})" if link else ""
        raise OutsideFolder(f"leads out of the {folder}{how}")
    return Path(target)


def regular_file(path: Path) -> Path:
    """`path` if it is a regular file (after symlinks); OSError otherwise, never blocking on a FIFO."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise IsNotRegular(f"is {kind}")
    return path


def _between(root: Path, path: Path) -> list[Path]:
    """`path` and its parents down to (not including) `root`, when `path` is spelled under `root`."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return []
    return [root.joinpath(*parts[: i + 1]) for i in range(len(parts))]


def relative_folder(value: str) -> str:
    """A folder name relative to a checkout: no absolute path, no `..`, not hidden, no option look."""
    name = value.replace("\\", "/")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    problem = (
        "is empty" if not parts
        else "is absolute" if is_absolute(value)
        else "contains '..'" if ".." in parts
        else "starts with '-'" if parts[0].startswith("-")
        else "is a hidden folder (.git, .dvc, ...)" if parts[0].startswith(".")
        else ""
    )
    if problem:
        raise ValueError(f"{value!r} {problem}; give a folder inside the dataset repo, e.g. 'dataset'")
    return "/".join(parts)
