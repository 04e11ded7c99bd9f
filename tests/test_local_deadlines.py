"""Root cause 2 and the kubelet's limits: deadlines and memory limits in `trainyard run --local`
are enforced as Argo v4.1.2 and Kubernetes enforce them (workflows/local/deadlines.py, process.py);
each a small manifest of ours with the Argo source it reproduces."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_local_argo_semantics import manifest, run
from tests.test_local_constructs import sh, statuses
from workflows.local import TemplateError
from workflows.pipeline import build_pipeline

SLEEP = sh("sleep", "echo started; sleep 30")


def test_a_templates_deadline_fails_its_pod_with_the_kubelets_message(tmp_path: Path) -> None:
    # workflowpod.go build: activeDeadlineSeconds (also a template of one, functional_test.go
    # TestParametrizableAds) is the pod's; `timeout` sets it from the node's start
    # (checkTemplateTimeouts; TestTemplateLevelTimeout). The kubelet ends the pod and the node is
    # Failed with the pod's message (inferFailedReason; workflow_test.go asserts it).
    ads = {**SLEEP, "name": "ads", "inputs": {"parameters": [{"name": "s", "value": "1"}]},
           "activeDeadlineSeconds": "{{inputs.parameters.s}}"}
    timeout = {**SLEEP, "name": "timeout", "timeout": "1s"}
    quick = {**sh("quick", "true"), "activeDeadlineSeconds": 30}
    spec = manifest([{"name": "a", "template": "ads"}, {"name": "t", "template": "timeout"},
                     {"name": "q", "template": "quick"}], [ads, timeout, quick])
    result = run(spec, tmp_path)
    assert statuses(result) == {"a": "Failed", "t": "Failed", "q": "Succeeded"}
    assert result.phase == "Failed"
    for name in ("a", "t"):
        assert result.tasks[name].message == "Pod was active on the node longer than the specified deadline"
        assert result.tasks[name].seconds < 20


def test_a_bad_deadline_makes_the_node_error(tmp_path: Path) -> None:
    # workflowpod.go build (intstr.Int64) and getTimeoutAsDeadline: the pod is not made, the node errs.
    spec = manifest([{"name": "a", "template": "b"}, {"name": "t", "template": "c"}],
                    [{**SLEEP, "name": "b", "activeDeadlineSeconds": "soon"}, {**SLEEP, "name": "c", "timeout": "1 day"}])
    result = run(spec, tmp_path)
    assert statuses(result) == {"a": "Error", "t": "Error"}
    assert "activeDeadlineSeconds" in result.tasks["a"].message and "invalid timeout format" in result.tasks["t"].message
    with pytest.raises(TemplateError, match="spec.activeDeadlineSeconds: expected a whole number"):
        run({**spec, "spec": {**spec["spec"], "activeDeadlineSeconds": "soon"}}, tmp_path)


def test_the_workflows_deadline_stops_its_steps_but_not_the_exit_handler(tmp_path: Path) -> None:
    # operator.go getWorkflowDeadline (the start, to the second, + activeDeadlineSeconds):
    # executor.go monitorDeadline and exec_control.go applyExecutionControl end the running step,
    # "Step exceeded its deadline"; a step due later gets no pod (workflowpod.go build) and fails
    # the same way (failNodesWithoutCreatedPodsAfterDeadlineOrShutdown); a Retry node stops with
    # "retry exceeded workflow deadline <time>" (processNodeRetries); the exit handler runs
    # (onExit pods ignore the deadline) and sees the workflow Failed.
    retried = {**SLEEP, "name": "retried", "retryStrategy": {"limit": 5}}
    out = tmp_path / "exit"
    bye = sh("bye", f"sleep 2 && echo {{{{workflow.status}}}} > {out}")
    spec = manifest([{"name": "long", "template": "sleep"}, {"name": "r", "template": "retried"},
                     {"name": "after", "template": "sleep", "depends": "long.Failed"}], [SLEEP, retried, bye])
    spec["spec"].update(activeDeadlineSeconds=2, onExit="bye")
    result = run(spec, tmp_path, )
    assert result.phase == "Failed"
    assert statuses(result) == {"long": "Failed", "r": "Failed", "after": "Failed", "bye": "Succeeded"}
    assert result.tasks["long"].message == result.tasks["after"].message == "Step exceeded its deadline"
    assert re.fullmatch(r"retry exceeded workflow deadline \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC",
                        result.tasks["r"].message)
    assert result.tasks["after"].seconds < 1  # never started
    assert out.read_text() == "Failed\n"


def test_a_memory_limit_kills_the_step_as_the_oom_killer_does(tmp_path: Path) -> None:
    # The kubelet's cgroup limit (test/e2e/expectedfailures/oom-kill.yaml): over
    # resources.limits.memory the kernel kills the container, OOMKilled (exit code 137), and
    # inferFailedReason makes the node Failed with "main: OOMKilled (exit code 137)".
    hog = {"name": "hog", "container": {"image": "x", "command": ["python", "-c",
                                        "import time; b = bytearray(200 * 2**20); time.sleep(30)"],
                                        "resources": {"limits": {"memory": "64Mi"}}}}
    fits = {**hog, "name": "fits", "container": {**hog["container"], "resources": {"limits": {"memory": "1Gi"}}}}
    fits["container"]["command"] = ["python", "-c", "b = bytearray(2**20)"]
    result = run(manifest([{"name": "h", "template": "hog"}, {"name": "f", "template": "fits"}], [hog, fits]), tmp_path)
    assert statuses(result) == {"h": "Failed", "f": "Succeeded"}
    assert result.tasks["h"].message == "main: OOMKilled (exit code 137)" and result.tasks["h"].exit_code == "137"


def test_trainyards_own_deadlines_are_whole_seconds_the_runner_takes() -> None:
    # The rendered templates give activeDeadlineSeconds as strings (IntOrString): each one parses.
    from workflows.local.deadlines import pod_seconds

    spec = build_pipeline().to_dict()["spec"]
    assert isinstance(spec["activeDeadlineSeconds"], int)
    pods = [t for t in spec["templates"] if "container" in t or "script" in t]
    assert pods and all(pod_seconds(t, {}, t["name"]) == float(t["activeDeadlineSeconds"]) for t in pods)
