"""A finished pipeline run: what Argo tells the exit handler, plus what the steps stored.

An exit handler gets no task outputs, only workflow variables (name, status, failures, times).
The dataset version, the registered model and the promotion decision are looked up in the
database, where the evaluate step wrote them under the same run id.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from steps.db import Database, Transaction
from steps.decision_figures import FIGURES, from_row


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: str  # Argo's workflow phase: Succeeded, Failed or Error
    started_at: str
    finished_at: str
    duration_seconds: float | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    retries: list[dict[str, Any]] = field(default_factory=list)  # attempts that failed, then succeeded on retry
    notes: list[str] = field(default_factory=list)  # what the exit handler itself could not use
    # Succeeded with failed nodes: an evaluate pod or sweep branch failed and the others went on
    # (depends `AnySucceeded`); Argo's DAG phase follows its last tasks (dag.go assessDAGPhase).
    partial: bool = False
    dataset_version: str | None = None
    model_id: str | None = None
    model_uri: str | None = None
    promoted: bool | None = None
    # The promotion decision, under the names evaluation.json gives it (steps/decision_figures.py).
    promotion: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    ui_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_ATTEMPT = re.compile(r"^(?P<step>.+)\((?P<attempt>\d+)\)$")  # a retry's attempt: `train(0)`
# What Go's strconv.Quote (appendEscapedRune) writes for the text json.Marshal gives it, and nothing
# else: `\"` and `\\`; `\x7f` (DEL, the one control character json leaves as it is); `\u` and
# `\U` for runes that are not printable. json has already escaped every other control character
# (as `\n`, `\u0001`, ... which Quote then writes with a doubled backslash), so `\a`, `\n` or
# `\x41` never come from Argo: such text is not Argo's form and is kept as it is.
_GO_ESCAPE = re.compile(r'\\(?:(["\\])|x(7f)|u([0-9a-f]{4})|U([0-9a-f]{8})|(.|$))', re.DOTALL)


def _unquote_go(text: str) -> str | None:
    """The string Go's `strconv.Quote` of json.Marshal output wrote, or None when `text` is not one.
    One left-to-right pass, so an escaped backslash is never read as the start of an escape."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return None
    inner = text[1:-1]
    if re.search(r'(?<!\\)(?:\\\\)*"', inner):  # a quote Quote would have escaped
        return None
    bad = False

    def unescape(match: re.Match[str]) -> str:
        nonlocal bad
        char, delete, short, long, other = match.groups()
        code = int(delete or short or long or "0", 16)
        if other is not None or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            bad = True
            return ""
        return char if char else chr(code)

    value = _GO_ESCAPE.sub(unescape, inner)
    return None if bad else value


def parse_failures(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Argo's `{{workflow.failures}}` as (failures, retried attempts).

    Argo sets it to `strconv.Quote(json.Marshal(failedNodes))` (workflow/controller/operator.go,
    `operate`): a clean run gives the 6 characters `"null"`, a failed run a quoted JSON list of
    every Failed or Error node. A retried attempt (`train(0)`) whose step (`train`) did not fail
    in the end was retried successfully: it is a retry, not a failure. Unquoted JSON (older
    callers) is read too; anything else is kept as one message rather than lost.
    """
    text = text.strip()
    if not text or text.startswith("{{"):
        return [], []
    inner = _unquote_go(text)
    text = inner.strip() if inner is not None else text
    if text in ("", "null", "[]"):
        return [], []
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # not JSON, or nested past any real failure list
        return [{"message": text[:2000]}], []
    if value is None:
        return [], []
    if not isinstance(value, list):
        return [{"message": str(value)[:2000]}], []
    nodes = [item if isinstance(item, dict) else {"message": str(item)} for item in value]
    failed_steps = {str(node.get("displayName")) for node in nodes}
    failures, retries = [], []
    for node in nodes:
        attempt = _ATTEMPT.match(str(node.get("displayName") or ""))
        (failures if not attempt or attempt.group("step") in failed_steps else retries).append(node)
    return failures, retries


def parse_duration(text: str) -> float | None:
    """`{{workflow.duration}}` in seconds; None when it is not a finite, non-negative number."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return round(value, 3) if math.isfinite(value) and value >= 0 else None


def finished_at(started_at: str, duration: float | None) -> str:
    """Start + duration when both are known (the exit handler runs a little after the end)."""
    try:
        start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        start = None
    if start is None or duration is None:
        return datetime.now(timezone.utc).isoformat(timespec="seconds")
    return (start + timedelta(seconds=duration)).astimezone(timezone.utc).isoformat(timespec="seconds")


def with_stored_results(outcome: RunOutcome, db: Database) -> RunOutcome:
    """The outcome completed with the run's model and promotion, if evaluate got that far."""
    with db.transaction() as tx:
        found = _model_of_run(tx, outcome.run_id)
    if found is None:
        return outcome
    return RunOutcome(**{**outcome.as_dict(), **found})


def _model_of_run(tx: Transaction, run_id: str) -> dict[str, Any] | None:
    rows = tx.query(
        "SELECT model_id, uri, dataset_version, metrics FROM models WHERE run_id = ? ORDER BY id DESC LIMIT 1", (run_id,)
    )
    if not rows:
        return None
    model_id, uri, dataset_version, metrics = rows[0]
    found: dict[str, Any] = {"model_id": model_id, "model_uri": uri, "dataset_version": dataset_version,
                             "metrics": json.loads(metrics) if metrics else {}}
    columns = ["promoted", "reason", *(f.column for f in FIGURES)]
    decision = tx.query(f"SELECT {', '.join(columns)} FROM promotions WHERE model_id = ? ORDER BY id DESC LIMIT 1",
                        (model_id,))
    if decision:
        found["promotion"] = from_row(dict(zip(columns, decision[0])))
        found["promoted"] = found["promotion"]["promoted"]
    return found


def record_outcome(db: Database, outcome: RunOutcome) -> None:
    """Insert or update the run's `pipeline_runs` row (the exit handler may be retried)."""
    values = (
        outcome.dataset_version, outcome.status, outcome.started_at, outcome.finished_at, outcome.model_id,
        None if outcome.promoted is None else int(outcome.promoted), outcome.duration_seconds,
        json.dumps(outcome.failures) if outcome.failures else None,
    )
    with db.transaction() as tx:
        updated = tx.execute(
            "UPDATE pipeline_runs SET dataset_version = ?, status = ?, started_at = ?, finished_at = ?, model_id = ?, "
            "promoted = ?, duration_seconds = ?, failures = ? WHERE run_id = ?",
            (*values, outcome.run_id),
        )
        if not updated:
            tx.execute(
                "INSERT INTO pipeline_runs (dataset_version, status, started_at, finished_at, model_id, promoted, "
                "duration_seconds, failures, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, outcome.run_id),
            )
