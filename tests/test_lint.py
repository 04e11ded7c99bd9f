"""`trainyard lint`: valid Argo manifests pass, each kind of mistake is reported where it is."""

from __future__ import annotations

import copy
import pathlib
import textwrap
from typing import Any

import pytest
import yaml

from workflows.lint import SUPPORTED_KINDS, Problem, lint_manifest, lint_paths, lint_text

# --- valid manifests, each exercising a different corner of Argo ---------------------------

STEPS_WITH_EXIT_HANDLER = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: steps-
  labels: {team: vision, "app.kubernetes.io/name": trainyard}
  annotations: {note: "hand-written"}
spec:
  entrypoint: main
  onExit: report
  serviceAccountName: runner
  parallelism: 2
  activeDeadlineSeconds: 3600
  podGC: {strategy: OnPodSuccess, deleteDelayDuration: 30s}
  ttlStrategy: {secondsAfterSuccess: 600}
  arguments:
    parameters:
      - {name: greeting, value: hello}
      - {name: epochs, value: 5}          # a YAML number: Argo's AnyString takes it
      - {name: fast, value: true, enum: [true, false]}
  templates:
    - name: main
      steps:
        - - name: say
            template: echo
            arguments:
              parameters: [{name: message, value: "{{workflow.parameters.greeting}}"}]
        - - name: fan-out
            template: echo
            arguments:
              parameters: [{name: message, value: "{{item.word}} x{{item.n}}"}]
            withItems:
              - {word: a, n: 1}
              - {word: b, n: 2}
          - name: count
            template: echo
            arguments:
              parameters: [{name: message, value: "{{item}}"}]
            withSequence: {count: "3"}
        - - name: after
            template: echo
            when: "{{steps.say.outputs.result}} != ''"
            arguments:
              parameters:
                - {name: message, value: "{{steps.say.outputs.parameters.said}}"}
    - name: echo
      inputs:
        parameters: [{name: message, default: 0}]
      outputs:
        parameters:
          - name: said
            valueFrom: {path: /tmp/said, default: ""}
      retryStrategy:
        limit: 3                          # IntOrString: a plain integer is fine
        retryPolicy: OnFailure
        backoff: {duration: "10s", factor: 2, maxDuration: "1m"}
      container:
        image: alpine:3.20
        imagePullPolicy: IfNotPresent
        command: [sh, -c]
        args: ["echo {{inputs.parameters.message}} | tee /tmp/said"]
        resources:
          requests: {cpu: 1, memory: 64Mi}   # a Quantity may be a YAML number
          limits: {cpu: "1.5", memory: 128Mi, nvidia.com/gpu: 1}
        livenessProbe:
          httpGet: {path: /healthz, port: http}
        securityContext: {runAsNonRoot: true, runAsUser: 1000}
    - name: report
      script:
        image: python:3.11-alpine
        command: [python]
        source: |
          print("{{workflow.status}}", "{{workflow.name}}")
"""

DAG_WITH_ARTIFACTS = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: dag-artifacts}
spec:
  entrypoint: pipeline
  volumeClaimTemplates:
    - metadata: {name: work}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Gi}}
  volumes:
    - name: config
      configMap: {name: trainyard-config}
    - name: scratch
      emptyDir: {sizeLimit: 2Gi}
  tolerations:
    - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
  nodeSelector: {cloud.google.com/gke-accelerator: nvidia-l4}
  templates:
    - name: pipeline
      dag:
        failFast: true
        tasks:
          - name: list
            template: list-shards
          - name: process
            depends: list
            template: process-shard
            arguments:
              parameters: [{name: shard, value: "{{item}}"}]
            withParam: "{{tasks.list.outputs.result}}"
          - name: merge
            depends: "process.AnySucceeded || (list.Succeeded && !process.Failed)"
            template: merge
            arguments:
              artifacts:
                - name: shards
                  from: "{{tasks.list.outputs.artifacts.listing}}"
          - name: publish
            depends: merge
            template: publish
            arguments:
              parameters:
                - name: count
                  value: "{{tasks.merge.outputs.parameters.count}}"
    - name: list-shards
      outputs:
        artifacts:
          - name: listing
            path: /tmp/listing.json
            s3:
              endpoint: minio:9000
              bucket: trainyard
              key: runs/{{workflow.name}}/listing.json
              insecure: true
              accessKeySecret: {name: minio, key: accesskey}
              secretKeySecret: {name: minio, key: secretkey}
      script:
        image: python:3.11-alpine
        command: [python]
        source: |
          import json, sys
          json.dump(["a", "b"], open("/tmp/listing.json", "w"))
          json.dump(["a", "b"], sys.stdout)
    - name: process-shard
      inputs:
        parameters: [{name: shard}]
      container:
        image: alpine:3.20
        args: ["{{inputs.parameters.shard}}"]
        volumeMounts:
          - {name: work, mountPath: /work}
          - {name: config, mountPath: /etc/trainyard, readOnly: true}
    - name: merge
      inputs:
        artifacts:
          - name: shards
            path: /in/listing.json
      outputs:
        parameters:
          - name: count
            valueFrom: {path: /out/count}
        artifacts:
          - name: merged
            path: /out/merged
            archive: {none: {}}
            gcs:
              bucket: trainyard-artifacts
              key: "merged/{{workflow.uid}}"
              serviceAccountKeySecret: {name: gcs, key: key.json}
      container:
        image: alpine:3.20
        command: [sh, -c, "wc -l {{inputs.artifacts.shards.path}} > /out/count"]
    - name: publish
      inputs:
        parameters: [{name: count}]
      suspend: {duration: "10s"}
"""

