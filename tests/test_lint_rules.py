"""`trainyard lint` against Argo's validator (workflow/validate/validate.go, v4.1.2): for each rule
a small manifest Argo rejects is reported, and its valid neighbour is not."""

from __future__ import annotations

import copy
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflows.lint import lint_manifest, lint_sources, lint_text

ROOT = Path(__file__).resolve().parents[1]

BASE = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: rules-}
spec:
  entrypoint: main
  arguments:
    parameters: [{name: mode, value: fast, enum: [fast, slow]}]
  templates:
    - name: main
      steps:
        - - name: run-{{workflow.parameters.mode}}
            template: work
            arguments:
              parameters: [{name: size, value: "1"}]
        - - name: after
            template: work
            arguments:
              parameters: [{name: size, value: "{{steps.run-{{workflow.parameters.mode}}.outputs.parameters.out}}"}]
    - name: work
      inputs:
        parameters: [{name: size}]
      outputs:
        parameters: [{name: out, valueFrom: {path: /tmp/out}}]
      retryStrategy: {limit: 2, retryPolicy: OnError}
      activeDeadlineSeconds: 60
      container:
        image: alpine:3.20
        args: ["{{inputs.parameters.size}}", "{{workflow.name}}"]
        volumeMounts: [{name: a, mountPath: /a}]
      volumes: [{name: a, emptyDir: {}}]
