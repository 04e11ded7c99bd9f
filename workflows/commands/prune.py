"""`trainyard prune`: free the disk that local runs and never-promoted models take.

Each local run keeps its checkpoints (about 250 MB each for the demo's resnet18), so a laptop
fills up quickly. Pruning removes old run folders and, with --models, registered models that
are neither production nor a rollback target. Nothing is removed without --yes: a dry run lists.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="remove old local runs and unpromoted models (lists only, unless --yes)",
                       description="Remove local run folders (<runs>/local-*) except the newest --keep, and with "
                       "--models the registered models of a local registry that are neither production nor in "
                       "its rollback history. The database, the sample dataset and production stay. For a "
                       "gs:// registry use a bucket lifecycle rule instead.")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="the local runs folder (default ./runs)")
    p.add_argument("--keep", type=int, default=3, help="newest runs to keep (default 3)")
    p.add_argument("--models", action="store_true", help="also remove unpromoted models from <runs>/registry")
    p.add_argument("--yes", action="store_true", help="remove; without it, only list what would go")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from steps.errors import InputError

    if not args.runs_dir.is_dir():
        raise InputError(f"{args.runs_dir}: no such runs folder (give --runs-dir, the folder of `run --local --output`)")
    if args.keep < 0:
        raise InputError(f"--keep {args.keep}: give 0 or more")
    from workflows.local.status import phase_of

    runs = sorted((p for p in args.runs_dir.glob("local-*") if p.is_dir() and not p.is_symlink()), key=lambda p: p.name)
    running = [p for p in runs if phase_of(p) == "Running"]  # its runner still writes there
    for path in running:
        print(f"keeping {path}: still running (`trainyard stop {path.name}` first)")
    doomed = [p for p in runs[: max(len(runs) - args.keep, 0)] if p not in running]
    if args.models:
        doomed += _unpromoted_models(args.runs_dir / "registry")
    reached_by_link = [path for path in doomed if not _own_folder(args.runs_dir, path)]
    for path in reached_by_link:
        print(f"keeping {path}: it is reached through a symlink, which prune never follows out of {args.runs_dir}")
    doomed = [path for path in doomed if path not in reached_by_link]
    total = sum(_size(p) for p in doomed)
    for path in doomed:
        print(f"{'removing' if args.yes else 'would remove'} {path} ({_size(path) / 1e6:.0f} MB)")
        if args.yes:
            shutil.rmtree(path)
    verb = "freed" if args.yes else "would free (add --yes)"
    print(f"{len(doomed)} folder(s), {verb} {total / 1e6:.0f} MB" if doomed else "nothing to prune")
    return 0


def _unpromoted_models(registry: Path) -> list[Path]:
    """Model folders that production.json neither points at nor can roll back to."""
    from steps import registry as models

    if not registry.is_dir():
        return []
    keep: set[str] = set()
    pointer = models.production(str(registry))
    while isinstance(pointer, dict):
        keep.add(str(pointer.get("model_id")))
        pointer = pointer.get("previous")
    folder = registry / "models"
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and p.name not in keep) if folder.is_dir() else []


def _own_folder(runs: Path, path: Path) -> bool:
    """`path` is a folder under `runs` reached without a symlink (`registry` or `registry/models`
    linked elsewhere would make prune delete there)."""
    try:
        relative = path.relative_to(runs)
    except ValueError:
        return False
    return path.resolve() == runs.resolve() / relative


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
