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
import sys
from collections.abc import Sequence
from pathlib import Path

from steps.cli import run_cli
from steps.config import load_config
from steps.evaluate.arguments import add_arguments, write_outputs
from steps.errors import InputError


def parse_scores(text: str, checkpoints: dict[str, tuple[int, Path]]) -> list[dict]:
    """Rows (checkpoint, iteration, path, metrics) from the aggregated scores: a list of each
    pod's list. Hostile input: every field is checked, unknown checkpoints are refused."""
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
        if name not in checkpoints or not isinstance(metrics, dict):
            raise InputError(f"--scores: entry {str(row)[:80]!r} names no checkpoint of --checkpoints or has no metrics")
        if not all(isinstance(v, (int, float)) or v is None for v in metrics.values()):
            raise InputError(f"--scores: {name}: metrics must be numbers (null for not a number)")
        iteration, path = checkpoints[name]
        clean = {str(k): float("nan") if v is None else float(v) for k, v in metrics.items()}
        rows.append({"checkpoint": name, "iteration": iteration, "path": str(path), "metrics": clean})
    if not rows:
        raise InputError("--scores: no checkpoint was scored (did every evaluate pod fail?)")
    if len({row["checkpoint"] for row in rows}) != len(rows):
        raise InputError("--scores: a checkpoint was scored twice")
    return sorted(rows, key=lambda row: row["iteration"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.select",
        description="Gather the fan-out evaluation's scores, select the best checkpoint by evaluate.select_key, "
        "register it, and promote it if it beats the production model (once per run).",
    )
    parser.add_argument("--scores", required=True, metavar="JSON",
                        help="the evaluate pods' scores: a JSON list with each pod's list of scores")
    add_arguments(parser)
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides, args.set_list)

    from steps.dataset_repo import checkout_dataset
    from steps.evaluate.evaluate import conclude, prepare, score_checkpoints, select_best
    from steps.evaluate.groups import list_checkpoints

    found = {path.name: (iteration, path) for iteration, path in list_checkpoints(args.checkpoints)}
    rows = parse_scores(args.scores, found)  # before the checkout: bad input fails at once
    print(f"select: {len(rows)} checkpoints scored by the evaluate pods", flush=True)
    with checkout_dataset(args.repo or config.dataset.repo, args.dataset_version, config.dataset.dataset_dir) as data:
        gt = prepare(config, data, args.output)
        best = select_best(rows, config.evaluate.select_key, config.evaluate.select_mode)
        _, predictions = score_checkpoints(config, gt, data, [found[best["checkpoint"]]], args.output)
        result = conclude(config, gt, data, rows, predictions, args.output, args.run_id, args.dataset_version)
    write_outputs(args, result.promoted, result.model_uri)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
