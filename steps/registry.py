"""Model registry: immutable model folders plus one production pointer that moves atomically.

Layout under `promotion.registry` (a folder or gs://bucket/prefix):

    models/<model_id>/   model.pth, config.yaml, anything else, metrics.json, lineage.json;
                         predictions/<key>.json, its predictions on a validation split (store_predictions)
    production.json      {"model_id", "uri", "promoted_at", "reason", "metrics", "previous", "history"}

`lineage.json` is written last, so a folder without it is an interrupted registration and is ignored.
`previous` is the pointer that was replaced: promote pushes onto that stack, rollback pops it.
`history` lists every promotion and rollback (a rolled-back model stays in it).
Pointer writes are conditional on the version read, so concurrent promoters never lose an update.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steps import storage
from steps.errors import ConfigError, ExternalError, InputError, excerpt
from steps.jsonio import dumps

REQUIRED_FILES = ("model.pth", "config.yaml")
# Keys every lineage.json has (None when unknown, e.g. no image tags on a laptop run).
LINEAGE_KEYS = ("dataset_version", "annotation_version", "dataset_commit", "run_id", "image_tags")
# How many replaced pointers production.json keeps for rollback.
HISTORY_DEPTH = 20
# How many promotions and rollbacks production.json lists in its `history` (newest last).
HISTORY_EVENTS = 200
# A model id is one folder name (generated ids look like 20260101T120000000Z-1a2b3c4d).
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


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
    uri = storage.join(_root(registry_uri), "models", model_id)
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
    names = storage.list_dirs(storage.join(_root(registry_uri), "models"))
    models = (_load(registry_uri, name) for name in names if _MODEL_ID.fullmatch(name) and ".." not in name)
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


def stored_predictions(registry_uri: str, model_id: str, key: str) -> dict[str, list[dict[str, Any]]] | None:
    """{"categories", "results"}: a model's predictions kept under `key` (store_predictions), or
    None when there are none (or they are damaged: the caller predicts and stores them again).

    The predictions are checked by whoever scores them, as any predictions (steps/metrics)."""
    text = storage.read_text(_predictions_uri(registry_uri, model_id, key))
    if text is None:
        return None
    try:
        kept = json.loads(text)
    except (ValueError, RecursionError):
        return None
    ok = isinstance(kept, dict) and isinstance(kept.get("results"), list) and isinstance(kept.get("categories"), list) \
        and all(isinstance(c, dict) and isinstance(c.get("id"), int) and isinstance(c.get("name"), str) for c in kept["categories"])
    return kept if ok else None


def store_predictions(registry_uri: str, model_id: str, key: str, kept: dict[str, list[dict[str, Any]]]) -> None:
    """Keep a model's predictions on one validation split (and its categories) beside its files,
    under `key` (a hex digest of what they depend on): the next run that scores the same model
    on the same split reads them instead of running the model (models/<id>/predictions/<key>.json)."""
    storage.write_text(_predictions_uri(registry_uri, model_id, key), json.dumps(kept, separators=(",", ":")))


def _predictions_uri(registry_uri: str, model_id: str, key: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", key):
        raise ValueError(f"predictions key must be 64 hex digits, got {key!r}")
    return storage.join(_model_uri(registry_uri, model_id, "model id"), "predictions", f"{key}.json")


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
    now = _now()
    pointer = {
        "model_id": model.model_id,
        "uri": model.uri,
        "promoted_at": now,
        "reason": reason,
        "metrics": model.metrics,
        "previous": _trim(_without_history(current), HISTORY_DEPTH),
        "history": _history(current, {"action": "promote", "model_id": model.model_id, "at": now, "reason": reason}),
    }
    storage.write_text_if_unchanged(_pointer_uri(registry_uri), dumps(pointer, indent=2), version)
    return pointer


def rollback(registry_uri: str) -> dict[str, Any]:
    """Put the previous production model back; return the new pointer."""
    current, version = _read_pointer(registry_uri)
    if not current or not current.get("previous"):
        raise InputError(f"{_pointer_uri(registry_uri)}: no previous production model to roll back to")
    now, reason = _now(), f"rollback from {current['model_id']}"
    # The rolled-back model leaves the rollback stack but not the history: what was in production
    # when, and why it was taken out, stays readable (`trainyard models history`).
    pointer = {**current["previous"], "promoted_at": now, "reason": reason,
               "history": _history(current, {"action": "rollback", "model_id": current["previous"]["model_id"],
                                             "at": now, "reason": reason, "rolled_back": current["model_id"]})}
    storage.write_text_if_unchanged(_pointer_uri(registry_uri), dumps(pointer, indent=2), version)
    return pointer


def history(registry_uri: str) -> list[dict[str, Any]]:
    """Every promotion and rollback of production, oldest first (the last HISTORY_EVENTS)."""
    current = production(registry_uri)
    return list(current.get("history") or []) if current else []


def _load(registry_uri: str, model_id: str) -> RegisteredModel | None:
    uri = _model_uri(registry_uri, model_id, f"{registry_uri}: model id")
    lineage_uri, metrics_uri = storage.join(uri, "lineage.json"), storage.join(uri, "metrics.json")
    record = storage.read_text(lineage_uri)
    if record is None:
        return None
    metrics = _parse(storage.read_text(metrics_uri) or "{}", metrics_uri)
    lineage = _parse(record, lineage_uri)
    bad = [key for key in ("model_id", "name", "created_at") if not isinstance(lineage.get(key), str)]
    if bad:
        raise _corrupt(lineage_uri, f"{', '.join(bad)} missing or not text")
    return _model(uri, metrics, lineage)


def _model_uri(registry_uri: str, model_id: Any, what: str) -> str:
    return storage.join(_root(registry_uri), "models", _check_id(model_id, what))


def _check_id(model_id: Any, what: str) -> str:
    """`model_id` if it is one plain folder name: an id read from a file (production.json) or
    given by a user must not point outside the registry (`../../elsewhere`)."""
    if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id) or ".." in model_id:
        raise InputError(
            f"{what} {excerpt(model_id)} is not a model id (letters, digits, '.', '_', '-'); "
            "`trainyard models list` shows the registered ids"
        )
    return model_id


def _root(registry_uri: str) -> str:
    # A local registry that is a file would fail deep inside with NotADirectoryError.
    if not storage.is_gcs(registry_uri) and Path(registry_uri).exists() and not Path(registry_uri).is_dir():
        raise ConfigError(f"promotion.registry {registry_uri}: is a file, not a folder; point it at a folder or gs://")
    return registry_uri


def _check_pointer(pointer: Any, uri: str, where: str = "") -> dict[str, Any]:
    """production.json is what the next promotion is decided against: anything but a well-formed
    pointer is an error naming the file, never "no production yet" (which would promote anything)."""
    if not isinstance(pointer, dict) or not pointer:
        raise _corrupt(uri, f"{where or 'the file'} is {excerpt(pointer)}, not a pointer object")
    if not isinstance(pointer.get("model_id"), str) or not isinstance(pointer.get("uri"), str):
        raise _corrupt(uri, f"{where}model_id and uri must be text")
    if not isinstance(pointer.get("metrics", {}), dict):
        raise _corrupt(uri, f"{where}metrics must be an object")
    _check_id(pointer["model_id"], f"{uri}: {where}model_id")
    previous = pointer.get("previous")
    if previous is not None:
        _check_pointer(previous, uri, f"{where}previous.")
    return pointer


def _corrupt(uri: str, problem: str) -> ExternalError:
    return ExternalError(f"{uri}: corrupt registry file ({problem}); restore it from a backup or the bucket's object versions")


def _model(uri: str, metrics: dict, record: dict) -> RegisteredModel:
    return RegisteredModel(record["model_id"], record["name"], uri, record["created_at"], metrics, record)


def _read_pointer(registry_uri: str) -> tuple[dict[str, Any] | None, str | None]:
    uri = _pointer_uri(registry_uri)
    text, version = storage.read_versioned(uri)
    return (None if text is None else _check_pointer(_parse(text, uri), uri)), version


def _pointer_uri(registry_uri: str) -> str:
    return storage.join(_root(registry_uri), "production.json")


def _parse(text: str, uri: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or an integer of thousands of digits
        raise ExternalError(f"{uri}: registry file is not valid JSON; restore it or re-register the model") from None
    if not isinstance(value, dict):
        raise _corrupt(uri, f"expected a JSON object, got {excerpt(value)}")
    return value


def _without_history(pointer: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in pointer.items() if k != "history"} if pointer else None


def _history(current: dict[str, Any] | None, event: dict[str, Any]) -> list[dict[str, Any]]:
    """The event log of production moves, bounded; a pointer written before it had one starts it
    with the promotion that made the current model production."""
    if current is None:
        return [event]
    earlier = current.get("history")
    if not isinstance(earlier, list):
        earlier = [{"action": "promote", "model_id": current["model_id"], "at": current.get("promoted_at"),
                    "reason": current.get("reason")}]
    return [*earlier, event][-HISTORY_EVENTS:]


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