"""


def base() -> dict[str, Any]:
    return yaml.safe_load(BASE)


def work(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["templates"][1]


def test_the_base_manifest_and_dynamic_step_names_pass() -> None:
    # validate_test.go's dynamicStepNameWorkflowLocal15896: Argo accepts `run-{{...}}` step names.
    assert lint_manifest(base()) == []


def _set(path: tuple[Any, ...], value: Any):
    def change(doc: dict[str, Any]) -> None:
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    return change


W = ("spec", "templates", 1)
# rule id -> (change to the base manifest, expected text of the one finding); each mirrors the
# validate.go function named in the rule module's docstring.
INVALID = {
    "template-name": (_set((*W, "name"), "Work_1"), "must consist of letters, digits or '-'"),
    "step-name": (_set(("spec", "templates", 0, "steps", 1, 0, "name"), "after_x"), "step name 'after_x'"),
    "parameter-name": (_set((*W, "inputs", "parameters", 0, "name"), "si ze"), "letters, digits, '_' or '-'"),
    "duplicate-input": (_set((*W, "inputs", "parameters"), [{"name": "size"}, {"name": "size"}]), "is used twice"),
    "not-supplied": (_set(("spec", "templates", 0, "steps", 1, 0, "arguments"), {}), "needs input size"),
    "argument-without-value": (_set(("spec", "templates", 0, "steps", 0, 0, "arguments", "parameters"),
        [{"name": "size"}]),
        "needs a value or valueFrom"),
    "unknown-workflow-variable": (_set((*W, "container", "args"), ["{{workflow.nmae}}"]), "unknown workflow variable"),
    "undeclared-workflow-parameter": (_set((*W, "container", "args"), ["{{workflow.parameters.mdoe}}"]),
        "did you mean 'mode'"),
    "output-without-valueFrom": (_set((*W, "outputs", "parameters"), [{"name": "out"}]), "needs valueFrom"),
    "output-two-sources": (_set((*W, "outputs", "parameters"),
        [{"name": "out", "valueFrom": {"path": "/a", "jsonPath": "{.x}"}}]),
        "several sources"),
    "output-wrong-kind": (_set((*W, "outputs", "parameters"), [{"name": "out", "valueFrom": {"jsonPath": "{.x}"}}]),
        "takes its output from path"),
    "retry-policy": (_set((*W, "retryStrategy", "retryPolicy"), "OnWhatever"), "is not a retry policy"),
    "pod-gc": (_set(("spec", "podGC"), {"strategy": "Sometimes"}), "unknown strategy 'Sometimes'"),
    "active-deadline": (_set((*W, "activeDeadlineSeconds"), "soon"), "positive integer or an argo variable"),
    "enum-value": (_set(("spec", "arguments", "parameters", 0, "value"), "medium"), "is not in its enum"),
    "empty-enum": (_set(("spec", "arguments", "parameters", 0, "enum"), []), "at least one value"),
    "missing-image": (_set((*W, "container", "image"), ""), "an image is required"),
    "mount-collision": (_set((*W, "container", "volumeMounts"),
        [{"name": "a", "mountPath": "/a"}, {"name": "b", "mountPath": "/a"}]),
        "already mounted"),
    "metric-without-value": (_set((*W, "metrics"), {"prometheus": [{"name": "runs", "help": "h", "counter": {}}]}),
        "counter.value is required"),
    "metric-name": (_set((*W, "metrics"), {"prometheus": [{"name": "run-s", "help": "h", "counter": {"value": "1"}}]}),
        "metric name 'run-s'"),
    "parallelism-on-leaf": (_set((*W, "parallelism"), 2), "only valid for steps and DAG"),
    "hook-without-expression": (_set(("spec", "hooks"), {"running": {"template": "work"}}), "needs an expression"),
    "artifact-path-escape": (_set((*W, "inputs", "artifacts"),
        [{"name": "in", "path": "/tmp/../../etc/x", "raw": {"data": "x"}}]),
        "climbs out"),
    "timeout-without-unit": (_set((*W, "timeout"), "30"), "needs a unit"),
    "step-status-later": (_set(("spec", "templates", 0, "steps", 0, 0, "when"), "{{steps.after.status}} == x"),
        "has not run yet"),
}

# The validate.go function (or the helper it calls) each case reproduces.
MIRRORS = {
    "template-name": "isValidWorkflowFieldName",
    "step-name": "isValidStepName",
    "parameter-name": "isValidParamOrArtifactName",
    "duplicate-input": "validateWorkflowFieldNames",
    "not-supplied": "validateTemplate/common.ProcessArgs",
    "argument-without-value": "validateArgumentsValues",
    "unknown-workflow-variable": "resolveAllVariables",
    "undeclared-workflow-parameter": "resolveAllVariables",
    "output-without-valueFrom": "validateOutputParameter",
    "output-two-sources": "validateOutputParameter",
    "output-wrong-kind": "validateOutputs",
    "retry-policy": "validateTemplateHolder",
    "pod-gc": "Workflow",
    "active-deadline": "validateLeaf",
    "enum-value": "validateArgumentsValues",
    "empty-enum": "validateArgumentsValues",
    "missing-image": "validateLeaf",
    "mount-collision": "validateLeaf",
    "metric-without-value": "validateTemplate",
    "metric-name": "validateTemplate",
    "parallelism-on-leaf": "validateLeaf",
    "hook-without-expression": "validateHooks",
    "artifact-path-escape": "validateInputs/Artifact.CleanPath",
    "timeout-without-unit": "validateTemplate",
    "step-status-later": "validateSteps",
    "object-name-length": "Workflow",
    "templates-with-workflowTemplateRef": "WorkflowTemplateRefFields",
    "templateRef-without-template": "validateTemplateHolder",
    "input-artifact-from": "validateInputs",
    "artifact-path-on-steps": "validateOutputs",
    "git-without-repo": "validateArtifactLocation",
    "global-name": "validateOutputs",
    "timeout-on-steps": "validateTemplate",
    "deadline-on-steps": "validateNonLeaf",
    "init-container-name": "validateInitContainers",
    "sidecar-reserved": "validateLeaf",
    "metric-help": "validateTemplate",
    "metric-label": "validateTemplate",
    "pod-resources": "validatePodResources",
    "resource-claims-on-steps": "validateTemplate",
    "argument-valueFrom-path": "validateArgumentsValues",
    "artifact-from-and-expression": "validateArgumentsValues",
    "item-without-loop": "resolveAllVariables",
    "pod-name-in-steps": "resolveAllVariables",
    "label-not-set": "Workflow/resolveAllVariables",
}


def ids(table: dict[str, Any]) -> list[str]:
    return [f"{MIRRORS[key]}:{key}" for key in table]


@pytest.mark.parametrize(("change", "expected"), INVALID.values(), ids=ids(INVALID))
def test_what_argo_rejects_is_reported(change: Any, expected: str | None) -> None:
    doc = base()
    change(doc)
    problems = lint_manifest(doc)
    assert problems, "expected a finding"
    if expected:
        assert any(expected in p.message for p in problems), [str(p) for p in problems]


def test_loops_are_exclusive() -> None:
    doc = base()
    step = doc["spec"]["templates"][0]["steps"][0][0]
    step["withItems"], step["withParam"] = [1], "[1]"
    assert any("only one of withItems" in p.message for p in lint_manifest(doc))


RESOURCE = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: res}
spec:
  templates:
    - name: make
      resource:
        action: create
        manifest: |
          apiVersion: v1
          kind: ConfigMap
          metadata: {name: "{{workflow.name}}"}
    - name: dag
      dag:
        tasks:
          - {name: a, template: make}
          - {name: b, template: make, depends: a}
"""


