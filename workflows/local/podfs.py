"""A pod's file system on this machine.

In a pod a step sees its image's files, its volumes and its input artifacts, and writes into a file
system of its own. Locally each pod gets a folder, `<task>/fs`, and every container path the step
names (in its command line, an `sh -c` string, a script, its environment, its working directory,
its artifacts and output parameters) is rewritten to a path there, except:

- paths of this machine shared with the steps on purpose: the run's folder and the runs folder
  around it, the project the steps are imported from, and the paths given as workflow parameters
  (`-p dataset-repo=...`): they stay as they are;
- volume mounts, input artifacts and the script's source: where the run keeps them;
- the image's programs and system files (`/bin`, `/usr`, `/lib...`, `/etc`, `/opt`, `/dev`) that
  exist here: this machine's stand in for the image's and are read as they are.

`/proc` and `/sys` show a pod its own kernel view (its mounts, its processes), which a local
process does not have: a step naming them is refused. So is a declared output on the image's own
files (`path: /etc`): there is no image here to take it from.

A path is recognised where it stands whole: `/` then a letter, `_`, `.` or `@`, not preceded by a
word character, `.`, `~`, `/`, `:`, `$` or a closing bracket (so `a/b`, `~/x`, `http://h/p`,
`$DIR/x` and `${DIR}/x` are left alone). Paths built at run time (`$HOME/x`, `$(pwd)`) cannot be
seen: they are the host's.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from workflows.local.templating import NotSupported

SYSTEM = frozenset({"bin", "sbin", "usr", "lib", "lib32", "lib64", "libx32", "etc", "opt", "dev"})
KERNEL = frozenset({"proc", "sys"})
# What every image has, made empty in each pod's folder (Docker creates a WORKDIR too).
SKELETON = ("tmp", "var/tmp", "var/run/argo", "mnt", "root", "home", "srv", "media", "run")
PATH = re.compile(r"(?<![\w.~/:$@%})\]\\-])/(?=[A-Za-z_.@])[\w.@%+~-]*(?:/[\w.@%+~-]*)*")
PROGRESS_FILE = "/var/run/argo/progress"  # common.ArgoProgressPath, given as ARGO_PROGRESS_FILE


def _normal(path: str) -> str:
    return posixpath.normpath(path) if path.startswith("/") else path


def shared_paths(candidates: Iterable[str | Path]) -> tuple[str, ...]:
    """The machine's paths a step sees as they are. A root, a top-level folder (`/tmp`, `/home`)
    or a system folder is never shared whole: that would give the steps this machine's `/tmp`."""
    shared = []
    for candidate in candidates:
        text = _normal(str(candidate))
        parts = text.strip("/").split("/")
        if text.startswith("/") and len(parts) >= 2 and parts[0] not in KERNEL \
                and not (parts[0] in SYSTEM and len(parts) < 3) and text not in ("/var/tmp", "/var/run"):
            shared.append(text)
    return tuple(dict.fromkeys(shared))


def paths_in(values: Iterable[str]) -> list[str]:
    """The absolute paths inside some values (given workflow parameters, `a=/x b=/y` included)."""
    return [m.group(0) for value in values for m in PATH.finditer(str(value))]


@dataclass
class PodFS:
    root: Path  # the pod's own folder: container path /x is root/x
    shared: tuple[str, ...] = ()
    mounts: dict[str, Path] = field(default_factory=dict)  # container path -> local file or folder
    where: str = "pod"
    image: Path | None = None  # a folder standing in for the image's own files, when there is one

    def make(self) -> PodFS:
        for folder in SKELETON:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        return self

    def mount(self, container_path: str, local: Path) -> None:
        path = _normal(container_path)
        if path != "/":
            self.mounts[path] = local

    def local(self, path: str) -> str:
        """The local path of a container path (anything under it keeps its rest); a relative one is
        taken from the pod's root."""
        if not path.startswith("/"):
            path = "/" + path
        norm = _normal(path)
        tail = "/" if path.endswith("/") and norm != "/" else ""
        if self.is_shared(norm):
            return path
        for mounted in sorted(self.mounts, key=len, reverse=True):
            if norm == mounted or norm.startswith(mounted + "/"):
                return str(self.mounts[mounted]) + norm[len(mounted):] + tail
        top = norm.split("/")[1] if norm != "/" else ""
        if top in KERNEL:
            raise NotSupported(f"{self.where}: {path}: /{top} shows a pod its own kernel view (its mounts, its "
                               "processes), which a local process does not have: not supported by the local runner")
        if self.image is not None and norm != "/" and os.path.lexists(self.image / norm.lstrip("/")):
            return str(self.image) + norm + tail
        if top in SYSTEM and os.path.lexists(norm):
            return path
        return f"{self.root}/" if norm == "/" else f"{self.root}{norm}{tail}"

    def is_shared(self, path: str) -> bool:
        norm = _normal(path)
        return any(norm == s or norm.startswith(s + "/") for s in self.shared)

    def place(self, path: str) -> Path:
        """Where something the pod is given lives (an input artifact, its working directory): at its
        path in the pod's own file system, mounted there when that path would be this machine's."""
        local = self.local(path)
        if local == path or (self.image is not None and Path(local).is_relative_to(self.image)):
            # a shared, system or image path: the pod gets a folder of its own there instead
            local = f"{self.root}{_normal(path)}"
            self.mount(path, Path(local))
        return Path(local)

    def rewrite(self, text: str) -> str:
        """Every container path in `text` (a command line, an `sh -c` string, a script) rewritten."""
        return PATH.sub(lambda m: self.local(m.group(0)), text) if text else text

    def output(self, path: str, what: str) -> Path:
        """Where a declared output (artifact, parameter file) is read from after the step."""
        local = self.local(path)
        if (local == path and not self.is_shared(path)) or (self.image is not None and Path(local).is_relative_to(self.image)):
            raise NotSupported(f"{self.where}: {what}: path {path} is part of the image's own file system, which the "
                               "local runner does not have: write the output in a folder of its own (/tmp/...)")
        return Path(local)
