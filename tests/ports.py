"""Ports for the servers tests start on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int, running: Callable[[], bool] = lambda: True, timeout: float = 30) -> bool:
    """Whether 127.0.0.1:`port` accepts connections within `timeout` seconds (False at once when
    `running()` says the server has ended)."""
    deadline = time.monotonic() + timeout
    while running() and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False
