"""Run Argo Workflows' own end-to-end and example manifests through `trainyard run --local`'s runner
and compare each outcome with Argo's.

    python scripts/argo_suite.py PATH/TO/argo-workflows [--only GLOB] [--timeout SECONDS] [-v]

PATH/TO/argo-workflows is a checkout of argoproj/argo-workflows (the reference is tag v4.1.2);
nothing of it is copied into this repository. Every Workflow document of `test/e2e/functional`,
`test/e2e/expectedfailures`, `test/e2e/testdata` and of the `examples/` manifests that have a
`dag` or `steps` template runs through `workflows.local.LocalRunner`, with `argosay` and `cowsay`
stand-ins beside this script for Argo's test images (and `sh`: bash, as the images' shells have
$RANDOM and the like). Workflows run side by side (`--jobs`), as on a cluster. Each outcome is one of:

- match: the workflow's phase is the one Argo gives (EXPECTED below, from the Go test that runs
  the manifest or the controller code for one no test runs, such as an example with the
  `no-test` label; else the folder's convention: `functional`, `testdata` and `examples`
  succeed, as examples_test.go requires, `expectedfailures` fail); a
  manifest Argo's validation rejects is Error, and one the runner rejects as invalid matches it;
- refused: the runner refused it by name (before running or mid-run);
- diverges: it ran and ended otherwise;
- crash: the runner raised something other than a refusal;
- n/a: Argo's outcome depends on what no manifest holds (the cluster's RBAC, its nodes' labels,
  its scale; an image's own programs, the internet): counted apart, not compared.

Prints one line per manifest that does not match (all with -v) and the counts per folder.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflows.local import LocalRunner, TemplateError  # noqa: E402
from workflows.local.templating import NotSupported  # noqa: E402

STAND_INS = Path(__file__).resolve().parent / "argo_suite"
FOLDERS = ("test/e2e/functional", "test/e2e/expectedfailures", "test/e2e/testdata", "examples")
# The entrypoints of Argo's test images (test/e2e/images/argosay: v1 runs cowsay, v2 /argosay).
ENTRYPOINTS = {
    "argoproj/argosay:v2": [str(STAND_INS / "argosay")],
    "argoproj/argosay:v1": [str(STAND_INS / "cowsay")],
    "docker/whalesay": [str(STAND_INS / "cowsay")],
    "docker/whalesay:latest": [str(STAND_INS / "cowsay")],
}
# Their own files: argosay:v2 is its program at /argosay.
IMAGES = {"argoproj/argosay:v2": STAND_INS / "image-argosay"}
DEFAULT_PHASE = {"test/e2e/functional": "Succeeded", "test/e2e/expectedfailures": "Failed",
                 "test/e2e/testdata": "Succeeded", "examples": "Succeeded"}


@dataclass(frozen=True)
class Expect:
    phases: tuple[str, ...]  # Argo's phase (more than one: chance decides); none: what no manifest holds
    why: str  # the Go test or controller code that defines it
    shutdown: str = ""  # "stop" / "terminate" once a step runs; "terminate-exit": while the exit handler runs
    parameters: tuple[tuple[str, str], ...] = ()  # what the Go test submits it with (-p)


def _e(phases: str, why: str, shutdown: str = "", **parameters: str) -> Expect:
    return Expect(tuple(phases.split("|")) if phases else (), why, shutdown, tuple(parameters.items()))


RANDOM = "Succeeded|Failed"
# Outcomes that differ from the folder's convention, each with where Argo defines it (the Go test
# that runs the manifest, or the controller code for a manifest no test runs).
EXPECTED: dict[str, Expect] = {
    # test/e2e/functional
    "test/e2e/functional/dag-omitted-output-ref.yaml": _e("Error", "functional_test.go TestDAGOmittedOutputRef"),
    "test/e2e/functional/dag-skipped-output-ref.yaml": _e("Error", "functional_test.go TestDAGSkippedOutputRef"),
    "test/e2e/functional/dag-skipped-artifact-subpath-ref.yaml":
        _e("Error", "functional_test.go TestDAGSkippedArtifactSubPathRef"),
    "test/e2e/functional/steps-skipped-output-ref.yaml": _e("Failed", "functional_test.go TestStepsSkippedOutputRef"),
    "test/e2e/functional/steps-skipped-withparam-ref.yaml":
        _e("Failed", "functional_test.go TestStepsSkippedWithParamRef"),
    "test/e2e/functional/stop-terminate.yaml": _e("Failed|Error", "signals_test.go TestTerminateBehavior", "terminate"),
    "test/e2e/functional/stop-terminate-2.yaml": _e("Failed", "signals_test.go TestDoNotCreatePodsUnderStopBehavior",
                                                    "stop"),
    "test/e2e/functional/workflow-exit-handler-sleep.yaml":
        _e("Failed", "functional_test.go TestTerminateWorkflowWhileOnExitHandlerRunning", "terminate-exit"),
    "test/e2e/functional/dag-with-retries.yaml": _e(RANDOM, "exit $RANDOM % 5, 20 retries: chance decides"),
    "test/e2e/functional/retry-with-steps.yaml": _e(RANDOM, "random.choice([0, 1, 1]) with 10 retries per step"),
    "test/e2e/functional/loop-sequence-many-long-pods.yaml":
        _e("", "10,000 pods sleeping 600 s at once: the cluster's scale"),
    "test/e2e/functional/output-input-artifact-optional.yaml":
        _e("Failed", "steps.go resolveReferences: an optional output not made cannot be resolved (the argument is "
           "not optional); executeSteps fails the template"),
    # test/e2e/expectedfailures
    "test/e2e/expectedfailures/exit-handler-fail-missing-output.yaml":
        _e("Failed", "functional_test.go TestWorkflowExitHandlerCrashEnsureNodeIsPresent"),
    "test/e2e/expectedfailures/serviceaccount-insufficient-permissions.yaml":
        _e("", "functional_test.go TestWorkflowInvalidServiceAccountError: the cluster's RBAC for the service account"),
    "test/e2e/expectedfailures/misreference-template-name.yaml": _e("Error", "validate.go: no such template"),
    "test/e2e/expectedfailures/empty-parameter-dag.yaml": _e("Error", "validate.go: parameter without value"),
    "test/e2e/expectedfailures/empty-parameter-steps.yaml": _e("Error", "validate.go: parameter without value"),
    "test/e2e/expectedfailures/failed-artifact-load.yaml": _e("Error", "executor: the input artifact does not exist"),
    "test/e2e/expectedfailures/input-artifact-not-optional.yaml": _e("Error", "executor: non-optional input missing"),
    "test/e2e/expectedfailures/volumes-pvc-fail-event.yaml":
        _e("Error", "operator.go createPVCs: Kubernetes refuses the claim's access mode (pvc create error)"),
    "test/e2e/expectedfailures/pod-termination-failure.yaml":
        _e("Failed", "kubectl deletes the sleeping pod (needs the cluster)"),
    # test/e2e/testdata
    "test/e2e/testdata/cannot-start-workflow.yaml": _e("Failed", "invalid_command_test.go TestInvalidCommand"),
    "test/e2e/testdata/exit-1.yaml": _e("Failed", "functional_test.go: exit 1"),
    "test/e2e/testdata/fail-first-pass-second.yaml": _e("Failed", "cli_test.go TestWorkflowResubmit: the first pass"),
    "test/e2e/testdata/resubmit-dag-with-dependencies.yaml": _e("Failed", "cli_test.go: B fails"),
    "test/e2e/testdata/retry-nested-dag-test.yaml": _e("Failed", "cli_test.go TestRetryNestedDag: the last task fails"),
    "test/e2e/testdata/retry-omit.yaml": _e("Failed", "cli_test.go TestRetryOmit"),
    "test/e2e/testdata/retry-with-recreated-pvc-test.yaml": _e("Failed", "cli_test.go: the last step fails"),
    "test/e2e/testdata/retry-workflow-with-failed-exit-handler.yaml": _e("Failed", "retry_test.go: the exit handler fails"),
    "test/e2e/testdata/signaled-workflow.yaml": _e("Failed", "signals_test.go TestSignaled: exit code 143"),
    "test/e2e/testdata/workflow-template-invalid-onexit.yaml": _e("Error", "workflow_template_test.go: invalid onExit"),
    "test/e2e/testdata/workflow-template-invalid-entrypoint.yaml":
        _e("Error", "workflow_template_test.go: invalid entrypoint"),
    "test/e2e/testdata/template-status-failed-conditional-metric.yaml":
        _e("Failed", "metrics_test.go TestTemplateStatusFailedConditionalMetric (ToBeFailed)"),
    "test/e2e/testdata/parameters-workflow.yaml":
        _e("Succeeded", "cli_test.go TestParametersFile: message: hello", message="hello"),
    "test/e2e/testdata/workflow-pending-metrics.yaml":
        _e("", "metrics_test.go: Pending on an unschedulable nodeSelector (the cluster's node labels)"),
    # examples: examples_test.go runs those without the no-test label, to Succeeded
    "examples/pod-gc-strategy.yaml": _e("Failed", "no-test: the `fail` step exits 1"),
    "examples/pod-gc-strategy-with-label-selector.yaml": _e("Failed", "no-test: the `fail` step exits 1"),
    "examples/resubmit.yaml": _e(RANDOM, "no-test: random.choice([0, 0, 1]) decides"),
    "examples/retry-conditional.yaml": _e("Failed", "no-test: exit codes 1 and 2 only; 1 is not retried"),
    "examples/loops-arbitrary-sequential-steps.yaml": _e("Failed", "no-test: the fourth item exits 1"),
    # examples examples_test.go skips (`workflows.argoproj.io/no-test`): what the controller gives them
    "examples/continue-on-fail.yaml": _e("Succeeded", "no-test: the failed step has continueOn.failed"),
    "examples/dag-continue-on-fail.yaml": _e("Failed", "no-test: E fails and no dependant takes E.Failed"),
    "examples/dag-disable-failFast.yaml": _e("Failed", "no-test: a task exits 1 (failFast off: the others run)"),
    "examples/dag-task-level-timeout.yaml": _e("Failed", "no-test: B's timeout (10s) ends its 15 s sleep"),
    "examples/exit-handlers.yaml": _e("Failed", "no-test: the intentional-fail step exits 1"),
    "examples/timeouts-step.yaml": _e("Failed", "no-test: activeDeadlineSeconds ends the sleep"),
    "examples/step-level-timeout.yaml":
        _e("Failed", "no-test: the timeouts end both pods Failed; continueOn.error does not take Failed"),
    "examples/custom-metrics.yaml": _e(RANDOM, "no-test: the flakey step is random.choice([0, 1, 1])"),
    "examples/retry-with-steps.yaml": _e(RANDOM, "no-test: random.choice([0, 1, 1]) with 10 retries"),
    "examples/fun-with-gifs.yaml": _e("", "no-test: its image's ImageMagick and a download from the internet"),
}


@dataclass
class Outcome:
    path: str
    kind: str  # match | refused | diverges | crash | n/a
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


def expected(folder: str, relative: str, doc: dict) -> Expect:
    if relative in EXPECTED:
        return EXPECTED[relative]
    return _e(DEFAULT_PHASE[folder], f"{folder}: the folder's convention")


def _shutdown(runner: LocalRunner, how: str, thread: threading.Thread, timeout: float) -> None:
    """Like the Go test's ShutdownWorkflow once a pod runs (or, "terminate-exit", once the exit
    handler's does): `argo stop` is one stop, `argo terminate` a second one."""
    ends = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < ends:
        running = bool(runner._processes) and (how != "terminate-exit" or runner._in_exit_handler)
        if running:
            break
        time.sleep(0.2)
    runner.stop()
    if how.startswith("terminate"):
        runner.stop()


