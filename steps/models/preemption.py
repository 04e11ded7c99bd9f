"""SIGTERM (a preempted or evicted pod) as a request to checkpoint and stop.

Kubernetes sends SIGTERM and waits the grace period before SIGKILL (on a GKE spot node that shuts
down, about 15 s at most, whatever the pod asks for); the training loop finishes its current
iteration, writes a checkpoint to local disk only and exits with 143 (128 + SIGTERM). No upload
starts after SIGTERM: it would not finish in time, and a half-sent upload helps nobody. What a
retried pod resumes from is the last checkpoint the periodic durable mirror uploaded
(steps/models/durable_checkpoints.py), so `train.checkpoint_period` bounds the work lost.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

EXIT_CODE = 128 + signal.SIGTERM
_stopping = threading.Event()  # set once this process got SIGTERM; never cleared: the pod is going


def stopping() -> bool:
    """True after this process received SIGTERM inside StopOnSigterm: start no long work."""
    return _stopping.is_set()


class Preempted(SystemExit):
    """Raised after the preemption checkpoint is written; exits the process with 143."""

    def __init__(self, iteration: int) -> None:
        super().__init__(EXIT_CODE)
        self.iteration = iteration

    def __str__(self) -> str:
        return f"stopped by SIGTERM at iteration {self.iteration} (checkpoint written locally); rerun to resume"


class StopOnSigterm:
    """Context manager: while inside, SIGTERM only sets `requested`."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: signal.Handlers | None = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        _stopping.set()

    def __enter__(self) -> StopOnSigterm:
        # Signal handlers can only be set from the main thread; elsewhere SIGTERM keeps its default.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous if self._previous is not None else signal.SIG_DFL)


def ignore_sigterm_in_worker(_worker_id: int) -> None:
    """DataLoader worker init: the main process checkpoints and shuts workers down itself."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
