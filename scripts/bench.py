"""Every trainyard speed figure beside its anchor, in one run (`make bench`).

Sections (each runs in its own process, so that its peak memory is its own):
  convert    `trainyard labelme2coco` vs labelme's examples/instance_segmentation/labelme2coco.py
             (optional: --labelme-example and --labelme-python, labelme is not a dependency)
  coco-eval  coco_evaluate vs pycocotools vs faster-coco-eval called plainly, bbox and segm
  coco-eval-cli  `trainyard coco-eval GT RESULTS` vs pycocotools' four-line script, whole processes
  infer      images/s per backend, one image per call vs --infer-batch images per call
  train      seconds per step per backend (detectron2 when importable)
  evaluate   evaluate and select at growing validation splits (plates, ~45 predictions per image):
             prediction, scoring every metric, and the promotion bootstrap of each key (two models)
             vs every resample scored from scratch (same draws, same gains)

The defaults take a few minutes on 2 CPU cores; the figures the project tracks use
`--convert-images 600 --coco-images 5000 --min-size 800 --max-size 1333`. With CUDA the same
command measures the GPU (float16 autocast, larger batches, peak GPU memory).

    python scripts/bench.py
    python scripts/bench.py --sections coco-eval --coco-images 5000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from collections.abc import Iterator
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS.parent))  # run from a checkout, installed or not
sys.path.insert(0, str(SCRIPTS))
SECTIONS = ("convert", "coco-eval", "coco-eval-cli", "infer", "train", "evaluate")
# The speed-ups the project asks of whole processes (anchor time / trainyard time, medians of runs
# in turns), at the tracked sizes: --coco-images 5000, --convert-images 600.
GOALS = {"coco-eval bbox": 10.0, "coco-eval segm": 5.0, "labelme2coco": 20.0}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _peak_gpu_gib() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def _timed(function: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    # The garbage the previous contender left (its COCO indexes, a few hundred MB) is collected
    # first, so that no call pays for another's: measured, leaving it made the next call up to a
    # third slower (and see _timed_in_fork).
    gc.collect()
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - started, value


def _median_timed(repeat: int, function: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """The median of `repeat` timed calls (2 shared cores are noisy), and the last call's value."""
    times, value = [], None
    for _ in range(max(1, repeat)):
        seconds, value = _timed(function, *args, **kwargs)
        times.append(seconds)
    return statistics.median(times), value


def convert(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """`trainyard labelme2coco` and labelme's example, each timed as a whole process (start-up,
    imports and all), taking turns, the median of --repeat runs."""
    import bench_labelme2coco as conversion

    data = args.convert_data or work / "labelme"
    width, height = (int(v) for v in args.image_size.lower().split("x"))
    labels_file = conversion._sample(data, args.convert_images, (width, height))
    commands = {"ours": [*_trainyard(), "labelme2coco", str(data), str(work / "ours"), "--labels", str(labels_file)]}
    if args.labelme_example:
        commands["labelme"] = [args.labelme_python, str(args.labelme_example), str(data), str(work / "labelme-out"),
                               "--labels", str(labels_file), "--noviz"]
    # Each writes into a folder that does not exist yet, removed before its run, outside the timing.
    times = _whole_processes(commands, args.repeat, before={
        "ours": lambda: shutil.rmtree(work / "ours", ignore_errors=True),
        "labelme": lambda: shutil.rmtree(work / "labelme-out", ignore_errors=True)})
    row = {"what": f"labelme2coco, {args.convert_images} files {args.image_size}", "ours_s": statistics.median(times["ours"])}
    if "labelme" in times:
        row.update(anchor="labelme example --noviz, whole process against whole process, in turns",
                   anchor_s=statistics.median(times["labelme"]), note=_per_round(times["labelme"], times["ours"]),
                   goal=GOALS["labelme2coco"])
    else:
        row.update(anchor="labelme example: n/a (pass --labelme-example PATH --labelme-python PYTHON)")
    return [row]


def _trainyard() -> list[str]:
    """The `trainyard` command as a user runs it: the console script beside this Python, or the
    same entry point through -c where it is not installed."""
    script = Path(sys.executable).parent / "trainyard"
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from workflows.cli import main; raise SystemExit(main())"]


def _whole_processes(commands: dict[str, list[str]], repeat: int,
                     before: dict[str, Any] | None = None) -> dict[str, list[float]]:
    """Each command's wall times over `repeat` rounds, the commands taking turns (a slow spell of
    shared cores weighs on all alike); output discarded, a failure raised with its stderr."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(max(1, repeat)):
        for name, command in commands.items():
            if before and name in before:
                before[name]()
            started = time.perf_counter()
            done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  cwd=SCRIPTS.parent)
            times[name].append(time.perf_counter() - started)
            if done.returncode != 0:
                raise RuntimeError(f"bench: {' '.join(command[:3])} ... exited {done.returncode}:\n{done.stderr}")
    return times


def _per_round(anchor: list[float], ours: list[float]) -> str:
    ratios = [a / o for a, o in zip(anchor, ours)]
    return f"per round {min(ratios):.1f}x to {max(ratios):.1f}x"


def faster_coco_eval_alone(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str) -> float:
    """The library's own entry points on the same input, nothing around them (the AP)."""
    import contextlib
    import io

    from faster_coco_eval import COCO, COCOeval_faster

    unused = "segmentation" if iou_type == "bbox" else ""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([{k: v for k, v in r.items() if k != unused} for r in results])
        evaluator = COCOeval_faster(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])