def run_one(folder: str, relative: str, doc: dict, work: Path, timeout: float) -> Outcome:
    expect = expected(folder, relative, doc)
    run_dir = work / relative.replace("/", "_")
    try:
        runner = LocalRunner(doc, run_dir, dict(expect.parameters), echo=lambda _: None, cwd=run_dir.parent,
                             entrypoints=ENTRYPOINTS,
                             parallel=32, workdir="/", images=IMAGES)
    except NotSupported as exc:
        return Outcome(relative, "refused", str(exc))
    except TemplateError as exc:
        # Invalid as Argo's validation (validate.go) finds it: the workflow is Error, as on Argo.
        kind = "match" if "Error" in expect.phases else "diverges"
        return Outcome(relative, kind, f"Error (invalid: {exc})" + ("" if kind == "match" else f", Argo: {expect.why}"))
    except Exception:  # noqa: BLE001 - a crash is what this script counts
        return Outcome(relative, "crash", traceback.format_exc(limit=-3).strip().splitlines()[-1])
    if not expect.phases:
        return Outcome(relative, "n/a", f"not run: on Argo {expect.why}")
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = runner.run()
        except Exception:  # noqa: BLE001
            box["crash"] = traceback.format_exc(limit=-3)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    if expect.shutdown:
        _shutdown(runner, expect.shutdown, thread, timeout)
    thread.join(timeout)
    if thread.is_alive():
        runner.stop()
        runner.stop()  # the second stop kills what runs, the exit handler too
        thread.join(30)
        return Outcome(relative, "diverges", f"still running after {timeout:.0f}s (Argo: {'|'.join(expect.phases)})")
    if "crash" in box:
        return Outcome(relative, "crash", str(box["crash"]).strip().splitlines()[-1])
    result = box["result"]
    if result.refusals:
        return Outcome(relative, "refused", result.refusals[0])
    if result.phase in expect.phases:
        return Outcome(relative, "match", result.phase)
    failed = [f"{n}: {t.status} {t.message}" for n, t in result.tasks.items() if t.status in ("Failed", "Error")]
    return Outcome(relative, "diverges", f"{result.phase}, Argo: {'|'.join(expect.phases)} ({expect.why}); "
                   + "; ".join(failed)[:300])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("argo", type=Path, help="a checkout of argoproj/argo-workflows (v4.1.2)")
    parser.add_argument("--only", help="only manifests whose path matches this glob, e.g. 'examples/dag-*'")
    parser.add_argument("--timeout", type=float, default=700,
                        help="seconds a workflow may run (default 700: the longest sleeps 600 s)")
    parser.add_argument("--jobs", type=int, default=16, help="workflows run at once (default 16; most only sleep)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every manifest's outcome")
    args = parser.parse_args()
    if not (args.argo / "test" / "e2e").is_dir():
        print(f"error: {args.argo}: not a checkout of argo-workflows (no test/e2e folder)", file=sys.stderr)
        return 2
    os.environ["PATH"] = f"{STAND_INS}{os.pathsep}{os.environ.get('PATH', '')}"
    kinds = ("match", "refused", "diverges", "crash", "n/a")
    counts: dict[str, dict[str, int]] = {f: dict.fromkeys(kinds, 0) for f in FOLDERS}
    with tempfile.TemporaryDirectory(prefix="argo-suite-") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        todo = [(folder, relative, pool.submit(run_one, folder, relative, doc, Path(tmp) / str(index), args.timeout))
                for folder, relative, index, doc in manifests(args.argo, args.only)]
        for folder, relative, future in todo:
            outcome = future.result()
            counts[folder][outcome.kind] += 1
            if args.verbose or outcome.kind in ("diverges", "crash"):
                print(f"{outcome.kind:<8} {relative}: {outcome.detail}", flush=True)
    print(f"\n{'folder':<28} {'match':>6} {'refused':>8} {'diverges':>9} {'crash':>6} {'n/a':>5}")
    for folder, count in [*counts.items(), ("all", {k: sum(c[k] for c in counts.values()) for k in kinds})]:
        print(f"{folder:<28} {count['match']:>6} {count['refused']:>8} {count['diverges']:>9} {count['crash']:>6} "
              f"{count['n/a']:>5}")
    total = {k: sum(c[k] for c in counts.values()) for k in kinds}
    return 1 if total["diverges"] or total["crash"] else 0


if __name__ == "__main__":
    sys.exit(main())
