"""Database rows of the evaluate step: per-checkpoint metrics, the registered model, the decision."""

from __future__ import annotations

from steps.db import Database
from steps.jsonio import dumps
from steps.record.metadata import now
from steps.registry import RegisteredModel


def record_evaluation(db: Database, evaluation: dict, rows: list[dict], model: RegisteredModel, key: str) -> None:
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
        tx.execute(
            "INSERT INTO models (model_id, run_id, dataset_version, uri, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (model.model_id, evaluation["run_id"], evaluation["dataset_version"], model.uri, dumps(model.metrics), stamp),
        )
        tx.execute(
            "INSERT INTO promotions (model_id, promoted, metric, challenger_score, champion_score, champion_model_id, "
            "reason, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (model.model_id, int(promotion["promoted"]), key, promotion["challenger_score"],
             promotion["champion_score"], champion.get("model_id"), promotion["reason"], stamp),
        )
