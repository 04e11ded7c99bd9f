"""One container's command as a local process: output streamed to the console and, line by line,
to the step's log file (nothing buffered, so a killed runner loses nothing), and a stop that
behaves like `argo stop` (SIGTERM to the step, SIGKILL after a grace period)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from steps.redact import redact

# Kubernetes' default terminationGracePeriodSeconds.
GRACE_SECONDS = 30
RESULT_BYTES = 256 * 1024  # executor.go CaptureScriptResult keeps the last 256 kB of stdout


class Process:
    def __init__(self) -> None:
        self._child: subprocess.Popen[str] | None = None
        self.stdout = ""  # what the step printed on stdout (its last RESULT_BYTES), for outputs.result

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], log: Path, echo: Callable[[str], None]) -> int:
        """Run to the end; the exit code as Kubernetes reports it (128 + signal when killed). What
        reaches the log and the console is redacted: a URL's credentials never land there."""
        with log.open("a", buffering=1) as log_file:
            log_file.write(redact(f"$ {' '.join(argv)}") + "\n")
            try:
                # Its own process group: a terminal's Ctrl-C reaches the runner, which stops the step.
                child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, bufsize=1, start_new_session=True, errors="replace")
            except OSError as exc:
                log_file.write(f"{exc}\n")
                raise
            self._child = child
            lock = threading.Lock()
            kept: list[str] = []
            size = 0

            def forward(stream: object, keep: bool) -> None:
                nonlocal size
                for line in stream:  # type: ignore[attr-defined]
                    with lock:
                        shown = redact(line.rstrip("\n"))
                        log_file.write(shown + "\n")
                        echo(shown)
                        if keep:
                            kept.append(line)
                            size += len(line)
                            while size > 2 * RESULT_BYTES and len(kept) > 1:
                                size -= len(kept.pop(0))

            try:
                errors = threading.Thread(target=forward, args=(child.stderr, False), daemon=True)
                errors.start()
                forward(child.stdout, True)
                errors.join()
                code = child.wait()
            finally:
                self._child = None
        self.stdout = "".join(kept)[-RESULT_BYTES:]
        return 128 - code if code < 0 else code

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """SIGTERM the running step's process group now, SIGKILL it if it outlives the grace period."""
        child = self._child
        if child is None or child.poll() is not None:
            return
        _signal_group(child, signal.SIGTERM)
        if grace <= 0:
            _signal_group(child, signal.SIGKILL)
            return
        def kill_later() -> None:
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)

        threading.Thread(target=kill_later, daemon=True).start()


def _signal_group(child: subprocess.Popen[str], sig: signal.Signals) -> None:
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
