"""A champion's reign: its tests counted per validation split, restarted by a new split, spent
where no allowed resampling can resolve the level; and two selects that overlap, against
PostgreSQL: each test takes a place of its own, and production moves once.

In the overlap tests each select runs `evaluate` (what `python -m steps.select` ends in: `conclude`) in a thread of
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
from tests.test_evaluate import StandInBackend, dataset, run, setup, write_model  # noqa: F401 (setup: a fixture)


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


@pytest.mark.integration
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


@pytest.mark.integration
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
    assert next_test(db, "old", "s") == 3 and next_test(db, "new", "s") == 1
    assert [claim_test(db, "old", "s"), claim_test(db, "new", "s"), claim_test(db, "old", "s")] == [3, 1, 4]
    # The tests counted before splits were told apart count against each split of their champion.
    assert claim_test(db, "old", "t") == 3


def test_a_validation_split_is_the_same_comparison_set_whatever_its_ids(tmp_path: Path) -> None:
    from steps.evaluate.reign import comparison_set

    gt = json.loads((dataset(tmp_path, ["a", "plate"], images=3) / "val.json").read_text())
    renumbered = {**gt, "images": [{**i, "id": i["id"] + 10} for i in gt["images"]],
                  "categories": [{**c, "id": c["id"] + 5} for c in gt["categories"]],
                  "annotations": [{**a, "id": a["id"] + 7, "image_id": a["image_id"] + 10,
                                   "category_id": a["category_id"] + 5} for a in reversed(gt["annotations"])]}
    assert comparison_set(renumbered) == comparison_set(gt)
    relabelled = {**gt, "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "car"}]}
    fewer = {**gt, "images": gt["images"][:2], "annotations": [a for a in gt["annotations"] if a["image_id"] != 3]}
    assert len({comparison_set(gt), comparison_set(relabelled), comparison_set(fewer)}) == 3


def _decisions(tmp_path: Path, *runs: str) -> list[dict]:
    return [json.loads((tmp_path / name / "evaluation" / "evaluation.json").read_text())["promotion"] for name in runs]


def test_a_reign_restarts_on_a_new_validation_split_and_ends_where_resampling_cannot_resolve_it(setup) -> None:
    tmp_path, data, config, _ = setup
    # 50 resamples at most: 1 / 51 is the finest level a test can pass at; the second test of a
    # reign (0.1 / 6) is finer.
    few = config("promotion.bootstrap_samples=50", "promotion.max_bootstrap_samples=50")
    challenger = {"model_0000001.pth": (["a", "plate"], [])}  # a gain the bootstrap cannot confirm
    dataset(data, ["a", "plate"], images=10)
    assert run(tmp_path, data, few, "r1", {"model_0000001.pth": (["a", "plate"], [3])}).promoted
    for name in ("r2", "r3"):
        assert not run(tmp_path, data, few, name, challenger).promoted
    tested, ended = _decisions(tmp_path, "r2", "r3")
    assert tested["reign_comparison"] == 1 and tested["samples"] == 50
    # Test 2 could not pass: refused as spent, without a bootstrap, and claiming nothing.
    assert ended["samples"] is None and ended["reign_comparison"] is None and "not tested: test 2 of" in ended["reason"]
    assert ended["required_confidence"] == pytest.approx(1 - 0.1 / 6)
    assert "the reign's tests on this split are spent" in ended["reason"]
    assert "A new validation split (a dataset version with new validation images) starts a fresh comparison" in ended["reason"]
    assert ended["comparison_set"] == tested["comparison_set"]

    # New validation images: a fresh comparison set, tested from the first place again.
    first = data / "first-val.json"
    first.write_text((data / "val.json").read_text())
    dataset(data, ["a", "plate"], images=11)
    assert not run(tmp_path, data, few, "r4", challenger).promoted
    [fresh] = _decisions(tmp_path, "r4")
    assert fresh["reign_comparison"] == 1 and fresh["samples"] == 50 and fresh["comparison_set"] != tested["comparison_set"]
    # Back on the first split: its count was kept, so going back and forth buys no new tests.
    (data / "val.json").write_text(first.read_text())
    assert not run(tmp_path, data, few, "r5", challenger).promoted
    [again] = _decisions(tmp_path, "r5")
    assert again["samples"] is None and "spent" in again["reason"]
    with Database(f"sqlite:///{tmp_path / 'meta.sqlite'}").transaction() as tx:
        places = tx.query("SELECT reign_comparison FROM promotions WHERE champion_model_id IS NOT NULL ORDER BY id")
        counts = sorted(tx.query("SELECT tests FROM reigns"))
    assert places == [(1,), (None,), (1,), (None,)] and counts == [(1,), (1,)]
