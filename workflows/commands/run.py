"""`trainyard run --local`: the pipeline on this machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from steps.errors import InputError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the pipeline (--local: on this machine, no cluster)",
                       description="Execute the rendered WorkflowTemplate's DAG on this machine: each step as a "
                       "subprocess, artifacts as folders. With no dataset repo, a sample dataset is generated.")
    p.add_argument("--local", action="store_true", help="run on this machine (required)")
    p.add_argument("--config", type=Path, help="pipeline config (default configs/local.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.iterations=50 (repeatable)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="workflow parameter, e.g. -p annotation-version=annotations/v2 (repeatable)")
    p.add_argument("--dataset-repo", help="dataset repo to record from (default: generate runs/sample-dataset)")
    p.add_argument("--output", type=Path, help="folder for runs, the local database and registry (default ./runs)")
    p.add_argument("--artifacts", metavar="gs://BUCKET/PREFIX",
                   help="also store output artifacts in this bucket under Argo's keys (the chart's keyFormat); "
                   "steps then read their inputs from there (default: folders only)")
    p.add_argument("--parallel", type=int, default=1, metavar="N",
                   help="run up to N steps at once, e.g. the fan-out evaluation's pods (default 1)")
    p.add_argument("--sweep", metavar="FILE|GRID",
                   help="run the trainyard-sweep workflow: one train+evaluate branch per override set, from a YAML "
                   "file (a list of override sets, or grid:) or a grid, e.g. 'train.lr=[0.01,0.02] "
                   "model.backbone=[resnet34,resnet50]'")
    p.set_defaults(func=run)


def parse_params(items: list[str]) -> dict[str, str]:
    parameters = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"-p {item!r}: expected NAME=VALUE, e.g. -p annotation-version=annotations/v1")
        parameters[name] = value
    return parameters


def run(args: argparse.Namespace) -> int:
    if not args.local:
        raise InputError("`run` runs on this machine: add --local; on a cluster, `trainyard submit` runs the installed "
                         "template with the same --set, -p and --sweep")
    if args.parallel < 1:
        raise InputError(f"--parallel {args.parallel}: give at least 1")
    from workflows.local.run import run_local

    sweep = None
    if args.sweep is not None:
        from workflows import sweep_sets

        path = Path(args.sweep)
        sweep = sweep_sets.from_file(path) if path.is_file() else sweep_sets.from_grid(args.sweep)

    result = run_local(config=args.config, overrides=args.overrides, parameters=parse_params(args.param),
                       runs_dir=args.output, dataset_repo=args.dataset_repo, artifacts=args.artifacts,
                       parallel=args.parallel, sweep=sweep)
    return 0 if result.succeeded else 1
