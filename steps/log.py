"""The steps' log: the standard `logging` module, writing the steps' usual lines.

Every library module logs to a child of the `trainyard` logger (`trainyard.train`, ...). Out of
the box that logger prints each message as is ("train: iter 10/200 ...") to stdout, warnings and
errors to stderr, so a pod's log reads as before. Code that uses the steps as a library takes
over with the usual calls, e.g. `logging.getLogger("trainyard").setLevel(logging.WARNING)`, or
`quiet()` and its own handlers (the logger propagates to the root logger once ours is removed).
"""

from __future__ import annotations

import logging
import sys

from steps.redact import redact

ROOT = logging.getLogger("trainyard")


class _Redacted(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _StepLines(logging.StreamHandler):
    """Each message alone on a line, redacted; INFO to the current sys.stdout, WARNING and up to stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_Redacted("%(message)s"))

    @property  # looked up per message, so redirected streams (pytest's capture) are honoured
    def stream(self):  # type: ignore[override]
        return sys.stdout if self._level_now < logging.WARNING else sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        self._level_now = record.levelno
        super().emit(record)

    _level_now = logging.INFO


_HANDLER = _StepLines()
ROOT.addHandler(_HANDLER)
ROOT.setLevel(logging.INFO)
ROOT.propagate = False


def get(step: str) -> logging.Logger:
    """The logger of one step or module, e.g. get("evaluate")."""
    return ROOT.getChild(step)


def quiet() -> None:
    """Remove the default line writer: messages go to the root logger's handlers instead."""
    ROOT.removeHandler(_HANDLER)
    ROOT.propagate = True
