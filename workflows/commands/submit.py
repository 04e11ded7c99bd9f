"""`trainyard submit`: a run of the installed WorkflowTemplate on an Argo server."""

from __future__ import annotations

import argparse

# The Hera definitions take a second to import: only `run` loads them, so `--help` stays fast.


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="submit a run of the installed WorkflowTemplate to an Argo server",
                       description="Submit a run of the pipeline's WorkflowTemplate (installed by the Helm chart) "
                       "through the Argo server API, print its name and UI link, and with --watch follow its steps to "
                       "the end (exit 1 unless it succeeds). Server, token and namespace come from the flags or "
                       "ARGO_SERVER, ARGO_TOKEN, ARGO_NAMESPACE, ARGO_SECURE, ARGO_INSECURE_SKIP_VERIFY, ARGO_BASE_HREF.")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="workflow parameter (repeatable), e.g. -p annotation-version=annotations/v3; names are "
                   "checked before sending (docs/cluster.md lists them)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value as `run --local --set` does, e.g. --set train.iterations=500 "
                   "(repeatable; sent in the run's `overrides` parameter, after any -p overrides=...)")
    p.add_argument("--sweep", metavar="FILE|GRID",
                   help="run the sweep template (RELEASE-trainyard-sweep) with these branches, as `run --local "
                   "--sweep`: a YAML file or a grid such as 'train.lr=[0.01,0.02]'")
    p.add_argument("--watch", action="store_true", help="follow the run until it ends")
    p.add_argument("--watch-only", metavar="NAME", help="submit nothing: follow the existing run NAME (e.g. after a token expired)")
    p.add_argument("--server", help="Argo server, host:port or URL (default: ARGO_SERVER)")
    p.add_argument("-n", "--namespace",
                   help="namespace of the installed template (default: ARGO_NAMESPACE, else the kubeconfig context's)")
    p.add_argument("--token", help="bearer token (default: ARGO_TOKEN, else the kubeconfig user's token or credential plugin)")
    p.add_argument("--insecure-skip-verify", action="store_true",
                   help="do not verify the server's TLS certificate (default: ARGO_INSECURE_SKIP_VERIFY)")
    p.add_argument("--template",
                   help="WorkflowTemplate to run (default trainyard-pipeline, the Helm release `trainyard`'s; "
                   "a release RELEASE installs RELEASE-trainyard-pipeline)")
    p.add_argument("--poll", type=float, default=5.0, metavar="SECONDS", help="--watch polling interval (default 5)")
    p.set_defaults(func=run)


def check_override_parameters(items: list[str]) -> None:
    """Overrides are checked here, before they land in the Workflow object that everyone with read
    access to workflows in the namespace can see (a database.url in them is refused)."""
    import json

    from steps.config import check_overrides
    from steps.errors import InputError

    for item in items:
        name, _, value = item.partition("=")
        if name == "overrides":
            check_overrides(value, "-p overrides")
        elif name == "sweep":
            try:
                branches = json.loads(value)
            except (ValueError, RecursionError):
                raise InputError("-p sweep: not JSON; give a list of {\"branch\": ..., \"overrides\": ...}") from None
            for branch in branches if isinstance(branches, list) else []:
                if isinstance(branch, dict) and isinstance(branch.get("overrides"), str):
                    check_overrides(branch["overrides"], "-p sweep")


def run(args: argparse.Namespace) -> int:
    from workflows.pipeline import PIPELINE_NAME
    from workflows.submit import ArgoClient, ArgoServer, check_poll, parse_parameters, watch
    from workflows.sweep import SWEEP_NAME

    args.template = args.template or (SWEEP_NAME if args.sweep else PIPELINE_NAME)

    check_poll(args.poll)
    parse_parameters(args.param, known=None)  # the form (NAME=VALUE) before anything is resolved
    args.param = with_settings(args.param, args.overrides, args.sweep)
    check_override_parameters(args.param)
    server = ArgoServer.resolve(args.server, args.namespace, args.token, args.insecure_skip_verify)
    client = ArgoClient(server)
    if args.watch_only:
        return 0 if watch(client, args.watch_only, poll_seconds=args.poll) == "Succeeded" else 1
    # Names are checked against the installed template, not this checkout's copy of it.
    parameters = parse_parameters(args.param, client.template_parameters(args.template), args.template) if args.param else []
    name = client.submit(parameters, args.template)
    print(f"submitted {name} in namespace {server.namespace}")
    print(f"  {server.ui_link(name)}")
    if not args.watch:
        return 0
    return 0 if watch(client, name, poll_seconds=args.poll) == "Succeeded" else 1


def with_settings(params: list[str], overrides: list[str], sweep: str | None) -> list[str]:
    """`-p` items with `--set`'s overrides appended to `overrides` and `--sweep`'s branches as
    `sweep`, checked here as `run --local` checks them (keys and values against the config
    schema), so a typo fails before anything is submitted."""
    import shlex
    from pathlib import Path

    from steps.config import load_config

    if not overrides and sweep is None:
        return params
    given = dict(item.partition("=")[::2] for item in params)
    joined = shlex.join(shlex.split(given.get("overrides", "")) + overrides)
    load_config(None, shlex.split(joined))
    items = [item for item in params if item.partition("=")[0] not in ("overrides", "sweep")]
    if joined:
        items.append(f"overrides={joined}")
    if sweep is not None:
        from workflows import sweep_sets

        path = Path(sweep)
        branches = sweep_sets.from_file(path) if path.is_file() else sweep_sets.from_grid(sweep)
        for branch in branches:
            load_config(None, [*shlex.split(joined), *shlex.split(branch["overrides"])])
        items.append(f"sweep={sweep_sets.parameter(branches)}")
    return items
