"""The Helm chart: generated from the Hera objects, rendered and linted with Helm for the default
values and every `ci/*-values.yaml` scenario, every manifest checked strictly.

Helm is the `helm` binary when it is on PATH, else helm-python-sdk (Helm v4 as a library).
Argo kinds are checked with `trainyard lint`; core kinds with kubernetes-validate in strict mode.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from steps import __version__
from workflows.chart import CHART_DIR, escape_argo, render_chart, stale_chart
from workflows.chart_readme import documented_values, readme_text, render_readme, stale_readme
from workflows.images import REGISTRY
from workflows.lint import lint_text
from workflows.nightly import NIGHTLY_NAME, build_nightly
from workflows.pipeline import CHECKPOINT_ROOT, PIPELINE_NAME, POD_GPUS_ENV, WORKFLOW_PARAMETERS, build_pipeline

KUBERNETES_VERSION = "1.30.0"
RELEASE, NAMESPACE = "trainyard", "ml"
SCENARIOS = {"default": None, **{p.name.removesuffix("-values.yaml"): p for p in sorted((CHART_DIR / "ci").glob("*-values.yaml"))}}
ARGO_KINDS = {"WorkflowTemplate", "CronWorkflow"}
CORE_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ConfigMap"}
ARGO_TAG = re.compile(r"\{\{.*?\}\}")
# The values the chart cannot default (it names no registry or bucket of its own): every render
# below sets them under its own values, to the registry and bucket the Hera definitions name.
MODEL_REGISTRY = "gs://example-models/registry"
REQUIRED = {"image": {"registry": REGISTRY}, "artifacts": {"bucket": CHECKPOINT_ROOT.split("/")[2]},
            "modelRegistry": MODEL_REGISTRY}


class HelmError(Exception):
    pass


# -- Helm: the binary when present, else the SDK ------------------------------------------------
def _helm_binary() -> str | None:
    return shutil.which("helm")


def _sdk() -> Any:
    try:
        import helm_python
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("neither the helm binary nor helm-python-sdk is installed (pip install helm-python-sdk)")
        pytest.skip("neither the helm binary nor helm-python-sdk is installed")
    return helm_python


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Values files as Helm merges them: maps key by key, anything else replaced."""
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


