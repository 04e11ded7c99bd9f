"""Progress lines with an ETA, for the steps' long loops (training, prediction over a split)."""

from __future__ import annotations

import time

from steps.log import get as get_logger


def format_duration(seconds: float) -> str:
    """`45s`, `2m16s`, `1h02m`: short enough for a progress line."""
    seconds = int(round(max(seconds, 0)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Say `done/total` with the rate and an ETA every `every` seconds, and once at the end.

    By time rather than by count: a CPU evaluation of 16 images takes as long as a GPU one of
    thousands, and either should show signs of life about as often.
    """

    def __init__(self, total: int, what: str, prefix: str = "", every: float = 10.0) -> None:
        self.total, self.what, self.prefix, self.every = total, what, prefix, every
        self.started = self.last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if done < self.total and now - self.last < self.every:
            return
        self.last = now
        rate = (now - self.started) / max(done, 1)
        eta = f"  eta {format_duration((self.total - done) * rate)}" if done < self.total else ""
        get_logger("progress").info(f"{self.prefix}{done}/{self.total} {self.what}  {rate:.2f} s each{eta}")
