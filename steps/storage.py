"""One small file API over a local folder or a `gs://bucket/prefix` URI.

Steps pass locations around as strings; only this module knows which backend is behind one.
google-cloud-storage is imported on first gs:// use, so images without it still work locally.
With STORAGE_EMULATOR_HOST set, gs:// talks to that emulator without credentials.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from steps.errors import ConfigError, ExternalError, InputError

# Seconds of retries (with backoff) before an unreachable or failing GCS becomes an error.
GCS_RETRY_SECONDS = 60.0


class ConcurrentUpdateError(ExternalError):
    """The object changed between our read and our conditional write: someone else won."""


def is_gcs(uri: str) -> bool:
    return str(uri).startswith("gs://")


def check_location(uri: str) -> str:
    """`uri` if it is a folder or gs://BUCKET[/PREFIX]; a ConfigError for `gs://` without a bucket,
    which would otherwise become a local folder named `gs:`."""
    if str(uri).startswith("gs:") and not str(uri)[len("gs://") :].split("/")[0]:
        raise ConfigError(f"{uri!r}: expected gs://BUCKET or gs://BUCKET/PREFIX (no bucket named), or a local folder")
    return uri


def join(uri: str, *parts: str) -> str:
    check_location(uri)
    if is_gcs(uri):
        return "/".join([uri.rstrip("/"), *(part.strip("/") for part in parts if part)])
    return str(Path(uri, *parts))


def inside(root: Path, relative: str, what: str) -> Path:
    """`root / relative`, refused (InputError) when it would land outside `root`.

    Bucket object names are not ours: `a/../../x`, `/etc/x` or `a\\..\\x` must not write outside
    the folder a download goes to, and neither may a symlink already inside it.
    """
    parts = relative.replace("\\", "/").split("/")
    if not relative or relative.startswith(("/", "\\")) or "\0" in relative or any(p in ("..", "") for p in parts):
        raise InputError(f"{what} is not a plain relative path inside {root}; refusing to download it")
    target = Path(root) / relative
    resolved_root = Path(root).resolve()
    if not target.resolve().is_relative_to(resolved_root):
        raise InputError(f"{what} resolves outside {root} (through a symlink); refusing to download it")
    return target


def upload_dir(local: Path, uri: str) -> None:
    """Copy every file under `local` to `uri`, keeping relative paths."""
    local = Path(local)
    if not local.is_dir():
        raise InputError(f"{local}: folder not found; nothing to upload to {uri}")
    if not is_gcs(uri):
        with _local_errors(uri):
            shutil.copytree(local, uri, dirs_exist_ok=True)
        return
    bucket, key = _bucket(uri)
    with _gcs_errors(uri):
        for file in sorted(p for p in local.rglob("*") if p.is_file()):
            blob = bucket.blob(_child(key, file.relative_to(local).as_posix()))
            blob.upload_from_filename(str(file), retry=_retry())


def download_dir(uri: str, local: Path) -> Path:
    """Copy every file under `uri` into `local` (created); return `local`."""
    local = Path(local)
    if not is_gcs(uri):
        if not Path(uri).is_dir():
            raise InputError(f"{uri}: folder not found; check the URI or register the model first")
        with _local_errors(str(local)):
            shutil.copytree(uri, local, dirs_exist_ok=True)
        return local
    bucket, key = _bucket(uri)
    prefix = _child(key, "")
    with _gcs_errors(uri):
        blobs = [b for b in bucket.client.list_blobs(bucket, prefix=prefix, retry=_retry()) if not b.name.endswith("/")]
        if not blobs:
            raise InputError(f"{uri}: no files there; check the URI or register the model first")
        targets = [(blob, inside(local, blob.name[len(prefix) :], f"{uri}: object {blob.name!r}")) for blob in blobs]
        for blob, target in targets:  # every name is checked before the first byte is written
            target.parent.mkdir(parents=True, exist_ok=True)
            blob.download_to_filename(str(target), retry=_retry())
    return local


def download_prefix(uri: str, local: Path) -> bool:
    """Argo's GCS artifact driver reading a key (workflow/artifacts/gcs/gcs.go `downloadObjects`):
    every object whose name starts with the key, as a plain string prefix, lands at `local` + the
    rest of its name; an object named exactly the key is that one file. False when there is none."""
    bucket, key = _bucket(uri)
    with _gcs_errors(uri):
        names = [b.name for b in bucket.client.list_blobs(bucket, prefix=key, retry=_retry()) if not b.name.endswith("/")]
        if key in names:
            names = [key]
        targets = [(name, inside(local, name[len(key):].lstrip("/"), f"{uri}: object {name!r}")
                    if name != key else Path(local)) for name in names]
        for name, target in targets:  # every name is checked before the first byte is written
            target.parent.mkdir(parents=True, exist_ok=True)
            bucket.blob(name).download_to_filename(str(target), retry=_retry())
    return bool(names)


def read_text(uri: str) -> str | None:
    """The file's text, or None when it does not exist."""
    return read_versioned(uri)[0]


