"""Whether a failed attempt is retried: controller/operator.go `processNodeRetries`."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone

from workflows.local.expr import evaluate_bool
from workflows.local.nodes import Node
from workflows.local.templating import TemplateError

POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")
RETRY_FIELDS = {"limit", "retryPolicy", "expression", "affinity", "backoff"}  # affinity only steers scheduling
BACKOFF_FIELDS = {"duration", "factor", "maxDuration", "cap"}
_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# util/errors/errors.go `isTransientErr`: the message-based checks (the others test Kubernetes
# error types, which a local process never produces).
TRANSIENT_MESSAGES = (
    "etcdserver: leader changed", "etcdserver: request timed out", "etcdserver: too many requests",
    "unexpected error when reading response body", "stream error when reading response body",
    "Connection closed by foreign host", "net/http: TLS handshake timeout", "i/o timeout",
    "connection timed out", "connection reset by peer", "http2: client connection lost",
    "http2: server sent GOAWAY and closed the connection", "request did not complete within requested timeout",
    "connect: connection refused", "invalid connection", "client rate limiter Wait returned an error",
    "upper: no more rows in",
)


def check_strategy(strategy: dict, where: str) -> None:
    unknown = sorted(set(strategy) - RETRY_FIELDS)
    if unknown:
        raise TemplateError(f"{where}.retryStrategy.{unknown[0]}: not supported by the local runner")
    if strategy.get("retryPolicy", "OnFailure") not in POLICIES:
        raise TemplateError(f"{where}.retryStrategy.retryPolicy: {strategy['retryPolicy']!r} is not a valid RetryPolicy")
    backoff = strategy.get("backoff")
    if backoff is not None:
        unknown = sorted(set(backoff) - BACKOFF_FIELDS)
        if unknown:
            raise TemplateError(f"{where}.retryStrategy.backoff.{unknown[0]}: not supported by the local runner")
        for key in ("duration", "maxDuration", "cap"):
            if backoff.get(key) not in (None, ""):
                parse_duration(str(backoff[key]), f"{where}.retryStrategy.backoff.{key}")


def parse_duration(text: str, where: str) -> float:
    """wfv1.ParseStringToDuration: whole seconds without a unit, else a Go duration ("1m30s")."""
    if re.fullmatch(r"[+-]?\d+", text):
        return float(int(text))
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    parts = _GO_DURATION.findall(body)
    if body == "0":
        return 0.0
    if not parts or "".join(number + unit for number, unit in parts) != body:
        raise TemplateError(f"{where}: unable to parse {text} as a duration")
    return sign * sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def policy(strategy: dict) -> str:
    """wfv1.RetryStrategy.RetryPolicyActual: OnFailure by default, Always with an expression."""
    return strategy.get("retryPolicy") or ("Always" if strategy.get("expression") else "OnFailure")


def is_transient(message: str) -> bool:
    pattern = os.environ.get("TRANSIENT_ERROR_PATTERN", "")
    return any(s in message for s in TRANSIENT_MESSAGES) or bool(pattern and re.search(pattern, message))


def last_retry(attempts: list[Node]) -> dict[str, object]:
    """operator.go `buildRetryStrategyLocalScope`: all values are strings, as Argo passes them. The
    duration is fmt.Sprint of the seconds between the node's start and end as stored, to the second
    (metav1.Time), so `asInt(lastRetry.duration)` works as on Argo."""
    last = attempts[-1]
    started = last.started_at.replace(microsecond=0) if last.started_at else None
    finished = (last.finished_at or datetime.now(timezone.utc)).replace(microsecond=0)
    seconds = (finished - started).total_seconds() if started else 0.0
    return {"retries": str(len(attempts) - 1),
            "lastRetry": {"exitCode": last.exit_code if last.exit_code is not None else "-1",
                          "status": last.phase,
                          "duration": _go_float(seconds),
                          "message": last.message}}


def _go_float(value: float) -> str:
    # fmt.Sprint(float64): the shortest representation, exponent form for large/small magnitudes.
    text = repr(float(value))
    if text.endswith(".0"):
        text = text[:-2]
    return text


def decide(strategy: dict, attempts: list[Node], where: str = "retryStrategy") -> tuple[bool, str, float]:
    """(retry?, the Retry node's message when not, seconds to wait first). `attempts` ends with the
    failed one; the checks run in processNodeRetries' order: backoff limits, policy, limit, expression."""
    last = attempts[-1]
    now = datetime.now(timezone.utc)
    wait = 0.0
    backoff = strategy.get("backoff")
    if backoff is not None:
        max_deadline = None
        if backoff.get("maxDuration"):
            max_deadline = attempts[0].started_at + timedelta(seconds=parse_duration(str(backoff["maxDuration"]), where))
            if now > max_deadline:
                return False, "Max duration limit exceeded", 0.0
        if not backoff.get("duration"):
            raise TemplateError(f"{where}.backoff: no base duration specified for retryStrategy")
        wait = parse_duration(str(backoff["duration"]), where)
        factor = int(str(backoff.get("factor") or 0))
        if factor > 0:
            wait *= factor ** (len(attempts) - 1)
        if backoff.get("cap"):
            wait = min(wait, parse_duration(str(backoff["cap"]), where))
        waiting_deadline = (last.finished_at or now) + timedelta(seconds=wait)
        if max_deadline is not None and waiting_deadline > max_deadline:
            return False, "Backoff would exceed max duration limit", 0.0
        # Argo waits only while the limit allows another attempt; otherwise it goes on at once.
        limit = strategy.get("limit")
        allows_another = limit is not None and len(attempts) <= int(str(limit))
        wait = max(0.0, (waiting_deadline - now).total_seconds()) if allows_another else 0.0
    actual = policy(strategy)
    on_failed = actual in ("Always", "OnFailure")
    on_error = actual in ("Always", "OnError")
    if actual == "OnTransientError" and is_transient(last.message):
        on_failed = on_error = True
    if (last.phase == "Failed" and not on_failed) or (last.phase == "Error" and not on_error):
        return False, last.message, 0.0
    limit = strategy.get("limit")
    if limit is not None and len(attempts) > int(str(limit)):
        return False, "No more retries left", 0.0
    expression = strategy.get("expression")
    if expression and not evaluate_bool(expression, last_retry(attempts)):
        return False, "retryStrategy.expression evaluated to false", 0.0
    return True, "", wait
