"""Is training deterministic here? Two identical tiny training runs, compared weight for weight.

Trains the tests' tiny dataset (tests/tiny_coco.py: resnet18 Mask R-CNN, 128 px, batch 2) with
the project's torchvision backend twice from scratch, each run in a fresh process, with
`train.deterministic` off and then on, and prints per setting how many weight tensors of the
final checkpoints differ and by how much, and which ops warned that they have no deterministic
kernel. Not a test: run it by hand, on a CPU or a GPU (the figures in docs/metrics.md#determinism
come from it):
    python scripts/check_determinism.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def train_once(out: Path, device: str, deterministic: bool, iterations: int) -> None:
    """One run in this process; the ops that warned go to out/warnings.json."""
    from steps.config import Config
    from steps.models import get_backend
    from tests.tiny_coco import make_coco_dataset

    warnings.simplefilter("always")
    model = {"backend": "torchvision", "backbone": "resnet18", "pretrained": "none", "min_size": 128,
             "max_size": 160, "roi_batch_size_per_image": 32}
    train = {"iterations": iterations, "batch_size": 2, "checkpoint_period": iterations, "log_period": iterations,
             "warmup_iters": 2, "lr": 0.005, "num_workers": 0, "device": device, "deterministic": deterministic}
    config = Config.model_validate({"model": model, "train": train})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        get_backend("torchvision").train(make_coco_dataset(out / "data"), out / "run", config)
    ops = sorted({found.group(1) for w in caught
                  if (found := re.search(r"^(\S+) does not have a deterministic implementation", str(w.message)))})
    (out / "warnings.json").write_text(json.dumps(ops))


def compare(first: Path, second: Path) -> tuple[int, int, float]:
    """(tensors that differ, tensors, largest absolute difference) of two checkpoints' weights."""
    from steps.models.checkpoints import list_checkpoints, read_checkpoint

    (_, a), (_, b) = (list_checkpoints(run / "run" / "checkpoints")[-1] for run in (first, second))
    ours, theirs = read_checkpoint(a)["model"], read_checkpoint(b)["model"]
    differ = [key for key in ours if not ours[key].equal(theirs[key])]
    largest = max((float((ours[k].double() - theirs[k].double()).abs().max()) for k in differ), default=0.0)
    return len(differ), len(ours), largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child process: one run into this folder
    parser.add_argument("--deterministic", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        train_once(args.one, args.device, args.deterministic, args.iterations)
        return
    import torch

    where = torch.cuda.get_device_name() if args.device != "cpu" and torch.cuda.is_available() else "CPU"
    print(f"{args.iterations} iterations on {where}, torch {torch.__version__}; two runs per setting")
    with tempfile.TemporaryDirectory() as scratch:
        for deterministic in (False, True):
            runs = []
            for attempt in range(2):
                out = Path(scratch) / f"{deterministic}-{attempt}"
                command = [sys.executable, __file__, "--one", str(out), "--device", args.device,
                           "--iterations", str(args.iterations), *(["--deterministic"] if deterministic else [])]
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
                runs.append(out)
            differ, total, largest = compare(*runs)
            ops = json.loads((runs[0] / "warnings.json").read_text())
            verdict = "bit-identical" if differ == 0 else f"{differ} of {total} weight tensors differ (up to {largest:.3g})"
            print(f"train.deterministic={str(deterministic).lower()}: {verdict}; ops without a deterministic "
                  f"kernel: {', '.join(ops) or 'none reported'}")


if __name__ == "__main__":
    main()
