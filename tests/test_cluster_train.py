"""Train on a cluster: the GPUs its pod was given, and a SIGTERM path that fits the grace period."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from steps.config import TrainConfig
from steps.errors import ConfigError
from steps.models.train_settings import POD_GPUS_ENV, world_size
from workflows import pipeline


def test_the_pods_gpu_count_decides_over_train_gpus() -> None:
    # The chart requests steps.train.gpus for the pod and passes the same count in the environment.
    assert POD_GPUS_ENV == pipeline.POD_GPUS_ENV
    train = TrainConfig(batch_size=4)  # train.gpus left at its default, 1
    assert world_size(train, available=2, environ={POD_GPUS_ENV: "2"}) == 2
    assert world_size(train, available=2, environ={}) == 1  # a laptop: train.gpus
    assert world_size(TrainConfig(batch_size=4, gpus=2), available=2, environ={POD_GPUS_ENV: "0"}) == 2
    with pytest.raises(ConfigError, match="steps.train.gpus of the chart"):
        world_size(train, available=1, environ={POD_GPUS_ENV: "2"})
    with pytest.raises(ConfigError, match="does not split evenly over 3 GPUs"):
        world_size(train, available=4, environ={POD_GPUS_ENV: "3"})
    with pytest.raises(ConfigError, match=POD_GPUS_ENV):
        world_size(train, available=2, environ={POD_GPUS_ENV: "two"})


def test_no_upload_starts_after_sigterm(tmp_path: Path) -> None:
    """Kubernetes sends SIGTERM, then SIGKILL after the grace period (GKE spot: ~15 s): the mirror
    uploads each periodic checkpoint, and after SIGTERM none. Run in a child process: the signal
    and its flag belong to that process."""
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from steps.models.durable_checkpoints import CheckpointMirror
        from steps.models.preemption import StopOnSigterm, stopping

        out = Path({str(tmp_path / "out")!r}); (out / "checkpoints").mkdir(parents=True)
        mirror = CheckpointMirror({str(tmp_path / "durable")!r}, out)
        first, second = out / "checkpoints" / "model_0000010.pth", out / "checkpoints" / "model_0000015.pth"
        first.write_bytes(b"periodic"); second.write_bytes(b"on sigterm")
        with StopOnSigterm() as sigterm:
            mirror.upload(first)
            os.kill(os.getpid(), signal.SIGTERM)
            assert sigterm.requested and stopping()
            mirror.upload(second)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    uploaded = sorted(p.name for p in (tmp_path / "durable").rglob("*.pth"))
    assert uploaded == ["model_0000010.pth"]
    assert "model_0000015.pth kept locally, not uploaded" in done.stdout + done.stderr
