"""`trainyard models list|show|history|promote|rollback`: the model registry (a folder or gs:// prefix)."""

from __future__ import annotations

import argparse
import json

DEFAULT_REGISTRY = "runs/registry"  # where `trainyard run --local` registers models
REGISTRY_HELP = f"registry folder or gs://bucket/prefix (default {DEFAULT_REGISTRY}; after `run --local --output DIR`: DIR/registry)"
# A hand promotion of a model this far below production on production's selection key needs --force.
FAR_BELOW = 0.05


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, show, promote, roll back or export registered models",
                       description="Work with the model registry: every registered model with its metrics and "
                       "lineage, and the production pointer that the test step and deployments use.")
    p.add_argument("--registry", help=REGISTRY_HELP)
    # --registry also after the action (`models list --registry DIR`), where users type it.
    registry = argparse.ArgumentParser(add_help=False)
    registry.add_argument("--registry", default=argparse.SUPPRESS, help=REGISTRY_HELP)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", parents=[registry], help="every model, oldest first, with its selection score, date, "
                       "dataset version and run; * marks production")
    show = actions.add_parser("show", parents=[registry], help="one model: a summary, then its metrics and lineage as JSON")
    show.add_argument("model_id", help="model id, or 'production'")
    actions.add_parser("history", parents=[registry], help="every promotion and rollback of production, oldest first")
    promote = actions.add_parser("promote", parents=[registry], help="make a model production by hand: no bootstrap test, but one scoring far below production needs --force")
    promote.add_argument("model_id")
    promote.add_argument("--reason", default="promoted by hand", help="recorded in the pointer's history")
    promote.add_argument("--force", action="store_true",
                         help=f"promote even a model that scores more than {FAR_BELOW} below production on production's "
                         "selection key")
    actions.add_parser("rollback", parents=[registry], help="put the previous production model back")
    export = actions.add_parser("export", parents=[registry], help="write a model as TorchScript or ONNX for a serving stack")
    export.add_argument("model_id", help="model id, or 'production'")
    export.add_argument("--format", choices=["torchscript", "onnx"], required=True)
    export.add_argument("--output", help="file to write (default: <model id>.pt or .onnx here)")
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


def _score(model: object) -> tuple[str, float | None]:
    """The model's selection key (from its lineage) and its value on its validation split."""
    key = str(model.lineage.get("select_key") or "segm/AP")  # type: ignore[attr-defined]
    value = model.metrics.get(key)  # type: ignore[attr-defined]
    return key, float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def run(args: argparse.Namespace) -> int:
    from steps import registry
    from steps.errors import InputError

    args.registry = _registry(args.registry)
    current = registry.production(args.registry)
    current_id = current["model_id"] if current else None
    if args.action == "list":
        models = registry.list_models(args.registry)
        if not models:
            print(f"{args.registry}: no models registered yet")
            return 0
        print(f"  {'model':<32} {'created (UTC)':<17} {'dataset':<13} {'run':<26} selection score")
        for model in models:
            mark = "*" if model.model_id == current_id else " "
            key, value = _score(model)
            score = f"{key} = {value:.4f}" if value is not None else f"{key} = n/a"
            print(f"{mark} {model.model_id:<32} {model.created_at[:16].replace('T', ' '):<17} "
                  f"{model.lineage.get('dataset_version') or '-':<13} {model.lineage.get('run_id') or '-':<26} {score}")
    elif args.action == "show":
        model_id = current_id if args.model_id == "production" else args.model_id
        if model_id is None:
            raise InputError(f"{args.registry}: no production model yet")
        model = registry.show(args.registry, model_id)
        key, value = _score(model)
        lineage = model.lineage
        print(f"model      {model.model_id}{'  (production)' if model.model_id == current_id else ''}")
        print(f"created    {model.created_at}")
        print(f"selected   {key} = {'n/a' if value is None else f'{value:.4f}'} (validation), checkpoint "
              f"{lineage.get('checkpoint') or '-'} at iteration {lineage.get('iteration', '-')}")
        print(f"trained on {lineage.get('dataset_version') or '-'} (annotations {lineage.get('annotation_version') or '-'}), "
              f"run {lineage.get('run_id') or '-'}, backend {lineage.get('backend') or '-'}")
        print(f"uri        {model.uri}")
        print()
        from steps.jsonio import finite

        info = {"model_id": model.model_id, "uri": model.uri, "production": model.model_id == current_id,
                "metrics": model.metrics, "lineage": model.lineage}
        print(json.dumps(finite(info), indent=2))
    elif args.action == "history":
        for event in registry.history(args.registry):
            extra = f" (rolled back {event['rolled_back']})" if event.get("rolled_back") else ""
            print(f"{str(event.get('at'))[:19]}  {event.get('action'):<8} {event.get('model_id')}{extra}  {event.get('reason')}")
    elif args.action == "promote":
        if not args.force:
            _refuse_far_below(args.registry, args.model_id, current)
        registry.promote(args.registry, args.model_id, args.reason)
        print(f"production is now {args.model_id}")
    elif args.action == "export":
        from workflows.export import export_model

        model_id = current_id if args.model_id == "production" else args.model_id
        if model_id is None:
            raise InputError(f"{args.registry}: no production model yet")
        print(f"wrote {export_model(args.registry, model_id, args.format, args.output)}")
    else:
        pointer = registry.rollback(args.registry)
        print(f"production is now {pointer['model_id']} (rolled back from {current_id}; "
              "`trainyard models history` keeps both)")
    return 0


def _refuse_far_below(registry_uri: str, model_id: str, current: dict | None) -> None:
    """A hand promotion of a model far below production on production's own selection key is
    most likely a mistyped id: it needs --force. Both scores are each model's validation score,
    as recorded when it was registered."""
    from steps import registry
    from steps.errors import InputError

    if current is None or current["model_id"] == model_id:
        return
    champion = registry.show(registry_uri, current["model_id"])
    key, theirs = _score(champion)
    ours = registry.show(registry_uri, model_id).metrics.get(key)
    if theirs is None or not isinstance(ours, int | float) or isinstance(ours, bool):
        return
    if ours < theirs - FAR_BELOW:
        raise InputError(f"{model_id} scores {key} = {ours:.4f}, production {current['model_id']} {theirs:.4f} "
                         f"({ours - theirs:+.4f}); pass --force to promote it anyway")
