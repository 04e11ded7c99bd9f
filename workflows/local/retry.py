"""Whether a failed attempt is retried: controller/operator.go `processNodeRetries`."""

from __future__ import annotations

import os
import re

from workflows.local.expr import evaluate_bool
from workflows.local.nodes import Node
from workflows.local.templating import TemplateError

POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")
RETRY_FIELDS = {"limit", "retryPolicy", "expression", "affinity"}  # affinity only steers scheduling
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


def policy(strategy: dict) -> str:
    """wfv1.RetryStrategy.RetryPolicyActual: OnFailure by default, Always with an expression."""
    return strategy.get("retryPolicy") or ("Always" if strategy.get("expression") else "OnFailure")


def is_transient(message: str) -> bool:
    pattern = os.environ.get("TRANSIENT_ERROR_PATTERN", "")
    return any(s in message for s in TRANSIENT_MESSAGES) or bool(pattern and re.search(pattern, message))


def last_retry(attempts: list[Node]) -> dict[str, object]:
    """operator.go `buildRetryStrategyLocalScope`: all values are strings, as Argo passes them."""
    last = attempts[-1]
    seconds = last.seconds
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


def decide(strategy: dict, attempts: list[Node]) -> tuple[bool, str]:
    """(retry?, the Retry node's message when not). `attempts` ends with the failed one."""
    last = attempts[-1]
    actual = policy(strategy)
    on_failed = actual in ("Always", "OnFailure")
    on_error = actual in ("Always", "OnError")
    if actual == "OnTransientError" and is_transient(last.message):
        on_failed = on_error = True
    if (last.phase == "Failed" and not on_failed) or (last.phase == "Error" and not on_error):
        return False, last.message
    limit = strategy.get("limit")
    if limit is not None and len(attempts) > int(str(limit)):
        return False, "No more retries left"
    expression = strategy.get("expression")
    if expression and not evaluate_bool(expression, last_retry(attempts)):
        return False, "retryStrategy.expression evaluated to false"
    return True, ""
