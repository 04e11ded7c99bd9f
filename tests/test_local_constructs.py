"""The constructs Hera users write, and the root causes found by running Argo's own e2e suite
through the local runner (scripts/argo_suite.py), each reproduced by a small manifest of ours
and checked against what Argo v4.1.2's controller or executor does (file and function cited)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.test_local_argo_semantics import OK, WRITE, container, manifest, run
from workflows.local import LocalRunner, TemplateError

SH = ["sh", "-c"]


def sh(name: str, script: str, **extra: object) -> dict:
    return {"name": name, "container": {"image": "x", "command": SH, "args": [script]}, **extra}


def statuses(result) -> dict[str, str]:
    return {name: task.status for name, task in result.tasks.items()}


# -- root causes -------------------------------------------------------------------------------

def test_an_output_artifact_is_what_the_step_writes_a_file_or_nothing(tmp_path: Path) -> None:
    # Root cause 1. executor.go saveArtifact: the path holds what the step wrote (a file here);
    # a non-optional artifact whose path does not exist fails the wait container: Error.
    writes_file = sh("file", "echo data > /tmp/out.txt", outputs={"artifacts": [{"name": "a", "path": "/tmp/out.txt"}]})
    writes_nothing = sh("none", "true", outputs={"artifacts": [{"name": "a", "path": "/tmp/missing"}]})
    maybe = sh("maybe", "true", outputs={"artifacts": [{"name": "a", "path": "/tmp/missing", "optional": True}]})
    spec = manifest([{"name": "f", "template": "file"}, {"name": "n", "template": "none"},
                     {"name": "m", "template": "maybe"}], [writes_file, writes_nothing, maybe])
    result = run(spec, tmp_path)
    assert statuses(result) == {"f": "Succeeded", "n": "Error", "m": "Succeeded"}
    assert result.tasks["f"].artifacts["a"].read_text() == "data\n"
    assert "path /tmp/missing does not exist" in result.tasks["n"].message
    assert result.tasks["m"].artifacts == {}


def test_a_refusal_inside_with_param_is_named_not_an_argo_error(tmp_path: Path) -> None:
    # Root cause 3: a variable the runner cannot resolve is its refusal, recorded as such.
    spec = manifest([{"name": "fan", "template": "ok", "withParam": "{{workflow.parameters.nope}}"}], [OK])
    result = run(spec, tmp_path)
    assert result.refusals and "unknown variable {{workflow.parameters.nope}}" in result.refusals[0]
    assert result.tasks["fan"].message.startswith("refused by the local runner")


def test_a_nested_dag_s_outputs_are_resolved_or_its_node_errors(tmp_path: Path) -> None:
    # Root cause 4 and nested DAGs. dag.go executeDAG + operator.go getTemplateOutputsFromScope:
    # valueFrom.parameter and `from` take a task's outputs; one that cannot be resolved is an error.
    inner = {"name": "inner", "inputs": {"parameters": [{"name": "x"}]},
             "dag": {"tasks": [{"name": "w", "template": "write",
                                "arguments": {"parameters": [{"name": "v", "value": "in-{{inputs.parameters.x}}"}]}}]},
             "outputs": {"parameters": [{"name": "got", "valueFrom": {"parameter": "{{tasks.w.outputs.parameters.v}}"}}],
                         "artifacts": [{"name": "art", "from": "{{tasks.w.outputs.artifacts.a}}"}]}}
    write = sh("write", "echo -n {{inputs.parameters.v}} > /tmp/v; cp /tmp/v /tmp/a", inputs={"parameters": [{"name": "v"}]},
               outputs={"parameters": [{"name": "v", "valueFrom": {"path": "/tmp/v"}}],
                        "artifacts": [{"name": "a", "path": "/tmp/a"}]})
    broken = {**inner, "name": "broken",
              "outputs": {"parameters": [{"name": "got", "valueFrom": {"parameter": "{{tasks.nope.outputs.parameters.v}}"}}]}}
    out = tmp_path / "got"
    read = container("read", WRITE, [str(out), "{{inputs.parameters.g}}"], inputs=[{"name": "g"}])
    spec = manifest([
        {"name": "n", "template": "inner", "arguments": {"parameters": [{"name": "x", "value": "1"}]}},
        {"name": "r", "template": "read", "depends": "n",
         "arguments": {"parameters": [{"name": "g", "value": "{{tasks.n.outputs.parameters.got}}"}]}},
        {"name": "b", "template": "broken", "arguments": {"parameters": [{"name": "x", "value": "2"}]}},
    ], [inner, write, read, broken])
    result = run(spec, tmp_path)
    assert out.read_text() == "in-1"
    assert result.tasks["n"].artifacts["art"].read_text() == "in-1"
    assert result.tasks["n"].nested["w"].status == "Succeeded"
    assert result.tasks["b"].status == "Error" and "cannot be resolved" in result.tasks["b"].message
    assert result.phase == "Error"


def test_container_paths_inside_a_shell_command_are_the_steps_own(tmp_path: Path) -> None:
    # Root causes 5 and 6: a declared path inside `sh -c "..."` is mapped like a whole argument,
    # so the step writes its own file (not the machine's), and `> "$1"` finds the folder every
    # image has (/tmp) made, as in a pod; a folder no image has (/work) is not made for it.
    host = f"/tmp/trainyard-{uuid.uuid4().hex}/out.txt"
    step = sh("s", f"mkdir -p $(dirname {host}) && echo hi > {host}",
              outputs={"parameters": [{"name": "v", "valueFrom": {"path": host}}]})
    # A name of its own, so a file another process left in the host's /tmp cannot decide the test.
    mine = f"/tmp/trainyard-{uuid.uuid4().hex}"
    direct = {"name": "d", "container": {"image": "x", "command": ["sh", "-c", 'echo there > "$1"', "sh", mine]},
              "outputs": {"parameters": [{"name": "v", "valueFrom": {"path": mine}}]}}
    nowhere = {"name": "n", "container": {"image": "x", "command": ["sh", "-c", 'echo there > "$1"', "sh", "/work/v"]}}
    result = run(manifest([{"name": "a", "template": "s"}, {"name": "b", "template": "d"},
                           {"name": "c", "template": "n"}], [step, direct, nowhere]), tmp_path)
    assert result.tasks["a"].parameters == {"v": "hi"} and not Path(host).exists()
    assert result.tasks["b"].parameters == {"v": "there"} and not Path(mine).exists()
    assert result.tasks["c"].status == "Failed"  # sh: can't create /work/v: no such folder, as in a pod


def test_an_absent_optional_input_without_default_errors_only_its_consumer(tmp_path: Path) -> None:
    # Root cause 7. common.ProcessArgs: the absent optional argument leaves the input without a
    # value and it has no default: the consumer fails, the rest of the run goes on.
    produce = container("produce", WRITE, ["/out/v", "x"], outputs=[{"name": "v", "valueFrom": {"path": "/out/v"}}])
    consume = container("consume", "pass", ["{{inputs.parameters.x}}"], inputs=[{"name": "x"}])
    spec = manifest([
        {"name": "a", "template": "produce", "when": "false"},
        {"name": "b", "template": "consume", "depends": "a",
         "arguments": {"parameters": [{"name": "x", "value": "{{tasks.a.outputs.parameters.v}}"}]}},
        {"name": "c", "template": "ok"},
    ], [produce, consume, OK])
    result = run(spec, tmp_path)
    assert statuses(result) == {"a": "Skipped", "b": "Error", "c": "Succeeded"} and not result.refusals


def test_manifests_that_crashed_the_runner(tmp_path: Path) -> None:
    # Root cause 10. Kubernetes' decoder refuses a number in args (submission fails); a templated
    # retry limit is substituted with the inputs (operator.go executeTemplate); `parameters: null`
    # is Go's "not set"; a template needs a name (validate.go); a container without a command runs
    # its image's entrypoint, which only exists given (`entrypoints`).
    numbers = manifest([{"name": "a", "template": "n"}], [{"name": "n", "container": {"image": "x", "command": ["sleep", 0]}}])
    with pytest.raises(TemplateError, match=r"command\[1\]: expected a string, got 0"):
        run(numbers, tmp_path)
    flaky = sh("flaky", "test -e {{inputs.parameters.m}} || { touch {{inputs.parameters.m}}; exit 3; }",
               inputs={"parameters": [{"name": "m"}, {"name": "limit", "value": "1"}]},
               retryStrategy={"limit": "{{inputs.parameters.limit}}"})
    marker = tmp_path / "r" / "marker"
    spec = manifest([{"name": "a", "template": "flaky", "arguments": {"parameters": [{"name": "m", "value": str(marker)}]}},
                     {"name": "b", "template": "ok", "arguments": {"parameters": None}}], [flaky, OK])
    assert statuses(run(spec, tmp_path / "r")) == {"a": "Succeeded", "b": "Succeeded"}
    nameless = manifest([{"name": "a", "template": "ok"}], [OK, {"container": {"image": "x", "command": ["true"]}}])
    with pytest.raises(TemplateError, match=r"templates\[2\].name: a template needs a name"):
        run(nameless, tmp_path)
    entry = manifest([{"name": "a", "template": "e"}], [{"name": "e", "container": {"image": "img", "args": ["hi"]}}])
    done = LocalRunner(entry, tmp_path / "e", {}, echo=lambda _: None, entrypoints={"img": ["echo"]}).run()
    assert done.succeeded


def test_a_templated_target_and_the_entry_dag_s_own_inputs(tmp_path: Path) -> None:
    # Root cause 11. The workflow's parameters are substituted into the spec before it runs
    # (dag.target included); the entrypoint gets the workflow's arguments as its inputs.
    out = tmp_path / "got"
    spec = manifest([{"name": "a", "template": "w", "arguments": {"parameters": [{"name": "v", "value": "{{inputs.parameters.p}}"}]}},
                     {"name": "b", "template": "fail"}],
                    [container("w", WRITE, [str(out), "{{inputs.parameters.v}}"], inputs=[{"name": "v"}]),
                     container("fail", "import sys; sys.exit(1)", [])],
                    parameters=[{"name": "p", "value": "given"}, {"name": "t", "value": "a"}],
                    target="{{workflow.parameters.t}}")
    spec["spec"]["templates"][0]["inputs"] = {"parameters": [{"name": "p"}]}
    result = run(spec, tmp_path)
    assert result.succeeded and list(result.tasks) == ["a"] and out.read_text() == "given"


# -- constructs --------------------------------------------------------------------------------

def test_steps_run_group_after_group_and_see_earlier_outputs(tmp_path: Path) -> None:
    # steps.go executeSteps/executeStepGroup: groups in order, a group's steps at once; a failed
    # step (without continueOn) fails the template and no later group runs.
    out = tmp_path / "got"
    say = sh("say", "echo {{inputs.parameters.m}}", inputs={"parameters": [{"name": "m"}]})
    keep = container("keep", WRITE, [str(out), "{{inputs.parameters.m}}"], inputs=[{"name": "m"}])
    spec = manifest([], [say, keep, sh("fail", "exit 2")])
    spec["spec"]["entrypoint"] = "s"
    spec["spec"]["templates"].append({"name": "s", "steps": [
        [{"name": "hello", "template": "say", "arguments": {"parameters": [{"name": "m", "value": "hi"}]}},
         {"name": "soft", "template": "fail", "continueOn": {"failed": True}}],
        [{"name": "keep", "template": "keep",
          "arguments": {"parameters": [{"name": "m", "value": "{{steps.hello.outputs.result}}/{{steps.soft.status}}"}]}}],
        [{"name": "hard", "template": "fail"}],
        [{"name": "never", "template": "say", "arguments": {"parameters": [{"name": "m", "value": "x"}]}}],
    ]})
    result = run(spec, tmp_path)
    assert out.read_text() == "hi/Failed"
    assert statuses(result) == {"hello": "Succeeded", "soft": "Failed", "keep": "Succeeded", "hard": "Failed"}
    assert result.phase == "Failed"


def test_a_script_runs_its_source_and_its_stdout_is_the_result(tmp_path: Path) -> None:
    # operator.go executeScript appends /argo/staging/script (the source, mode 0755) to the args;
    # executor.go CaptureScriptResult: stdout (not stderr) minus one trailing newline.
    script = {"name": "gen", "script": {"image": "python", "command": ["python"],
                                         "source": "import sys\nprint('to stderr', file=sys.stderr)\nprint(6 * 7)\n"}}
    out = tmp_path / "got"
    spec = manifest([{"name": "g", "template": "gen"},
                     {"name": "k", "template": "keep", "depends": "g",
                      "arguments": {"parameters": [{"name": "m", "value": "{{tasks.g.outputs.result}}"}]}}],
                    [script, container("keep", WRITE, [str(out), "{{inputs.parameters.m}}"], inputs=[{"name": "m"}])])
    result = run(spec, tmp_path)
    assert result.succeeded and out.read_text() == "42" and result.tasks["g"].result == "42"


def test_continue_on_lets_dependants_run_and_spares_the_dag(tmp_path: Path) -> None:
    # ancestry.go expandDependency adds Failed to a plain dependency with continueOn.failed;
    # dag.go assessDAGPhase ignores a target whose continueOn admits its phase.
    spec = manifest([{"name": "a", "template": "fail", "continueOn": {"failed": True}},
                     {"name": "b", "template": "ok", "dependencies": ["a"]},
                     {"name": "c", "template": "fail", "continueOn": {"failed": True}}],
                    [OK, sh("fail", "exit 1")])
    result = run(spec, tmp_path)
    assert statuses(result) == {"a": "Failed", "b": "Succeeded", "c": "Failed"} and result.succeeded


def test_with_sequence_counts_and_formats_as_argo(tmp_path: Path) -> None:
    # operator.go expandSequence: start..end (down when start > end), or count from start, each
    # fmt.Sprintf(format, i).
    echo = sh("echo", "echo {{inputs.parameters.i}}", inputs={"parameters": [{"name": "i"}]})
    args = {"parameters": [{"name": "i", "value": "{{item}}"}]}
    spec = manifest([{"name": "up", "template": "echo", "withSequence": {"count": "3", "start": "8", "format": "n%02d"},
                      "arguments": args},
                     {"name": "down", "template": "echo", "withSequence": {"start": "2", "end": "0"}, "arguments": args}],
                    [echo])
    result = run(spec, tmp_path)
    assert [c.name for c in result.tasks["up"].children] == ["up(0:n08)", "up(1:n09)", "up(2:n10)"]
    assert [c.result for c in result.tasks["down"].children] == ["2", "1", "0"]


def test_a_task_s_exit_hook_runs_after_it_with_its_status(tmp_path: Path) -> None:
    # dag.go executeDAGTask -> runOnExitNode: the hook runs once the task completed, with
    # {{tasks.NAME.status}}; it does not change the task's phase.
    out = tmp_path / "hook"
    hook = container("hook", WRITE, [str(out), "{{inputs.parameters.s}}"], inputs=[{"name": "s"}])
    spec = manifest([{"name": "a", "template": "fail",
                      "hooks": {"exit": {"template": "hook",
                                         "arguments": {"parameters": [{"name": "s", "value": "{{tasks.a.status}}"}]}}}},
                     {"name": "b", "template": "ok", "onExit": "ok"}],
                    [OK, sh("fail", "exit 1"), hook])
    result = run(spec, tmp_path)
    assert out.read_text() == "Failed" and result.tasks["a"].status == "Failed"
    assert result.tasks["b"].hook is not None and result.tasks["b"].hook.status == "Succeeded"


def test_expression_tags_are_evaluated_as_expr_lang(tmp_path: Path) -> None:
    # util/template/expression_template.go: {{=...}} is expr-lang over the scope; a string result
    # as it is, anything else as JSON.
    out = tmp_path / "got"
    keep = container("keep", WRITE, [str(out), "{{=asInt(inputs.parameters.n) + 1}} {{=inputs.parameters.n == '2'}} "
                                               "{{=workflow.parameters['a-b']}}"], inputs=[{"name": "n"}])
    spec = manifest([{"name": "k", "template": "keep", "arguments": {"parameters": [{"name": "n", "value": "2"}]}}],
                    [keep], parameters=[{"name": "a-b", "value": "x"}])
    assert run(spec, tmp_path).succeeded
    assert out.read_text() == "3 true x"


def test_the_suite_script_counts_outcomes_on_a_checkout_of_our_own(tmp_path: Path) -> None:
    # scripts/argo_suite.py on a stand-in checkout holding two small manifests of ours.
    import subprocess
    import sys

    functional = tmp_path / "test" / "e2e" / "functional"
    functional.mkdir(parents=True)
    for name, args in (("ok.yaml", ["echo", "hi"]), ("bad.yaml", ["exit", "3"])):
        doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "x-"},
               "spec": {"entrypoint": "m", "templates": [{"name": "m", "container": {"image": "argoproj/argosay:v2",
                                                                                     "args": args}}]}}
        (functional / name).write_text(json.dumps(doc))
    # Argo's validation rejects a call of an unknown template: Error, the table says for this name
    # (validate.go), and the runner rejects it as invalid, which matches.
    failures = tmp_path / "test" / "e2e" / "expectedfailures"
    failures.mkdir()
    invalid = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "x-"},
               "spec": {"entrypoint": "m", "templates": [{"name": "m", "steps": [[{"name": "s", "template": "nope"}]]}]}}
    (failures / "misreference-template-name.yaml").write_text(json.dumps(invalid))
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "scripts" / "argo_suite.py"), str(tmp_path), "-v"],
                          capture_output=True, text=True, timeout=120)
    assert "match    test/e2e/functional/ok.yaml" in done.stdout, done.stdout + done.stderr
    assert "diverges test/e2e/functional/bad.yaml: Failed, Argo: Succeeded" in done.stdout
    assert "match    test/e2e/expectedfailures/misreference-template-name.yaml: Error (invalid:" in done.stdout
    assert done.stdout.splitlines()[-1].split() == ["all", "2", "0", "1", "0", "0"] and done.returncode == 1
