"""The `trainyard-nightly` CronWorkflow: runs the pipeline template every night.

It references the installed WorkflowTemplate instead of copying it, so there is one pipeline.
With no annotation version given, record picks the newest `annotations/*` tag and is a no-op
when that version is already recorded (it returns the existing version after a database lookup
and a `git ls-remote`), so every night retrains on the newest recorded data.

The pipeline's record, which this runs, is not memoized (only the sweep's is): its cache key
would be the parameters, and with an empty annotation version the same key stands for a different
version each time a new tag appears. Record's own idempotency is keyed on the resolved version
instead, costs seconds, and also holds for manual runs and local runs.
"""

from __future__ import annotations

from hera.workflows import CronWorkflow
from hera.workflows import models as m

from workflows.pipeline import PIPELINE_NAME

NIGHTLY_NAME = "trainyard-nightly"
SCHEDULE = "0 2 * * *"
TIMEZONE = "Etc/UTC"


def build_nightly() -> CronWorkflow:
    return CronWorkflow(
        name=NIGHTLY_NAME,
        schedules=[SCHEDULE],
        timezone=TIMEZONE,
        concurrency_policy="Forbid",  # never two retrainings at once
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=7,
        failed_jobs_history_limit=7,
        labels={"app.kubernetes.io/name": "trainyard", "app.kubernetes.io/component": "nightly"},
        workflow_template_ref=m.WorkflowTemplateRef(name=PIPELINE_NAME),
    )
