"""`trainyard models list|show|promote|rollback`: the model registry (a folder or gs:// prefix)."""

from __future__ import annotations

import argparse
import json

DEFAULT_REGISTRY = "runs/registry"  # where `trainyard run --local` registers models
REGISTRY_HELP = f"registry folder or gs://bucket/prefix (default {DEFAULT_REGISTRY}; after `run --local --output DIR`: DIR/registry)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, show, promote or roll back registered models",
                       description="Work with the model registry: every registered model with its metrics and "
                       "lineage, and the production pointer that the test step and deployments use.")
    p.add_argument("--registry", help=REGISTRY_HELP)
    # --registry also after the action (`models list --registry DIR`), where users type it.
    registry = argparse.ArgumentParser(add_help=False)
    registry.add_argument("--registry", default=argparse.SUPPRESS, help=REGISTRY_HELP)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", parents=[registry], help="every model, oldest first; * marks production")
    show = actions.add_parser("show", parents=[registry], help="one model's metrics and lineage as JSON")
    show.add_argument("model_id", help="model id, or 'production'")
    promote = actions.add_parser("promote", parents=[registry], help="make a model production (by hand: no champion check)")
    promote.add_argument("model_id")
    promote.add_argument("--reason", default="promoted by hand", help="recorded in the pointer's history")
    actions.add_parser("rollback", parents=[registry], help="put the previous production model back")
    p.set_defaults(func=run)


def _registry(given: str | None) -> str:
    if given:
        return given
    from pathlib import Path

    if not Path(DEFAULT_REGISTRY).is_dir():
        from steps.errors import InputError

        raise InputError(f"{DEFAULT_REGISTRY}: no registry in this folder; `trainyard run --local --output DIR` "
                         "registers models in DIR/registry: pass --registry DIR/registry")
    return DEFAULT_REGISTRY


def run(args: argparse.Namespace) -> int:
    from steps import registry

    args.registry = _registry(args.registry)
    current = registry.production(args.registry)
    current_id = current["model_id"] if current else None
    if args.action == "list":
        models = registry.list_models(args.registry)
        if not models:
            print(f"{args.registry}: no models registered yet")
        for model in models:
            mark = "*" if model.model_id == current_id else " "
            metrics = "  ".join(f"{k}={v:.4f}" for k, v in model.metrics.items()
                                if k in ("segm/AP", "bbox/AP", "dv_mAP", "EIR") and isinstance(v, float))
            print(f"{mark} {model.model_id}  {model.lineage.get('dataset_version') or '-':<14} {metrics}")
    elif args.action == "show":
        model_id = current_id if args.model_id == "production" else args.model_id
        if model_id is None:
            from steps.errors import InputError

            raise InputError(f"{args.registry}: no production model yet")
        model = registry.show(args.registry, model_id)
        info = {"model_id": model.model_id, "uri": model.uri, "production": model.model_id == current_id,
                "metrics": model.metrics, "lineage": model.lineage}
        from steps.jsonio import finite

        print(json.dumps(finite(info), indent=2))
    elif args.action == "promote":
        registry.promote(args.registry, args.model_id, args.reason)
        print(f"production is now {args.model_id}")
    else:
        pointer = registry.rollback(args.registry)
        print(f"production is now {pointer['model_id']} (rolled back from {current_id})")
    return 0
