"""One container's command as a local process: output streamed to the console and, line by line,
to the step's log file (nothing buffered, so a killed runner loses nothing), and a stop that
behaves like `argo stop` (SIGTERM to the step, SIGKILL after a grace period).

As in a container, the step ends when its main process ends: what it left running in the
background is killed then (the container's PID namespace ends with its first process). What the
kubelet enforces is enforced here too: the pod's deadline (`activeDeadlineSeconds`: SIGTERM, then
SIGKILL after the grace period) and the container's memory limit (its processes' resident memory
over `resources.limits.memory`: SIGKILL, as the kernel's OOM killer does, exit code 137).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from steps.redact import redact

# Kubernetes' default terminationGracePeriodSeconds.
GRACE_SECONDS = 30
RESULT_BYTES = 256 * 1024  # executor.go CaptureScriptResult keeps the last 256 kB of stdout
POLL_SECONDS = 0.1


class Process:
    def __init__(self) -> None:
        self._child: subprocess.Popen[str] | None = None
        self.stdout = ""  # what the step printed on stdout (its last RESULT_BYTES), for outputs.result
        self.reason = ""  # why it was ended from outside: "stop", "deadline", "workflow-deadline", "oom"

    def run(self, argv: list[str], cwd: Path, env: dict[str, str], log: Path, echo: Callable[[str], None],
            deadline: float | None = None, memory: int | None = None) -> int:
        """Run to the end; the exit code as Kubernetes reports it (128 + signal when killed). What
        reaches the log and the console is redacted: a URL's credentials never land there.
        `deadline`: seconds it may run; `memory`: bytes its processes may hold."""
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
                try:
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
                except ValueError:  # the log was closed: a background process outlived the step
                    pass

            readers = [threading.Thread(target=forward, args=(child.stdout, True), daemon=True),
                       threading.Thread(target=forward, args=(child.stderr, False), daemon=True)]
            for reader in readers:
                reader.start()
            try:
                code = self._wait(child, deadline, memory)
                _signal_group(child, signal.SIGKILL)  # what the step left running ends with it
                for reader in readers:
                    reader.join(timeout=5)
            finally:
                self._child = None
            with lock:
                self.stdout = "".join(kept)[-RESULT_BYTES:]
        return 128 - code if code < 0 else code

    def _wait(self, child: subprocess.Popen[str], deadline: float | None, memory: int | None) -> int:
        ends = time.monotonic() + deadline if deadline is not None else None
        while True:
            try:
                return child.wait(timeout=POLL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            if ends is not None and time.monotonic() >= ends and not self.reason:
                self.stop(reason="deadline")
            if memory is not None and not self.reason and resident_bytes(child.pid) > memory:
                self.reason = "oom"
                _signal_group(child, signal.SIGKILL)

    def stop(self, grace: float = GRACE_SECONDS, reason: str = "stop") -> None:
        """SIGTERM the running step's process group now, SIGKILL it if it outlives the grace period."""
        child = self._child
        if child is None or child.poll() is not None:
            return
        self.reason = self.reason or reason
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


def resident_bytes(pid: int) -> int:
    """The resident memory of a process and everything it started (what a container's cgroup counts)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total


def _signal_group(child: subprocess.Popen[str], sig: signal.Signals) -> None:
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