def test_resource_and_dag_rules() -> None:
    assert lint_text(RESOURCE, "r.yaml") == []
    doc = yaml.safe_load(RESOURCE)
    doc["spec"]["templates"][0]["resource"]["action"] = "explode"
    doc["spec"]["templates"][0]["resource"]["manifest"] = "a: [unclosed"
    doc["spec"]["templates"][1]["dag"]["tasks"][1]["continueOn"] = {"failed": True}
    messages = [p.message for p in lint_manifest(doc)]
    assert any("'explode' is not one of get" in m for m in messages)
    assert any("is not valid YAML" in m for m in messages)
    assert any("`continueOn` does not work with `depends`" in m for m in messages)


CRON = """
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedules: ["0 2 * * *", "@every 1h", "CRON_TZ=Europe/Paris 30 4 * * MON-FRI"]
  timezone: Europe/Berlin
  workflowSpec:
    workflowTemplateRef: {name: train}
    arguments:
      parameters: [{name: epochs, value: "3"}]
---
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: train}
spec:
  entrypoint: main
  arguments:
    parameters: [{name: epochs, value: "1"}, {name: checkpoint-root, value: /ckpt}]
  templates:
    - name: main
      container:
        image: alpine:3.20
        args: ["{{workflow.parameters.epochs}}", "{{workflow.parameters.checkpoint-root}}"]
"""


def test_cron_schedule_rules() -> None:
    assert lint_text(CRON, "c.yaml") == []
    doc = yaml.safe_load_all(CRON)
    cron = next(doc)
    cron["spec"]["schedules"] = ["61 * * * *"]
    cron["spec"]["timezone"] = "Mars/Olympus"
    cron["spec"]["concurrencyPolicy"] = "Sometimes"
    messages = [p.message for p in lint_manifest(cron)]
    assert any("out of range 0-59" in m for m in messages)
    assert any("unknown timezone" in m for m in messages)
    assert any("'Sometimes' is not one of" in m for m in messages)


def test_cross_document_parameters_are_checked_both_ways() -> None:
    text = CRON.replace("{name: epochs, value: \"3\"}", "{name: epoch, value: \"3\"}")
    text = text.replace("{name: checkpoint-root, value: /ckpt}", "{name: checkpoint_root, value: /ckpt}")
    problems = lint_text(text, "c.yaml")
    found = {(p.path, p.message.split(":")[0]) for p in problems}
    assert any("declares no parameter 'epoch'" in p.message and p.line == 11 for p in problems), found
    assert any("'checkpoint-root' is not provided by CronWorkflow 'nightly'" in p.message and p.line == 24
               for p in problems), [str(p) for p in problems]


def test_template_ref_into_another_file_is_resolved(tmp_path: Path) -> None:
    (tmp_path / "wt.yaml").write_text(CRON.split("---")[1])
    caller = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "x-"},
              "spec": {"entrypoint": "go", "templates": [{"name": "go", "steps": [[
                  {"name": "s", "templateRef": {"name": "train", "template": "mian"}}]]}]}}
    (tmp_path / "wf.yaml").write_text(yaml.safe_dump(caller))
    problems, count = lint_sources([tmp_path])
    assert count == 2
    wanted = f"WorkflowTemplate 'train' ({tmp_path / 'wt.yaml'}) has no template 'mian'; did you mean 'main'?"
    assert [p.message for p in problems] == [wanted]


