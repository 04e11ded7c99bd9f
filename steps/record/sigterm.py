"""SIGTERM during record is a failure like any other: the step's cleanup runs.

Kubernetes sends SIGTERM when a pod is deleted or preempted. Python's default is to die at once,
skipping every `except`/`finally`: a tag pushed a moment before stays behind without its database
rows. Raised as an exception instead, it rolls the transaction back and takes the tag back.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_CODE = 128 + signal.SIGTERM


class Terminated(SystemExit):
    """SIGTERM arrived; unwinds like an error and exits with 143 if nothing catches it."""

    def __init__(self) -> None:
        super().__init__(EXIT_CODE)


@contextmanager
def fail_on_sigterm() -> Iterator[None]:
    """While inside, the first SIGTERM raises Terminated; later ones are ignored so that the
    cleanup it starts is not cut short (Kubernetes follows up with SIGKILL, which nothing stops)."""
    if threading.current_thread() is not threading.main_thread():  # handlers only exist there
        yield
        return
    raised = False

    def handle(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
