"""What a real cluster does with the chart's manifests: Argo's parameter overrides, Kubernetes'
scheduling of the documented node pools, the `restricted` Pod Security Standard, the nightly guard.

The chart is rendered with Helm exactly as tests/test_chart.py does (its helpers are reused)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from steps.config import load_config
from tests.test_chart import REPO, _docs, _kind, _render, _scenario, _templates
from workflows.local.templating import substitute

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cluster.md"
STEPS = ("record", "train", "evaluate", "test", "notify")


# -- 3: a run's own `-p overrides` keeps the install's settings ---------------------------------------
def _submitted_parameters(template: dict[str, Any], passed: list[str]) -> dict[str, str]:
    """The workflow's parameters after `argo submit --from workflowtemplate/... -p NAME=VALUE`:
    workflow/util/util.go `overrideParameters` replaces exactly the passed names; every other
    parameter keeps the template's default."""
    values = {p["name"]: p.get("value", "") for p in template["spec"]["arguments"]["parameters"]}
    for item in passed:
        name, _, value = item.partition("=")
        values[name] = value
    return values


def _step_config(template: dict[str, Any], step: str, parameters: dict[str, str]):
    """The config the step loads: its `--set-list` with the parameters filled in (the DAG passes each
    workflow parameter to the step's input of the same name)."""
    args = _templates(template)[step]["container"]["args"]
    scope = {**{f"inputs.parameters.{k}": v for k, v in parameters.items()},
             **{f"workflow.parameters.{k}": v for k, v in parameters.items()}}
    return load_config(None, [], substitute(args[args.index("--set-list") + 1], scope, step))


@pytest.mark.parametrize("step", ["train", "evaluate", "notify"])
def test_a_runs_own_overrides_keep_the_installs_settings(step: str) -> None:
    template = _kind(_docs(_render(_scenario("workload-identity"))), "WorkflowTemplate")
    parameters = _submitted_parameters(template, ["overrides=train.iterations=5 train.num_workers=2"])
    config = _step_config(template, step, parameters)
    assert config.promotion.registry == "gs://my-project-models/registry"  # the chart's modelRegistry
    assert config.train.iterations == 5 and config.train.num_workers == 2  # the run's own win over the chart's


# -- 7: the nightly waits for a dataset repo -------------------------------------------------------------
def test_the_nightly_is_installed_only_with_a_dataset_repo() -> None:
    assert "CronWorkflow" not in {d["kind"] for d in _docs(_render())}
    assert "CronWorkflow" in {d["kind"] for d in _docs(_render(REPO))}
    by_parameter = "nightly: {parameters: {dataset-repo: https://github.com/example/plates.git}}\n"
    assert "CronWorkflow" in {d["kind"] for d in _docs(_render(by_parameter))}
    assert "CronWorkflow" not in {d["kind"] for d in _docs(_render(REPO + "nightly: {enabled: false}\n"))}


# -- 2: either documented pool layout schedules every step ------------------------------------------------
def _documented_gpu_pools() -> dict[str, tuple[dict[str, str], list[tuple[str, str, str]]]]:
    """Each `gcloud container node-pools create` of docs/cluster.md as (node labels, taints), with
    what GKE adds itself: the accelerator label and `nvidia.com/gpu=present:NoSchedule` on GPU
    nodes, the `cloud.google.com/gke-spot=true` label on spot nodes."""
    pools = {}
    for command in re.findall(r"gcloud container node-pools create.*?(?=\n\s*```)", DOCS.read_text(), flags=re.S):
        words = shlex.split(command.replace("\\\n", " "))
        name = words[4]
        labels, taints = {}, []
        for index, word in enumerate(words):
            if word == "--accelerator":
                accelerator = dict(part.split("=", 1) for part in words[index + 1].split(","))
                labels["cloud.google.com/gke-accelerator"] = accelerator["type"]
                taints.append(("nvidia.com/gpu", "present", "NoSchedule"))
            elif word == "--spot":
                labels["cloud.google.com/gke-spot"] = "true"
            elif word == "--node-taints":
                for taint in words[index + 1].split(","):
                    key, _, rest = taint.partition("=")
                    value, _, effect = rest.partition(":")
                    taints.append((key, value, effect))
        pools[name] = (labels, taints)
    return pools


def _tolerates(tolerations: list[dict[str, str]], taint: tuple[str, str, str]) -> bool:
    """Kubernetes' Toleration.ToleratesTaint: same effect (or none given), same key (or none with
    Exists), and for Equal the same value."""
    key, value, effect = taint
    for t in tolerations:
        if t.get("effect") and t["effect"] != effect:
            continue
        if t.get("key") and t["key"] != key:
            continue
        if t.get("operator", "Equal") == "Exists" or t.get("value", "") == value:
            return True
    return False