def test_stdin_and_lines() -> None:
    text = BASE.replace("image: alpine:3.20", "image: alpine:3.20\n        imagee: x")
    problems, count = lint_sources(["-"], stdin=io.StringIO(text))
    assert count == 1
    assert [str(p).split(": ", 1)[0] for p in problems] == ["<stdin>:29"]  # the `imagee:` line


def test_a_yaml_alias_bomb_is_refused_quickly_with_a_short_message() -> None:
    lines = ["a0: &a0 [" + ", ".join(["x" * 50] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    text = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\n" + "\n".join(lines) + "\n"
    problems = lint_text(text, "bomb.yaml")
    assert len(problems) == 1 and "alias bomb" in problems[0].message
    assert len(str(problems[0])) < 300


def test_long_bad_values_are_quoted_as_short_excerpts() -> None:
    doc = base()
    work(doc)["retryStrategy"]["retryPolicy"] = "x" * 100_000
    (problem,) = lint_manifest(doc)
    assert len(str(problem)) < 300


def test_a_dag_of_20000_tasks_is_linted() -> None:
    # Linear in the size of the DAG (a chain, each task reading its predecessor's output).
    tasks = [{"name": "t0", "template": "echo", "arguments": {"parameters": [{"name": "m", "value": "x"}]}}]
    tasks += [{"name": f"t{i}", "template": "echo", "depends": f"t{i - 1}",
               "arguments": {"parameters": [{"name": "m", "value": f"{{{{tasks.t{i - 1}.outputs.parameters.out}}}}"}]}}
              for i in range(1, 20_000)]
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "big"},
           "spec": {"entrypoint": "main", "templates": [
               {"name": "main", "dag": {"tasks": tasks}},
               {"name": "echo", "inputs": {"parameters": [{"name": "m"}]},
                "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/o"}}]},
                "container": {"image": "alpine", "args": ["{{inputs.parameters.m}}"]}}]}}
    broken = copy.deepcopy(doc)
    broken["spec"]["templates"][0]["dag"]["tasks"][0]["depends"] = "t19999"  # one long cycle
    assert lint_text(yaml.safe_dump(doc), "big.yaml") == []
    assert [p.message.split(":")[0] for p in lint_manifest(broken)] == ["dependency cycle"]


REPO = Path(__file__).resolve().parents[1]


def _trainyard(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "workflows.cli", *args], cwd=cwd, input=stdin, env=env,
                          capture_output=True, text=True, timeout=120)


def test_lint_without_files_outside_a_checkout_fails(tmp_path: Path) -> None:
    done = _trainyard("lint", cwd=tmp_path)
    assert done.returncode != 0 and "not inside a trainyard checkout" in done.stderr