def coco_eval(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    import bench_coco_eval as scoring

    from steps.metrics import coco_evaluate

    gt, results = scoring.build(args.coco_images, 0)
    count, encoded = len(results), json.dumps([gt, results])
    del gt, results  # the contenders decode their own copies: peak RSS counts one, as in the CLI
    gc.collect()
    rows = []
    for iou_type in ("bbox", "segm"):
        times, values = _interleaved(args.repeat, (scoring.pycocotools_evaluate, faster_coco_eval_alone, coco_evaluate),
                                     encoded, iou_type)
        reference, library, ours = (statistics.median(t) for t in times)
        per_round = [a / o for a, o in zip(times[0], times[2])]
        diff = scoring.largest_difference(values[2], values[0])
        rows.append({"what": f"coco-eval {iou_type}, {args.coco_images} images ({count} results)",
                     "ours_s": ours, "anchor": "pycocotools", "anchor_s": reference,
                     "note": f"faster-coco-eval alone {reference / library:.1f}x; "
                             f"per round {min(per_round):.1f}x to {max(per_round):.1f}x; AP {values[2]['AP']:.4f}, "
                             f"max |diff| {diff:.1e}{'' if diff < 1e-6 else ' MISMATCH'}"})
    return rows


# pycocotools as its README shows it, in four lines: what a user would run without trainyard.
PYCOCOTOOLS_SCRIPT = """import sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
gt = COCO(sys.argv[1]); dt = gt.loadRes(sys.argv[2]); e = COCOeval(gt, dt, sys.argv[3]); e.evaluate(); e.accumulate(); e.summarize()
"""


def coco_eval_processes(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """`trainyard coco-eval GT RESULTS` against the four-line pycocotools script, each a whole
    process (interpreter, imports, reading the JSON files, checks, scoring, printing), in turns."""
    import bench_coco_eval as scoring

    gt, results = scoring.build(args.coco_images, 0)
    files = {"gt": work / "gt.json", "results": work / "results.json", "script": work / "pycocotools_eval.py"}
    files["gt"].write_text(json.dumps(gt))
    files["results"].write_text(json.dumps(results))
    files["script"].write_text(PYCOCOTOOLS_SCRIPT)
    rows = []
    for iou_type in ("bbox", "segm"):
        times = _whole_processes({
            "pycocotools": [sys.executable, str(files["script"]), str(files["gt"]), str(files["results"]), iou_type],
            "ours": [*_trainyard(), "coco-eval", str(files["gt"]), str(files["results"]), "--iou-type", iou_type],
        }, args.repeat)
        rows.append({"what": f"trainyard coco-eval {iou_type}, {args.coco_images} images, whole process",
                     "ours_s": statistics.median(times["ours"]), "anchor": "pycocotools' 4-line script, whole process, in turns",
                     "anchor_s": statistics.median(times["pycocotools"]),
                     "note": _per_round(times["pycocotools"], times["ours"]), "goal": GOALS[f"coco-eval {iou_type}"]})
    return rows


def _interleaved(repeat: int, functions: tuple[Any, ...], encoded: str, *args: Any) -> tuple[list[list[float]], list[Any]]:
    """Each function's times over `repeat` rounds of one call each, in turn, and its last value.

    Taking turns, a machine that slows down or speeds up for a while (shared cores) weighs on
    every contender alike, not on whichever ran then. Each call runs in a fresh fork of this
    process (see _timed_in_fork) on its own copy of the inputs, decoded from `encoded` (a JSON
    list, followed by `args`) as `trainyard coco-eval` reads its files.
    """
    times: list[list[float]] = [[] for _ in functions]
    values: list[Any] = [None] * len(functions)
    for _ in range(max(1, repeat)):
        for k, function in enumerate(functions):
            seconds, values[k] = _timed_in_fork(function, encoded, *args)
            times[k].append(seconds)
    return times, values


def _timed_in_fork(function: Any, encoded: str, *args: Any) -> tuple[float, Any]:
    """_timed(function, *json.loads(encoded), *args) in a forked child: a process that holds the
    inputs it has just read, as the CLI's does, and nothing else.

    Called one after another in one process, a contender that forks workers of its own paid for
    the others' leftovers: malloc's freed but mapped memory and half-empty arenas are pages its
    workers copy (coco-eval bbox took 0.50 s there against 0.44 s alone). Nor may the inputs be
    the parent's objects: the child's first touch of each one (a reference count) copies its
    page, 3 us a page on this VM, which the CLI never pays (bbox: 0.48 s against 0.42 s).
    Where fork is missing, the call runs here.
    """
    if not hasattr(os, "fork"):
        return _timed(function, *json.loads(encoded), *args)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: time, send, and always leave here, never through the parent's code
        code = 1
        try:
            os.close(read_end)
            try:
                outcome = ("ok", _timed(function, *json.loads(encoded), *args))
            except BaseException:  # noqa: BLE001 (sent to the parent, which raises it)
                outcome = ("error", traceback.format_exc())
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(outcome, pipe)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    name = getattr(function, "__name__", function)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()  # to the end before waiting: a large value fills the pipe
    finally:
        _, status = os.waitpid(pid, 0)
    if not data or os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"bench: {name} died in its process (exit status {os.waitstatus_to_exitcode(status)})")
    status_word, result = pickle.loads(data)
    if status_word != "ok":
        raise RuntimeError(f"bench: {name} failed:\n{result}")
    return result


def evaluate_costs(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """Evaluate and select at growing validation splits: prediction, scoring, the bootstrap per key."""
    import bench_evaluate

    sizes = [int(n) for n in args.evaluate_images.split(",") if n]
    return bench_evaluate.costs(sizes, args.bootstrap_samples, args.anchor_samples, SCRIPTS.parent / "configs" / "local.yaml")


def _dataset(args: argparse.Namespace, work: Path) -> Path:
    from bench_train_gpu import make_dataset

    folder = work / "data" / "coco"
    if not folder.is_dir():
        width, height = (int(v) for v in args.image_size.lower().split("x"))
        make_dataset(work / "data", args.train_images, width, height)
    return folder


def _predictor(name: str, categories: list[dict[str, Any]], args: argparse.Namespace) -> Any:
    """An untrained model of the default config: throughput does not depend on the weights."""
    import torch

    from steps.config import Config

    config = Config()
    config.model.backend, config.model.pretrained = name, "none"
    config.model.min_size, config.model.max_size = args.min_size, args.max_size
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    if name == "torchvision":
        from steps.models.torchvision_model import build_model
        from steps.models.torchvision_predictor import TorchvisionPredictor

        return TorchvisionPredictor(build_model(config.model, len(categories) + 1), categories, device)
    from detectron2.modeling import build_model as build_detectron2

    from steps.models.detectron2_config import build_cfg
    from steps.models.detectron2_predictor import Detectron2Predictor

    cfg = build_cfg(config, len(categories), str(device))
    return Detectron2Predictor(build_detectron2(cfg), cfg, categories)


def infer(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    import torch

    from steps.models.batching import predict_images

    dataset = _dataset(args, work)
    gt = json.loads((dataset / "train.json").read_text())
    inputs = [(dataset / "images" / image["file_name"], image["id"]) for image in gt["images"]][:args.infer_images]
    batch = args.infer_batch or (8 if _cuda() else 4)
    rows = []
    for name in _available_backends("inference", rows):
        predictor = _predictor(name, gt["categories"], args)
        list(predict_images(predictor, inputs[:1], 0.05))  # warm-up: allocator, cuDNN autotuning
        one_s, _ = _timed(lambda: list(predict_images(predictor, inputs, 0.05, batch_size=1)))
        many_s, predicted = _timed(lambda: list(predict_images(predictor, inputs, 0.05, batch_size=batch)))
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        rows.append({"what": f"inference {name}, {len(inputs)} images, {args.min_size}/{args.max_size}",
                     "ours_s": many_s, "anchor": "one image per call", "anchor_s": one_s,
                     "note": f"batch {batch}: {len(inputs) / many_s:.2f} images/s, one by one {len(inputs) / one_s:.2f}, "
                             f"{sum(map(len, predicted)) / len(inputs):.0f} detections/image (untrained weights: "
                             "compare batched with one by one, not backends)" + (", float16 autocast" if _cuda() else "")})
        del predictor
    return rows


def _available_backends(what: str, rows: list[dict[str, Any]]) -> Iterator[str]:
    """The backends that load here; a row saying why for each that does not (detectron2 is optional)."""
    from steps.models import BACKENDS, get_backend

    for name in BACKENDS:
        try:
            get_backend(name)
        except Exception as exc:  # noqa: BLE001 - an optional backend: say why it is left out
            rows.append({"what": f"{what} {name}", "skipped": str(exc).split(";")[0]})
            continue
        yield name


def train(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """Seconds per training step of each backend at the same settings: on a CPU at --train-batch
    (and, with --train-config, the model of that config file, e.g. the demo's); on CUDA for each of
    --gpu-batches with AMP on and off."""
    from bench_train_gpu import run_one

    dataset = _dataset(args, work)
    args.warmup, args.iterations = args.train_warmup, args.train_iterations
    args.workers, args.config = args.train_workers, args.train_config
    cuda = _cuda()
    settings = [(b, amp) for b in (int(n) for n in args.gpu_batches.split(",")) for amp in (True, False)] if cuda \
        else [(args.train_batch, None)]
    size = f"{args.train_config.name}'s model" if args.train_config else f"{args.min_size}/{args.max_size}"
    rows, steps = [], {}
    for name in _available_backends("train", rows):
        for batch, amp in settings:
            args.batch_size, args.amp = batch, amp
            result = run_one(name, dataset, work / "train", args)
            steps[name, batch, amp] = result["step_p50_s"]
            memory = f", peak GPU {result['peak_gpu_gib']:.2f} GiB" if result["peak_gpu_gib"] is not None else ""
            rows.append({"what": f"train {name}, batch {result['batch']}{'' if amp is None else ', AMP ' + ('on' if amp else 'off')}, "
                                 f"{size}, s/step (p50)",
                         "ours_s": result["step_p50_s"], "key": (batch, amp), "backend": name,
                         "note": f"{result['images_per_s']:.2f} images/s{memory}"})
    for row in rows:  # torchvision beside detectron2 at the same settings
        theirs = steps.get(("detectron2", *row.pop("key", (None, None))))
        if row.pop("backend", "") == "torchvision" and theirs:
            row.update(anchor="detectron2 at the same settings", anchor_s=theirs)
    return rows


def run_section(name: str, args: argparse.Namespace) -> None:
    """In the child process: one section's rows as JSON on the last line of stdout."""
    with tempfile.TemporaryDirectory(prefix=f"trainyard-bench-{name}-") as scratch:
        rows = {"convert": convert, "coco-eval": coco_eval, "coco-eval-cli": coco_eval_processes, "infer": infer,
                "train": train, "evaluate": evaluate_costs}[name](args, Path(scratch))
    gpu = _peak_gpu_gib() if name in ("infer", "train") else None
    print(json.dumps({"rows": rows, "peak_gpu_gib": gpu}))


def print_table(results: list[tuple[str, dict[str, Any], float]]) -> None:
    print(f"\n{'figure':<62} {'trainyard':>10} {'anchor':>10} {'speed-up':>9} {'goal':>11}  {'peak RSS':>9} {'peak GPU':>9}  "
          "anchor / notes")
    for _name, section, rss_gib in results:
        gpu = section.get("peak_gpu_gib")
        memory = f"{rss_gib:8.2f}G {'' if gpu is None else f'{gpu:8.2f}G':>9}"
        for row in section["rows"]:
            if "skipped" in row:
                print(f"{row['what']:<62} {'skipped':>10}  {row['skipped']}")
                continue
            anchor_s = row.get("anchor_s")
            ratio = f"{anchor_s / row['ours_s']:8.2f}x" if anchor_s else f"{'n/a':>9}"
            anchor = f"{anchor_s:9.2f}s" if anchor_s else f"{'n/a':>10}"
            notes = "; ".join(v for v in (row.get("anchor"), row.get("note")) if v)
            print(f"{row['what']:<62} {row['ours_s']:9.2f}s {anchor} {ratio} {_goal(row):>11}  {memory}  {notes}")
            memory = f"{'':>19}"  # once per section
    print("goals: whole process against whole process, at --coco-images 5000 and --convert-images 600 "
          "(labelme's example given with --labelme-example)")


def _goal(row: dict[str, Any]) -> str:
    """The row's goal beside its speed-up: ">=10x met" or ">=10x short"; "" where it has none."""
    goal, anchor_s = row.get("goal"), row.get("anchor_s")
    if not goal or not anchor_s:
        return ""
    return f">={goal:g}x {'met' if anchor_s / row['ours_s'] >= goal else 'short'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated, of: " + ", ".join(SECTIONS))
    parser.add_argument("--convert-images", type=int, default=200, help="labelme files to convert (issue: 600)")
    parser.add_argument("--convert-data", type=Path, help="folder for the generated labelme files, kept and reused")
    parser.add_argument("--labelme-example", type=Path, help="labelme's examples/instance_segmentation/labelme2coco.py")
    parser.add_argument("--labelme-python", default=sys.executable, help="interpreter with labelme's example deps")
    parser.add_argument("--coco-images", type=int, default=1000, help="synthetic images for coco-eval (issue: 5000)")
    parser.add_argument("--repeat", type=int, default=3, help="convert, coco-eval: median of this many runs each (coco-eval: in turns)")
    parser.add_argument("--min-size", type=int, default=320, help="model resize, shortest edge (issue: 800)")
    parser.add_argument("--max-size", type=int, default=533, help="model resize, longest edge (issue: 1333)")
    parser.add_argument("--image-size", default="1280x720", help="synthetic image WIDTHxHEIGHT (all sections)")
    parser.add_argument("--infer-images", type=int, default=8)
    parser.add_argument("--infer-batch", type=int, default=0, help="images per call (default 4 on CPU, 8 on CUDA)")
    parser.add_argument("--train-images", type=int, default=8, help="synthetic images for infer and train")
    parser.add_argument("--train-iterations", type=int, default=3, help="timed steps per backend")
    parser.add_argument("--train-warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--train-batch", type=int, default=1, help="images per step (CPU)")
    parser.add_argument("--train-config", type=Path, help="train the model of this config file (e.g. configs/local.yaml) "
                        "instead of the default R50-FPN at --min-size/--max-size")
    parser.add_argument("--gpu-batches", default="4,16", help="CUDA: images per training step, each with AMP on and off")
    parser.add_argument("--train-workers", type=int, default=min(2, os.cpu_count() or 1), help="data-loader workers")
    parser.add_argument("--evaluate-images", default="60,500", help="validation split sizes, comma-separated (issue: 60,500,2000)")
    parser.add_argument("--bootstrap-samples", type=int, default=200, help="resamples of the promotion bootstrap")
    parser.add_argument("--anchor-samples", type=int, default=3,
                        help="resamples the former bootstrap is timed on (its time is scaled to --bootstrap-samples)")
    parser.add_argument("--section", help=argparse.SUPPRESS)  # internal: run one section in this process
    args = parser.parse_args()
    if args.section:
        run_section(args.section, args)
        return 0

    names = [name for name in args.sections.split(",") if name]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        parser.error(f"--sections: unknown {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    print(f"bench: {os.cpu_count()} CPU core(s); sections {', '.join(names)}", flush=True)
    results, failed = [], []
    for name in names:
        command = [sys.executable, __file__, *sys.argv[1:], "--section", name]
        print(f"bench: {name} ...", flush=True)
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        output = child.stdout.read() if child.stdout else ""
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0 or not output.strip():
            failed.append(name)
            print(output, end="")
            continue
        *log, last = output.strip().splitlines()
        print("\n".join(f"  {line}" for line in log))
        results.append((name, json.loads(last), usage.ru_maxrss / 2**20))  # ru_maxrss: KiB on Linux
    print_table(results)
    if failed:
        print(f"bench: section(s) {', '.join(failed)} failed (output above)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
