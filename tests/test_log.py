"""The steps log through `logging`: their usual lines by default, and a library user can take over."""

from __future__ import annotations

import logging

import pytest

from steps import log
from steps.progress import Progress


def test_step_lines_go_to_stdout_and_warnings_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    log.get("evaluate").info("evaluate: best checkpoint model_0000180.pth")
    log.get("train").warning("warning: metrics.json unreadable")
    captured = capsys.readouterr()
    assert captured.out == "evaluate: best checkpoint model_0000180.pth\n"
    assert captured.err == "warning: metrics.json unreadable\n"


def test_progress_reports_the_end_with_rate(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(3, "images predicted", "  ", every=3600)
    for done in (1, 2, 3):
        progress.update(done)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("  3/3 images predicted") and "s each" in lines[0]


def test_a_library_user_can_silence_or_capture_the_steps(capsys: pytest.CaptureFixture[str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    try:
        log.quiet()
        with caplog.at_level(logging.INFO):
            log.get("record").info("record: recorded datasets/v1")
        assert capsys.readouterr().out == ""
        assert "record: recorded datasets/v1" in caplog.messages
        assert {r.name for r in caplog.records} == {"trainyard.record"}
    finally:
        log.ROOT.addHandler(log._HANDLER)
        log.ROOT.propagate = False
