"""`python -m steps.select`: the fan-in of the fan-out evaluation.

Each evaluate pod scored some checkpoints; Argo hands this step all their scores as one JSON
list (the aggregated output parameter of the `withParam` group). It picks the best by
`evaluate.select_key`, predicts that one checkpoint again (the paired bootstrap and the PR
curves need its per-image predictions), and then registers, decides and promotes exactly as a
single evaluate pod does (steps/evaluate/evaluate.py `conclude`): once per run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from steps.cli import dataset_folder, run_cli
from steps.errors import InputError
from steps.evaluate.arguments import add_arguments, load_branch_config, write_outputs
from steps.evaluate.groups import CHECKPOINT
from steps.log import get as get_logger

log = get_logger("select")

BRANCH = re.compile(r"b\d{1,3}")


def parse_scores(text: str) -> list[dict]:
    """Rows (checkpoint, iteration, metrics; a sweep's also branch, overrides, source) from the
    aggregated scores: a list of each pod's list. Hostile input: every field is checked."""
    try:
        groups = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--scores: not JSON ({exc}); expected the evaluate group's outputs.parameters.scores") from None
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        raise InputError("--scores: expected a JSON list of lists of scores (one list per evaluate pod)")
    rows = []
    for row in (row for group in groups for row in group):
        name = row.get("checkpoint") if isinstance(row, dict) else None
        metrics = row.get("metrics") if isinstance(row, dict) else None
        match = CHECKPOINT.fullmatch(name) if isinstance(name, str) else None
        if match is None or not isinstance(metrics, dict):
            raise InputError(f"--scores: entry {str(row)[:80]!r} names no checkpoint (model_<iteration>.pth) or has no metrics")
        if not all(isinstance(v, (int, float)) or v is None for v in metrics.values()):
            raise InputError(f"--scores: {name}: metrics must be numbers (null for not a number)")
        clean = {str(k): float("nan") if v is None else float(v) for k, v in metrics.items()}
        branch = {k: row[k] for k in ("branch", "overrides", "source") if isinstance(row.get(k), str) and row[k]}
        if branch and not BRANCH.fullmatch(branch.get("branch", "")):
            raise InputError(f"--scores: {name}: branch {branch.get('branch')!r} is not a branch name (b0, b1, ...)")
        label = f"{branch['branch']}/{name}" if branch else name  # checkpoint names repeat across branches
        rows.append({"checkpoint": label, "file": name, "iteration": int(match.group(1)), "metrics": clean, **branch})
    if not rows:
        raise InputError("--scores: no checkpoint was scored (did every evaluate pod fail?)")
    if len({row["checkpoint"] for row in rows}) != len(rows):
        raise InputError("--scores: a checkpoint was scored twice")
    return sorted(rows, key=lambda row: (row.get("branch", ""), row["iteration"]))


@contextmanager
def best_checkpoint(args: argparse.Namespace, best: dict) -> Iterator[Path]:
    """The winning checkpoint's file: in --checkpoints, or downloaded from its branch's source."""
    from steps.evaluate.arguments import checkpoints_folder
    from steps.evaluate.groups import list_checkpoints

    if "source" in best:
        args = argparse.Namespace(**{**vars(args), "checkpoints": None, "checkpoint_uri": best["source"]})
    elif args.checkpoints is None and args.checkpoint_uri is None:
        raise InputError("give --checkpoints or --checkpoint-uri (the scores name no source)")
    with checkpoints_folder(args) as folder:
        found = {path.name: path for _, path in list_checkpoints(folder)}
        if best["file"] not in found:
            raise InputError(f"{best['checkpoint']}: not among the train run's checkpoints ({', '.join(found)})")
        yield found[best["file"]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.select",
        description="Gather the fan-out evaluation's scores (a sweep's: of every branch), select the best "
        "checkpoint by evaluate.select_key, register it, and promote it if it beats the production model "
        "(once per run).",
    )
    parser.add_argument("--scores", required=True, metavar="JSON",
                        help="the evaluate pods' scores: a JSON list with each pod's list of scores")
    add_arguments(parser, checkpoints_required=False)
    args = parser.parse_args(argv)
    config = load_branch_config(args)

    from steps.evaluate.evaluate import conclude, prepare, score_checkpoints, select_best

    rows = parse_scores(args.scores)  # before the checkout: bad input fails at once
    log.info(f"select: {len(rows)} checkpoints scored by the evaluate pods")
    best = select_best(rows, config.evaluate.select_key, config.evaluate.select_mode, config.evaluate.tie_break_key)
    if best.get("overrides"):
        # The model is registered with the settings of the branch that trained it.
        log.info(f"select: best branch {best['branch']}: {best['overrides']}")
        config = load_branch_config(args, best["overrides"])
    with dataset_folder(parser, args, config) as data, best_checkpoint(args, best) as path:
        best["path"] = str(path)
        gt = prepare(config, data, args.output)
        _, predicted = score_checkpoints(config, gt, data, [(best["iteration"], path)], args.output)
        predictions = {best["checkpoint"]: predicted[path.name]}
        version = args.dataset_version or str(args.dataset_dir)  # what the lineage records
        training = path.parent.parent if path.parent.name == "checkpoints" else path.parent  # the train output
        result = conclude(config, gt, data, rows, predictions, args.output, args.run_id, version, training)
    write_outputs(args, result.promoted, result.model_uri)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