def test_lint_of_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    done = _trainyard("lint", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1 and "0 file(s) checked" in done.stderr


def test_lint_reads_standard_input(tmp_path: Path) -> None:
    done = _trainyard("lint", "-", cwd=tmp_path, stdin=BASE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_typo_in_our_pipeline_s_workflow_parameter_is_found_in_the_pipeline_alone(tmp_path: Path) -> None:
    # The pipeline declares its parameters, so they judge its {{workflow.parameters.*}} without the
    # nightly (which runs it through workflowTemplateRef, where Argo validates the template against
    # the cron's merged arguments, validate.go `Workflow`, and every nightly run would stop).
    from workflows.render import RENDERED_DIR

    for path in RENDERED_DIR.glob("*.yaml"):
        text = path.read_text().replace("{{workflow.parameters.config}}", "{{workflow.parameters.confg}}")
        (tmp_path / path.name).write_text(text)
    alone, count = lint_sources([tmp_path / "trainyard-pipeline.yaml"])
    assert count == 1 and alone and all(p.line for p in alone)
    assert all("'confg' is not declared in spec.arguments.parameters; did you mean 'config'?" in p.message
               for p in alone)
    problems, count = lint_sources([tmp_path])
    assert count == len(list(RENDERED_DIR.glob("*.yaml")))
    assert any(p.file.endswith("trainyard-pipeline.yaml") and "not provided by CronWorkflow 'trainyard-nightly'"
               in p.message for p in problems)


def test_a_small_alias_bomb_and_a_flood_of_findings_are_bounded() -> None:
    # 9**5 copies of one bad reference: refused as aliases that multiply the document ...
    lines = ["apiVersion: argoproj.io/v1alpha1", "kind: Workflow", "metadata: {name: b}",
             'a0: &a0 ["{{inputs.parameters.nope}}"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 6)]
    lines += ["spec: {entrypoint: m, templates: [{name: m, container: {image: x, args: *a5}}]}"]
    (problem,) = lint_text("\n".join(lines), "bomb.yaml")
    assert "alias bomb" in problem.message
    # ... and as many bad references written out are reported up to a bound.
    doc = base()
    work(doc)["container"]["args"] = [f"{{{{inputs.parameters.nope{i}}}}}" for i in range(1000)]
    problems = lint_manifest(doc)
    assert len(problems) == 201 and "800 more problems" in problems[-1].message


def test_lint_and_render_act_on_the_checkout_they_are_run_in(tmp_path: Path) -> None:
    # A second checkout sharing one environment: its files, not the installed package's.
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "pipeline.py").write_text("")
    shutil.copytree(ROOT / "charts", tmp_path / "charts")  # render writes the chart's templates and README
    done = _trainyard("lint", cwd=tmp_path / "workflows")
    assert done.returncode == 1 and "0 file(s) checked" in done.stderr
    assert str(tmp_path / "workflows" / "rendered") in done.stderr
    done = _trainyard("render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rendered = sorted(p.name for p in (tmp_path / "workflows" / "rendered").glob("*.yaml"))
    assert rendered == sorted(p.name for p in (ROOT / "workflows" / "rendered").glob("*.yaml"))
    done = _trainyard("lint", cwd=tmp_path)
    assert done.returncode == 0 and f"{len(rendered)} file(s) checked, 0 problem(s)" in done.stderr


S = ("spec", "templates", 0)  # the steps template `main`
MORE_INVALID = {
    "object-name-length": (_set(("metadata", "name"), "x" * 64), "at most 63 characters"),
    "templates-with-workflowTemplateRef": (_set(("spec", "workflowTemplateRef"), {"name": "other"}),
                                           "takes its templates from it"),
    "templateRef-without-template": (_set((*S, "steps", 0, 0, "templateRef"), {"name": "lib"}),
                                     "templateRef.template is required"),
    "input-artifact-from": (_set((*W, "inputs", "artifacts"), [{"name": "in", "path": "/in", "from": "x"}]),
                            "`from` is for arguments"),
    "artifact-path-on-steps": (_set((*S, "outputs"), {"artifacts": [{"name": "o", "path": "/o"}]}),
                               "only valid in container"),
    "git-without-repo": (_set((*W, "inputs", "artifacts"), [{"name": "in", "path": "/in", "git": {"revision": "x"}}]),
                         "git.repo is required"),
    "global-name": (_set((*W, "outputs", "parameters", 0, "globalName"), "bad name"), "globalName 'bad name'"),
    "timeout-on-steps": (_set((*S, "timeout"), "1m"), "does not take timeout"),
    "deadline-on-steps": (_set((*S, "activeDeadlineSeconds"), 10), "only leaf templates"),
    "init-container-name": (_set((*W, "initContainers"), [{"image": "x"}]), "must all have a name"),
    "sidecar-reserved": (_set((*W, "sidecars"), [{"name": "wait", "image": "x"}]), "container name Argo reserves"),
    "metric-help": (_set((*W, "metrics"), {"prometheus": [{"name": "runs", "counter": {"value": "1"}}]}),
                    "needs a help string"),
    "metric-label": (_set((*W, "metrics"), {"prometheus": [{"name": "runs", "help": "h", "counter": {"value": "1"},
                                                             "labels": [{"key": "a-b", "value": "v"}]}]}),
                     "metric label 'a-b'"),
    "pod-resources": (_set(("spec", "podResources"), {"limits": {"nvidia.com/gpu": 1}}), "cpu, memory and hugepages"),
    "resource-claims-on-steps": (_set((*S, "resourceClaims"), [{"name": "gpu", "resourceClaimName": "g"}]),
                                 "runs no pod"),
    "argument-valueFrom-path": (_set((*S, "steps", 0, 0, "arguments", "parameters"),
                                     [{"name": "size", "valueFrom": {"path": "/x"}}]), "takes only configMapKeyRef"),
    "artifact-from-and-expression": (_set((*S, "steps", 0, 0, "arguments", "artifacts"),
                                          [{"name": "a", "from": "x", "fromExpression": "y"}]), "not both"),
    "item-without-loop": (_set((*W, "container", "args"), ["{{item.x}}"]), "only in a step or task with withItems"),
    "pod-name-in-steps": (_set((*S, "steps", 0, 0, "when"), "{{pod.name}} == x"), "only `{{pod.name}}` exists"),
    "label-not-set": (_set((*W, "container", "args"), ["{{workflow.labels.team}}"]), "no label 'team'"),
}
CONTAINER_SET = {"volumeMounts": [{"name": "a", "mountPath": "/a"}],
                 "containers": [{"name": "main", "image": "x", "dependencies": ["prep"]},
                                {"name": "prep", "image": "x"}]}
VALID_VARIANTS = {
    "hook-with-expression": _set(("spec", "hooks"), {"running": {"template": "work", "expression": "true"},
                                                     "exit": {"template": "work", "arguments": {
                                                         "parameters": [{"name": "size", "value": "1"}]}}}),
    "pod-gc-with-selector": _set(("spec", "podGC"), {"strategy": "OnWorkflowSuccess", "labelSelector": {
        "matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}}),
    "deadline-as-variable": _set((*W, "activeDeadlineSeconds"), "{{inputs.parameters.size}}"),
    "timeout-with-unit": _set((*W, "timeout"), "30s"),
    "enum-other-value": _set(("spec", "arguments", "parameters", 0, "value"), "slow"),
    "image-from-template-defaults": lambda doc: (work(doc)["container"].pop("image"),
                                                 doc["spec"].update(templateDefaults={"container": {"image": "a"}})),
    "retry-always": _set((*W, "retryStrategy", "retryPolicy"), "Always"),
    "metric-ok": _set((*W, "metrics"), {"prometheus": [{"name": "runs", "help": "h", "counter": {"value": "1"},
                                                         "labels": [{"key": "team", "value": "v"}]}]}),
    "container-set": lambda doc: (work(doc).pop("container"), work(doc).update(containerSet=CONTAINER_SET)),
    "steps-output-from-parameter": _set((*S, "outputs"), {"parameters": [{"name": "o", "valueFrom": {
        "parameter": "{{steps.after.outputs.parameters.out}}"}}]}),
    "item-from-withItems": lambda doc: doc["spec"]["templates"][0]["steps"][1][0].update(
        withItems=[{"x": 1}], arguments={"parameters": [{"name": "size", "value": "{{item.x}}"}]}),
    "global-output-reference": lambda doc: (
        work(doc)["outputs"]["parameters"][0].update(globalName="result"),
        work(doc)["container"]["args"].append("{{workflow.outputs.parameters.result}}")),
    "labels-from-metadata": lambda doc: (doc["metadata"].update(labels={"team": "a"}),
                                         work(doc)["container"]["args"].append("{{workflow.labels.team}}")),
}


@pytest.mark.parametrize(("change", "expected"), MORE_INVALID.values(), ids=ids(MORE_INVALID))
def test_more_of_what_argo_rejects_is_reported(change: Any, expected: str) -> None:
    doc = base()
    change(doc)
    messages = [p.message for p in lint_manifest(doc)]
    assert any(expected in m for m in messages), messages


@pytest.mark.parametrize("change", VALID_VARIANTS.values(), ids=VALID_VARIANTS.keys())
def test_what_argo_accepts_is_not_reported(change: Any) -> None:
    doc = base()
    change(doc)
    assert [str(p) for p in lint_manifest(doc)] == []


def test_container_set_rules() -> None:
    doc = base()
    work(doc).pop("container")
    work(doc)["containerSet"] = {"containers": [
        {"name": "a", "image": "x", "dependencies": ["b"]}, {"name": "b", "image": "x", "dependencies": ["a"]},
        {"name": "c", "image": "x", "dependencies": ["ghost"]}]}
    messages = [p.message for p in lint_manifest(doc)]
    assert any("form a cycle" in m for m in messages)
    assert any("'ghost' is not in this containerSet" in m for m in messages)
    assert any("needs a container named 'main'" in m for m in messages)


def test_dag_shape_rules() -> None:
    doc = yaml.safe_load(RESOURCE)
    dag = doc["spec"]["templates"][1]["dag"]
    dag["tasks"][0]["name"], dag["tasks"][1]["depends"] = "1a", "1a"
    dag["target"] = "b ghost"
    messages = [p.message for p in lint_manifest(doc)]
    assert any("may not start with a digit" in m for m in messages)
    assert any("task 'ghost' is not in this DAG" in m for m in messages)
    dag["tasks"] = []
    assert any("at least one task" in p.message for p in lint_manifest(doc))


def test_nothing_to_lint_is_a_failure_as_for_argo_lint(tmp_path: Path) -> None:
    # cmd/argo/lint/formatter_simple.go Summarize: "found nothing to lint in the specified paths,
    # failing..." when no file held a workflow manifest (Results.anythingLinted).
    values = tmp_path / "values.yaml"
    values.write_text("replicaCount: 1\nimage: {repository: x}\n")
    for args, stdin in (([str(values)], None), (["-"], ""), (["-"], "kind: ConfigMap\napiVersion: v1\n")):
        done = _trainyard("lint", *args, cwd=tmp_path, stdin=stdin)
        assert done.returncode == 1 and "found nothing to lint" in done.stdout, done.stdout + done.stderr
    problems, count = lint_sources([values, tmp_path / "also.yaml"])
    assert count == 2 and [p.message for p in problems] == ["file not found"]  # the real problem, alone


def test_one_depends_typo_is_one_finding_and_findings_follow_the_lines(tmp_path: Path) -> None:
    # The tasks after a task whose `depends` names no task have an unknown ancestry: the typo is
    # the one finding, not every argument that "does not depend" on what it uses.
    from workflows.render import RENDERED_DIR

    text = (RENDERED_DIR / "trainyard-pipeline.yaml").read_text()
    typo = tmp_path / "typo.yaml"
    typo.write_text(text.replace("depends: train\n", "depends: trian\n", 1))
    problems, _ = lint_sources([typo])
    assert [p.message for p in problems] == ["task 'trian' is not in this DAG; did you mean 'train'?"]
    several = tmp_path / "several.yaml"
    several.write_text(text.replace("imagePullPolicy: IfNotPresent", "imagePullPolicy: IfNotPresnt"))
    problems, _ = lint_sources([several])
    lines = [p.line for p in problems]
    assert len(lines) > 1 and lines == sorted(lines)


def test_enum_values_argo_s_schema_lists_are_checked() -> None:
    # The schema's Container.imagePullPolicy: "One of Always, Never, IfNotPresent"; Kubernetes
    # refuses the pod otherwise. A {{...}} value is only known at run time.
    doc = base()
    work(doc)["container"]["imagePullPolicy"] = "IfNotPresnt"
    (problem,) = lint_manifest(doc)
    assert problem.message.endswith("got the string 'IfNotPresnt'; did you mean 'IfNotPresent'?")
    work(doc)["container"]["imagePullPolicy"] = "{{workflow.parameters.pull}}"
    assert [p.message for p in lint_manifest(doc)] == [
        "{{workflow.parameters.pull}}: workflow parameter 'pull' is not declared in spec.arguments.parameters"]


@pytest.mark.timeout(120)  # a hang guard: an unbounded read never returns
def test_endless_input_and_dev_zero_are_read_only_up_to_a_bound(tmp_path: Path) -> None:
    from workflows.lint import MAX_BYTES

    for source in ("/dev/zero", "-"):
        command = [sys.executable, "-m", "workflows.cli", "lint", source]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        with open("/dev/zero", "rb") as zero:
            done = subprocess.run(command, stdin=zero, cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=110)
        assert done.returncode == 1
        assert f"more than {MAX_BYTES // (1024 * 1024)} MiB: not a manifest" in done.stdout, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
