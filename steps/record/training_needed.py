"""Whether a recorded dataset version still needs training: the nightly run's skip decision.

A version recorded just now needs a model; an existing one needs one only if no model was ever
registered on it (evaluate registers every model it selects). The pipeline skips train, evaluate
and test otherwise, unless the run passes `force-retrain=true`.
"""

from __future__ import annotations

from steps.db import Database


def needs_training(db: Database, version: str, created: bool) -> bool:
    if created:
        return True
    with db.transaction() as tx:
        return not tx.query("SELECT 1 FROM models WHERE dataset_version = ? LIMIT 1", (version,))
