"""The Hera definitions, their golden YAML, and what the cluster needs from them."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from workflows.local.expr import ExprError, evaluate_bool
from workflows.nightly import build_nightly
from workflows.pipeline import PIPELINE_NAME, POD_GPUS_ENV, build_pipeline
from workflows.render import RENDERED_DIR, manifests, render, stale


def _templates() -> dict[str, dict]:
    return {t["name"]: t for t in build_pipeline().to_dict()["spec"]["templates"]}


def test_golden_yaml_is_up_to_date(tmp_path) -> None:
    # GIVEN the committed golden files WHEN re-rendered THEN they are equal as dicts.
    # TRAINYARD_REGENERATE=1 rewrites them instead (like `trainyard render`).
    if os.environ.get("TRAINYARD_REGENERATE"):
        render(RENDERED_DIR)
    assert stale(RENDERED_DIR) == []


def test_stale_golden_file_is_detected(tmp_path) -> None:
    render(tmp_path)
    path = tmp_path / f"{PIPELINE_NAME}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["entrypoint"] = "something-else"
    path.write_text(yaml.safe_dump(doc))
    assert [p for p in stale(tmp_path) if PIPELINE_NAME in p]


def test_dag_runs_the_steps_in_order() -> None:
    dag = _templates()["pipeline"]["dag"]["tasks"]
    assert [t["name"] for t in dag] == ["record", "train", "evaluate", "select", "test"]
    # select runs on the evaluate pods that succeeded (dag.go evaluateDependsLogic: AnySucceeded is
    # true when one child of the TaskGroup Succeeded; plain `evaluate` needs the whole group).
    assert [t.get("depends") for t in dag] == [None, "record", "train", "evaluate.AnySucceeded || evaluate.Skipped",
                                               "select"]
    checkpoints = [{"name": "checkpoints", "from": "{{tasks.train.outputs.artifacts.checkpoints}}"}]
    evaluate, select = (next(t for t in dag if t["name"] == name) for name in ("evaluate", "select"))
    assert evaluate["arguments"]["artifacts"] == select["arguments"]["artifacts"] == checkpoints


def test_evaluation_fans_out_over_trains_checkpoint_groups_and_select_reads_their_objects() -> None:
    from workflows.pipeline import SCORES_KEY

    templates = _templates()
    dag = {t["name"]: t for t in templates["pipeline"]["dag"]["tasks"]}
    assert dag["evaluate"]["withParam"] == "{{tasks.train.outputs.parameters.checkpoint-groups}}"
    assert {"name": "checkpoint-group", "value": "{{item.checkpoints}}"} in dag["evaluate"]["arguments"]["parameters"]
    # Each evaluate pod writes its scores as one object of its group, a key-only output: the
    # executor saves it at exactly that key (executor.go saveArtifactFromFile), so a retried pod
    # overwrites its own object; select reads the prefix as one key-only input, a folder
    # (executor.go newDriverArt relocates it into the default repository; gcs.go downloadObjects).
    [scores] = [a for a in templates["evaluate"]["outputs"]["artifacts"] if "gcs" in a]
    assert scores["gcs"] == {"key": SCORES_KEY + "/{{inputs.parameters.group}}"} and scores["archive"] == {"none": {}}
    [all_scores] = [a for a in templates["select"]["inputs"]["artifacts"] if "gcs" in a]
    assert all_scores["gcs"] == {"key": SCORES_KEY} and all_scores["archive"] == {"none": {}}
    assert "--output-scores" in templates["evaluate"]["container"]["args"]
    assert "parameters" not in templates["evaluate"].get("outputs", {})  # no score travels as a parameter
    # A skipped train lists no groups (its output's default), so the evaluate group is skipped.
    groups = next(p for p in templates["train"]["outputs"]["parameters"] if p["name"] == "checkpoint-groups")
    assert groups["valueFrom"]["default"] == "[]"
    assert templates["pipeline"]["parallelism"] >= 1
    # Only select promotes: evaluate pods get no database.
    assert "TRAINYARD_DATABASE_URL" not in str(templates["evaluate"]["container"].get("env"))
    assert {p["name"] for p in templates["select"]["outputs"]["parameters"]} == {"promoted", "model-uri"}


def test_gpu_steps_request_gpus_on_gpu_nodes() -> None:
    templates = _templates()
    for name in ("train", "evaluate", "select"):
        t = templates[name]
        assert t["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert "cloud.google.com/gke-accelerator" in t["nodeSelector"]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in t["tolerations"]
    for name in ("record", "test"):
        assert "nvidia.com/gpu" not in str(templates[name]["container"].get("resources", {}))


def test_steps_run_their_module_and_get_secrets_from_kubernetes() -> None:
    for name, t in _templates().items():
        if "container" not in t:
            continue
        assert t["container"]["command"] == ["python", "-m", f"steps.{name}"]
        for env in t["container"].get("env", []):
            if env["name"] == POD_GPUS_ENV:  # the pod's GPU count: the one literal
                continue
            assert "value" not in env, f"{name}: env {env['name']} must come from a Secret, not a literal"
    rendered = "\n".join(yaml.safe_dump(m) for _, m in manifests().values())
    assert "password" not in rendered.lower()


def test_nightly_references_the_pipeline_and_never_overlaps() -> None:
    spec = build_nightly().to_dict()["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["schedules"] and all(len(s.split()) == 5 for s in spec["schedules"])
    assert spec["workflowSpec"]["workflowTemplateRef"]["name"] == PIPELINE_NAME


def test_rendered_manifests_pass_the_strict_lint() -> None:
    from workflows.lint import lint_paths

    assert [str(p) for p in lint_paths(sorted(RENDERED_DIR.glob("*.yaml")))] == []


def _retry_scope(phase: str, message: str, exit_code: str | None) -> dict[str, dict[str, str]]:
    """What Argo binds for retryStrategy.expression after a failed attempt: workflow/controller/
    operator.go, `buildRetryStrategyLocalScope` (exitCode "-1" when the node has no exit code), all
    strings, nested by template.EnvMap as expr sees them."""
    return {"lastRetry": {"status": phase, "message": message,
                          "exitCode": "-1" if exit_code is None else exit_code, "duration": "812.4"}}


# Each attempt as Argo's controller reports it (workflow/controller/operator.go): `inferFailedReason`
# returns (Failed, pod.Status.Message) when the pod has a status message, else (Failed, "main:
# <reason> (exit code N)") for the main container, else (Failed, "pod failed: neither main nor wait
# container completed successfully"); `podReconciliation` marks a pod that vanished Error "pod
# deleted"; `assessNodeStatus` sets outputs.exitCode from the main container's terminated state
# (`getExitCode`), absent when it never terminated.
PREEMPTED = {
    "spot node shutdown, handler exited 143": ("Failed", "Pod was terminated in response to imminent node shutdown.", "143"),
    "spot node shutdown, main never finished": ("Failed", "Pod was terminated in response to imminent node shutdown.", None),
    "node shutting down at admission": ("Failed", "Pod was rejected as the node is shutting down.", None),
    "SIGKILL after the grace period": ("Failed", "main: Error (exit code 137)", "137"),
    "SIGTERM handler exit": ("Failed", "main: Error (exit code 143)", "143"),
    "node gone, containers never terminated": ("Failed", "pod failed: neither main nor wait container completed successfully", None),
    "pod deleted": ("Error", "pod deleted", None),
    "wait container killed": ("Error", "wait: Error (exit code 137)", "137"),
}
# Kubelet's eviction messages (Kubernetes pkg/kubelet/eviction/helpers.go: nodeLowMessageFmt,
# thresholdMetMessageFmt, containerMessageFmt, emptyDirMessageFmt, containerEphemeralStorageMessageFmt),
# which Argo takes as the node's message (`inferFailedReason`: the pod's status message first).
MEMORY_EVICTION = ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 63Mi. "
                   "Container main was using 23Gi, request is 16Gi, has larger consumption of memory. ")
NOT_RETRIED = {
    "bad config": ("Failed", "main: Error (exit code 2)", "2"),
    "a bug": ("Failed", "main: Error (exit code 1)", "1"),
    "OOMKilled": ("Failed", "main: OOMKilled (exit code 137)", "137"),
    "template deadline": ("Failed", "Pod was active on the node longer than the specified deadline", "143"),
    "evicted for memory, killed": ("Failed", MEMORY_EVICTION, "137"),
    "evicted for memory, never finished": ("Failed", MEMORY_EVICTION, None),
    "/dev/shm past its sizeLimit": ("Failed", 'Usage of EmptyDir volume "dshm" exceeds the limit "8Gi". ', "137"),
    "scratch past its limit": ("Failed", 'Container main exceeded its local ephemeral storage limit "20Gi". ', None),
}


@pytest.mark.parametrize("step", ["train", "evaluate", "select"])
@pytest.mark.parametrize("case", sorted(PREEMPTED))
def test_preempted_or_deleted_pods_are_retried(step: str, case: str) -> None:
    strategy = _templates()[step]["retryStrategy"]
    # retryPolicy Always: the expression alone decides (processNodeRetries; docs/retries.md).
    assert strategy["retryPolicy"] == "Always"
    assert evaluate_bool(strategy["expression"], _retry_scope(*PREEMPTED[case])) is True


@pytest.mark.parametrize("step", ["train", "evaluate", "select"])
@pytest.mark.parametrize("case", sorted(NOT_RETRIED))
def test_what_would_fail_again_is_not_retried(step: str, case: str) -> None:
    strategy = _templates()[step]["retryStrategy"]
    assert evaluate_bool(strategy["expression"], _retry_scope(*NOT_RETRIED[case])) is False


def test_gpu_steps_have_a_memory_limit_that_covers_dev_shm() -> None:
    # Without a limit, running out of memory surfaces as an eviction; with one, as an OOM kill.
    def gib(quantity: str) -> int:
        return int(quantity.removesuffix("Gi"))

    for name in ("train", "evaluate", "select"):
        resources = _templates()[name]["container"]["resources"]
        assert gib(resources["limits"]["memory"]) >= gib(resources["requests"]["memory"]), name
        shm = next(v for v in _templates()[name]["volumes"] if v["name"] == "dshm")["emptyDir"]["sizeLimit"]
        assert gib(resources["limits"]["memory"]) - gib(shm) >= gib(resources["requests"]["memory"]), name


def test_retry_limits_are_argo_int_or_strings() -> None:
    templates = _templates()
    assert templates["train"]["retryStrategy"]["limit"] == "3" and templates["evaluate"]["retryStrategy"]["limit"] == "2"


def test_every_step_has_a_deadline_and_the_run_too() -> None:
    manifest = build_pipeline().to_dict()["spec"]
    assert manifest["activeDeadlineSeconds"] > max(int(t.get("activeDeadlineSeconds", 0)) for t in manifest["templates"])
    for t in manifest["templates"]:
        if "container" in t:
            assert int(t["activeDeadlineSeconds"]) > 0, t["name"]
            assert "ephemeral-storage" in t["container"]["resources"]["requests"], t["name"]
            assert json.loads(t["podSpecPatch"])["terminationGracePeriodSeconds"] >= 15, t["name"]
    assert manifest["podGC"]["strategy"] and manifest["ttlStrategy"]["secondsAfterFailure"] > 0


def test_gpu_steps_get_a_memory_backed_dev_shm() -> None:
    for name in ("train", "evaluate"):
        t = _templates()[name]
        assert {"name": "dshm", "mountPath": "/dev/shm"} in t["container"]["volumeMounts"]
        assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}} in t["volumes"]
    assert "dshm" not in str(_templates()["record"])


def test_every_run_ends_in_the_exit_handler() -> None:
    spec = build_pipeline().to_dict()["spec"]
    assert spec["onExit"] == "notify"
    notify = _templates()["notify"]
    assert notify["container"]["command"] == ["python", "-m", "steps.notify"]
    assert "{{workflow.status}}" in notify["container"]["args"] and "{{workflow.failures}}" in notify["container"]["args"]
    assert "notify" not in [t["name"] for t in _templates()["pipeline"]["dag"]["tasks"]]


def test_pods_run_hardened_as_the_charts_service_account() -> None:
    spec = build_pipeline().to_dict()["spec"]
    assert spec["serviceAccountName"] == "trainyard"
    assert spec["artifactRepositoryRef"] == {"configMap": "trainyard-artifact-repositories", "key": "gcs"}
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
    for name, t in _templates().items():
        if "container" not in t:
            continue
        context = t["container"]["securityContext"]
        assert context == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
        # A read-only root needs somewhere to write: the outputs under /work, checkouts under /tmp.
        mounts = {m["mountPath"] for m in t["container"]["volumeMounts"]}
        assert {"/work", "/tmp"} <= mounts, name


def test_the_local_runner_accepts_the_cluster_template(tmp_path) -> None:
    from workflows.local import LocalRunner

    # Everything the cluster template uses either runs locally (the DAG, the exit handler) or only
    # matters to Kubernetes: no refusal, no note.
    notes: list[str] = []
    LocalRunner(build_pipeline().to_dict(), tmp_path / "run", {}, echo=notes.append)
    assert notes == []


def test_train_mirrors_checkpoints_per_run_so_a_retried_pod_resumes() -> None:
    args = _templates()["train"]["container"]["args"]
    assert args[args.index("--checkpoint-root") + 1] == "{{inputs.parameters.checkpoint-root}}"
    assert args[args.index("--run-id") + 1] == "{{workflow.name}}"  # the same across retries


def test_the_expression_subset_refuses_what_it_cannot_evaluate() -> None:
    scope = _retry_scope("Failed", "main: Error (exit code 2)", "2")
    assert evaluate_bool("!(asInt(lastRetry.exitCode) in [1, 2]) || lastRetry.status != 'Failed'", scope) is False
    assert evaluate_bool("lastRetry.exitCode == 2", scope) is False  # a string is never equal to a number in expr
    for bad in ("lastRetry.duration > 10", "asInt(lastRetry.message) == 1", "lastRetry.status"):
        with pytest.raises(ExprError):
            evaluate_bool(bad, scope)
