"""The chart across the product of its options: memoize on/off, rbac on/off, nightly on/off, Workload
Identity vs a key Secret, a priority class set/unset, restricted security on/off (64 renders).

Each rendered set is checked against Argo's schema (`trainyard lint`: Hera's models of Argo's
OpenAPI spec, and the validator's rules) and the core kinds with kubernetes-validate, and for each
failure issue 22 found past the demo's size:

- a memoized record without the cache ConfigMap (Argo's controller creates a missing cache on the
  first save, workflow/controller/cache/configmap_cache.go `save`, which the chart's RBAC does not
  allow: the node becomes Error, controller/operator.go `podReconciliation`);
- a `null` in a manifest (`podPriorityClassName: null` when no priority class is set);
- anything that grows with checkpoints, branches or classes in a pod's arguments (Argo offloads
  args past 128 KiB into a ConfigMap the controller must create, workflowpod.go `MaxEnvVarLen`):
  no task argument takes a fan-out's aggregated outputs, select reads the scores' key prefix;
- GPU steps without a memory limit, and a retry expression that retries an eviction for memory;
- with the documented executor settings, a pod whose containers run as different users (the
  executor creates input folders 0700: executor.go `loadArtifact`), or a container the
  `restricted` Pod Security Standard refuses.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
import yaml

from tests.test_chart import ARGO_KINDS, CORE_KINDS, KUBERNETES_VERSION, _docs, _render
from tests.test_cluster_chart import check_step_pods, documented_executor
from tests.test_workflows import MEMORY_EVICTION, PREEMPTED, _retry_scope
from workflows.lint import lint_text
from workflows.local.expr import evaluate_bool

OPTIONS = {
    "memoize": {"on": "memoize: {enabled: true}\n", "off": "memoize: {enabled: false}\n"},
    "rbac": {"on": "rbac: {create: true}\n", "off": "rbac: {create: false}\n"},
    "nightly": {"on": "nightly: {enabled: true}\n", "off": "nightly: {enabled: false}\n"},
    "identity": {"workload-identity": "serviceAccount: {workloadIdentity: trainyard@my-project.iam.gserviceaccount.com}\n",
                 "key-secret": "artifacts: {serviceAccountKeySecret: {name: gcs-key, key: key.json}}\n"},
    "priority": {"set": "priorityClassName: ml-batch\n", "unset": ""},
    "security": {"restricted": "", "relaxed": "podSecurityContext: {runAsNonRoot: false, runAsUser: 0}\n"
                                              "containerSecurityContext: {allowPrivilegeEscalation: true}\n"},
}
BASE = "workflow: {datasetRepo: https://github.com/example/plates-dataset.git}\n"
MATRIX = [dict(zip(OPTIONS, choice, strict=True)) for choice in itertools.product(*OPTIONS.values())]
FANOUT_OUTPUT = re.compile(r"\{\{tasks\.([\w-]+)\.outputs\.(parameters|result)")


def _values(case: dict[str, str]) -> str:
    return BASE + "".join(OPTIONS[name][choice] for name, choice in case.items())


def _nulls(value: Any, where: str = "") -> list[str]:
    if value is None:
        return [where]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _nulls(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _nulls(v, f"{where}[{i}]")]
    return []


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _templates(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in doc["spec"]["templates"]}


def _check_schema(docs: list[dict[str, Any]]) -> None:
    import kubernetes_validate

    assert {d["kind"] for d in docs} <= ARGO_KINDS | CORE_KINDS
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert _nulls(doc) == [], f"{where}: null fields {_nulls(doc)}"
        if doc["kind"] in ARGO_KINDS:
            assert [str(p) for p in lint_text(yaml.safe_dump(doc), where)] == []
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def _check_memoize(docs: list[dict[str, Any]], case: dict[str, str]) -> None:
    [sweep] = [d for d in _by_kind(docs, "WorkflowTemplate") if d["spec"]["entrypoint"] == "sweep"]
    memo = _templates(sweep)["record"].get("memoize")
    caches = {d["metadata"]["name"] for d in _by_kind(docs, "ConfigMap")
              if d["metadata"].get("labels", {}).get("workflows.argoproj.io/configmap-type") == "Cache"}
    roles = {d["metadata"]["name"] for d in _by_kind(docs, "Role")}
    if case["memoize"] == "on":
        assert memo is not None and memo["cache"]["configMap"]["name"] in caches
        assert ("trainyard-memoize" in roles) == (case["rbac"] == "on")
    else:
        assert memo is None and caches == set() and "trainyard-memoize" not in roles
    assert ("trainyard-executor" in roles) == (case["rbac"] == "on")


def _check_nothing_grows_in_arguments(template: dict[str, Any]) -> None:
    templates = _templates(template)
    dag = templates[template["spec"]["entrypoint"]]["dag"]["tasks"]
    fanned = {t["name"] for t in dag if "withParam" in t or "withItems" in t}
    for task in dag:
        for param in task.get("arguments", {}).get("parameters", []):
            refs = {m.group(1) for m in FANOUT_OUTPUT.finditer(str(param.get("value", "")))}
            assert not refs & fanned, f"{task['name']}: {param['name']} takes a fan-out's aggregated outputs"
    evaluate, select = templates["evaluate"], templates["select"]
    [written] = [a["gcs"]["key"] for a in evaluate["outputs"]["artifacts"] if "gcs" in a]
    [read] = [a for a in select["inputs"]["artifacts"] if "gcs" in a]
    assert written.startswith(read["gcs"]["key"] + "/") and read["archive"] == {"none": {}}
    assert f"{read['path']}" in select["container"]["args"]


def _check_memory(template: dict[str, Any]) -> None:
    for name in ("train", "evaluate", "select"):
        t = _templates(template)[name]
        assert t["container"]["resources"]["limits"]["memory"], name
        expression = t["retryStrategy"]["expression"]
        assert evaluate_bool(expression, _retry_scope("Failed", MEMORY_EVICTION, "137")) is False, name
        for case in ("pod deleted", "spot node shutdown, main never finished"):
            assert evaluate_bool(expression, _retry_scope(*PREEMPTED[case])) is True, name


def _check_identity(docs: list[dict[str, Any]], case: dict[str, str]) -> None:
    repository = yaml.safe_load(next(d for d in _by_kind(docs, "ConfigMap") if "gcs" in d.get("data", {}))["data"]["gcs"])
    for template in _by_kind(docs, "WorkflowTemplate"):
        for name, t in _templates(template).items():
            if "container" in t:
                mounted = "gcp-key" in t["podSpecPatch"]
                assert mounted == (case["identity"] == "key-secret"), name
    assert ("serviceAccountKeySecret" in repository["gcs"]) == (case["identity"] == "key-secret")
    annotations = _by_kind(docs, "ServiceAccount")[0]["metadata"].get("annotations") or {}
    assert ("iam.gke.io/gcp-service-account" in annotations) == (case["identity"] == "workload-identity")


def _check_security(template: dict[str, Any], case: dict[str, str]) -> None:
    # restricted: the controller's executor as docs/cluster.md sets it; relaxed: Argo's default
    # executor (no securityContext of its own).
    restricted = case["security"] == "restricted"
    check_step_pods(template, documented_executor() if restricted else {}, restricted)


@pytest.mark.parametrize("case", MATRIX, ids=["-".join(c.values()) for c in MATRIX])
def test_every_combination_of_the_charts_options_renders_a_cluster_that_works(case: dict[str, str]) -> None:
    docs = _docs(_render(_values(case)))
    _check_schema(docs)
    _check_memoize(docs, case)
    _check_identity(docs, case)
    assert bool(_by_kind(docs, "CronWorkflow")) == (case["nightly"] == "on")
    for template in _by_kind(docs, "WorkflowTemplate"):
        assert template["spec"].get("podPriorityClassName") == ("ml-batch" if case["priority"] == "set" else None)
        _check_nothing_grows_in_arguments(template)
        _check_memory(template)
        _check_security(template, case)


@pytest.mark.parametrize("key_format", ["{{pod.name}}", "trainyard/{{pod.name}}", "{{workflow.name}}/{{pod.name}}/x",
                                        "trainyard/{{workflow.name}}", "trainyard/{{pod.name}}/{{workflow.name}}/{{pod.name}}"])
def test_a_key_format_whose_prefix_does_not_name_the_run_is_refused(key_format: str) -> None:
    # The scores of every run would share one prefix, or a pod's: select would read other runs' objects.
    from tests.test_chart import HelmError

    with pytest.raises(HelmError, match=re.escape("artifacts.keyFormat") + ".*ending in /{{pod.name}}"):
        _render(f"artifacts: {{keyFormat: '{key_format}'}}\n")


def test_the_scores_follow_the_key_format() -> None:
    docs = _docs(_render("artifacts: {keyFormat: 'ml/{{workflow.uid}}/{{pod.name}}'}\n"))
    pipeline = next(d for d in _by_kind(docs, "WorkflowTemplate") if d["spec"]["entrypoint"] == "pipeline")
    [read] = [a for a in _templates(pipeline)["select"]["inputs"]["artifacts"] if "gcs" in a]
    assert read["gcs"]["key"] == "ml/{{workflow.uid}}/scores"
