"""A durable copy of a training run's checkpoints (`train.checkpoint_uri`: a folder or gs://).

A preempted pod loses its local disk, and Argo's retry starts a fresh pod. So every checkpoint is
uploaded as soon as it is written (with metrics.json and the TensorBoard events, so the retried
run's logs read as one run), and a run starts by downloading what its output folder lacks.

Each object appears whole or not at all: a GCS single-object upload is atomic, and into a folder
a file is copied to a hidden temp name and renamed into place.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from steps import storage
from steps.models.checkpoints import is_checkpoint_name, list_checkpoints
from steps.models.preemption import stopping
from steps.models.training_log import say

CHECKPOINTS = "checkpoints"
# Written beside the checkpoints and copied with them; restored only when missing locally.
SIDECARS = ("metrics.json", "tensorboard")


class CheckpointMirror:
    def __init__(self, uri: str, out_dir: Path) -> None:
        self.uri = uri.rstrip("/") if storage.is_gcs(uri) else uri
        self.out_dir = Path(out_dir)

    @classmethod
    def from_uri(cls, uri: str, out_dir: Path) -> CheckpointMirror | None:
        return cls(uri, out_dir) if uri else None

    def remote_files(self) -> list[str]:
        """Paths (relative, with /) of what is stored at the URI."""
        return _list_files(self.uri)

    def restore(self) -> list[str]:
        """Download the checkpoints the output folder lacks (and the logs, if it has none)."""
        remote = self.remote_files()
        local_names = {path.name for _, path in list_checkpoints(self.out_dir / CHECKPOINTS)}
        wanted = [name for name in remote if _is_checkpoint(name) and Path(name).name not in local_names]
        wanted += [name for name in remote if name.split("/")[0] in SIDECARS and not (self.out_dir / name).exists()]
        targets = [(name, storage.inside(self.out_dir, name, f"{self.uri}: file {name!r}")) for name in wanted]
        for name, target in targets:
            _download_file(storage.join(self.uri, name), target)
        if wanted:
            say(f"restored {len(wanted)} file(s) from {self.uri}: {', '.join(sorted(wanted)[:5])}{' ...' if len(wanted) > 5 else ''}")
        return wanted

    def upload(self, checkpoint: Path) -> None:
        """Upload one checkpoint, then the current logs; nothing once SIGTERM arrived (the grace
        period is too short for an upload: the last mirrored checkpoint is what a retry resumes)."""
        if stopping():
            say(f"SIGTERM: {checkpoint.name} kept locally, not uploaded; a retry resumes from the last mirrored checkpoint")
            return
        _upload_file(checkpoint, storage.join(self.uri, CHECKPOINTS, checkpoint.name))
        for sidecar in SIDECARS:
            path = self.out_dir / sidecar
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
            for file in files:
                _upload_file(file, storage.join(self.uri, file.relative_to(self.out_dir).as_posix()))
        say(f"uploaded {checkpoint.name} to {self.uri}")


def _is_checkpoint(name: str) -> bool:
    folder, _, file = name.partition("/")
    return folder == CHECKPOINTS and is_checkpoint_name(file)


# google-cloud-storage calls go through steps.storage's client and error translation, so failures
# read like every other gs:// error in the pipeline.


def _list_files(uri: str) -> list[str]:
    """Paths (relative, with /) of the files under `uri`; [] when there is nothing there yet."""
    if not storage.is_gcs(uri):
        root = Path(uri)
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) if root.is_dir() else []
    bucket, key = storage._bucket(uri)
    prefix = f"{key}/" if key else ""
    with storage._gcs_errors(uri):
        blobs = bucket.client.list_blobs(bucket, prefix=prefix, retry=storage._retry())
        return sorted(blob.name[len(prefix):] for blob in blobs if not blob.name.endswith("/"))


def _upload_file(local: Path, uri: str) -> None:
    if not storage.is_gcs(uri):
        _copy_atomically(local, Path(uri))
        return
    bucket, key = storage._bucket(uri)
    with storage._gcs_errors(uri):
        bucket.blob(key).upload_from_filename(str(local), retry=storage._retry())


def _download_file(uri: str, local: Path) -> None:
    if not storage.is_gcs(uri):
        _copy_atomically(Path(uri), local)
        return
    bucket, key = storage._bucket(uri)
    local.parent.mkdir(parents=True, exist_ok=True)
    tmp = local.with_name(f".{local.name}.download-{os.getpid()}")
    try:
        with storage._gcs_errors(uri):
            bucket.blob(key).download_to_filename(str(tmp), retry=storage._retry())
        os.replace(tmp, local)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_atomically(source: Path, target: Path) -> None:
    if is_checkpoint_name(source.name) and _linked(source, target):
        return
    with storage._local_errors(str(target)), open(source, "rb") as src, storage.atomic_file(target) as dst:
        shutil.copyfileobj(src, dst)


def _linked(source: Path, target: Path) -> bool:
    """A hard link in place of a copy, on the same file system. A checkpoint is never rewritten
    once saved (it is replaced by a rename), so a link is as safe as a copy and costs no disk:
    a local sweep's durable folder no longer doubles its train folders. False: copy instead."""
    tmp = target.with_name(f".{target.name}.link-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, tmp)
        os.replace(tmp, target)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
