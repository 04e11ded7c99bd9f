"""An overall deadline for a network exchange.

Socket timeouts (urllib's and requests' `timeout`) bound each read, not the exchange: a server that
trickles its headers a byte every few seconds never trips them. `call_with_deadline` runs the call
in a daemon thread and stops waiting when the deadline passes; the abandoned thread ends with the
process (every caller reports the error and exits, or moves on).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from steps.errors import ExternalError

T = TypeVar("T")


def call_with_deadline(call: Callable[[], T], seconds: float, message: str) -> T:
    """`call()`'s result or exception, or ExternalError(message) once `seconds` have passed."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="trainyard-deadline", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise ExternalError(message)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
