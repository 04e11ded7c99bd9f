"""One set of names for a promotion decision's figures (steps/decision_figures.py): what select
writes to evaluation.json, the evaluation report shows and notify's summary and webhook send,
name for name and value for value."""

from __future__ import annotations

import json
from pathlib import Path

from steps.db import Database
from steps.decision_figures import FIGURES, NAMES, shown
from steps.notify.outcome import RunOutcome, with_stored_results
from steps.notify.webhook import payload, summary_text
from tests.test_evaluate import dataset, run, setup  # noqa: F401 (setup: a fixture)
from tests.test_report import parsed


def test_the_report_and_notify_give_evaluation_jsons_figures_under_its_names(setup) -> None:
    tmp_path, data, config, _ = setup
    dataset(data, ["a", "plate"], images=10)
    run(tmp_path, data, config(), "r1", {"model_0000001.pth": (["a", "plate"], [3])})
    # A challenger whose gain the bootstrap tests (and cannot confirm): a decision with every figure.
    run(tmp_path, data, config("promotion.min_gain=0.01"), "r2", {"model_0000001.pth": (["a", "plate"], [])})
    out = tmp_path / "r2" / "evaluation"
    promotion = json.loads((out / "evaluation.json").read_text())["promotion"]
    assert set(NAMES) <= set(promotion)
    expected = shown(promotion)
    assert [name for name, _ in expected] == [f.name for f in FIGURES]

    page = parsed(out / "report.html")
    assert [tuple(cells) for cls, cells in page.rows if cls == "figure"] == expected
    assert promotion["reason"] in page.all_text()

    outcome = with_stored_results(RunOutcome("r2", "Succeeded", "2026-01-01T00:00:00Z", ""),
                                  Database(f"sqlite:///{tmp_path / 'meta.sqlite'}"))
    lines = summary_text(outcome).splitlines()
    assert f"not promoted: {promotion['reason']}" in lines
    assert "decision: " + ", ".join(f"{name} {value}" for name, value in expected) in lines
    # The webhook's structured outcome: the very values, through the database.
    sent = payload(outcome)["run"]["promotion"]
    assert sent == {name: promotion[name] for name in NAMES}
