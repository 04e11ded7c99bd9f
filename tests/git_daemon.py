"""A real git server (`git daemon`, git:// with pushes enabled) for tests that need the receiving
side's hooks to run, as they do on a dataset repo's server. A local path never runs them: record
pushes to one without its hooks (steps/vcs.py)."""

from __future__ import annotations

import socket
import subprocess
import time
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(repo: Path) -> Iterator[str]:
    """Serve `repo` on 127.0.0.1; yields its git:// URL. The daemon is stopped by its PID."""
    port = _free_port()
    daemon = subprocess.Popen(["git", "daemon", "--listen=127.0.0.1", f"--port={port}", "--reuseaddr", "--export-all",
                               "--enable=receive-pack", f"--base-path={repo.parent}", str(repo.parent)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise RuntimeError("git daemon did not start") from None
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/{repo.name}"
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
