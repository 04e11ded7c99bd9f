"""Database rows of the evaluate step: per-checkpoint metrics, the registered model, the decision.

The registry's production pointer and the database must agree whatever stops the step: the rows
are written in one transaction whose last action is moving the pointer, so a failure before or
during the move leaves neither; the one gap left (killed after the move, before the commit) is
closed by `reconcile`, which every evaluate run calls first.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from steps import registry
from steps.db import Database
from steps.decision_figures import FIGURES
from steps.jsonio import dumps
from steps.record.metadata import now
from steps.registry import RegisteredModel

RECONCILED = "reconciled: production.json names this model but the evaluate run that promoted it stopped before " \
             "writing the database"


def record_evaluation(db: Database, evaluation: dict, rows: list[dict], model: RegisteredModel, key: str,
                      promote: Callable[[], None] | None = None) -> None:
    """Insert the rows; `promote` (moving the production pointer) runs last, inside the transaction."""
    promotion = evaluation["promotion"]
    champion = evaluation.get("champion") or {}
    stamp = now()
    with db.transaction() as tx:
        for row in rows:
            tx.execute(
                "INSERT INTO evaluations (run_id, checkpoint, iteration, metrics, selected, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (evaluation["run_id"], row["checkpoint"], row["iteration"], dumps(row["metrics"]),
                 int(row["checkpoint"] == evaluation["best"]), stamp),
            )
        _insert_model(tx, model.model_id, evaluation["run_id"], evaluation["dataset_version"], model.uri,
                      model.metrics, stamp)
        figures = {**promotion, "gain_low": _finite(promotion.get("gain_low")), "gain_high": _finite(promotion.get("gain_high"))}
        columns = [f.column for f in FIGURES]
        tx.execute(
            f"INSERT INTO promotions (model_id, promoted, metric, champion_model_id, reason, decided_at, "
            f"{', '.join(columns)}) VALUES ({', '.join('?' * (6 + len(columns)))})",
            (model.model_id, int(promotion["promoted"]), key, champion.get("model_id"), promotion["reason"], stamp,
             *(figures.get(f.name) for f in FIGURES)),
        )
        if promote is not None:
            promote()  # last: if it fails, the rows roll back and production is unchanged


def _finite(value: float | None) -> float | None:
    """An interval end as the database keeps it: an unbounded end (too few resamples) as NULL."""
    return value if value is not None and math.isfinite(value) else None


def reconcile(db: Database, registry_uri: str) -> str | None:
    """Make the database know the production model the registry names; returns its id if it was missing."""
    current = registry.production(registry_uri)
    if current is None:
        return None
    model_id = current["model_id"]
    with db.transaction() as tx:
        if tx.query("SELECT 1 FROM models WHERE model_id = ?", (model_id,)):
            return None
        model = registry.show(registry_uri, model_id)
        lineage = model.lineage
        stamp = now()
        _insert_model(tx, model_id, lineage.get("run_id"), lineage.get("dataset_version"), model.uri, model.metrics,
                      model.created_at)
        tx.execute(
            "INSERT INTO promotions (model_id, promoted, metric, challenger_score, champion_score, champion_model_id, "
            "reason, decided_at) VALUES (?, 1, ?, NULL, NULL, ?, ?, ?)",
            (model_id, lineage.get("select_key") or "", (current.get("previous") or {}).get("model_id"), RECONCILED,
             current.get("promoted_at") or stamp),
        )
    return model_id


def _insert_model(tx, model_id: str, run_id: str | None, dataset_version: str | None, uri: str, metrics: dict,
                  stamp: str) -> None:
    tx.execute(
        "INSERT INTO models (model_id, run_id, dataset_version, uri, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (model_id, run_id, dataset_version, uri, dumps(metrics), stamp),
    )
