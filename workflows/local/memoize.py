"""A template's `memoize` on this machine, as Argo v4.1.2 does it with a ConfigMap cache
(workflow/controller/operator.go executeTemplate, controller/cache/configmap_cache.go):

- the key is the template's `memoize.key` after substitution (expressions included) and must
  match `^[a-zA-Z0-9][-a-zA-Z0-9]*$`, else the node errors with "invalid cache key: KEY";
- a hit (an entry younger than `maxAge`, if given) makes the node Succeeded with the cached
  outputs and runs no pod; a miss runs it and saves the outputs when it succeeds;
- the cache is one ConfigMap per `cache.configMap.name`; here a JSON file of the same entries
  (nodeID, outputs, creationTimestamp, lastHitTimestamp) in the runs folder.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from workflows.local.expr import ExprError, evaluate
from workflows.local.nodes import rfc3339
from workflows.local.templating import TAG, TemplateError, substitute

KEY = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")  # controller/cache/cache.go cacheKeyRegex
# time.ParseDuration units Argo accepts in maxAge (e.g. 180s, 24h, 1h30m).
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s|ms)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_LOCK = threading.Lock()


def check(memoize: dict, where: str) -> None:
    unknown = sorted(set(memoize) - {"key", "cache", "maxAge"})
    if unknown:
        raise TemplateError(f"{where}.memoize.{unknown[0]}: not supported by the local runner")
    name = (memoize.get("cache") or {}).get("configMap", {}).get("name")
    if not memoize.get("key") or not name:
        raise TemplateError(f"{where}.memoize: needs key and cache.configMap.name")


def max_age(text: str) -> timedelta:
    """time.ParseDuration of memoize.maxAge; a bad one errors the node ("invalid maxAge")."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise TemplateError(f"invalid maxAge: time: invalid duration {text!r}")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def _nested(values: dict[str, str | None]) -> dict[str, Any]:
    """`inputs.parameters.x` -> {"inputs": {"parameters": {"x": ...}}}: the expression env."""
    env: dict[str, Any] = {}
    for name, value in values.items():
        parts = name.split(".")
        node = env
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node.setdefault(parts[-1], value)
    return env


def resolve_key(raw: str, values: dict[str, str | None], where: str) -> str:
    """The key with `{{...}}` and `{{=expression}}` tags replaced (util/template: both kinds)."""
    env = _nested(values)

    def replace(match: re.Match[str]) -> str:
        tag = match.group(1)
        if tag.startswith("="):
            try:
                return str(evaluate(tag[1:], env))
            except ExprError as exc:
                raise TemplateError(f"{where}.memoize.key: {exc}") from None
        return substitute(match.group(0), values, f"{where}.memoize.key")

    key = TAG.sub(replace, raw)
    if not KEY.match(key):
        raise TemplateError(f"invalid cache key: {key}")
    return key


class Cache:
    """One ConfigMap cache, as a JSON file `<runs>/memoize/<name>.json`."""

    def __init__(self, folder: Path, name: str):
        self.path = folder / "memoize" / f"{name}.json"

    def _entries(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise TemplateError(f"{self.path}: unreadable memoize cache ({exc}); delete it to start afresh") from None
        return data if isinstance(data, dict) else {}

    def load(self, key: str, age: timedelta | None) -> dict | None:
        """The cached outputs on a hit (recording the hit), else None."""
        with _LOCK:
            entries = self._entries()
            entry = entries.get(key)
            if not isinstance(entry, dict) or not entry.get("nodeID"):
                return None
            created = datetime.strptime(entry["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            if age is not None and datetime.now(timezone.utc) - created > age:
                return None  # cache.go GetOutputsWithMaxAge: expired, a miss
            entry["lastHitTimestamp"] = rfc3339(datetime.now(timezone.utc))
            self._write(entries)
            return entry.get("outputs") or {}

    def save(self, key: str, node_id: str, outputs: dict) -> None:
        with _LOCK:
            entries = self._entries()
            now = rfc3339(datetime.now(timezone.utc))
            entries[key] = {"nodeID": node_id, "outputs": outputs, "creationTimestamp": now, "lastHitTimestamp": now}
            self._write(entries)

    def _write(self, entries: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(entries, indent=1))
        temporary.replace(self.path)