def _schedules(template: dict[str, Any], pools: dict[str, tuple[dict[str, str], list]]) -> list[str]:
    selector = template.get("nodeSelector") or {}
    return [name for name, (labels, taints) in pools.items()
            if selector.items() <= labels.items()
            and all(_tolerates(template.get("tolerations") or [], t) for t in taints if t[2] in ("NoSchedule", "NoExecute"))]


@pytest.mark.parametrize("values", ["", "steps: {train: {spot: true}}\n"], ids=["defaults", "train-on-spot"])
def test_either_documented_pool_layout_schedules_every_step(values: str) -> None:
    gpu_pools = _documented_gpu_pools()
    assert sorted(gpu_pools) == ["gpu-l4", "gpu-l4-spot"]  # layout B and layout A
    templates = _templates(_kind(_docs(_render(values)), "WorkflowTemplate"))
    for gpu_pool, pool in gpu_pools.items():
        if "spot" in values and "cloud.google.com/gke-spot" not in pool[0]:
            continue  # spot: true asks for a spot pool: layout A only
        layout = {"default-pool": ({}, []), gpu_pool: pool}
        for step in STEPS:
            assert _schedules(templates[step], layout), f"{step} stays Pending with the {gpu_pool} layout"
        for step in ("train", "evaluate"):
            assert _schedules(templates[step], layout) == [gpu_pool], step
        for step in ("record", "test", "notify"):
            assert _schedules(templates[step], layout) == ["default-pool"], step  # never on a GPU


