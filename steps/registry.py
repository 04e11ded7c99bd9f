"""Model registry: immutable model folders plus one production pointer that moves atomically.

Layout under `promotion.registry` (a folder or gs://bucket/prefix):

    models/<model_id>/   model.pth, config.yaml, anything else, metrics.json, lineage.json
    production.json      {"model_id", "uri", "promoted_at", "reason", "metrics", "previous"}

`lineage.json` is written last, so a folder without it is an interrupted registration and is ignored.
`previous` is the pointer that was replaced: promote pushes onto that history, rollback pops it.
Pointer writes are conditional on the version read, so concurrent promoters never lose an update.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from steps import storage
from steps.errors import ConfigError, ExternalError, InputError
from steps.jsonio import dumps

REQUIRED_FILES = ("model.pth", "config.yaml")
# Keys every lineage.json has (None when unknown, e.g. no image tags on a laptop run).
LINEAGE_KEYS = ("dataset_version", "annotation_version", "dataset_commit", "run_id", "image_tags")
# How many replaced pointers production.json keeps for rollback.
HISTORY_DEPTH = 20


@dataclass(frozen=True)
class RegisteredModel:
    model_id: str
    name: str
    uri: str
    created_at: str
    metrics: dict[str, Any]
    lineage: dict[str, Any]


def register(registry_uri: str, model_dir: Path, name: str, metrics: dict, lineage: dict) -> RegisteredModel:
    """Copy `model_dir` into the registry under a new id, with its metrics and lineage."""
    model_dir = Path(model_dir)
    missing = [f for f in REQUIRED_FILES if not (model_dir / f).is_file()]
    if missing:
        raise InputError(f"{model_dir}: missing {', '.join(missing)}; a registered model needs {REQUIRED_FILES}")
    now = datetime.now(UTC)
    # Milliseconds in the id keep "sorted by id" equal to "oldest first" for quick successions.
    model_id = f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z-{secrets.token_hex(4)}"
    uri = storage.join(registry_uri, "models", model_id)
    record = {
        "model_id": model_id,
        "name": name,
        "created_at": now.isoformat(timespec="milliseconds"),
        "weights_sha256": _sha256(model_dir / "model.pth"),
        **{key: lineage.get(key) for key in LINEAGE_KEYS},
        **lineage,
    }
    storage.upload_dir(model_dir, uri)
    storage.write_text(storage.join(uri, "metrics.json"), dumps(metrics, indent=2))
    storage.write_text(storage.join(uri, "lineage.json"), dumps(record, indent=2))  # last: marks it complete
    return _model(uri, metrics, record)


def list_models(registry_uri: str) -> list[RegisteredModel]:
    """Every completely registered model, oldest first."""
    models = (_load(registry_uri, model_id) for model_id in storage.list_dirs(storage.join(registry_uri, "models")))
    return [m for m in models if m is not None]


def show(registry_uri: str, model_id: str) -> RegisteredModel:
    model = _load(registry_uri, model_id)
    if model is None:
        raise InputError(f"{registry_uri}: no model {model_id!r}; `trainyard models list --registry {registry_uri}` shows the registered ids")
    return model


def fetch_model(registry_uri: str, model_id: str, dest: Path) -> Path:
    """Download a model (an id, or "production") into `dest`; return `dest`."""
    if model_id == "production":
        pointer = production(registry_uri)
        if pointer is None:
            raise InputError(f"{registry_uri}: no production model yet; promote one or name a model id")
        model_id = pointer["model_id"]
    model = show(registry_uri, model_id)
    return storage.download_dir(model.uri, Path(dest))


def production(registry_uri: str) -> dict[str, Any] | None:
    """The production pointer, or None before the first promotion."""
    return _read_pointer(registry_uri)[0]


def promote(registry_uri: str, model_id: str, reason: str, *, expected_champion: str | None = None) -> dict[str, Any]:
    """Make `model_id` production; return the new pointer.

    expected_champion: the production model id the promotion decision was made against ("" for
    none); if production moved since, ConcurrentUpdateError instead of overriding it unseen.
    Promoting the current production model again is a no-op, so a retried step is harmless.
    """
    model = show(registry_uri, model_id)
    current, version = _read_pointer(registry_uri)
    if current is not None and current["model_id"] == model_id:
        return current
    current_id = current["model_id"] if current else ""
    if expected_champion is not None and expected_champion != current_id:
        raise storage.ConcurrentUpdateError(
            f"{_pointer_uri(registry_uri)}: production is now {current_id or 'empty'},"
            f" not {expected_champion or 'empty'}"
            f" as when {model_id} was compared; re-run the evaluation against the new champion"
        )
    pointer = {
        "model_id": model.model_id,
        "uri": model.uri,
        "promoted_at": _now(),
        "reason": reason,
        "metrics": model.metrics,
        "previous": _trim(current, HISTORY_DEPTH),
    }
    storage.write_text_if_unchanged(_pointer_uri(registry_uri), dumps(pointer, indent=2), version)
    return pointer


def rollback(registry_uri: str) -> dict[str, Any]:
    """Put the previous production model back; return the new pointer."""
    current, version = _read_pointer(registry_uri)
    if not current or not current.get("previous"):
        raise InputError(f"{_pointer_uri(registry_uri)}: no previous production model to roll back to")
    pointer = {**current["previous"], "promoted_at": _now(), "reason": f"rollback from {current['model_id']}"}
    storage.write_text_if_unchanged(_pointer_uri(registry_uri), dumps(pointer, indent=2), version)
    return pointer


def decide_promotion(
    challenger_score: float, champion_score: float | None, margin: float, mode: Literal["max", "min"]
) -> tuple[bool, str]:
    """Champion/challenger: promote the first model, else only one that beats production by more than margin."""
    if mode not in ("max", "min"):
        raise ConfigError(f"evaluate.select_mode: expected 'max' or 'min', got {mode!r}")
    if champion_score is None:
        return True, f"first model: no production model yet (score {challenger_score:.4f})"
    gain = challenger_score - champion_score if mode == "max" else champion_score - challenger_score
    verdict = f"challenger {challenger_score:.4f} vs champion {champion_score:.4f} ({mode}): gain {gain:.4f}"
    if math.isnan(gain):
        return False, f"{verdict}; not a number, keeping the champion"
    if gain > margin:
        return True, f"{verdict} > margin {margin}"
    return False, f"{verdict} <= margin {margin}; keeping the champion"


def _load(registry_uri: str, model_id: str) -> RegisteredModel | None:
    uri = storage.join(registry_uri, "models", model_id)
    record = storage.read_text(storage.join(uri, "lineage.json"))
    if record is None:
        return None
    metrics = storage.read_text(storage.join(uri, "metrics.json")) or "{}"
    return _model(uri, _parse(metrics, uri), _parse(record, uri))


def _model(uri: str, metrics: dict, record: dict) -> RegisteredModel:
    return RegisteredModel(record["model_id"], record["name"], uri, record["created_at"], metrics, record)


def _read_pointer(registry_uri: str) -> tuple[dict[str, Any] | None, str | None]:
    text, version = storage.read_versioned(_pointer_uri(registry_uri))
    return (None if text is None else _parse(text, _pointer_uri(registry_uri))), version


def _pointer_uri(registry_uri: str) -> str:
    return storage.join(registry_uri, "production.json")


def _parse(text: str, uri: str) -> dict[str, Any]:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ExternalError(f"{uri}: registry file is not valid JSON; restore it or re-register the model") from None


def _trim(pointer: dict[str, Any] | None, depth: int) -> dict[str, Any] | None:
    # Keep the rollback history bounded: production.json stays small however often we promote.
    if pointer is None or depth <= 0:
        return None
    return {**pointer, "previous": _trim(pointer.get("previous"), depth - 1)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
