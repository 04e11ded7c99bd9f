"""A real git server (`git daemon`, git:// with pushes enabled) for tests that need the receiving
side's hooks to run, as they do on a dataset repo's server. A local path never runs them: record
pushes to one without its hooks (steps/datasets/vcs.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.ports import free_port, listening


@contextmanager
def served(repo: Path) -> Iterator[str]:
    """Serve `repo` on 127.0.0.1; yields its git:// URL. The daemon is stopped by its PID."""
    port = free_port()
    daemon = subprocess.Popen(["git", "daemon", "--listen=127.0.0.1", f"--port={port}", "--reuseaddr", "--export-all",
                               "--enable=receive-pack", f"--base-path={repo.parent}", str(repo.parent)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not listening(port, running=lambda: daemon.poll() is None):
            raise RuntimeError("git daemon did not start")
        yield f"git://127.0.0.1:{port}/{repo.name}"
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
