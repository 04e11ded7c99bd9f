"""`make demo`, timed: the whole local pipeline on the sample plates, and whether it reads them.

Runs what `make demo` runs (`trainyard run --local --parallel 2`, OMP_WAIT_POLICY=PASSIVE) in a
fresh output folder, so the sample dataset is generated as a first-time user's is, then prints
the wall time, each step's time and what the test split says: its size and the plates read
exactly (EIR), beside the demo's goals (under 5 minutes on 2 cores; EIR >= 0.2 on at least 60
test plates). Not a test: figures depend on the machine and on what else runs on it.

    python scripts/bench_demo.py                   # the demo as shipped
    python scripts/bench_demo.py --runs 3          # min / median / max over 3 fresh runs
    python scripts/bench_demo.py --set train.iterations=400   # a recipe to compare
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 300
GOAL_EIR = 0.2
GOAL_PLATES = 60


def trainyard() -> str:
    installed = ROOT / ".venv" / "bin" / "trainyard"
    return str(installed) if installed.exists() else (shutil.which("trainyard") or "trainyard")


def one_run(output: Path, overrides: list[str], log: Path) -> dict:
    command = [trainyard(), "run", "--local", "--parallel", "2", "--output", str(output)]
    for item in overrides:
        command += ["--set", item]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}  # as `make demo`
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"bench-demo: the run failed (exit {done.returncode}); its output: {log}")
    (run_dir,) = [p for p in output.iterdir() if p.name.startswith("local-")]
    summary = json.loads((run_dir / "summary.json").read_text())
    plates = json.loads((run_dir / "test" / "volumes" / "work" / "outputs" / "report" / "plates.json").read_text())
    evaluation = summary["evaluation"]
    return {
        "seconds": seconds,
        "steps": {name: task["seconds"] for name, task in summary["tasks"].items()},
        "iterations": summary.get("iterations"),
        "selected": evaluation.get("best"),
        "test_plates": plates["plates"],
        "test_exact": plates["exact"],
        "EIR": plates["EIR"],
        "plate_AP50": summary["test_metrics"].get("segm/AP50-plate"),
        "promotion": (evaluation.get("promotion") or {}).get("reason"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="fresh runs to time (default 1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override, as `trainyard run --set`")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the last run's output folder here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    print(f"bench-demo: {args.runs} fresh run(s) of the demo on {os.cpu_count()} cores"
          + (f", with {' '.join(args.set)}" if args.set else ""), flush=True)
    results = []
    for index in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="trainyard-demo-bench-") as scratch:
            output = Path(scratch) / "runs"
            result = one_run(output, args.set, Path(scratch) / "run.log")
            results.append(result)
            steps = "  ".join(f"{name} {seconds:.0f}s" for name, seconds in result["steps"].items())
            print(f"run {index + 1}: {result['seconds']:.0f} s ({steps}); EIR {result['EIR']:.3f} = "
                  f"{result['test_exact']} of {result['test_plates']} test plates read exactly", flush=True)
            if args.keep and index == args.runs - 1:
                shutil.rmtree(args.keep, ignore_errors=True)
                shutil.copytree(output, args.keep, symlinks=True)
    times = [r["seconds"] for r in results]
    last = results[-1]
    print(f"\nwall time: min {min(times):.0f} s, median {statistics.median(times):.0f} s, max {max(times):.0f} s "
          f"(goal: under {GOAL_SECONDS} s) {'met' if max(times) < GOAL_SECONDS else 'NOT met'}")
    print(f"test split: EIR {last['EIR']:.3f} on {last['test_plates']} plates (goal: >= {GOAL_EIR} on >= {GOAL_PLATES}) "
          f"{'met' if last['EIR'] >= GOAL_EIR and last['test_plates'] >= GOAL_PLATES else 'NOT met'}; "
          f"plate mask AP50 {last['plate_AP50']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"cores": os.cpu_count(), "overrides": args.set, "runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
