"""Predictions stored beside an evaluate pod's scores, so that select rescores them instead of
running the model again.

Each checkpoint's predictions are one gzipped JSON file in the pod's scores object, named by the
checkpoint and the SHA-256 of its bytes, and the scores row names that file and its digest. The
scores are written last and whole (steps/evaluate/groups.py `write_scores`), so a file no row
names (left by a pod killed halfway, or by an earlier try of a retried pod) is never read, and a
named one is read only if its bytes are the ones the pod recorded. Select checks them as any
predictions (steps/metrics) and computes every score it decides with from them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

from steps.errors import InputError
from steps.storage import atomic_file

FOLDER = "predictions"
# predictions/<checkpoint stem>-<first 16 hex digits of the SHA-256 of the file>.json.gz
NAME = re.compile(r"predictions/model_\d+-[0-9a-f]{16}\.json\.gz")
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_BYTES = 1024 * 1024 * 1024  # unpacked; a 2,000-image split at 60 predictions each is ~40 MB


def store(scores_dir: Path, checkpoint: str, results: list[dict[str, Any]]) -> dict[str, str]:
    """Write one checkpoint's predictions into the scores object's folder; the row's entry."""
    data = gzip.compress(json.dumps(results, separators=(",", ":")).encode(), compresslevel=3, mtime=0)
    digest = hashlib.sha256(data).hexdigest()
    name = f"{FOLDER}/{Path(checkpoint).stem}-{digest[:16]}.json.gz"
    (scores_dir / FOLDER).mkdir(parents=True, exist_ok=True)
    with atomic_file(scores_dir / name) as file:
        file.write(data)
    return {"file": name, "sha256": digest}


def entry(value: Any, where: str) -> dict[str, str] | None:
    """A scores row's `predictions` entry, checked (None: the row has none)."""
    if value is None:
        return None
    if not (isinstance(value, dict) and isinstance(value.get("file"), str) and NAME.fullmatch(value["file"])
            and isinstance(value.get("sha256"), str) and SHA256.fullmatch(value["sha256"])
            and value["file"].rsplit("-", 1)[1].startswith(value["sha256"][:16])):
        raise InputError(f"{where}: predictions must be {{\"file\": \"predictions/model_<n>-<digest>.json.gz\", "
                         f"\"sha256\": <64 hex digits>}}, got {str(value)[:120]!r}")
    return {"file": value["file"], "sha256": value["sha256"]}


def load(scores_dir: Path, stored: dict[str, str]) -> tuple[list[dict[str, Any]] | None, str]:
    """The predictions a row names, or None and why they cannot be used (select then predicts)."""
    path = scores_dir / stored["file"]  # NAME allows no other folder
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"{stored['file']}: cannot be read ({exc.strerror or exc})"
    if hashlib.sha256(data).hexdigest() != stored["sha256"]:
        return None, f"{stored['file']}: its bytes are not the ones its evaluate pod recorded"
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as unpacked:
            text = unpacked.read(MAX_BYTES + 1)
        if len(text) > MAX_BYTES:
            return None, f"{stored['file']}: more than {MAX_BYTES} bytes unpacked"
        results = json.loads(text)
    except (OSError, EOFError, ValueError, RecursionError) as exc:
        return None, f"{stored['file']}: not gzipped JSON ({type(exc).__name__})"
    if not isinstance(results, list):
        return None, f"{stored['file']}: not a list of predictions"
    return results, ""

