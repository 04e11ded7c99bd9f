"""`trainyard retry RUN` for a local run: the same DAG again in the same folder, as `argo retry` does.

Argo's retry (workflow/util/util.go `FormulateRetryWorkflow`) keeps every succeeded node with its
outputs and resets the failed and errored ones, so the run goes on from the step that failed. Here
the succeeded tasks of `status.json` are kept (their output parameters and artifact folders), the
others run again under the same run id with the arguments `run.json` recorded, and the exit handler
runs again and updates the run's row. A fan-out task is kept or rerun as a whole.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from steps.config import load_config
from steps.errors import InputError
from workflows.local.artifacts import BucketArtifacts, chart_key_format
from workflows.local.runner import RunResult, TaskResult
from workflows.local.status import RUN_FILE, phase_of, read_status


def retry_local(run_dir: Path, parallel: int | None = None, changed: dict[str, str] | None = None) -> RunResult:
    """`changed`: workflow parameters to set anew for the tasks that run again (`argo retry -p`)."""
    import json

    from workflows.local.run import database_url, execute
    from workflows.pipeline import build_pipeline
    from workflows.sweep import build_sweep

    status = read_status(run_dir)
    try:
        invocation = json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        invocation = None
    if status is None or not isinstance(invocation, dict):
        raise InputError(f"{run_dir}: no {RUN_FILE} and status.json; only runs of this trainyard version can be retried")
    phase = phase_of(run_dir)
    if phase == "Running":
        raise InputError(f"{run_dir.name} is still running: `trainyard stop {run_dir.name}` first")
    if phase == "Succeeded":
        raise InputError(f"{run_dir.name} succeeded: nothing to retry (argo retry refuses it too); start a new run")
    parameters = {str(k): str(v) for k, v in invocation["parameters"].items()}
    unknown = sorted(set(changed or {}) - set(parameters))
    if unknown:
        raise InputError(f"-p {unknown[0]}: not a parameter of this run (known: {', '.join(parameters)})")
    parameters.update(changed or {})
    config = load_config(Path(parameters["config"]), shlex.split(parameters.get("overrides", "")))
    manifest = (build_sweep() if invocation.get("workflow") == "sweep" else build_pipeline()).to_dict()
    entry = next(t for t in manifest["spec"]["templates"] if t["name"] == manifest["spec"]["entrypoint"])
    tasks = {task["name"] for task in entry["dag"]["tasks"]}  # the exit handler always runs again
    previous = {name: TaskResult(name, "Succeeded", float(t.get("seconds", 0)), parameters=t.get("parameters") or {},
                                 artifacts={k: Path(v) for k, v in (t.get("artifacts") or {}).items()},
                                 log=Path(t["log"]) if t.get("log") else None, artifact_keys=t.get("artifact_keys") or {})
                for name, t in status.get("tasks", {}).items() if t.get("status") == "Succeeded" and name in tasks}
    kept = ", ".join(previous) or "none"
    print(f"Retrying {run_dir.name} in {run_dir}: keeping the succeeded tasks ({kept}), running the others again")
    store = BucketArtifacts(invocation["artifacts"], chart_key_format()) if invocation.get("artifacts") else None
    return execute(manifest, run_dir, parameters, database_url(config.database.url, run_dir.parent), store,
                   parallel or int(invocation.get("parallel", 1)), previous)