@cache
def _render(values: str = "", release: str = RELEASE, required: bool = True) -> dict[str, str]:
    """Template file name -> rendered text, with `values` (YAML text) over the chart defaults and,
    unless `required` is false, over REQUIRED."""
    given = _merge(REQUIRED if required else {}, yaml.safe_load(values) or {})
    values = yaml.safe_dump(given)
    if _helm_binary():
        done = _helm_cli("template", release, str(CHART_DIR), "--namespace", NAMESPACE, values=values)
        files: dict[str, str] = {}
        for chunk in re.split(r"^---\n", done, flags=re.M):
            match = re.match(r"# Source: [^/]+/templates/(\S+)\n", chunk)
            if match:
                files[match.group(1)] = files.get(match.group(1), "") + chunk
        notes = _helm_cli("install", release, str(CHART_DIR), "--dry-run=client", "--namespace", NAMESPACE, values=values)
        files["NOTES.txt"] = notes.partition("NOTES:\n")[2]
        return files
    helm = _sdk()
    try:
        with helm.Chart.load(CHART_DIR) as chart:
            rendered = chart.render(values=given, name=release, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as exc:
        raise HelmError(str(exc)) from None
    return {name.split("/templates/", 1)[1]: text for name, text in rendered.items()}


def _helm_cli(*args: str, values: str) -> str:
    with _values_file(values) as path:
        done = subprocess.run([_helm_binary(), *args, "--values", path], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise HelmError(done.stderr)
    return done.stdout


class _values_file:
    def __init__(self, text: str):
        import tempfile

        self._file = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        self._file.write(text)
        self._file.close()

    def __enter__(self) -> str:
        return self._file.name

    def __exit__(self, *exc: object) -> None:
        os.unlink(self._file.name)


def _lint(values: str) -> list[str]:
    """Helm lint findings of warning severity or worse (strict: warnings fail)."""
    values = yaml.safe_dump(_merge(REQUIRED, yaml.safe_load(values) or {}))
    if _helm_binary():
        with _values_file(values) as path:
            done = subprocess.run([_helm_binary(), "lint", "--strict", str(CHART_DIR), "--values", path],
                                  capture_output=True, text=True, timeout=60)
        return [] if done.returncode == 0 else [done.stdout + done.stderr]
    helm = _sdk()
    report = helm.lint(CHART_DIR, yaml.safe_load(values) or {}, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    return [*report["errors"], *[f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]]


def _docs(files: dict[str, str]) -> list[dict[str, Any]]:
    return [doc for name, text in sorted(files.items()) if name.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def _scenario(name: str) -> str:
    path = SCENARIOS[name]
    return path.read_text() if path else ""


def _kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    # The sweep is a WorkflowTemplate too, and the memoize cache a ConfigMap with its Role: here
    # "WorkflowTemplate" means the pipeline's, "ConfigMap" the artifact repositories, and so on.
    found = [d for d in docs if d["kind"] == kind and d.get("spec", {}).get("entrypoint") != "sweep"
             and d["metadata"].get("labels", {}).get("workflows.argoproj.io/configmap-type") != "Cache"
             and not d["metadata"]["name"].endswith("-memoize")]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def _templates(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in doc["spec"]["templates"]}


def _without_empty(value: Any) -> Any:
    """Normalised for comparison: empty maps and lists (a chart default of `{}`) and nulls dropped."""
    if isinstance(value, dict):
        kept = {k: _without_empty(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v is not None and v not in ({}, [])}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


# -- the generated templates ----------------------------------------------------------------------
def test_generated_chart_templates_and_readme_are_up_to_date() -> None:
    # TRAINYARD_REGENERATE=1 rewrites them (like `trainyard render`).
    if os.environ.get("TRAINYARD_REGENERATE"):
        render_chart(CHART_DIR)
        render_readme(CHART_DIR)
    assert stale_chart(CHART_DIR) + stale_readme(CHART_DIR) == []


def test_a_hand_edit_of_a_generated_template_is_detected(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART_DIR, chart)
    path = chart / "templates" / "workflowtemplate.yaml"
    path.write_text(path.read_text().replace("steps.train", "steps.train_v2"))
    assert [p for p in stale_chart(chart) if "workflowtemplate.yaml" in p]
    assert [p for p in stale_chart(chart) if "cronworkflow.yaml" in p] == []


def test_argo_tags_are_escaped_for_helm() -> None:
    assert escape_argo("a: '{{workflow.name}}-{{pod.name}}'") == "a: '{{`{{workflow.name}}`}}-{{`{{pod.name}}`}}'"
    with pytest.raises(ValueError, match="backquote"):
        escape_argo("{{=`x`}}")


def test_chart_versions_follow_trainyard() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__ and chart["apiVersion"] == "v2"


def test_chart_names_its_home_sources_and_maintainers() -> None:
    import tomllib

    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    urls = tomllib.loads((CHART_DIR.parents[1] / "pyproject.toml").read_text())["project"]["urls"]
    assert chart["home"] == urls["Homepage"] and chart["sources"] == [urls["Source"]]
    assert chart["maintainers"] and all(m["name"] for m in chart["maintainers"])


# -- the chart's README, generated from the `# --` comments ------------------------------------------------
def test_chart_readme_follows_a_changed_comment(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART_DIR, chart)
    values = chart / "values.yaml"
    values.write_text(values.read_text().replace("# -- Cron schedule of the nightly run.", "# -- When the nightly | runs."))
    assert stale_readme(chart)
    render_readme(chart)
    assert "| `nightly.schedule` | string | `\"0 2 * * *\"` | When the nightly \\| runs. |" in (chart / "README.md").read_text()
    assert stale_readme(chart) == []


def test_chart_readme_lists_every_documented_value_once() -> None:
    text = readme_text(CHART_DIR)
    rows = re.findall(r"^\| `([\w.-]+)` \|", text, flags=re.M)
    assert len(rows) == len(set(rows)) and "steps.train.gpus" in rows and "nightly.parameters" in rows
    # A documented map is one row: its keys are not listed on their own.
    assert "podGC.strategy" not in rows and "podGC" in rows and "image" not in rows
    assert "| `image.registry` | string | required |" in text


def test_values_parser_reads_continued_comments_and_skips_documented_maps() -> None:
    text = ("# header, no value\n\n# -- A map,\n# documented as a whole.\nmap:\n  inner: 1\n"
            "group:\n  # -- (required) A leaf.\n  leaf: \"\"\n  undocumented: 2\n")
    values = documented_values(text)
    assert [(v.key, v.default, v.description, v.required) for v in values] == [
        ("map", {"inner": 1}, "A map, documented as a whole.", False), ("group.leaf", "", "(required) A leaf.", True)]


# -- default values render exactly what the Hera objects define ------------------------------------
def test_default_values_render_the_hera_workflow_template() -> None:
    docs = _docs(_render())
    rendered, hera = _kind(docs, "WorkflowTemplate"), build_pipeline().to_dict()
    labels = rendered["metadata"].pop("labels")
    assert hera["metadata"].pop("labels").items() <= labels.items()
    assert labels["app.kubernetes.io/instance"] == RELEASE
    # The one difference: the required model registry reaches the steps as an install override.
    overrides = next(p for p in rendered["spec"]["arguments"]["parameters"] if p["name"] == "chart-overrides")
    assert overrides.pop("value") == f"promotion.registry={MODEL_REGISTRY}"
    next(p for p in hera["spec"]["arguments"]["parameters"] if p["name"] == "chart-overrides").pop("value")
    assert _without_empty(rendered) == _without_empty(hera)


def test_default_values_render_the_hera_sweep_template() -> None:
    from workflows.sweep import build_sweep

    docs = _docs(_render("sweep: {parallelism: 4}\n"))
    rendered = next(d for d in docs if d["kind"] == "WorkflowTemplate" and d["spec"]["entrypoint"] == "sweep")
    hera = build_sweep().to_dict()
    assert hera["metadata"].pop("labels").items() <= rendered["metadata"].pop("labels").items()
    # As for the pipeline: the required model registry reaches the steps as an install override.
    overrides = next(p for p in rendered["spec"]["arguments"]["parameters"] if p["name"] == "chart-overrides")
    assert overrides.pop("value") == f"promotion.registry={MODEL_REGISTRY}"
    next(p for p in hera["spec"]["arguments"]["parameters"] if p["name"] == "chart-overrides").pop("value")
    assert _without_empty(rendered) == _without_empty(hera)
    # The values that bound the fan-outs reach the DAGs.
    sweep = _docs(_render("sweep: {parallelism: 7}\nsteps: {evaluate: {parallelism: 3}}\n"))
    dags = {d["spec"]["entrypoint"]: next(t for t in d["spec"]["templates"] if t["name"] == d["spec"]["entrypoint"])
            for d in sweep if d["kind"] == "WorkflowTemplate"}
    assert dags["sweep"]["parallelism"] == 7 and dags["pipeline"]["parallelism"] == 3


REPO = "workflow: {datasetRepo: https://github.com/example/plates-dataset.git}\n"


def test_default_values_render_the_hera_cron_workflow() -> None:
    rendered, hera = _kind(_docs(_render(REPO)), "CronWorkflow"), build_nightly().to_dict()
    assert hera["metadata"].pop("labels").items() <= rendered["metadata"].pop("labels").items()
    assert rendered["spec"].pop("suspend") is False
    assert _without_empty(rendered) == _without_empty(hera)


# -- every scenario: lint, strict checks, security ----------------------------------------------------
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_helm_lint_is_clean(scenario: str) -> None:
    assert _lint(_scenario(scenario)) == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_manifest_passes_its_strict_check(scenario: str) -> None:
    import kubernetes_validate

    docs = _docs(_render(_scenario(scenario)))
    assert {d["kind"] for d in docs} <= ARGO_KINDS | CORE_KINDS
    for doc in docs:
        where = f"{scenario}: {doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in ARGO_KINDS:
            assert [str(p) for p in lint_text(yaml.safe_dump(doc), where)] == []
        else:
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{where}: {str(exc).splitlines()[0]}")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_argo_tags_survive_helm_intact(scenario: str) -> None:
    docs = _docs(_render(_scenario(scenario)))
    repository = yaml.safe_load(_kind(docs, "ConfigMap")["data"]["gcs"])
    key_format = repository["gcs"]["keyFormat"]
    assert "{{workflow.name}}" in key_format and key_format.endswith("/{{pod.name}}")
    # ... plus the tags of the run's prefix, which the scores objects' keys take from keyFormat.
    expected = set(ARGO_TAG.findall(yaml.safe_dump(build_pipeline().to_dict()))) | set(ARGO_TAG.findall(key_format))
    rendered = set(ARGO_TAG.findall(yaml.safe_dump(_kind(docs, "WorkflowTemplate"))))
    assert rendered == expected - {"{{pod.name}}"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_secret_values_and_hardened_pods(scenario: str) -> None:
    docs = _docs(_render(_scenario(scenario)))
    assert "Secret" not in {d["kind"] for d in docs}
    template = _kind(docs, "WorkflowTemplate")
    pod = template["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    for name, t in _templates(template).items():
        if "container" not in t:
            continue
        context = t["container"]["securityContext"]
        assert context["capabilities"]["drop"] == ["ALL"] and context["allowPrivilegeEscalation"] is False, name
        for env in t["container"].get("env", []):
            if env["name"] == POD_GPUS_ENV:  # a count, the one literal
                assert env["value"] == "" or int(env["value"]) > 1, f"{name}: {env}"
                continue
            assert set(env) == {"name", "valueFrom"} and set(env["valueFrom"]) == {"secretKeyRef"}, f"{name}: {env}"
    repository = yaml.safe_load(_kind(docs, "ConfigMap")["data"]["gcs"])["gcs"]
    assert set(repository) <= {"bucket", "keyFormat", "serviceAccountKeySecret"}


def test_a_value_can_relax_the_security_context() -> None:
    values = "podSecurityContext: {runAsNonRoot: false, runAsUser: 0}\ncontainerSecurityContext: {privileged: true}\n"
    template = _kind(_docs(_render(values)), "WorkflowTemplate")
    pod = template["spec"]["securityContext"]  # Helm merges given maps into the defaults
    assert pod["runAsNonRoot"] is False and pod["runAsUser"] == 0
    assert {t["container"]["securityContext"]["privileged"] for t in template["spec"]["templates"] if "container" in t} == {True}


def test_names_agree_across_manifests_for_any_release() -> None:
    docs = _docs(_render(REPO, release="team-a"))
    template = _kind(docs, "WorkflowTemplate")
    account = _kind(docs, "ServiceAccount")["metadata"]["name"]
    assert account == "team-a-trainyard" == template["spec"]["serviceAccountName"]
    assert _kind(docs, "ConfigMap")["metadata"]["name"] == template["spec"]["artifactRepositoryRef"]["configMap"]
    binding = _kind(docs, "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    assert binding["roleRef"]["name"] == _kind(docs, "Role")["metadata"]["name"]
    assert _kind(docs, "Role")["rules"] == [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"],
                                               "verbs": ["create", "patch"]}]
    assert _kind(docs, "CronWorkflow")["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == template["metadata"]["name"]
    assert template["metadata"]["name"] == "team-a-trainyard-pipeline"
    assert _kind(docs, "CronWorkflow")["metadata"]["name"] == "team-a-trainyard-nightly"
    sweep = next(d for d in docs if d["kind"] == "WorkflowTemplate" and d["spec"]["entrypoint"] == "sweep")
    assert sweep["metadata"]["name"] == "team-a-trainyard-sweep"
    record = next(t for t in sweep["spec"]["templates"] if t["name"] == "record")
    assert record["memoize"]["cache"]["configMap"]["name"] == "team-a-trainyard-record-cache"


def test_the_release_trainyard_keeps_the_names_of_the_hera_definitions() -> None:
    docs = _docs(_render(REPO))
    assert _kind(docs, "WorkflowTemplate")["metadata"]["name"] == PIPELINE_NAME
    assert _kind(docs, "CronWorkflow")["metadata"]["name"] == NIGHTLY_NAME


def test_two_releases_in_one_namespace_do_not_collide() -> None:
    def objects(release: str) -> set[tuple[str, str]]:
        return {(d["kind"], d["metadata"]["name"]) for d in _docs(_render(REPO, release=release))}

    first, second = objects("trainyard"), objects("team-b")
    assert {kind for kind, _ in first} == ARGO_KINDS | CORE_KINDS
    assert first & second == set()
    # Each release's nightly runs its own template, with its own ServiceAccount and artifact repository.
    for release in ("trainyard", "team-b"):
        docs = _docs(_render(REPO, release=release))
        template = _kind(docs, "WorkflowTemplate")
        assert _kind(docs, "CronWorkflow")["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == template["metadata"]["name"]
        assert (_kind(docs, "ServiceAccount")["metadata"]["name"], _kind(docs, "ConfigMap")["metadata"]["name"]) == (
            template["spec"]["serviceAccountName"], template["spec"]["artifactRepositoryRef"]["configMap"])


# -- required values: no registry or bucket the user does not own ---------------------------------------
REQUIRED_KEYS = ["image.registry", "artifacts.bucket", "modelRegistry"]


def test_a_default_install_fails_naming_every_required_value() -> None:
    with pytest.raises(HelmError) as failed:
        _render(required=False)
    message = str(failed.value)
    assert "trainyard needs these values" in message
    assert [key for key in REQUIRED_KEYS if f"  {key}: " in message] == REQUIRED_KEYS


def test_a_partial_install_names_only_what_is_missing() -> None:
    values = f"image: {{registry: {REGISTRY}}}\nmodelRegistry: {MODEL_REGISTRY}\n"
    with pytest.raises(HelmError) as failed:
        _render(values, required=False)
    assert [key for key in REQUIRED_KEYS if f"  {key}: " in str(failed.value)] == ["artifacts.bucket"]


def test_no_default_names_a_registry_or_bucket() -> None:
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert (defaults["image"]["registry"], defaults["artifacts"]["bucket"], defaults["modelRegistry"]) == ("", "", "")
    marked = [v.key for v in documented_values((CHART_DIR / "values.yaml").read_text()) if v.required]
    assert sorted(marked) == sorted(REQUIRED_KEYS)  # the README lists what the install asks for


# -- scenarios take effect --------------------------------------------------------------------------
def test_spot_a100_scenario() -> None:
    templates = _templates(_kind(_docs(_render(_scenario("spot-a100"))), "WorkflowTemplate"))
    train, evaluate = templates["train"], templates["evaluate"]
    assert train["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100", "cloud.google.com/gke-spot": "true"}
    assert {"key": "cloud.google.com/gke-spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in train["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in train["tolerations"]
    assert "cloud.google.com/gke-spot" not in evaluate["nodeSelector"]
    assert train["container"]["resources"] == {"requests": {"cpu": "16", "memory": "96Gi", "ephemeral-storage": "20Gi",
                                                            "nvidia.com/gpu": "2"},
                                               "limits": {"memory": "128Gi", "nvidia.com/gpu": "2"}}
    assert train["retryStrategy"]["limit"] == "6" and train["retryStrategy"]["retryPolicy"] == "Always"
    # The pod gets two GPUs, and train is told to use both.
    assert {"name": POD_GPUS_ENV, "value": "2"} in train["container"]["env"]
    for name in ("train", "evaluate"):
        assert next(v for v in templates[name]["volumes"] if v["name"] == "dshm")["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}
    registry = "europe-docker.pkg.dev/my-project/trainyard"
    assert train["container"]["image"] == f"{registry}/trainyard-train:2024.06.1"
    assert templates["record"]["container"]["image"].startswith(f"{registry}/trainyard-record@sha256:")
    assert templates["notify"]["container"]["imagePullPolicy"] == "Always"


def test_workload_identity_scenario() -> None:
    docs = _docs(_render(_scenario("workload-identity")))
    annotations = _kind(docs, "ServiceAccount")["metadata"]["annotations"]
    assert annotations == {"iam.gke.io/gcp-service-account": "trainyard-pipeline@my-project.iam.gserviceaccount.com",
                           "team": "perception"}
    template = _kind(docs, "WorkflowTemplate")
    parameters = {p["name"]: p["value"] for p in template["spec"]["arguments"]["parameters"]}
    assert parameters["dataset-repo"] == "https://github.com/example/plates-dataset.git"
    assert parameters["chart-overrides"] == "promotion.registry=gs://my-project-models/registry train.num_workers=8"
    assert parameters["overrides"] == ""  # the run's own: `-p overrides=...` keeps the install's settings
    notify = _templates(template)["notify"]["container"]
    assert notify["args"][notify["args"].index("--ui-base-url") + 1] == "https://argo.example.com"
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in notify["env"]} == {"prod-trainyard-db", "slack-ml-alerts"}
    train_env = [e for e in _templates(template)["train"]["container"]["env"] if "valueFrom" in e]
    assert {(e["name"], e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"]) for e in train_env} == {
        (key, "github-dataset-token", key) for key in ("GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0")}
    cron = _kind(docs, "CronWorkflow")["spec"]
    assert cron["schedules"] == ["30 1 * * 1-5"] and cron["timezone"] == "Asia/Seoul"
    assert cron["workflowSpec"]["arguments"]["parameters"] == [
        {"name": "overrides", "value": "promotion.registry=gs://my-project-models/registry train.iterations=9000"}]
    key_format = yaml.safe_load(_kind(docs, "ConfigMap")["data"]["gcs"])["gcs"]["keyFormat"]
    assert key_format == "runs/{{workflow.creationTimestamp.Y}}/{{workflow.name}}/{{pod.name}}"


def test_minimal_scenario() -> None:
    docs = _docs(_render(_scenario("minimal")))
    assert {d["kind"] for d in docs} == {"WorkflowTemplate", "ConfigMap"}
    template = _kind(docs, "WorkflowTemplate")
    assert template["spec"]["serviceAccountName"] == "argo-workflow"
    assert template["spec"]["artifactRepositoryRef"]["configMap"] == "ml-pipeline-artifact-repositories"
    # The steps get the executor's key too (workflow/controller/workflowpod.go `processPodSpecPatch` merges
    # the patch into the pod with a strategic merge patch, containers by name: ours is "main").
    for name, t in _templates(template).items():
        if "container" in t:
            patch = json.loads(t["podSpecPatch"])
            assert patch["volumes"] == [{"name": "gcp-key", "secret": {"secretName": "gcs-credentials"}}], name
            [main] = patch["containers"]
            assert main["name"] == "main" and main["env"] == [
                {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/var/run/secrets/trainyard/gcp/serviceAccountKey"}]
            assert main["volumeMounts"] == [{"name": "gcp-key", "mountPath": "/var/run/secrets/trainyard/gcp", "readOnly": True}]
    repository = yaml.safe_load(_kind(docs, "ConfigMap")["data"]["gcs"])
    assert repository == {"archiveLogs": False, "gcs": {
        "bucket": "shared-argo-artifacts", "keyFormat": "trainyard/{{workflow.name}}/{{pod.name}}",
        "serviceAccountKeySecret": {"name": "gcs-credentials", "key": "serviceAccountKey"}}}


def test_notes_tell_the_next_steps() -> None:
    notes = _render()["NOTES.txt"]
    assert f"--from workflowtemplate/{PIPELINE_NAME}" in notes and "trainyard submit" in notes
    assert "create secret generic trainyard-database" in notes and f"cronwf/{NIGHTLY_NAME}" not in notes
    assert "workflow.datasetRepo" in notes  # the nightly waits for a repo
    assert f"cronwf/{NIGHTLY_NAME}" in _render(REPO)["NOTES.txt"]
    assert "cronwf" not in _render(_scenario("minimal"))["NOTES.txt"]


# -- values: schema and documentation -----------------------------------------------------------------
@pytest.mark.parametrize(("values", "named"), [
    ("nightly: {shedule: '0 3 * * *'}\n", "shedule"),
    ("steps: {train: {gpus: two}}\n", "gpus"),
    ("nightly: {schedule: 'every night'}\n", "schedule"),
    ("nightly: {parameters: {annotation-versoin: annotations/v2}}\n", "annotation-versoin"),
    ("nightly: {parameters: {webhook-url: 'https://hooks.example.com/T0/B0/token'}}\n", "webhook-url"),
])
def test_schema_rejects_bad_values_naming_the_key(values: str, named: str) -> None:
    with pytest.raises(HelmError, match=re.escape(named)):
        _render(values)


def test_schema_knows_the_workflow_parameters() -> None:
    # All but webhook-url: a webhook URL often carries a token, so it belongs in the Secret,
    # never in a manifest.
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    names = schema["properties"]["nightly"]["properties"]["parameters"]["propertyNames"]["enum"]
    assert names == [name for name in WORKFLOW_PARAMETERS if name != "webhook-url"]


def test_every_value_has_a_doc_comment() -> None:
    """helm-docs style: a `# --` comment on every value; one on a map covers what is inside it."""
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    undocumented, covered = [], []  # covered: indents of documented maps we are inside
    for number, line in enumerate(lines):
        match = re.match(r"^(\s*)([\w.-]+):(.*)$", line)
        if not match or line.lstrip().startswith("#"):
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3).strip()
        covered = [i for i in covered if i < indent]
        documented = any(c.startswith("# --") for c in _comment_block([lines[i].strip() for i in range(number - 1, -1, -1)]))
        following = next((lines[i] for i in range(number + 1, len(lines)) if lines[i].strip()), "")
        is_value = bool(rest) or following.strip().startswith("- ")
        if documented:
            covered.append(indent)
        elif is_value and not covered:
            undocumented.append(f"line {number + 1}: {key}")
    assert undocumented == []


def _comment_block(lines_above: list[str]) -> list[str]:
    block = []
    for line in lines_above:
        if not line.startswith("#"):
            break
        block.append(line)
    return block


def test_the_memoize_cache_and_exactly_its_rbac() -> None:
    # controller/cache/configmap_cache.go: Argo's controller gets the cache ConfigMap, refuses one
    # without the Cache label, and updates it (create only when missing: the chart creates it).
    from workflows.sweep import SWEEP_NAME

    docs = _docs(_render())
    sweep = next(d for d in docs if d["kind"] == "WorkflowTemplate" and d["metadata"]["name"] == SWEEP_NAME)
    record = next(t for t in sweep["spec"]["templates"] if t["name"] == "record")
    cache = record["memoize"]["cache"]["configMap"]["name"]
    config_map = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == cache)
    assert config_map["metadata"]["labels"]["workflows.argoproj.io/configmap-type"] == "Cache"
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-memoize"))
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [cache],
                              "verbs": ["get", "update"]}]
    binding = next(d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-memoize"))
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "argo-workflows-workflow-controller",
                                    "namespace": "argo"}]
    off = _docs(_render("memoize: {enabled: false}\n"))
    assert not [d for d in off if d["kind"] in ("ConfigMap", "Role") and cache in str(d)]
