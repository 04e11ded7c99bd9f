"""Input artifacts as Argo's init container loads them into a pod: a copy of what the producer made
(the pod may change it; the producer's stays as it was), at the input's path in the pod's own file
system, so the folder around it and the outputs under it are the pod's too.

An artifact argument's `subPath` (controller/scope.go resolveArtifact, `AppendToKey`) takes a path
inside the producer's artifact; one that does not exist fails the init container (Error), one that
would lead outside the artifact is refused the same way.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from workflows.local.templating import NodeError


class LoadError(NodeError):
    """An input the init container cannot load: the node is Error (operator.go inferFailedReason)."""


def sub_path(source: Path, sub: str, name: str) -> Path:
    sub = sub.strip("/")
    if not sub:
        return source
    target = source / sub
    if ".." in sub.split("/") or not target.resolve().is_relative_to(source.resolve()):
        raise LoadError(f"init: Error (exit code 1): artifact {name}: subPath {sub!r} leads outside the artifact")
    return target


def load(name: str, source: Path, target: Path, optional: bool) -> None:
    """Place a copy of `source` (a file or a folder; links are copied as links) at `target`."""
    if not os.path.lexists(source):
        if optional:
            return
        raise LoadError(f"init: Error (exit code 1): artifact {name} failed to load: {source.name}: no such file "
                        "or folder in the artifact")
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target):
        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target, follow_symlinks=False)