def read_versioned(uri: str) -> tuple[str | None, str | None]:
    """(text, version) or (None, None) when absent; pass the version to `write_text_if_unchanged`.

    The version is the GCS object generation, or a content hash for a local file.
    """
    if not is_gcs(uri):
        try:
            data = Path(uri).read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as exc:  # a folder where the file should be, a file where a folder should be
            raise InputError(f"{uri}: cannot read ({exc.strerror or exc}); check that path") from None
        return _text(data, uri), hashlib.sha256(data).hexdigest()
    bucket, key = _bucket(uri)
    from google.api_core.exceptions import NotFound

    with _gcs_errors(uri):
        blob = bucket.blob(key)
        try:
            data = blob.download_as_bytes(retry=_retry())
        except NotFound:
            _require_bucket(bucket)  # a missing bucket is an error, a missing object is not
            return None, None
    return _text(data, uri), str(blob.generation)


def _text(data: bytes, uri: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{uri}: not UTF-8 text (byte {exc.start}); the file is corrupt, restore it") from None


def write_text(uri: str, text: str) -> None:
    """Write the whole file at once: readers see the old or the new text, never a mix."""
    if not is_gcs(uri):
        _atomic_write(Path(uri), text)
        return
    bucket, key = _bucket(uri)
    with _gcs_errors(uri):
        bucket.blob(key).upload_from_string(text, content_type=_content_type(uri), retry=_retry())


def write_text_if_unchanged(uri: str, text: str, version: str | None) -> None:
    """Write only if the file is still at `version` (None: must not exist); else ConcurrentUpdateError.

    GCS checks the generation server-side; locally a lock on the folder serialises writers.
    """
    if is_gcs(uri):
        bucket, key = _bucket(uri)
        with _gcs_errors(uri):
            blob = bucket.blob(key)
            blob.upload_from_string(
                text, content_type=_content_type(uri), if_generation_match=int(version or 0), retry=_retry()
            )
        return
    path = Path(uri)
    with _local_errors(uri):
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        if read_versioned(uri)[1] != version:
            raise _stale(uri)
        _atomic_write(path, text)
    finally:
        os.close(folder)  # also releases the lock


def exists(uri: str) -> bool:
    """True for an existing file or a folder with something in it."""
    if not is_gcs(uri):
        return Path(uri).exists()
    bucket, key = _bucket(uri)
    with _gcs_errors(uri):
        if key and bucket.blob(key).exists(retry=_retry()):
            return True
        listing = bucket.client.list_blobs(bucket, prefix=_child(key, ""), max_results=1, retry=_retry())
        return next(iter(listing), None) is not None


def list_dirs(uri: str) -> list[str]:
    """Names of the sub-folders directly under `uri`, sorted; [] when there are none."""
    if not is_gcs(uri):
        folder = Path(uri)
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    bucket, key = _bucket(uri)
    prefix = _child(key, "")
    with _gcs_errors(uri):
        listing = bucket.client.list_blobs(bucket, prefix=prefix, delimiter="/", retry=_retry())
        for _page in listing.pages:  # prefixes are filled in while paging
            pass
    return sorted(p[len(prefix) :].rstrip("/") for p in listing.prefixes)


# --- local helpers ---


def _atomic_write(path: Path, text: str) -> None:
    with _local_errors(str(path)), atomic_file(path, "w") as file:
        file.write(text)


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "wb") -> Iterator[Any]:
    """A file object whose content appears at `path` whole when the block ends, or not at all.

    Temp file in the same folder, fsync, os.replace: a crash, a full disk or an exception leaves
    the old file (or none), never half of the new. The temp file is created with mode 0666 less
    the umask, as `open` would (mkstemp's 0600 would make a shared registry unreadable to others).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def _local_errors(uri: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or exc
        raise ExternalError(f"{uri}: cannot write ({reason}); check the disk and its permissions") from None


def _stale(uri: str) -> ConcurrentUpdateError:
    return ConcurrentUpdateError(f"{uri}: changed by someone else since it was read; re-run to act on the new state")


# --- GCS helpers ---


@functools.cache
def _client(emulator: str | None) -> Any:
    from google.cloud import storage

    if emulator:
        return storage.Client.create_anonymous_client()
    return storage.Client()


def _bucket(uri: str) -> tuple[Any, str]:
    name, _, key = uri[len("gs://") :].partition("/")
    if not name:
        raise ConfigError(f"{uri}: expected gs://BUCKET/PATH")
    try:
        import google.cloud.storage  # noqa: F401
    except ImportError:
        raise ExternalError(f"{uri}: gs:// needs google-cloud-storage; pip install google-cloud-storage") from None
    with _gcs_errors(uri):
        client = _client(os.environ.get("STORAGE_EMULATOR_HOST") or None)
    return client.bucket(name), key.strip("/")


def _child(key: str, name: str) -> str:
    return f"{key}/{name}" if key else name


def _require_bucket(bucket: Any) -> None:
    # Listing needs only object permissions (bucket.exists() would need storage.buckets.get).
    next(iter(bucket.client.list_blobs(bucket, max_results=1, retry=_retry())), None)


def _retry() -> Any:
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(GCS_RETRY_SECONDS)


def _content_type(uri: str) -> str:
    return "application/json" if uri.endswith(".json") else "text/plain"


@contextlib.contextmanager
def _gcs_errors(uri: str) -> Iterator[None]:
    """Turn google-cloud-storage failures into one-line ExternalErrors that name the URI and the fix."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    bucket = uri[len("gs://") :].split("/")[0]
    try:
        yield
    except api.PreconditionFailed:
        raise _stale(uri) from None
    except api.NotFound:
        raise ExternalError(
            f"{uri}: bucket gs://{bucket} not found;"
            f" create it (gcloud storage buckets create gs://{bucket}) or fix the URI"
        ) from None
    except (api.Forbidden, api.Unauthorized):
        raise ExternalError(
            f"{uri}: permission denied; grant the workload's service account roles/storage.objectAdmin on gs://{bucket}"
        ) from None
    except auth.DefaultCredentialsError:
        raise ExternalError(
            f"{uri}: no Google credentials; run `gcloud auth application-default login` or use GKE Workload Identity"
        ) from None
    except (api.GoogleAPIError, auth.GoogleAuthError, OSError) as exc:
        endpoint = os.environ.get("STORAGE_EMULATOR_HOST") or "storage.googleapis.com"
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise ExternalError(
            f"{uri}: GCS at {endpoint} failed ({reason}); check the network or STORAGE_EMULATOR_HOST"
        ) from None
