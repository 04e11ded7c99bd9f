"""`trainyard run --local` against Argo v4.1.2's controller: one small manifest per behaviour, each
test naming the Argo source (argoproj/argo-workflows, tag v4.1.2) whose outcome it asserts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workflows.local import LocalRunner, TemplateError
from workflows.local.nodes import pod_name

PY = sys.executable
# A step that writes argv[2] to the file argv[1] and exits with argv[3] (default 0).
WRITE = "import sys, pathlib; p = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True); p.write_text(sys.argv[2]); sys.exit(int(sys.argv[3]) if len(sys.argv) > 3 else 0)"
# Fails with exit argv[2] until the marker file argv[1] exists (it creates it on the first try).
FLAKY = "import sys, pathlib; m = pathlib.Path(sys.argv[1]); ok = m.exists(); m.write_text('x'); sys.exit(0 if ok else int(sys.argv[2]))"


def container(name: str, code: str, args: list[str], outputs: list[dict] | None = None, inputs: list[dict] | None = None,
              **extra: object) -> dict:
    template: dict = {"name": name, "container": {"image": "x", "command": ["python", "-c", code], "args": args}, **extra}
    if outputs:
        template["outputs"] = {"parameters": outputs}
    if inputs:
        template["inputs"] = {"parameters": inputs}
    return template


def manifest(tasks: list[dict], templates: list[dict], parameters: list[dict] | None = None, **dag: object) -> dict:
    spec = {"entrypoint": "main", "templates": [{"name": "main", "dag": {"tasks": tasks, **dag}}, *templates]}
    if parameters:
        spec["arguments"] = {"parameters": parameters}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "w"}, "spec": spec}


def run(spec: dict, tmp_path: Path, **params: str):
    return LocalRunner(spec, tmp_path / "run-1", params, echo=lambda _: None).run()


OK = container("ok", "pass", [])
FAIL = container("fail", "import sys; sys.exit(3)", [])


def test_a_skipped_producers_output_resolves_to_its_default(tmp_path: Path) -> None:
    # controller/scope.go addSkippedNodeOutputsToScope: a Skipped/Omitted node's output parameter is
    # its valueFrom.default; without one, a pure reference counts as not supplied
    # (dag.go resolveDependencyReferences), so the consumer's input default applies.
    produce = container("produce", WRITE, ["/out/v", "made"],
                        outputs=[{"name": "v", "valueFrom": {"path": "/out/v", "default": "fallback"}},
                                 {"name": "w", "valueFrom": {"path": "/out/w"}}])
    consume = container("consume", WRITE, [str(tmp_path / "got"), "{{inputs.parameters.x}} {{inputs.parameters.y}}"],
                        inputs=[{"name": "x"}, {"name": "y", "default": "own-default"}])
    spec = manifest([
        {"name": "a", "template": "produce", "when": "false"},
        {"name": "b", "template": "consume", "depends": "a", "arguments": {"parameters": [
            {"name": "x", "value": "{{tasks.a.outputs.parameters.v}}"},
            {"name": "y", "value": "{{tasks.a.outputs.parameters.w}}"}]}},
    ], [produce, consume])
    result = run(spec, tmp_path)
    assert result.tasks["a"].status == "Skipped" and result.succeeded
    assert (tmp_path / "got").read_text() == "fallback own-default"


def test_depends_succeeded_on_a_skipped_task_omits_the_dependent(tmp_path: Path) -> None:
    # dag.go executeDAGTask/evaluateDependsLogic: `A.Succeeded` is false for a Skipped A, so B is
    # Omitted; plain `A` expands to A.Succeeded || A.Skipped || A.Daemoned (ancestry.go
    # expandDependency), so C runs. assessDAGPhase: the workflow succeeds.
    spec = manifest([
        {"name": "a", "template": "ok", "when": "1 == 2"},
        {"name": "b", "template": "ok", "depends": "a.Succeeded"},
        {"name": "c", "template": "ok", "depends": "a"},
    ], [OK])
    result = run(spec, tmp_path)
    assert {n: t.status for n, t in result.tasks.items()} == {"a": "Skipped", "b": "Omitted", "c": "Succeeded"}
    assert result.phase == "Succeeded"


def test_a_failure_omits_dependents_and_fails_the_workflow_while_a_failed_handler_runs(tmp_path: Path) -> None:
    # dag.go: `depends: a.Failed` runs after a failure; an omitted target inherits its branch's
    # Failed phase (assessDAGPhase), so the DAG fails.
    spec = manifest([
        {"name": "a", "template": "fail"},
        {"name": "cleanup", "template": "ok", "depends": "a.Failed"},
        {"name": "next", "template": "ok", "depends": "a"},
    ], [OK, FAIL])
    result = run(spec, tmp_path)
    assert {n: t.status for n, t in result.tasks.items()} == {"a": "Failed", "cleanup": "Succeeded", "next": "Omitted"}
    assert result.phase == "Failed"
    assert result.tasks["a"].message == "main: Error (exit code 3)"  # operator.go inferFailedReason


def test_dag_target_runs_only_the_target_and_its_ancestors(tmp_path: Path) -> None:
    # dag.go executeDAG: targetTasks = strings.Split(tmpl.DAG.Target, " "); only their dependency
    # chains are executed.
    spec = manifest([
        {"name": "a", "template": "ok"},
        {"name": "b", "template": "ok", "depends": "a"},
        {"name": "c", "template": "fail", "depends": "a"},
    ], [OK, FAIL], target="b")
    result = run(spec, tmp_path)
    assert list(result.tasks) == ["a", "b"] and result.succeeded


@pytest.mark.parametrize(("when", "runs"), [
    ("10 > 9", True),             # numbers, not strings ("10" < "9" as text)
    ("1.0 == 1", True),           # both float64
    ("'1' == 1", False),          # reflect.DeepEqual: a string never equals a number
    ("true", True),
    ("abc == abc && !false", True),  # bare words become strings (steps.go shouldExecute)
    ("(a != b) || false", True),
    ("foo =~ '^f'", True),
])
def test_when_is_evaluated_as_govaluate_expression(tmp_path: Path, when: str, runs: bool) -> None:
    # controller/steps.go shouldExecute: govaluate, with VARIABLE tokens turned into strings.
    result = run(manifest([{"name": "a", "template": "ok", "when": when}], [OK]), tmp_path)
    assert result.tasks["a"].status == ("Succeeded" if runs else "Skipped")


def test_a_skipped_task_quotes_its_when_as_substituted(tmp_path: Path) -> None:
    # dag.go executeDAGTask: resolveDependencyReferences substitutes the task first, and the Skipped
    # node's message is fmt.Sprintf("when '%s' evaluated false", t.When) of the substituted task.
    spec = manifest([{"name": "a", "template": "ok", "when": "'{{workflow.parameters.go}}' == 'yes'"}], [OK],
                    parameters=[{"name": "go", "value": "no"}])
    result = run(spec, tmp_path)
    assert result.tasks["a"].status == "Skipped"
    assert result.tasks["a"].message == "when ''no' == 'yes'' evaluated false"


def test_a_when_argo_cannot_evaluate_makes_the_task_error(tmp_path: Path) -> None:
    # steps.go shouldExecute returns an error; dag.go executeDAGTask initialises the node as Error.
    # Unquoted `my-value` is `my - value` to govaluate.
    result = run(manifest([{"name": "a", "template": "ok", "when": "my-value == my-value"}], [OK]), tmp_path)
    assert result.tasks["a"].status == "Error" and "Invalid 'when' expression" in result.tasks["a"].message
    assert result.phase == "Error"  # operator.go operate: NodeError -> WorkflowError


@pytest.mark.parametrize(("policy", "code_kind", "retried"), [
    ("OnFailure", "fail", True),
    ("OnError", "fail", False),       # a non-zero container exit is Failed, not Error
    ("Always", "fail", True),
    ("OnTransientError", "fail", False),  # "main: Error (exit code 3)" is no transient error
    ("OnError", "missing-output", True),  # an output the wait container cannot save: Error
    ("OnFailure", "missing-output", False),
])
def test_retry_policy(tmp_path: Path, policy: str, code_kind: str, retried: bool) -> None:
    # operator.go processNodeRetries: retryOnFailed/retryOnError per RetryPolicyActual.
    marker = tmp_path / "marker"
    if code_kind == "fail":
        step = container("step", FLAKY, [str(marker), "3"], retryStrategy={"limit": "2", "retryPolicy": policy})
    else:  # first attempt exits 0 without writing its output parameter, the second writes it
        code = ("import sys, pathlib; m = pathlib.Path(sys.argv[1]); ok = m.exists(); m.write_text('x'); "
                "ok and pathlib.Path(sys.argv[2]).parent.mkdir(parents=True, exist_ok=True); ok and pathlib.Path(sys.argv[2]).write_text('v')")
        step = container("step", code, [str(marker), "/out/p"], outputs=[{"name": "p", "valueFrom": {"path": "/out/p"}}],
                         retryStrategy={"limit": "2", "retryPolicy": policy})
    result = run(manifest([{"name": "a", "template": "step"}], [step]), tmp_path)
    assert result.tasks["a"].status == ("Succeeded" if retried else ("Failed" if code_kind == "fail" else "Error"))


def test_retry_limit_and_last_retry_variables(tmp_path: Path) -> None:
    # operator.go buildRetryStrategyLocalScope: lastRetry.exitCode/status/duration are strings;
    # a failed container's status is 'Failed'. processNodeRetries: "No more retries left".
    seen = tmp_path / "again" / "seen"  # in both runs' runs folder: shared with their steps
    seen.parent.mkdir()
    record = ("import sys, pathlib, os; p = pathlib.Path(sys.argv[1]); "
              "p.write_text(p.read_text() + sys.argv[2] + ',' if p.exists() else sys.argv[2] + ','); sys.exit(5)")
    step = container("step", record, [str(seen), "x"],
                     retryStrategy={"limit": 2, "expression": "lastRetry.status == 'Failed' && lastRetry.exitCode == '5' "
                                    "&& asFloat(lastRetry.duration) >= 0"})
    result = run(manifest([{"name": "a", "template": "step"}], [step]), tmp_path)
    assert seen.read_text() == "x,x,x,"  # 1 + limit attempts, the expression true each time
    assert result.tasks["a"].status == "Failed" and result.tasks["a"].message == "No more retries left"
    step["retryStrategy"]["expression"] = "lastRetry.status == 'Error'"
    seen.unlink()
    result = run(manifest([{"name": "a", "template": "step"}], [step]), tmp_path / "again")
    assert seen.read_text() == "x,"
    assert result.tasks["a"].message == "retryStrategy.expression evaluated to false"


def test_each_attempt_gets_its_retry_number_and_pod_name(tmp_path: Path) -> None:
    # operator.go executeTemplate: localParams retries = the attempt's number, pod.name = the
    # attempt's pod (util/pod_name.go GeneratePodName of `<task node>(n)`).
    seen = tmp_path / "seen"
    record = ("import sys, pathlib; p = pathlib.Path(sys.argv[1]); "
              "p.write_text((p.read_text() if p.exists() else '') + sys.argv[2] + ' ' + sys.argv[3] + ','); sys.exit(1)")
    step = container("step", record, [str(seen), "{{retries}}", "{{pod.name}}"], retryStrategy={"limit": 1})
    run(manifest([{"name": "a", "template": "step"}], [step]), tmp_path)
    assert seen.read_text() == (f"0 {pod_name('run-1', 'run-1.a(0)', 'step')},"
                                f"1 {pod_name('run-1', 'run-1.a(1)', 'step')},")


@pytest.mark.parametrize(("backoff", "outcome"), [
    ({"duration": "1", "factor": 2}, ("Succeeded", "")),  # waits 1 s, then the second attempt succeeds
    ({"duration": "1h", "maxDuration": "1m"}, ("Failed", "Backoff would exceed max duration limit")),
    ({"duration": "1", "maxDuration": "0s"}, ("Failed", "Max duration limit exceeded")),
])
def test_retry_backoff(tmp_path: Path, backoff: dict, outcome: tuple[str, str]) -> None:
    # operator.go processNodeRetries: maxDuration counted from the first attempt's start, the wait
    # duration * factor^(attempts-1) capped by cap, from the last attempt's end.
    step = container("step", FLAKY, [str(tmp_path / "marker"), "1"], retryStrategy={"limit": 2, "backoff": backoff})
    result = run(manifest([{"name": "a", "template": "step"}], [step]), tmp_path)
    assert (result.tasks["a"].status, result.tasks["a"].message) == outcome


def test_workflow_parameter_enum_is_enforced(tmp_path: Path) -> None:
    # validate/validate.go validateArgumentsValues: "... value should be present in ... enum list".
    spec = manifest([{"name": "a", "template": "ok"}], [OK], parameters=[{"name": "mode", "value": "fast", "enum": ["fast", "slow"]}])
    assert run(spec, tmp_path, mode="slow").succeeded
    with pytest.raises(TemplateError, match=r"spec.arguments.parameters.mode.value should be present in .*enum list"):
        LocalRunner(spec, tmp_path / "r", {"mode": "medium"}, echo=lambda _: None)


def test_output_parameters_lose_exactly_one_trailing_newline(tmp_path: Path) -> None:
    # executor/executor.go SaveParameters: strings.TrimSuffix(output, "\n"), nothing else.
    produce = container("produce", WRITE, ["/out/v", "  two lines\n\n"], outputs=[{"name": "v", "valueFrom": {"path": "/out/v"}}])
    result = run(manifest([{"name": "a", "template": "produce"}], [produce]), tmp_path)
    assert result.tasks["a"].parameters["v"] == "  two lines\n"


def _exit_handler(spec: dict, out: Path) -> dict:
    record = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_text('\\n'.join(sys.argv[2:]))"
    spec["spec"]["onExit"] = "bye"
    spec["spec"]["templates"].append(container("bye", record, [str(out), "{{workflow.status}}", "{{workflow.failures}}",
                                                                "{{workflow.duration}}"]))
    return spec


def test_workflow_variables_of_a_clean_run(tmp_path: Path) -> None:
    # operator.go operate: workflow.failures = strconv.Quote(json.Marshal(nil slice)) -> "null" with
    # its quotes; workflow.duration is fmt "%f" of the seconds (setGlobalRuntimeParameters).
    out = tmp_path / "exit.txt"
    result = run(_exit_handler(manifest([{"name": "a", "template": "ok"}], [OK]), out), tmp_path)
    status, failures, duration = out.read_text().split("\n")
    assert (status, failures) == ("Succeeded", '"null"') and len(failures) == 6
    assert duration.count(".") == 1 and len(duration.split(".")[1]) == 6
    assert result.tasks["bye"].status == "Succeeded"


def test_workflow_failures_of_a_failed_run(tmp_path: Path) -> None:
    # operator.go operate: every Failed/Error node (the DAG node included) as failedNodeStatus
    # {displayName, message, templateName, phase, podName, finishedAt}; podName per
    # util/pod_name.go GeneratePodName (v2).
    out = tmp_path / "exit.txt"
    result = run(_exit_handler(manifest([{"name": "a", "template": "fail"}], [FAIL]), out), tmp_path)
    status, failures, _ = out.read_text().split("\n")
    nodes = json.loads(json.loads(failures))
    assert status == "Failed" and result.phase == "Failed"
    assert [list(n) for n in nodes] == [["displayName", "message", "templateName", "phase", "podName", "finishedAt"]] * 2
    task, dag = nodes
    assert (task["displayName"], task["templateName"], task["phase"], task["message"]) == ("a", "fail", "Failed", "main: Error (exit code 3)")
    assert task["podName"] == pod_name("run-1", "run-1.a", "fail") and task["podName"].startswith("run-1-fail-")
    assert (dag["displayName"], dag["templateName"], dag["podName"]) == ("run-1", "main", "run-1")
    assert task["finishedAt"].endswith("Z") and len(task["finishedAt"]) == 20


def test_a_run_that_succeeded_after_a_retry_lists_the_failed_attempt(tmp_path: Path) -> None:
    # operator.go operate walks all nodes: the Retry node succeeded, its first attempt `a(0)` stays
    # Failed and is listed although workflow.status is Succeeded.
    out = tmp_path / "exit.txt"
    step = container("step", FLAKY, [str(tmp_path / "marker"), "143"], retryStrategy={"limit": 1})
    result = run(_exit_handler(manifest([{"name": "a", "template": "step"}], [step]), out), tmp_path)
    status, failures, _ = out.read_text().split("\n")
    nodes = json.loads(json.loads(failures))
    assert status == "Succeeded" and result.succeeded
    assert [(n["displayName"], n["phase"], n["message"]) for n in nodes] == [("a(0)", "Failed", "main: Error (exit code 143)")]
    assert nodes[0]["podName"] == pod_name("run-1", "run-1.a(0)", "step")


def test_a_command_that_cannot_start_fails_with_the_emissarys_exit_code(tmp_path: Path) -> None:
    # cmd/argoexec/commands/emissary.go runEmissary: exit code 64 unless the command ran.
    broken = {"name": "broken", "container": {"image": "x", "command": ["no-such-command-trainyard"]}}
    result = run(manifest([{"name": "a", "template": "broken"}], [broken]), tmp_path)
    assert result.tasks["a"].status == "Failed" and result.tasks["a"].message.startswith("main: Error (exit code 64)")


def test_pod_name_matches_argos_fnv_hash() -> None:
    # util/pod_name.go GeneratePodName: <workflow>-<template>-<fnv32a(node name)>.
    # fnv32a("") is the offset basis 2166136261; fnv32a("a") = 0xe40c292c.
    assert pod_name("w", "", "t") == "w-t-2166136261"
    assert pod_name("w", "a", "t") == f"w-t-{0xE40C292C}"


def test_what_needs_a_cluster_is_refused_by_name(tmp_path: Path) -> None:
    # Resource templates act on Kubernetes objects; lifecycle hooks other than `exit` need the
    # controller's expression triggers; a container without a command runs its image's entrypoint.
    resource = manifest([{"name": "a", "template": "r"}], [{"name": "r", "resource": {"action": "create"}}])
    with pytest.raises(TemplateError, match=r"spec.templates\[1\].resource: not supported by the local runner \(it acts"):
        run(resource, tmp_path)
    hooks = manifest([{"name": "a", "template": "ok", "hooks": {"running": {"template": "ok", "expression": "true"}}}],
                     [OK])
    with pytest.raises(TemplateError, match=r"tasks\[0\].hooks: only an `exit` hook runs locally"):
        run(hooks, tmp_path)
    no_command = manifest([{"name": "a", "template": "e"}], [{"name": "e", "container": {"image": "alpine"}}])
    with pytest.raises(TemplateError, match=r"container.command: not given, so Argo runs the image's entrypoint"):
        run(no_command, tmp_path)
    backoff = manifest([{"name": "a", "template": "ok"}], [{**OK, "retryStrategy": {"limit": 1, "backoff": {"jitter": "1s"}}}])
    with pytest.raises(TemplateError, match="retryStrategy.backoff.jitter: not supported"):
        run(backoff, tmp_path)


STOPPABLE = """
import json, sys
from pathlib import Path
from workflows.local import LocalRunner
from workflows.local.summary import print_summary
spec, run_dir = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2])
result = LocalRunner(spec, run_dir, {}).run()
print_summary(result)
"""


def _start_stoppable(spec: dict, tmp_path: Path, started: Path) -> subprocess.Popen:
    """The runner in a process of its own (so a signal can stop it), once its step wrote `started`."""
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    runner = subprocess.Popen([PY, "-c", STOPPABLE, str(tmp_path / "spec.json"), str(tmp_path / "run")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(300):
        if started.exists() or runner.poll() is not None:
            break
        time.sleep(0.1)
    return runner


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_terminates_the_step_runs_the_exit_handler_and_writes_the_summary(tmp_path: Path, sig: signal.Signals) -> None:
    # operator.go operate + exec_control.go: a stopped workflow's running pod is terminated and its
    # node Failed ("workflow shutdown with strategy:  Stop"); its dependents are Omitted (dag.go),
    # a task that could start gets no pod but a Failed node (workflowpod.go createWorkflowPod); the
    # DAG fails and the exit handler still runs (ShutdownStrategy Stop: ShouldExecute(true)) with
    # workflow.status Failed.
    started = tmp_path / "started"
    slow = container("slow", "import sys, time, pathlib; print('working', flush=True); pathlib.Path(sys.argv[1]).write_text('x'); time.sleep(60)",
                     [str(started)])
    out = tmp_path / "exit.txt"
    spec = _exit_handler(manifest([{"name": "a", "template": "slow"}, {"name": "b", "template": "ok", "depends": "a"},
                                   {"name": "c", "template": "ok", "depends": "a.Failed"}], [slow, OK]), out)
    runner = _start_stoppable(spec, tmp_path, started)
    assert started.exists(), runner.communicate()[0]
    # The log already holds the step's output while it runs: written as it comes.
    assert "working" in (tmp_path / "run" / "a" / "log.txt").read_text()
    runner.send_signal(sig)
    output, _ = runner.communicate(timeout=60)
    status, failures, _ = out.read_text().split("\n")
    assert status == "Failed", output
    nodes = {n["displayName"]: n for n in json.loads(json.loads(failures))}
    assert nodes["a"]["message"] == "workflow shutdown with strategy:  Stop"
    assert nodes["c"]["message"] == "workflow shutdown with strategy: Stop"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped"] and summary["phase"] == "Failed"
    assert {n: t["status"] for n, t in summary["tasks"].items()} == {"a": "Failed", "b": "Omitted", "c": "Failed",
                                                                     "bye": "Succeeded"}
    assert summary["tasks"]["bye"]["status"] == "Succeeded"


def test_a_stop_leaves_the_exit_handler_running_and_a_second_one_kills_it(tmp_path: Path) -> None:
    # workflow_types.go ShutdownStrategy.ShouldExecute: Stop spares onExit pods, Terminate does not.
    started, finished = tmp_path / "started", tmp_path / "finished"
    slow_exit = container("bye", "import sys, time, pathlib; pathlib.Path(sys.argv[1]).write_text('x'); time.sleep(2); "
                          "pathlib.Path(sys.argv[2]).write_text('x'); time.sleep(60)", [str(started), str(finished)])
    spec = manifest([{"name": "a", "template": "ok"}], [OK, slow_exit])
    spec["spec"]["onExit"] = "bye"
    runner = _start_stoppable(spec, tmp_path, started)
    runner.send_signal(signal.SIGINT)  # first: the exit handler goes on
    for _ in range(300):
        if finished.exists() or runner.poll() is not None:
            break
        time.sleep(0.1)
    assert finished.exists() and runner.poll() is None
    runner.send_signal(signal.SIGINT)  # second: it is killed
    output, _ = runner.communicate(timeout=60)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["tasks"]["bye"]["status"] == "Failed", output
    assert summary["phase"] == "Failed"  # operator.go operate: a failed exit handler fails the workflow


def test_an_absent_optional_inside_a_value_makes_the_consumer_error(tmp_path: Path) -> None:
    # util/template/simple_template.go: "output is an absent optional (skipped/omitted node with no
    # default)" when a skipped producer's output without default is used inside a longer value.
    produce = container("produce", WRITE, ["/out/v", "x"], outputs=[{"name": "v", "valueFrom": {"path": "/out/v"}}])
    consume = container("consume", "pass", ["{{inputs.parameters.x}}"], inputs=[{"name": "x"}])
    spec = manifest([
        {"name": "a", "template": "produce", "when": "false"},
        {"name": "b", "template": "consume", "depends": "a",
         "arguments": {"parameters": [{"name": "x", "value": "v={{tasks.a.outputs.parameters.v}}"}]}},
    ], [produce, consume])
    result = run(spec, tmp_path)
    assert result.tasks["b"].status == "Error" and "absent optional" in result.tasks["b"].message