# -- 11: the chart's own pods meet the `restricted` Pod Security Standard ----------------------------------
@pytest.mark.parametrize("scenario", ["default", "spot-a100", "workload-identity", "minimal"])
def test_the_charts_pods_meet_the_restricted_pod_security_standard(scenario: str) -> None:
    """Kubernetes' Pod Security Standards, `restricted` (v1.30): non-root, no privilege escalation,
    all capabilities dropped, a RuntimeDefault or Localhost seccomp profile, only these volume types,
    no host namespaces or ports. (Argo's own init/wait containers take the controller's
    executor.securityContext: docs/cluster.md.)"""
    template = _kind(_docs(_render(_scenario(scenario))), "WorkflowTemplate")
    pod = template["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod.get("runAsUser", 1) != 0
    assert pod["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost")
    allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
    for name, t in _templates(template).items():
        if "container" not in t:
            continue
        context = t["container"]["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"], name
        assert not context.get("privileged") and context.get("runAsNonRoot", True) and context.get("runAsUser", 1) != 0, name
        assert not set(context["capabilities"].get("add", [])) - {"NET_BIND_SERVICE"}, name
        patch = json.loads(t["podSpecPatch"])
        for volume in [*t.get("volumes", []), *patch.get("volumes", [])]:
            assert set(volume) - {"name"} <= allowed, f"{name}: volume {volume}"
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(patch), name
        assert not any("hostPort" in p for p in t["container"].get("ports", [])), name


# -- 12: what a platform team expects, as values ----------------------------------------------------------
def test_gc_ttl_deadlines_priority_and_scratch_space_are_values() -> None:
    values = ("podGC: {strategy: OnWorkflowCompletion, deleteDelayDuration: 10m}\n"
              "ttlStrategy: {secondsAfterSuccess: 60, secondsAfterFailure: 120}\n"
              "priorityClassName: ml-batch\n"
              "workflow: {activeDeadlineSeconds: 7200}\n"
              "steps: {train: {activeDeadlineSeconds: 3600, terminationGracePeriodSeconds: 20,"
              " resources: {requests: {ephemeral-storage: 80Gi}}}}\n")
    template = _kind(_docs(_render(values)), "WorkflowTemplate")
    spec = template["spec"]
    assert spec["podGC"] == {"strategy": "OnWorkflowCompletion", "deleteDelayDuration": "10m"}
    assert spec["ttlStrategy"] == {"secondsAfterSuccess": 60, "secondsAfterFailure": 120}
    assert spec["podPriorityClassName"] == "ml-batch" and spec["activeDeadlineSeconds"] == 7200
    train = _templates(template)["train"]
    assert train["activeDeadlineSeconds"] == "3600" and json.loads(train["podSpecPatch"]) == {"terminationGracePeriodSeconds": 20}
    assert train["container"]["resources"]["requests"]["ephemeral-storage"] == "80Gi"
    evaluate = _templates(template)["evaluate"]
    assert evaluate["container"]["resources"]["requests"]["ephemeral-storage"] == "20Gi"  # every checkpoint lands there


# -- docs/cluster.md says what the chart renders ------------------------------------------------------
def test_the_documented_values_file_installs() -> None:
    example = re.search(r"```yaml\n# my-values.yaml\n(.*?)```", DOCS.read_text(), flags=re.S).group(1)
    # The placeholder filled in as a reader would; nothing else: the example sets the required values itself.
    docs = _docs(_render(example.replace("PROJECT", "my-project"), required=False))
    assert "CronWorkflow" in {d["kind"] for d in docs}  # it sets a dataset repo


def test_the_documented_defaults_are_the_charts() -> None:
    from workflows.chart import STEP_VALUES
    from workflows.pipeline import DEADLINES, EPHEMERAL_STORAGE, GRACE_SECONDS

    text = DOCS.read_text()
    template = _kind(_docs(_render()), "WorkflowTemplate")
    documented = dict(re.findall(r"(\w+) (\d+)", re.search(r"`steps.<step>.activeDeadlineSeconds` \| ([^|]+)\|", text).group(1)))
    # A template that takes another step's values (select: evaluate's) has no line of its own.
    assert {k: int(v) for k, v in documented.items()} == {k: v for k, v in DEADLINES.items() if k not in STEP_VALUES}
    assert {name: int(t["activeDeadlineSeconds"]) for name, t in _templates(template).items() if "container" in t} == DEADLINES
    assert all(DEADLINES[step] == DEADLINES[values] for step, values in STEP_VALUES.items())
    storage = dict(re.findall(r"(\w+) (\d+Gi)", re.search(r"ephemeral-storage` \| ([^|]+)\|", text).group(1)))
    assert storage == {k: v for k, v in EPHEMERAL_STORAGE.items() if k not in STEP_VALUES}
    assert f"`steps.<step>.terminationGracePeriodSeconds` | {GRACE_SECONDS} |" in text
    assert f"| `workflow.activeDeadlineSeconds` | {template['spec']['activeDeadlineSeconds']} " in text
    retry = _templates(template)["train"]["retryStrategy"]["expression"]
    block = re.search(r"```text\n(lastRetry.*?)```", text, flags=re.S).group(1)
    assert " ".join(block.split()) == " ".join(retry.split())


# -- 2 (issue 22): the documented executor settings and the chart's pods, together -----------------------
EXECUTOR_IMAGE_USER = 8737  # quay.io/argoproj/argoexec:*-nonroot (Argo's docs/workflow-pod-security-context.md)
STEP_IMAGE_USER = 10001  # USER of images/*/Dockerfile


def documented_executor() -> dict[str, Any]:
    """The `executor` of the workflow-controller ConfigMap docs/cluster.md tells users to set."""
    block = re.search(r"```yaml\n(apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: workflow-controller-configmap.*?)```",
                      DOCS.read_text(), flags=re.S).group(1)
    return yaml.safe_load(yaml.safe_load(block)["data"]["executor"])


def effective_user(container: dict[str, Any] | None, pod: dict[str, Any], image_user: int) -> int:
    """Kubernetes: a container's securityContext.runAsUser, else the pod's, else the image's USER."""
    return (container or {}).get("runAsUser", pod.get("runAsUser", image_user))


def pod_users(template: dict[str, Any], name: str, executor: dict[str, Any]) -> dict[str, int]:
    """Each container of a step's pod and its user: Argo's `init` and `wait` take the controller's
    executor.securityContext (workflow/controller/workflowpod.go `newExecContainer`), `main` the
    template's container securityContext, over the workflow's pod securityContext."""
    pod = template["spec"]["securityContext"]
    main = _templates(template)[name]["container"].get("securityContext")
    return {"init": effective_user(executor.get("securityContext"), pod, EXECUTOR_IMAGE_USER),
            "wait": effective_user(executor.get("securityContext"), pod, EXECUTOR_IMAGE_USER),
            "main": effective_user(main, pod, STEP_IMAGE_USER)}


def restricted_problems(context: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    """What the `restricted` Pod Security Standard refuses in one container (with the pod's context)."""
    problems = []
    if not context.get("runAsNonRoot", pod.get("runAsNonRoot")) or effective_user(context, pod, 1) == 0:
        problems.append("runs as root")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation")
    if "ALL" not in (context.get("capabilities") or {}).get("drop", []):
        problems.append("capabilities")
    if (context.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("seccompProfile")
    return problems


def check_step_pods(template: dict[str, Any], executor: dict[str, Any], restricted: bool = True) -> None:
    """Every step pod of `template` with the controller's `executor`: one user in all its containers
    and, if `restricted`, each container within the `restricted` Pod Security Standard."""
    pod = template["spec"]["securityContext"]
    for name, t in _templates(template).items():
        if "container" not in t:
            continue
        users = pod_users(template, name, executor)
        assert len(set(users.values())) == 1, f"{template['metadata']['name']}/{name}: {users}"
        if restricted:
            for container, context in (("init", executor["securityContext"]), ("wait", executor["securityContext"]),
                                       ("main", t["container"]["securityContext"])):
                assert restricted_problems(context, pod) == [], f"{name}/{container}"


@pytest.mark.parametrize("scenario", ["default", "spot-a100", "workload-identity", "minimal"])
def test_the_documented_executor_runs_every_container_of_a_pod_as_one_user(scenario: str) -> None:
    executor = documented_executor()
    assert executor["image"].endswith("-nonroot") and "runAsUser" not in executor["securityContext"]
    for template in [d for d in _docs(_render(_scenario(scenario))) if d["kind"] == "WorkflowTemplate"]:
        check_step_pods(template, executor)


def test_an_executor_user_of_its_own_breaks_the_steps_inputs() -> None:
    # What docs/cluster.md used to say: the executor as 8737, the steps as 10001.
    template = _kind(_docs(_render()), "WorkflowTemplate")
    old = {"securityContext": {**documented_executor()["securityContext"], "runAsUser": 8737}}
    assert pod_users(template, "select", old) == {"init": 8737, "wait": 8737, "main": 10001}


def _interpreter_for_anyone() -> str:
    """A Python any user may run (a virtualenv under /root is not one); the snippets need the stdlib only."""
    import shutil

    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if candidate and Path(candidate).is_file() and all(
                os.stat(folder).st_mode & 0o001 for folder in Path(candidate).resolve().parents):
            return candidate
    pytest.skip("no Python interpreter that other users may run")


def _as_user(uid: int, code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_interpreter_for_anyone(), "-c", code, *args], user=uid, group=uid, extra_groups=[],
                          capture_output=True, text=True, timeout=60)


# The executor's download of an input folder (workflow/executor/executor.go `loadArtifact`: MkdirAll
# of the parent with 0o700; artifacts/gcs/gcs.go `downloadObject`: MkdirAll(objectDir, 0o700) for
# each object, then the file; then the rename of `<path>.tmp` to the input path).
EXECUTOR_DOWNLOAD = """
import os, sys
from pathlib import Path
def mkdir_all(path):  # Go's os.MkdirAll(path, 0o700): every folder it creates gets the mode
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        os.mkdir(folder, 0o700)
work = Path(sys.argv[1])
tmp = work / "inputs" / "scores.tmp"
mkdir_all(tmp.parent)
mkdir_all(tmp / "model_0000001")
(tmp / "model_0000001" / "scores.json").write_text("[]")
os.rename(tmp, work / "inputs" / "scores")
"""
STEP_READS = "import sys, pathlib; print(pathlib.Path(sys.argv[1], 'inputs/scores/model_0000001/scores.json').read_text())"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="switching users needs root")
@pytest.mark.parametrize("executor_user", [None, 8737], ids=["documented", "old-docs-8737"])
def test_a_step_reads_what_the_executor_downloaded(executor_user: int | None) -> None:
    import tempfile

    template = _kind(_docs(_render()), "WorkflowTemplate")
    executor = documented_executor()
    if executor_user is not None:
        executor = {**executor, "securityContext": {**executor["securityContext"], "runAsUser": executor_user}}
    users = pod_users(template, "select", executor)
    with tempfile.TemporaryDirectory(dir="/tmp") as scratch:
        work = Path(scratch) / "work"  # the emptyDir: kubelet makes it 0777
        work.mkdir()
        work.chmod(0o777)
        Path(scratch).chmod(0o755)
        downloaded = _as_user(users["init"], EXECUTOR_DOWNLOAD, str(work))
        assert downloaded.returncode == 0, downloaded.stderr
        read = _as_user(users["main"], STEP_READS, str(work))
    if executor_user is None:
        assert read.returncode == 0 and read.stdout.strip() == "[]", read.stderr
    else:
        assert read.returncode != 0 and "PermissionError" in read.stderr
