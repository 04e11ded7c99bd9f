"""Output artifacts in a bucket (`trainyard run --local --artifacts gs://BUCKET/PREFIX`) under the
keys Argo's executor uses, so that tests against the GCS emulator exercise the cluster's keys.

executor/executor.go saveArtifactFromFile: key = <archive location key>/<file name>, where the
location key is the artifact repository's keyFormat (substituted when the pod is created) and, for
an unarchived artifact (`archive: {none: {}}`), the file name is the base name of its path
(stageArchiveFile). artifacts/gcs/gcs.go uploadObjects stores a folder as one object per file
under `<key>/`. An artifact with its own `gcs.key` keeps that key. A consumer downloads its input
from there, as Argo's init container does.

A key-only input artifact (a template input with its own `gcs.key` and no `from`: Argo's
executor `newDriverArt` relocates it into the default artifact repository's bucket) reads every
object whose name starts with the key (artifacts/gcs/gcs.go `downloadObjects`, `listByPrefix`): a
prefix becomes a folder. Without `--artifacts` the keyed outputs of the run are kept in
`<run>/objects/<key>`, read the same way.
"""

from __future__ import annotations

import posixpath
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from steps import storage
from workflows.local.templating import TemplateError, substitute

DEFAULT_KEY_FORMAT = "{{workflow.name}}/{{pod.name}}"  # wfv1.DefaultArchivePattern
CHART_VALUES = Path(__file__).resolve().parents[2] / "charts" / "trainyard" / "values.yaml"


def chart_key_format(values_file: Path = CHART_VALUES) -> str:
    """The keyFormat the chart gives the artifact repository (values `artifacts.keyFormat`)."""
    try:
        values = yaml.safe_load(values_file.read_text()) or {}
    except OSError:
        return DEFAULT_KEY_FORMAT
    return str((values.get("artifacts") or {}).get("keyFormat") or DEFAULT_KEY_FORMAT)


@dataclass(frozen=True)
class BucketArtifacts:
    root: str  # gs://BUCKET[/PREFIX]: where the artifact repository's bucket starts
    key_format: str = DEFAULT_KEY_FORMAT

    def __post_init__(self) -> None:
        if not storage.is_gcs(self.root):
            raise TemplateError(f"--artifacts {self.root}: expected gs://BUCKET or gs://BUCKET/PREFIX")

    def key(self, artifact: dict, values: dict[str, str | None], where: str) -> str:
        if "none" not in (artifact.get("archive") or {}):
            raise TemplateError(f"{where}: output artifact {artifact['name']!r}: --artifacts stores only unarchived "
                                "artifacts (archive: {none: {}}) locally")
        explicit = (artifact.get("gcs") or {}).get("key")
        if explicit:
            return substitute(str(explicit), values, f"{where}.outputs.artifacts.{artifact['name']}.gcs.key")
        location = substitute(self.key_format, values, f"{where}: artifact repository keyFormat")
        return posixpath.join(location, posixpath.basename(artifact["path"].rstrip("/")))

    def uri(self, key: str) -> str:
        return storage.join(self.root, posixpath.normpath(key))

    def save(self, folder: Path, key: str) -> None:
        if any(p.is_file() for p in folder.rglob("*")):
            storage.upload_dir(folder, self.uri(key))

    def load(self, key: str, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        if storage.exists(self.uri(key)):  # an empty folder was stored as nothing
            storage.download_dir(self.uri(key), folder)
        return folder

    def load_prefix(self, key: str, target: Path) -> bool:
        """A key-only input: every object under the key, as gcs.go downloadObjects places them."""
        return storage.download_prefix(self.uri(key), target)


@dataclass(frozen=True)
class LocalObjects:
    """Keyed outputs of a run without `--artifacts`: `<root>/<key>/...`, one file per object."""

    root: Path

    def save(self, folder: Path, key: str) -> None:
        if any(p.is_file() for p in folder.rglob("*")):
            shutil.copytree(folder, storage.inside(self.root, posixpath.normpath(key), f"key {key!r}"),
                            dirs_exist_ok=True)

    def load_prefix(self, key: str, target: Path) -> bool:
        """gcs.go listByPrefix + downloadObject over the local objects: names starting with the key
        (a string prefix, as in GCS), each placed at `target` + the rest of its name."""
        key = posixpath.normpath(key)
        names = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()) \
            if self.root.is_dir() else []
        found = [name for name in names if name.startswith(key)]
        if key in found:  # the key is an object: that file alone
            found = [key]
        for name in found:
            rest = name[len(key):].lstrip("/")
            destination = storage.inside(target, rest, f"object {name!r}") if rest else target
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.root / name, destination)
        return bool(found)
