"""scripts/bench.py (`make bench`) still runs and still compares like with like.

Its figures are never asserted (speed is the benchmark's to print); what is checked is that the
table comes out, every contender agrees with pycocotools, and a contender that fails or dies in
its forked process makes the bench fail instead of printing a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_bench_prints_a_row_per_figure_on_tiny_sizes() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench.py"), "--sections", "convert,coco-eval,coco-eval-cli,evaluate",
         "--convert-images", "3", "--coco-images", "40", "--repeat", "2",
         "--evaluate-images", "8", "--bootstrap-samples", "3", "--anchor-samples", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout[done.stdout.index("figure"):]
    for row in ("labelme2coco, 3 files", "coco-eval bbox, 40 images", "coco-eval segm, 40 images",
                "trainyard coco-eval bbox, 40 images, whole process", "trainyard coco-eval segm, 40 images, whole process",
                "evaluate: predict 8 val images", "evaluate: score all metrics, 8 val images",
                "bootstrap segm/AP, 3 resamples of 8 images", "bootstrap EIR, 3 resamples of 8 images"):
        assert row in table
    assert "max |diff|" in table and "MISMATCH" not in table  # each contender's AP is pycocotools'
    lines = table.splitlines()
    for row, goal in (("trainyard coco-eval bbox, 40 images", ">=10x "), ("trainyard coco-eval segm, 40 images", ">=5x ")):
        assert goal in next(line for line in lines if line.startswith(row))  # each figure beside its goal


@pytest.fixture()
def bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import bench as module

    return module


def _fails() -> None:
    raise ZeroDivisionError("on purpose")


def _dies() -> None:
    os._exit(3)


def _echo(*args: object) -> object:
    return args


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the forked timing needs os.fork")
def test_a_contender_gets_its_inputs_decoded_and_its_failures_reach_the_bench(bench) -> None:
    seconds, value = bench._timed_in_fork(_echo, '[{"images": [1]}, [2]]', "bbox")
    assert seconds >= 0 and value == ({"images": [1]}, [2], "bbox")
    with pytest.raises(RuntimeError, match="ZeroDivisionError: on purpose"):
        bench._timed_in_fork(_fails, "[]")
    with pytest.raises(RuntimeError, match="_dies died in its process .exit status 3"):
        bench._timed_in_fork(_dies, "[]")
