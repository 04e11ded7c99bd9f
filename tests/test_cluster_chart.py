"""What a real cluster does with the chart's manifests: Argo's parameter overrides, Kubernetes'
scheduling of the documented node pools, the `restricted` Pod Security Standard, the nightly guard.

The chart is rendered with Helm exactly as tests/test_chart.py does (its helpers are reused)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

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
    assert train["activeDeadlineSeconds"] == 3600 and json.loads(train["podSpecPatch"]) == {"terminationGracePeriodSeconds": 20}
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
    assert {name: t["activeDeadlineSeconds"] for name, t in _templates(template).items() if "container" in t} == DEADLINES
    assert all(DEADLINES[step] == DEADLINES[values] for step, values in STEP_VALUES.items())
    storage = dict(re.findall(r"(\w+) (\d+Gi)", re.search(r"ephemeral-storage` \| ([^|]+)\|", text).group(1)))
    assert storage == {k: v for k, v in EPHEMERAL_STORAGE.items() if k not in STEP_VALUES}
    assert f"`steps.<step>.terminationGracePeriodSeconds` | {GRACE_SECONDS} |" in text
    assert f"| `workflow.activeDeadlineSeconds` | {template['spec']['activeDeadlineSeconds']} " in text
    retry = _templates(template)["train"]["retryStrategy"]["expression"]
    block = re.search(r"```text\n(lastRetry.*?)```", text, flags=re.S).group(1)
    assert " ".join(block.split()) == " ".join(retry.split())
