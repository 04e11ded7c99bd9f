"""`trainyard run --local`: the pipeline template on this machine, with embedded defaults.

Local stand-ins for the cluster parts: the database Secret becomes a SQLite file, the registry
bucket a folder, the dataset repo a generated sample repo with a folder DVC remote. Everything
lands under one runs folder (default `./runs`): `<run-id>/` per run, plus the shared
`trainyard.sqlite`, `registry/` and `sample-dataset/` that make later runs champion/challenger
against earlier ones.
"""

from __future__ import annotations

import os
import secrets
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from steps.config import load_config, split_overrides
from steps.db import URL_ENV
from steps.errors import InputError
from steps.jsonio import write_json
from steps.redact import redact, redact_value
from workflows.local.artifacts import BucketArtifacts, chart_key_format
from workflows.local.checks import check_enums, check_parameter_names
from workflows.local.runner import LocalRunner, RunResult
from workflows.local.sample_repo import ensure_sample_repo
from workflows.local.status import RUN_FILE
from workflows.local.summary import print_summary
from workflows import sweep_sets
from workflows.pipeline import DATABASE_SECRET, build_pipeline
from workflows.sweep import build_sweep

DEFAULT_CONFIG = Path("configs/local.yaml")


def _default_config() -> Path:
    for candidate in (DEFAULT_CONFIG, Path(__file__).resolve().parents[2] / DEFAULT_CONFIG):
        if candidate.is_file():
            return candidate.resolve()
    return DEFAULT_CONFIG  # load_config names it when missing


@dataclass(frozen=True)
class LocalPlan:
    """What a local run will use, decided before anything runs."""

    run_dir: Path
    config: Path
    parameters: dict[str, str]
    database: str  # a secret: print only through redact()

    def header(self) -> str:
        p = self.parameters
        return redact(f"Run {self.run_dir.name}\n  dataset repo: {p['dataset-repo']}\n  config: {p['config']}\n"
                      f"  overrides: {p['overrides'] or '-'}\n  output: {self.run_dir}\n"
                      f"  database: {redact_value(self.database)}")


def plan_local_run(config: Path | None, overrides: list[str], parameters: dict[str, str], runs_dir: Path | None,
                   dataset_repo: str | None, sweep: list[dict[str, str]] | None = None) -> LocalPlan:
    runs = (runs_dir or Path("runs")).resolve()
    # A `-p config=` / `-p overrides=` of the user's is what the steps get; the local defaults
    # (configs/local.yaml, the registry folder under the runs folder) fill in only what is not given.
    config_path = Path(parameters["config"]) if "config" in parameters else (config or _default_config()).resolve()
    user_overrides = split_overrides(parameters.get("overrides", ""), "-p overrides")
    resolved = load_config(config_path, [*overrides, *user_overrides])  # bad config fails here, before any work
    for branch in sweep or []:  # and so does a sweep branch's bad key or value
        load_config(config_path, [*overrides, *user_overrides, *split_overrides(branch["overrides"], "--sweep")])
    registry = resolved.promotion.registry
    local = []
    if "://" not in registry and not Path(registry).is_absolute():
        local.append(f"promotion.registry={runs / registry}")
    # Later items win, so the user's own settings come last.
    step_overrides = shlex.join([*local, *overrides, *user_overrides])
    database = database_url(resolved.database.url, runs)

    repo = parameters.get("dataset-repo") or dataset_repo or resolved.dataset.repo
    if not repo:
        repo = str(ensure_sample_repo(runs / "sample-dataset"))
    elif "://" not in repo and not Path(repo).exists():
        raise InputError(f"dataset repo {repo}: no such folder (give a git URL or an existing dataset repo)")
    run_dir = new_run_dir(runs)
    # A retried pod starts afresh, as on the cluster: train resumes from its durable checkpoints,
    # locally a folder in the run's folder.
    params = {"checkpoint-root": str(run_dir / "durable-checkpoints"), **parameters, "dataset-repo": repo,
              "config": str(config_path), "overrides": step_overrides}
    return LocalPlan(run_dir, config_path, params, database)


def new_run_dir(runs: Path) -> Path:
    """A run folder of its own, made now: `local-<UTC time>-<random>`. Runs started in the same
    second (or sharing a database from two runs folders) never share an id, and the folder is
    claimed by its creation, so not even a repeated random part can give two runs one folder."""
    runs.mkdir(parents=True, exist_ok=True)
    while True:
        run_dir = runs / f"{datetime.now(timezone.utc):local-%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue


def database_url(configured: str, runs: Path) -> str:
    """The secret's value locally: TRAINYARD_DATABASE_URL, else the config's, a relative SQLite
    file inside the runs folder. A secret: print only through redact()."""
    database = os.environ.get(URL_ENV) or configured
    if database.startswith("sqlite:///") and not Path(database[len("sqlite:///"):]).is_absolute():
        database = f"sqlite:///{runs / database[len('sqlite:///'):]}"
    return database


def run_local(config: Path | None, overrides: list[str], parameters: dict[str, str], runs_dir: Path | None,
              dataset_repo: str | None, artifacts: str | None = None, parallel: int = 1,
              sweep: list[dict[str, str]] | None = None) -> RunResult:
    """`artifacts`: gs://BUCKET[/PREFIX] to store output artifacts there under Argo's keys (default: folders).
    `sweep`: run `trainyard-sweep` with these branches (workflows/sweep_sets.py) instead of the pipeline."""
    store = BucketArtifacts(artifacts, chart_key_format()) if artifacts else None
    manifest = (build_sweep() if sweep is not None else build_pipeline()).to_dict()
    # Before anything is made (the sample dataset, the run folder): a misspelt -p fails at once.
    declared = manifest["spec"].get("arguments", {}).get("parameters", [])
    check_parameter_names(parameters, [p["name"] for p in declared])
    check_enums(parameters, declared)  # `-p force-retrain=TRUE` too
    plan = plan_local_run(config, overrides, parameters, runs_dir, dataset_repo, sweep)
    if sweep is not None:
        # Branches hand their checkpoints on through the durable folder.
        if not plan.parameters["checkpoint-root"]:
            plan.parameters["checkpoint-root"] = str(plan.run_dir / "durable-checkpoints")
        plan.parameters["sweep"] = sweep_sets.parameter(sweep)
        print(redact(f"Sweep of {len(sweep)} branches: " + "; ".join(f"{b['branch']}: {b['overrides']}" for b in sweep)))
    print(plan.header() + (f"\n  artifacts: {artifacts}/{store.key_format}" if store else ""))
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    # What `trainyard retry` needs to run this DAG again in the same folder (no secret: the
    # database URL is not a parameter).
    write_json(plan.run_dir / RUN_FILE, {"workflow": "sweep" if sweep is not None else "pipeline",
                                         "parameters": plan.parameters, "artifacts": artifacts, "parallel": parallel})
    return execute(manifest, plan.run_dir, plan.parameters, plan.database, store, parallel)


def execute(manifest: dict, run_dir: Path, parameters: dict[str, str], database: str, store: BucketArtifacts | None,
            parallel: int, previous: dict | None = None) -> RunResult:
    """Run the DAG in `run_dir` and print the summary; `previous`: a retry's kept tasks."""
    runner = LocalRunner(manifest, run_dir, parameters, secrets={DATABASE_SECRET: database}, artifacts=store,
                         parallel=parallel, echo=lambda line: print(redact(line)), previous=previous)
    result = runner.run()
    print_summary(result)
    return result
