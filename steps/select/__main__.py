"""`python -m steps.select`: the fan-in of the fan-out evaluation.

Each evaluate pod scored some checkpoints and wrote them as one object under the run's artifact
prefix; this step gets them all as one folder (steps/select/scores.py). It picks the best by
`evaluate.select_key`, takes that checkpoint's predictions from its pod's object (the paired
bootstrap and the PR curves need them; steps/evaluate/stored.py) and scores them itself, or
predicts again when the pod stored none that can be used, and then registers, decides and
promotes exactly as a single evaluate pod does (steps/evaluate/evaluate.py `conclude`): once per
run.

A partial result (a checkpoint no pod scored, an evaluate pod or sweep branch that failed) is
still selected from and registered, says what is missing, and is never promoted automatically.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from steps.cli import run_cli
from steps.datasets.arguments import dataset_folder
from steps.errors import InputError
from steps.evaluate.arguments import add_arguments, load_branch_config, write_outputs
from steps.log import get as get_logger
from steps.metrics.summary import resolve_select_key
from steps.select.scores import parse_upstream, partial, read_scores

log = get_logger("select")


@contextmanager
def best_checkpoint(args: argparse.Namespace, best: dict) -> Iterator[tuple[Path, list[str]]]:
    """The winning checkpoint's file (in --checkpoints, or downloaded from its branch's source) and
    the names of every checkpoint beside it."""
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
        yield found[best["file"]], list(found)


def _predictions(config: Any, gt: dict, data: Path, best: dict, path: Path, stored: dict | None,
                 out_dir: Path) -> list[dict]:
    """The best checkpoint's predictions on the validation split: the ones its evaluate pod
    stored, or, when it stored none that can be used, the model's, predicted again here."""
    from steps.evaluate import stored as store
    from steps.evaluate.evaluate import score_checkpoints

    if stored is not None:
        results, problem = store.load(Path(stored["folder"]), stored)
        if results is not None:
            log.info(f"select: rescoring the predictions its evaluate pod stored for {best['checkpoint']}")
            return results
        log.info(f"select: {problem}; predicting with {best['checkpoint']} again")
    _, predicted = score_checkpoints(config, gt, data, [(best["iteration"], path)], out_dir)
    return predicted[path.name]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m steps.select",
        description="Gather the fan-out evaluation's scores (a sweep's: of every branch), select the best "
        "checkpoint by evaluate.select_key, register it, and promote it if it beats the production model "
        "(once per run).",
    )
    parser.add_argument("--scores", required=True, type=Path, metavar="FOLDER",
                        help="the evaluate pods' scores: a folder with one <group>/scores.json per pod (the run's "
                        "scores prefix, read as one artifact)")
    parser.add_argument("--upstream", default="", metavar="'TASK=PHASE ...'",
                        help="the phase of each fan-out gathered ({{tasks.T.status}}): anything but Succeeded makes "
                        "the result partial, never promoted automatically")
    add_arguments(parser, checkpoints_required=False)
    parser.add_argument("--output-promoted", type=Path, help="write true/false here")
    parser.add_argument("--output-model-uri", type=Path, help="write the registered model's URI here")
    args = parser.parse_args(argv)
    config = load_branch_config(args)

    from steps.evaluate.evaluate import conclude, prepare, select_best

    rows = read_scores(args.scores)  # before the checkout: bad input fails at once
    stored = {row["checkpoint"]: row.pop("predictions", None) for row in rows}
    upstream = parse_upstream(args.upstream)
    log.info(f"select: {len(rows)} checkpoints scored by the evaluate pods")
    # The pods scored every checkpoint on one dataset: their metrics are the dataset's.
    # (select_best checks the tie-break key itself, only where a tie needs it)
    resolve_select_key(config.evaluate, {key for row in rows for key in row["metrics"]}, tie_break=False)
    best = select_best(rows, config.evaluate.select_key, config.evaluate.select_mode, config.evaluate.tie_break_key)
    if best.get("overrides"):
        # The model is registered with the settings of the branch that trained it.
        log.info(f"select: best branch {best['branch']}: {best['overrides']}")
        config = load_branch_config(args, best["overrides"])
    with dataset_folder(parser, args, config) as data, best_checkpoint(args, best) as (path, names):
        best["path"] = str(path)
        # A sweep branch is scored whole by one pod: what a sweep lacks shows in --upstream.
        missing = partial(rows, None if "source" in best else names, upstream)
        if missing:
            log.info(f"select: partial result: {missing.describe()}; selecting among what was scored")
        gt = prepare(config, data, args.output)
        predictions = {best["checkpoint"]: _predictions(config, gt, data, best, path, stored[best["checkpoint"]], args.output)}
        version = args.dataset_version or str(args.dataset_dir)  # what the lineage records
        training = path.parent.parent if path.parent.name == "checkpoints" else path.parent  # the train output
        tensorboard = None
        if "source" in best:
            # A sweep: `training` is a download that is gone once this step ends; name the branches'
            # durable folder instead (each branch's tensorboard/ under it, side by side).
            tensorboard = best["source"].rstrip("/").rsplit("/", 1)[0] or None
        result = conclude(config, gt, data, rows, predictions, args.output, args.run_id, version, training,
                          partial=missing.as_dict() if missing else None, tensorboard=tensorboard)
    write_outputs(args, result.promoted, result.model_uri)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