KINDS_OF_TEMPLATES = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: template-kinds}
spec:
  arguments:
    parameters: [{name: size, value: "2"}]
  templates:
    - name: main
      steps:
        - - {name: create, template: create-config}
        - - {name: pause, template: approve}
          - {name: sidecar-set, template: pair}
        - - name: delete
            templateRef: {name: shared-templates, template: cleanup}
    - name: create-config
      resource:
        action: create
        setOwnerReference: true
        successCondition: status.phase == Active
        manifest: |
          apiVersion: v1
          kind: ConfigMap
          metadata:
            generateName: made-by-argo-
          data:
            size: "{{workflow.parameters.size}}"
      outputs:
        parameters:
          - name: made
            valueFrom: {jsonPath: "{.metadata.name}"}
    - name: approve
      suspend: {}
      inputs:
        parameters:
          - name: decision
            enum: [approve, reject]
            default: approve
    - name: pair
      containerSet:
        volumeMounts: [{name: workspace, mountPath: /workspace}]
        retryStrategy: {retries: 2}
        containers:
          - name: first
            image: alpine:3.20
            command: [sh, -c, "echo a > /workspace/a"]
          - name: main
            image: alpine:3.20
            dependencies: [first]
            command: [cat, /workspace/a]
      volumes:
        - {name: workspace, emptyDir: {}}
    - name: memoized
      memoize:
        key: "{{inputs.parameters.size}}"
        maxAge: 1h
        cache: {configMap: {name: memo-cache}}
      synchronization:
        mutexes: [{name: one-at-a-time}]
      inputs:
        parameters: [{name: size}]
      metrics:
        prometheus:
          - name: memo_runs
            help: "How often the memoized step ran"
            counter: {value: "1"}
          - name: memo_seconds
            help: "Duration"
            histogram: {value: "{{duration}}", buckets: [1, 2.5, 10]}
      http:
        url: "https://example.com/size/{{inputs.parameters.size}}"
        method: GET
        timeoutSeconds: 20
        successCondition: response.statusCode == 200
"""

CRON = """
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedules: ["0 2 * * *", "30 14 * * 1-5"]
  timezone: Etc/UTC
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 60
  successfulJobsHistoryLimit: 3
  workflowSpec:
    entrypoint: run
    arguments:
      parameters: [{name: day, value: "{{=sprig.date('2006-01-02', now())}}"}]
    templates:
      - name: run
        container:
          image: alpine:3.20
          args: ["{{workflow.parameters.day}}", "{{=workflow.parameters.anything}}"]
"""

USES_A_TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: from-template-}
spec:
  workflowTemplateRef: {name: template-kinds}
  arguments:
    parameters: [{name: size, value: 3}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-argo}
data: {anything: goes, unknownKeyForArgo: fine}
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterWorkflowTemplate
metadata: {name: shared-templates}
spec:
  templates:
    - name: cleanup
      inputs:
        parameters: [{name: target, value: "{{workflow.parameters.anything}}"}]
      container: {image: "alpine:3.20", args: ["{{inputs.parameters.target}}"]}
"""

