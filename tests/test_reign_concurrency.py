"""Two selects that overlap, against PostgreSQL: each test of a champion's reign takes a place of
its own, and production moves once.

Each select runs `evaluate` (what `python -m steps.select` ends in: `conclude`) in a thread of
its own, with its own connections. Both are held just before their bootstrap until both are
there, so both have read the reign and decided on their level before either records anything:
the race is certain, not likely.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from steps import registry
from steps.config import Config, load_config
from steps.db import Database
from steps.evaluate import evaluate as evaluate_module
from steps.evaluate.evaluate import evaluate
from steps.storage import ConcurrentUpdateError
from tests.test_evaluate import StandInBackend, dataset, write_model

pytestmark = pytest.mark.integration


@pytest.fixture
def selects(tmp_path: Path, fresh_postgres: str, monkeypatch: pytest.MonkeyPatch):
    """`config()` on the fresh PostgreSQL database, and `both(misses_a, misses_b)`: two selects at
    once, each of one challenger missing those images' objects; returns each one's result or error."""
    monkeypatch.delenv("TRAINYARD_DATABASE_URL", raising=False)
    data = tmp_path / "data"
    monkeypatch.setattr(evaluate_module, "get_backend", lambda name: StandInBackend(name, data / "val.json"))

    def config() -> Config:
        loaded = load_config(None, [f"promotion.registry={tmp_path / 'registry'}", "evaluate.select_key=segm/AP50",
                                    "promotion.min_images=1", "promotion.min_objects=1"])
        loaded.database.url = fresh_postgres
        return loaded

    def select(name: str, misses: list[int]) -> Any:
        folder = tmp_path / name / "checkpoints"
        write_model(folder / "model_0000001.pth", ["a", "plate"], misses)
        return evaluate(config(), data, folder, tmp_path / name / "evaluation", name, "datasets/v1")

    def both(first: list[int], second: list[int]) -> list[Any]:
        arrived = threading.Barrier(2, timeout=60)
        bootstrap = evaluate_module.bootstrap_key

        def held(*args: Any, **kwargs: Any) -> Any:
            arrived.wait()  # both have decided on their test's level: now the race
            return bootstrap(*args, **{**kwargs, "workers": 1})  # no fork from a threaded process

        monkeypatch.setattr(evaluate_module, "bootstrap_key", held)
        outcomes: list[Any] = [None, None]

        def one(index: int, misses: list[int]) -> None:
            try:
                outcomes[index] = select(f"s{index}", misses)
            except Exception as exc:  # noqa: BLE001 - the loser's error is what the test reads
                outcomes[index] = exc
                arrived.abort()  # the other one must not wait for it

        threads = [threading.Thread(target=one, args=(i, m)) for i, m in enumerate((first, second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        monkeypatch.setattr(evaluate_module, "bootstrap_key", bootstrap)
        return outcomes

    return tmp_path, data, config, select, both


def _tests(url: str) -> list[tuple]:
    with Database(url).transaction() as tx:
        return tx.query("SELECT reign_comparison, required_confidence, bootstrap_samples, promoted FROM promotions "
                        "WHERE champion_model_id IS NOT NULL ORDER BY reign_comparison")


def test_two_overlapping_selects_take_two_places_in_the_reign(selects, fresh_postgres: str) -> None:
    tmp_path, data, config, select, both = selects
    dataset(data, ["a", "plate"], images=10)
    assert select("champion", [3]).promoted
    # Gains the bootstrap cannot confirm at 10 images: both are tested, neither promoted.
    outcomes = both([], [])
    assert [getattr(o, "promoted", o) for o in outcomes] == [False, False]
    # One took the reign's first test (at 0.95, 400 resamples), the other its second (1 - 0.1/6).
    tests = _tests(fresh_postgres)
    assert [t[0] for t in tests] == [1, 2], tests
    assert tests[0][1] == pytest.approx(0.95) and tests[1][1] == pytest.approx(1 - 0.1 / 6)
    assert [t[2] for t in tests] == [400, 1200]
    reported = sorted(json.loads((tmp_path / f"s{i}" / "evaluation" / "evaluation.json").read_text())
                      ["promotion"]["reign_comparison"] for i in (0, 1))
    assert reported == [1, 2]
    # The next select continues the count.
    assert not select("later", []).promoted
    assert [t[0] for t in _tests(fresh_postgres)] == [1, 2, 3]


def test_two_overlapping_selects_that_both_win_move_production_once(selects, fresh_postgres: str) -> None:
    tmp_path, data, config, select, both = selects
    dataset(data, ["a", "plate"], images=10)
    champion = select("champion", [1, 2, 3, 4, 5, 6]).model_id
    outcomes = both([], [])
    won = [o for o in outcomes if not isinstance(o, Exception) and o.promoted]
    lost = [o for o in outcomes if o not in won]
    assert len(won) == 1 and len(lost) == 1, outcomes
    # The loser compared against a champion that is gone: refused, naming the new one, or (its
    # stricter second test) not confirmed.
    if isinstance(lost[0], Exception):
        assert isinstance(lost[0], ConcurrentUpdateError)
        assert f"production is now {won[0].model_id}, not {champion}" in str(lost[0])
    assert registry.production(str(tmp_path / "registry"))["model_id"] == won[0].model_id
    with Database(fresh_postgres).transaction() as tx:
        promoted = tx.query("SELECT model_id FROM promotions WHERE promoted = 1 AND champion_model_id = ?", (champion,))
    assert promoted == [(won[0].model_id,)]


def test_a_database_from_before_the_reigns_table_continues_each_reign(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from steps import db as db_module
    from steps.evaluate.reign import claim_test, next_test
    from steps.migrations import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    monkeypatch.setattr(db_module, "MIGRATIONS", [m for m in MIGRATIONS if m[0] <= 6])
    Database(url).migrate()
    with Database(url).transaction() as tx:  # two tests against `old`, one refused before its test
        for k in (1, 2, None):
            tx.execute("INSERT INTO promotions (model_id, promoted, metric, champion_model_id, reason, decided_at, "
                       "reign_comparison) VALUES ('m', 0, 'segm/AP', 'old', 'r', 't', ?)", (k,))
    monkeypatch.setattr(db_module, "MIGRATIONS", MIGRATIONS)
    db = Database(url)
    assert db.migrate() == [m[0] for m in MIGRATIONS if m[0] > 6]
    assert next_test(db, "old") == 3 and next_test(db, "new") == 1
    assert [claim_test(db, "old"), claim_test(db, "new"), claim_test(db, "old")] == [3, 1, 4]
