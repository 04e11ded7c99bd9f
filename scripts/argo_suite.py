"""Run Argo Workflows' own end-to-end and example manifests through `trainyard run --local`'s runner
and compare each outcome with Argo's.

    python scripts/argo_suite.py PATH/TO/argo-workflows [--only GLOB] [--timeout SECONDS] [-v]

PATH/TO/argo-workflows is a checkout of argoproj/argo-workflows (the reference is tag v4.1.2);
nothing of it is copied into this repository. Every Workflow document of `test/e2e/functional`,
`test/e2e/expectedfailures`, `test/e2e/testdata` and of the `examples/` manifests that have a
`dag` or `steps` template runs through `workflows.local.LocalRunner`, with `argosay` and `cowsay`
stand-ins beside this script for Argo's test images. Each outcome is one of:

- match: the workflow's phase is the one Argo gives (EXPECTED below, from the Go test that runs
  the manifest or the controller code; else the folder's convention: `functional`, `testdata`
  and `examples` succeed, `expectedfailures` fail);
- refused: the runner refused it by name (before running or mid-run);
- diverges: it ran and ended otherwise;
- crash: the runner raised something other than a refusal.

Prints one line per manifest that does not match (all with -v) and the counts per folder.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflows.local import LocalRunner, TemplateError  # noqa: E402

STAND_INS = Path(__file__).resolve().parent / "argo_suite"
FOLDERS = ("test/e2e/functional", "test/e2e/expectedfailures", "test/e2e/testdata", "examples")
# The entrypoints of Argo's test images (test/e2e/images/argosay: v1 runs cowsay, v2 /argosay).
ENTRYPOINTS = {
    "argoproj/argosay:v2": [str(STAND_INS / "argosay")],
    "argoproj/argosay:v1": [str(STAND_INS / "cowsay")],
    "docker/whalesay": [str(STAND_INS / "cowsay")],
    "docker/whalesay:latest": [str(STAND_INS / "cowsay")],
}
DEFAULT_PHASE = {"test/e2e/functional": "Succeeded", "test/e2e/expectedfailures": "Failed",
                 "test/e2e/testdata": "Succeeded", "examples": "Succeeded"}


@dataclass(frozen=True)
class Expect:
    phase: str
    why: str  # the Go test or controller code that defines it


# Outcomes that differ from the folder's convention, each with where Argo defines it.
EXPECTED: dict[str, Expect] = {
    "test/e2e/expectedfailures/dag-exhausted-retries.yaml": Expect("Failed", "retries exhausted"),
    "test/e2e/expectedfailures/exit-handler-fail-missing-output.yaml":
        Expect("Error", "functional_test.go TestExitHandlerFailMissingOutput"),
    "test/e2e/expectedfailures/failed-artifact-load.yaml": Expect("Error", "missing input artifact: executor"),
    "test/e2e/expectedfailures/failed-artifact-save.yaml": Expect("Error", "missing output artifact: operator.go"),
    "test/e2e/expectedfailures/output-artifact-not-optional.yaml": Expect("Error", "operator.go: non-optional artifact"),
    "test/e2e/expectedfailures/input-artifact-not-optional.yaml": Expect("Error", "executor: non-optional input"),
    "test/e2e/expectedfailures/misreference-template-name.yaml": Expect("Error", "validate.go: no such template"),
    "test/e2e/expectedfailures/empty-parameter-dag.yaml": Expect("Error", "validate.go: parameter without value"),
    "test/e2e/expectedfailures/empty-parameter-steps.yaml": Expect("Error", "validate.go: parameter without value"),
    "test/e2e/expectedfailures/timeouts-workflow.yaml": Expect("Failed", "operator.go: activeDeadlineSeconds"),
    "test/e2e/expectedfailures/timeouts-step.yaml": Expect("Failed", "artifacts_test.go: template timeout"),
    "test/e2e/testdata/exit-1.yaml": Expect("Failed", "cli_test.go: exit 1"),
    "test/e2e/testdata/fail-first-pass-second.yaml": Expect("Failed", "workflow_test.go: the first pass fails"),
    "test/e2e/testdata/retry-omit.yaml": Expect("Failed", "retry_test.go TestRetryOmit"),
    "test/e2e/testdata/retry-workflow-with-failed-exit-handler.yaml":
        Expect("Failed", "retry_test.go: the exit handler fails"),
    "test/e2e/testdata/workflow-template-invalid-onexit.yaml": Expect("Error", "invalid onExit"),
    "test/e2e/testdata/workflow-template-invalid-entrypoint.yaml": Expect("Error", "invalid entrypoint"),
}


@dataclass
class Outcome:
    path: str
    kind: str  # match | refused | diverges | crash
    detail: str


def manifests(argo: Path, only: str | None) -> list[tuple[str, str, int, dict]]:
    """(folder, relative path, document index, Workflow document) of every Workflow to run."""
    found = []
    for folder in FOLDERS:
        for path in sorted((argo / folder).glob("*")):
            if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
                continue
            relative = str(path.relative_to(argo))
            if only and not fnmatch.fnmatch(relative, only):
                continue
            try:
                documents = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
            except yaml.YAMLError:
                continue
            workflows = [d for d in documents if d.get("kind") == "Workflow"]
            if folder == "examples" and not any(_is_dag_or_steps(d) for d in workflows):
                continue
            found += [(folder, relative, index, doc) for index, doc in enumerate(workflows)]
    return found


def _is_dag_or_steps(doc: dict) -> bool:
    templates = (doc.get("spec") or {}).get("templates") or []
    return any(isinstance(t, dict) and ("dag" in t or "steps" in t) for t in templates)


def _expected(folder: str, relative: str) -> Expect:
    return EXPECTED.get(relative, Expect(DEFAULT_PHASE[folder], f"{folder}: the folder's convention"))


def run_one(folder: str, relative: str, doc: dict, work: Path, timeout: float) -> Outcome:
    expect = _expected(folder, relative)
    run_dir = work / relative.replace("/", "_")
    try:
        runner = LocalRunner(doc, run_dir, {}, echo=lambda _: None, cwd=run_dir.parent, entrypoints=ENTRYPOINTS,
                             parallel=4)
    except TemplateError as exc:
        return Outcome(relative, "refused", str(exc))
    except Exception:  # noqa: BLE001 - a crash is what this script counts
        return Outcome(relative, "crash", traceback.format_exc(limit=-3).strip().splitlines()[-1])
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = runner.run()
        except Exception:  # noqa: BLE001
            box["crash"] = traceback.format_exc(limit=-3)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        runner.stop()
        runner.stop()  # the second stop kills what runs, the exit handler too
        thread.join(30)
        return Outcome(relative, "diverges", f"still running after {timeout:.0f}s (Argo: {expect.phase})")
    if "crash" in box:
        return Outcome(relative, "crash", str(box["crash"]).strip().splitlines()[-1])
    result = box["result"]
    if result.refusals:
        return Outcome(relative, "refused", result.refusals[0])
    if result.phase == expect.phase:
        return Outcome(relative, "match", result.phase)
    failed = [f"{n}: {t.status} {t.message}" for n, t in result.tasks.items() if t.status in ("Failed", "Error")]
    return Outcome(relative, "diverges", f"{result.phase}, Argo: {expect.phase} ({expect.why}); " + "; ".join(failed)[:300])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("argo", type=Path, help="a checkout of argoproj/argo-workflows (v4.1.2)")
    parser.add_argument("--only", help="only manifests whose path matches this glob, e.g. 'examples/dag-*'")
    parser.add_argument("--timeout", type=float, default=60, help="seconds a workflow may run (default 60)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every manifest's outcome")
    args = parser.parse_args()
    if not (args.argo / "test" / "e2e").is_dir():
        print(f"error: {args.argo}: not a checkout of argo-workflows (no test/e2e folder)", file=sys.stderr)
        return 2
    os.environ["PATH"] = f"{STAND_INS}{os.pathsep}{os.environ.get('PATH', '')}"
    counts: dict[str, dict[str, int]] = {f: {"match": 0, "refused": 0, "diverges": 0, "crash": 0} for f in FOLDERS}
    with tempfile.TemporaryDirectory(prefix="argo-suite-") as tmp:
        for folder, relative, index, doc in manifests(args.argo, args.only):
            outcome = run_one(folder, relative, doc, Path(tmp) / str(index), args.timeout)
            counts[folder][outcome.kind] += 1
            if args.verbose or outcome.kind in ("diverges", "crash"):
                print(f"{outcome.kind:<8} {relative}: {outcome.detail}", flush=True)
    print(f"\n{'folder':<28} {'match':>6} {'refused':>8} {'diverges':>9} {'crash':>6}")
    for folder, count in counts.items():
        print(f"{folder:<28} {count['match']:>6} {count['refused']:>8} {count['diverges']:>9} {count['crash']:>6}")
    total = {k: sum(c[k] for c in counts.values()) for k in ("match", "refused", "diverges", "crash")}
    print(f"{'all':<28} {total['match']:>6} {total['refused']:>8} {total['diverges']:>9} {total['crash']:>6}")
    return 1 if total["diverges"] or total["crash"] else 0


if __name__ == "__main__":
    sys.exit(main())