VALID = {
    "steps-exit-handler-loops": STEPS_WITH_EXIT_HANDLER,
    "dag-depends-artifacts-volumes": DAG_WITH_ARTIFACTS,
    "resource-suspend-containerset-http": KINDS_OF_TEMPLATES,
    "cron-schedules-expressions": CRON,
    "multi-document-with-configmap": USES_A_TEMPLATE,
}


def load(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


def messages(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid_manifests_have_no_problems(text: str) -> None:
    assert messages(lint_text(text, "valid.yaml")) == []


def test_supported_kinds_are_the_four_argo_workflow_kinds() -> None:
    assert set(SUPPORTED_KINDS) == {"Workflow", "WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate"}


# --- schema: unknown keys and wrong types ----------------------------------------------------


def test_misspelled_key_is_reported_with_its_path_and_the_likely_key() -> None:
    doc = load(STEPS_WITH_EXIT_HANDLER)
    doc["spec"]["templates"][1]["container"]["imagePullPolicyy"] = "Always"
    problems = lint_manifest(doc, "wf.yaml")
    assert len(problems) == 1
    assert problems[0].path == "spec.templates[name=echo].container.imagePullPolicyy"
    assert "did you mean 'imagePullPolicy'" in problems[0].message
    assert str(problems[0]).startswith(
        "wf.yaml: spec.templates[name=echo].container.imagePullPolicyy: unknown key"
    )


ECHO = ("spec", "templates", 1)  # the `echo` template of STEPS_WITH_EXIT_HANDLER
WRONG_TYPES = {
    "int-given-string": (("spec", "parallelism"), "lots", "expected an integer, got the string 'lots'"),
    "object-given-string": ((*ECHO, "container"), "alpine", "expected a mapping (Container)"),
    "list-given-string": ((*ECHO, "container", "args"), "x", "expected a list, got the string 'x'"),
    "list-given-mapping": ((*ECHO, "container", "command"), {"sh": 1}, "expected a list, got a mapping"),
    "bool-given-string": ((*ECHO, "container", "securityContext", "runAsNonRoot"), "yes", "expected true or"),
    "int-or-string-given-list": ((*ECHO, "retryStrategy", "limit"), [3], "expected a string or an integer"),
    "bad-quantity": (
        (*ECHO, "container", "resources", "limits", "memory"),
        "lots",
        "not a Kubernetes quantity",
    ),
    "label-given-number": (("metadata", "labels", "team"), 7, "expected a string, got the number 7"),
    "string-given-number": ((*ECHO, "container", "image"), 3.2, "expected a string, got the number 3.2"),
}


@pytest.mark.parametrize(("where", "value", "expected"), WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_wrong_types_are_reported(where: tuple[Any, ...], value: Any, expected: str) -> None:
    doc = load(STEPS_WITH_EXIT_HANDLER)
    parent = doc
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    problems = lint_manifest(doc)
    path = ".".join(str(key) for key in where).replace("templates.1", "templates[name=echo]")
    assert [p.path for p in problems] == [path]
    assert expected in problems[0].message


def test_forms_kubernetes_and_argo_accept_are_not_reported() -> None:
    doc = load(STEPS_WITH_EXIT_HANDLER)
    echo = doc["spec"]["templates"][1]
    echo["retryStrategy"]["limit"] = "3"  # IntOrString as a string
    echo["inputs"]["parameters"][0]["default"] = 2.5  # AnyString
    echo["container"]["resources"]["requests"]["cpu"] = 0.5  # Quantity as a float
    echo["container"]["resources"]["requests"]["memory"] = "{{inputs.parameters.message}}"  # templated
    echo["container"]["livenessProbe"]["httpGet"]["port"] = 8080  # named or numbered port
    doc["spec"]["parallelism"] = 2.0  # JSON 2.0 decodes into a Go int
    doc["spec"]["templates"][0]["steps"][0][0]["arguments"] = None  # null means "not set"
    assert lint_manifest(doc) == []


def test_free_form_fields_take_anything() -> None:
    doc = load(DAG_WITH_ARTIFACTS)
    process = doc["spec"]["templates"][0]["dag"]["tasks"][1]
    del process["withParam"]
    process["withItems"] = [1, "two", {"nested": [3, {"deep": True}]}, [4, 5]]
    doc["spec"]["templates"][3]["plugin"] = {"my-plugin": {"anyKey": [1, 2]}}
    del doc["spec"]["templates"][3]["container"]
    assert lint_manifest(doc) == []


def test_argo_v4_cron_uses_schedules_and_the_old_key_is_reported() -> None:
    doc = load(CRON)
    doc["spec"]["schedule"] = doc["spec"].pop("schedules")[0]
    problems = lint_manifest(doc)
    assert [p.path for p in problems] == ["spec.schedule"]
    assert "did you mean 'schedules'" in problems[0].message


def test_argo_v4_fields_newer_than_hera_models_are_known_and_checked() -> None:
    doc = load(STEPS_WITH_EXIT_HANDLER)
    doc["spec"]["podResources"] = {"limits": {"cpu": 2, "memory": "4Gi"}}
    doc["spec"]["templates"][1]["pendingTimeout"] = "5m"
    assert lint_manifest(doc) == []
    doc["spec"]["templates"][1]["resourceClaims"] = [{"name": "gpu", "resourceClaimNmae": "x"}]
    problems = lint_manifest(doc)
    assert [p.path for p in problems] == [
        "spec.templates[name=echo].resourceClaims[name=gpu].resourceClaimNmae"
    ]


# --- structure: templates, DAG dependencies, cycles ------------------------------------------


def dag_doc() -> dict[str, Any]:
    return load(DAG_WITH_ARTIFACTS)


def task(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in doc["spec"]["templates"][0]["dag"]["tasks"] if t["name"] == name)


def test_depends_on_a_task_that_does_not_exist_is_reported() -> None:
    doc = dag_doc()
    task(doc, "publish")["depends"] = "merge && (lst.Succeeded || merge.Failed)"
    problems = lint_manifest(doc)
    assert [p.path for p in problems] == ["spec.templates[name=pipeline].dag.tasks[name=publish].depends"]
    assert "task 'lst' is not in this DAG; did you mean 'list'?" in problems[0].message


def test_dependencies_list_names_tasks_of_the_same_dag() -> None:
    doc = dag_doc()
    for name, dependencies in (("process", ["list"]), ("merge", ["list", "ghost"]), ("publish", ["merge"])):
        del task(doc, name)["depends"]
        task(doc, name)["dependencies"] = dependencies
    problems = lint_manifest(doc)
    assert [(p.path, p.message) for p in problems] == [
        (
            "spec.templates[name=pipeline].dag.tasks[name=merge].dependencies[1]",
            "task 'ghost' is not in this DAG",
        )
    ]


def test_bad_depends_expressions_are_reported() -> None:
    doc = dag_doc()
    task(doc, "merge")["depends"] = "process.Sucess"
    task(doc, "publish")["depends"] = "(merge && list"
    task(doc, "process")["depends"] = "list.AnySucceeded"  # `list` does not loop
    found = {p.path.rsplit(".", 2)[-2]: p.message for p in lint_manifest(doc)}
    assert "'Sucess' is not a task result" in found["tasks[name=merge]"]
    assert "a '(' is not closed" in found["tasks[name=publish]"]
    assert "needs 'list' to loop" in found["tasks[name=process]"]


def test_unknown_templates_are_reported_for_tasks_steps_entrypoint_and_exit_handler() -> None:
    doc = load(STEPS_WITH_EXIT_HANDLER)
    doc["spec"]["entrypoint"] = "mian"
    doc["spec"]["onExit"] = "missing-report"
    doc["spec"]["templates"][0]["steps"][2][0]["template"] = "ehco"
    problems = {p.path: p.message for p in lint_manifest(doc)}
    undefined = "is not defined in this manifest; did you mean"
    assert problems == {
        "spec.entrypoint": f"template 'mian' {undefined} 'main'?",
        "spec.onExit": f"template 'missing-report' {undefined} 'report'?",
        "spec.templates[name=main].steps[2][name=after].template": f"template 'ehco' {undefined} 'echo'?",
    }


def test_dag_task_with_unknown_template_is_reported() -> None:
    doc = dag_doc()
    task(doc, "merge")["template"] = "merge-all"
    problems = lint_manifest(doc)
    assert "spec.templates[name=pipeline].dag.tasks[name=merge].template" in [p.path for p in problems]


def test_template_refs_and_workflow_template_refs_are_not_followed() -> None:
    # A Workflow whose templates all come from a workflowTemplateRef: no entrypoint, no templates.
    assert lint_text(USES_A_TEMPLATE, "x.yaml") == []
    # A step with a templateRef into another manifest.
    doc = load(KINDS_OF_TEMPLATES)
    assert doc["spec"]["templates"][0]["steps"][2][0]["templateRef"]["template"] == "cleanup"
    assert lint_manifest(doc) == []


def test_a_dependency_cycle_is_reported_once() -> None:
    doc = dag_doc()
    task(doc, "list")["depends"] = "process"
    problems = lint_manifest(doc)
    assert len(problems) == 1
    assert problems[0].path == "spec.templates[name=pipeline].dag.tasks[name=list]"
    assert problems[0].message == "dependency cycle: list -> process -> list"


def test_each_cycle_through_a_dag_is_reported() -> None:
    doc = dag_doc()
    task(doc, "list")["depends"] = "publish"  # merge waits for list and for process: two cycles
    cycles = sorted(p.message for p in lint_manifest(doc))
    assert cycles == [
        "dependency cycle: list -> merge -> publish -> list",
        "dependency cycle: list -> process -> merge -> publish -> list",
    ]


def test_a_template_needs_exactly_one_type() -> None:
    doc = load(STEPS_WITH_EXIT_HANDLER)
    doc["spec"]["templates"][2]["container"] = {"image": "alpine"}
    del doc["spec"]["templates"][1]["container"]
    found = {p.path: p.message for p in lint_manifest(doc)}
    assert found["spec.templates[name=echo]"].startswith("template has no type")
    assert found["spec.templates[name=report]"] == "template has several types (container, script): keep one"


# --- references: {{tasks...}}, {{steps...}}, {{inputs...}}, {{workflow.parameters...}} ------


def test_unresolved_task_output_references_are_reported() -> None:
    doc = dag_doc()
    publish = task(doc, "publish")
    publish["arguments"]["parameters"][0]["value"] = "{{tasks.merge.outputs.parameters.total}}"
    publish["when"] = "{{tasks.mrege.outputs.result}} != 0"
    found = {p.path: p.message for p in lint_manifest(doc)}
    base = "spec.templates[name=pipeline].dag.tasks[name=publish]"
    assert found == {
        f"{base}.arguments.parameters[name=count].value": (
            "{{tasks.merge.outputs.parameters.total}}: task 'merge' does not produce this "
            "(it has: outputs.artifacts.merged, outputs.parameters.count, outputs.result)"
        ),
        f"{base}.when": "{{tasks.mrege.outputs.result}}: there is no task 'mrege' in this DAG",
    }


def test_task_argument_from_a_task_it_does_not_depend_on_is_reported() -> None:
    doc = dag_doc()
    task(doc, "publish")["depends"] = "list"
    found = {p.path: p.message for p in lint_manifest(doc)}
    path = "spec.templates[name=pipeline].dag.tasks[name=publish].arguments.parameters[name=count].value"
    assert "does not depend on it" in found[path]


def test_step_output_references_check_the_step_and_its_order() -> None:
    doc = load(STEPS_WITH_EXIT_HANDLER)
    say = doc["spec"]["templates"][0]["steps"][0][0]
    say["when"] = "{{steps.after.outputs.result}} == x"
    after = doc["spec"]["templates"][0]["steps"][2][0]
    after["arguments"]["parameters"][0]["value"] = "{{steps.say.outputs.artifacts.said}}"
    found = {p.path: p.message for p in lint_manifest(doc)}
    assert "has not run yet" in found["spec.templates[name=main].steps[0][name=say].when"]
    assert (
        "step 'say' does not produce this"
        in found["spec.templates[name=main].steps[2][name=after].arguments.parameters[name=message].value"]
    )


def test_undeclared_inputs_and_workflow_parameters_are_reported() -> None:
    doc = load(STEPS_WITH_EXIT_HANDLER)
    container = doc["spec"]["templates"][1]["container"]
    container["args"] = [
        "{{inputs.parameters.mesage}}",
        "{{ workflow.parameters.greting }}",
        "{{inputs.artifacts.data.path}}",
    ]
    found = [p.message for p in lint_manifest(doc)]
    assert found == [
        "{{inputs.parameters.mesage}}: template 'echo' has no such input (declared: inputs.parameters.message)",
        "{{workflow.parameters.greting}}: workflow parameter 'greting' is not declared in "
        "spec.arguments.parameters; did you mean 'greeting'?",
        "{{inputs.artifacts.data.path}}: template 'echo' has no such input (declared: inputs.parameters.message)",
    ]


def test_a_workflow_template_s_declared_parameters_judge_its_workflow_parameters() -> None:
    # validate.go accepts any workflow.parameters.* in a WorkflowTemplate alone (the caller may pass
    # it); a template that declares its parameters is judged by them, since passing an undeclared
    # one is refused (crossdoc). A template declaring none (a library for callers) stays lenient.
    doc = load(KINDS_OF_TEMPLATES)
    doc["spec"]["templates"][1]["resource"]["manifest"] += "  other: '{{workflow.parameters.from-caller}}'\n"
    assert [p.message for p in lint_manifest(doc)] == [
        "{{workflow.parameters.from-caller}}: workflow parameter 'from-caller' is not declared in spec.arguments.parameters"]
    del doc["spec"]["arguments"]
    assert lint_manifest(doc) == []


def test_expression_tags_are_not_checked() -> None:
    doc = dag_doc()
    task(doc, "publish")["when"] = "{{= tasks.nonexistent.outputs.result == 'x' }}"
    assert lint_manifest(doc) == []


# --- files, streams and the Problem format ------------------------------------------------------


def test_yaml_syntax_error_is_a_problem_not_an_exception() -> None:
    problems = lint_text("kind: Workflow\nspec: [unclosed\n", "broken.yaml")
    assert len(problems) == 1
    assert problems[0].file == "broken.yaml" and problems[0].path.startswith("line ")
    assert "invalid YAML" in problems[0].message


def test_duplicate_keys_are_a_problem() -> None:
    text = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nkind: Workflow\n"
    problems = lint_text(text, "dup.yaml")
    assert [p.path for p in problems] == ["line 3, column 1"]
    assert "duplicate key 'kind'" in problems[0].message


def test_yaml_reads_scalars_as_kubernetes_does() -> None:
    doc = load(STEPS_WITH_EXIT_HANDLER)
    text = yaml.safe_dump(doc).replace("value: hello", "value: 2024-01-31")
    text = text.replace("deleteDelayDuration: 30s", "deleteDelayDuration: 1:30")
    assert lint_text(text, "dates.yaml") == []  # a date and a base-60 number stay strings


def test_documents_in_a_stream_are_told_apart_and_other_kinds_skipped() -> None:
    second = load(CRON)
    second["spec"]["workflowSpec"]["templates"][0]["container"]["imagee"] = "x"
    text = USES_A_TEMPLATE + "\n---\n" + yaml.safe_dump(second)
    problems = lint_text(text, "stream.yaml")
    assert messages(problems) == [
        "stream.yaml:50: documents[3].spec.workflowSpec.templates[name=run].container.imagee: "
        "unknown key 'imagee' in Container; did you mean 'image'?"
    ]


def test_a_misspelled_kind_is_reported_and_a_foreign_kind_skipped() -> None:
    doc = load(CRON)
    doc["kind"] = "CronWorkfow"
    assert [p.path for p in lint_text(yaml.safe_dump(doc), "k.yaml")] == ["kind"]
    doc["kind"] = "Sensor"
    assert lint_text(yaml.safe_dump(doc), "k.yaml") == []
    assert "did you mean 'CronWorkflow'" in lint_manifest({**doc, "kind": "CronWorkfow"})[0].message


def test_lint_paths_reads_files_and_folders_and_reports_missing_files(tmp_path: pathlib.Path) -> None:
    good = tmp_path / "manifests" / "good.yaml"
    good.parent.mkdir()
    good.write_text(textwrap.dedent(CRON))
    bad_doc = load(CRON)
    bad_doc["spec"]["startingDeadlineSeconds"] = "soon"
    (tmp_path / "manifests" / "bad.yml").write_text(yaml.safe_dump(bad_doc))
    missing = tmp_path / "nope.yaml"
    problems = lint_paths([tmp_path / "manifests", missing])
    bad = tmp_path / "manifests" / "bad.yml"
    assert messages(problems) == [
        f"{bad}:10: spec.startingDeadlineSeconds: expected an integer, got the string 'soon'",
        f"{missing}: file not found",
    ]


def test_problem_prints_as_file_path_message() -> None:
    assert str(Problem("a.yaml", "spec.entrypoint", "missing")) == "a.yaml: spec.entrypoint: missing"


def test_linting_does_not_change_the_manifest() -> None:
    doc = dag_doc()
    before = copy.deepcopy(doc)
    lint_manifest(doc)
    assert doc == before
