"""Expression tags, fan-in of results and exit hook arguments in `trainyard run --local`, each a
small manifest of ours checked against Argo v4.1.2 (file and function cited)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_local_argo_semantics import manifest, run
from tests.test_local_constructs import sh, statuses
from workflows.local import TemplateError
from workflows.local.expr import evaluate
from workflows.local.templating import substitute


@pytest.mark.parametrize("text, value", [
    ("toJson(filter([1, 3], {# > 1}))", "[3]"),                 # examples/expression-tag-template-workflow.yaml
    ("map([1, 2], {# * 10}) | toJSON()", "[10,20]"),
    ("inputs.parameters.list | fromJSON() | join('-')", "a-b"),
    ("concat(['always'], inputs.parameters.test == 'true' ? ['test'] : []) | toJSON()", '["always","test"]'),
    ("get(fromJSON(inputs.parameters.map), 'type') ?? 'always'", "x"),
    ("get(fromJSON(inputs.parameters.map), 'nope') ?? 'always'", "always"),
    ("asInt(inputs.parameters.n) * 10 - 1", "29"),
    ("7 / 2", "3.5"),
    ("sprig.replace('bar', 'baz', 'foobar')", "foobaz"),
    ("all([2, 4], {# % 2 == 0}) && none([1], {# > 5})", "true"),
])
def test_expression_tags_are_expr_lang(text: str, value: str) -> None:
    # util/template/expression_template.go: expr-lang over the scope (util/expr/env GetFuncMap:
    # expr's builtins, asInt, toJson, sprig); a string as it is, anything else as its JSON.
    values = {"inputs.parameters.list": '["a","b"]', "inputs.parameters.test": "true", "inputs.parameters.n": "3",
              "inputs.parameters.map": '{"type":"x"}'}
    assert substitute("{{=" + text + "}}", values, "t") == value


def test_a_tag_ends_at_the_first_closing_braces_as_in_fasttemplate(tmp_path: Path) -> None:
    # fasttemplate (util/template/template.go): a tag runs from {{ to the first }}, so an
    # expression's own braces (a predicate) are part of it; withParam from such a tag fans out.
    spec = manifest([{"name": "t", "template": "echo", "withParam": "{{=toJson(filter([1, 3], {# > 1}))}}",
                      "arguments": {"parameters": [{"name": "foo", "value": "{{=item}}"}]}}],
                    [sh("echo", "echo {{=asInt(inputs.parameters.foo) * 10}}", inputs={"parameters": [{"name": "foo"}]})])
    result = run(spec, tmp_path)
    assert result.succeeded and [c.result for c in result.tasks["t"].children] == ["30"]
    with pytest.raises(TemplateError, match="unexpected # outside a predicate"):
        evaluate("# > 1", {})


def test_a_retry_expression_sees_whole_seconds(tmp_path: Path) -> None:
    # operator.go buildRetryStrategyLocalScope: lastRetry.duration is fmt.Sprint of the seconds
    # between times stored to the second, so asInt() takes it (examples/retry-conditional.yaml).
    step = sh("s", "exit 2", retryStrategy={"limit": 2, "expression": "asInt(lastRetry.duration) < 120"})
    result = run(manifest([{"name": "a", "template": "s"}], [step]), tmp_path)
    assert result.tasks["a"].status == "Failed" and result.tasks["a"].message == "No more retries left"


def test_a_fan_outs_results_are_one_json_list(tmp_path: Path) -> None:
    # operator.go processAggregateNodeOutputs: the Succeeded children's results, each parsed as
    # JSON, in order (test/e2e/functional/parameter-aggregation-dag.yaml); one that is not JSON is
    # an error for the task using the list.
    number = sh("n", "echo $(( {{inputs.parameters.i}} * 2 ))", inputs={"parameters": [{"name": "i"}]})
    text = sh("t", "echo not-json")
    use = sh("u", "echo '{{inputs.parameters.all}}' > /tmp/all",
             inputs={"parameters": [{"name": "all"}]},
             outputs={"parameters": [{"name": "all", "valueFrom": {"path": "/tmp/all"}}]})
    spec = manifest([
        {"name": "double", "template": "n", "withItems": [1, 2, 3], "arguments": {"parameters": [{"name": "i", "value": "{{item}}"}]}},
        {"name": "words", "template": "t", "withItems": [1]},
        {"name": "good", "template": "u", "depends": "double",
         "arguments": {"parameters": [{"name": "all", "value": "{{tasks.double.outputs.result}}"}]}},
        {"name": "bad", "template": "u", "depends": "words",
         "arguments": {"parameters": [{"name": "all", "value": "{{tasks.words.outputs.result}}"}]}},
    ], [number, text, use])
    result = run(spec, tmp_path)
    assert result.tasks["good"].parameters["all"] == "[2,4,6]"
    assert result.tasks["bad"].status == "Error" and "is not JSON" in result.tasks["bad"].message
    assert not result.refusals


def test_an_exit_hook_argument_argo_cannot_resolve_stays_as_written(tmp_path: Path) -> None:
    # exit_handler.go resolveExitTmplArgument: no strict prefixes, so a failed step's missing output
    # reaches the hook as the tag itself (test/e2e/expectedfailures/exit-handler-fail-missing-output.yaml).
    out = tmp_path / "hook"
    fail = sh("fail", "exit 1", outputs={"parameters": [{"name": "p", "valueFrom": {"path": "/tmp/p"}}]})
    hook = sh("hook", f"echo '{{{{inputs.parameters.p}}}}' > {out}", inputs={"parameters": [{"name": "p"}]})
    spec = manifest([{"name": "a", "template": "fail", "hooks": {"exit": {
        "template": "hook", "arguments": {"parameters": [{"name": "p", "value": "{{tasks.a.outputs.parameters.p}}"}]}}}}],
        [fail, hook])
    result = run(spec, tmp_path)
    assert result.phase == "Failed" and result.tasks["a"].hook.status == "Succeeded" and not result.refusals
    assert out.read_text() == "{{tasks.a.outputs.parameters.p}}\n"


def test_what_argo_validates_or_a_cluster_runs_is_named_before_anything_runs(tmp_path: Path) -> None:
    # validate.go (common.ProcessArgs): an input without a value that the call does not give; a
    # node selector for another OS or CPU, kubectl, an artifact saved to an outside store: refused.
    unset = manifest([{"name": "a", "template": "p"}], [sh("p", "true", inputs={"parameters": [{"name": "m"}]})])
    with pytest.raises(TemplateError, match="templates.p.inputs.parameters.m was not supplied"):
        run(unset, tmp_path)
    windows = manifest([{"name": "a", "template": "w"}], [{**sh("w", "true"), "nodeSelector": {"kubernetes.io/os": "windows"}}])
    with pytest.raises(TemplateError, match="nodeSelector.kubernetes.io/os: 'windows': no node of this kind here"):
        run(windows, tmp_path)
    kubectl = manifest([{"name": "a", "template": "k"}], [sh("k", "kubectl get pods | wc -l")])
    with pytest.raises(TemplateError, match="runs kubectl, which acts on the cluster's API server"):
        run(kubectl, tmp_path)
    s3 = manifest([{"name": "a", "template": "o"}],
                  [sh("o", "true", outputs={"artifacts": [{"name": "x", "path": "/tmp/x", "s3": {"key": "k"}}]})])
    with pytest.raises(TemplateError, match=r"outputs.artifacts\[0\].s3: an artifact saved to an outside store"):
        run(s3, tmp_path)
    assert statuses(run(manifest([{"name": "a", "template": "l"}],
                                 [{**sh("l", "true"), "nodeSelector": {"kubernetes.io/os": "linux"}}]), tmp_path)) == \
        {"a": "Succeeded"}


def test_when_in_a_list_an_input_value_of_its_own_and_a_steps_exit_code(tmp_path: Path) -> None:
    # govaluate: `x in (a, b)` over a parenthesised array (test/e2e/functional/steps-when-expr-filter.yaml);
    # common.ProcessArgs substitutes a template's own input value with its inputs; variables.md:
    # `steps.<NAME>.exitCode`.
    from workflows.local.when import should_execute

    assert should_execute('"test" in ("always", "test")') and not should_execute('"x" in ("always", "test")')
    out = tmp_path / "seen"
    main = {"name": "main", "inputs": {"parameters": [
        {"name": "test", "value": "true"},
        {"name": "list", "value": "{{= concat(['always'], inputs.parameters.test == 'true' ? ['test'] : []) | toJSON() }}"}]},
        "steps": [[{"name": "fails", "template": "code", "continueOn": {"failed": True}}],
                  [{"name": "see", "template": "see", "when": '"test" in ("{{= inputs.parameters.list | fromJSON() | join(\'","\') }}")',
                    "arguments": {"parameters": [{"name": "v", "value": "{{inputs.parameters.list}} {{steps.fails.exitCode}}"}]}}]]}
    spec = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"name": "w"},
            "spec": {"entrypoint": "main", "templates": [main, sh("code", "exit 3"),
                                                         sh("see", f"echo '{{{{inputs.parameters.v}}}}' > {out}",
                                                            inputs={"parameters": [{"name": "v"}]})]}}
    result = run(spec, tmp_path)
    assert result.succeeded, result.tasks
    assert out.read_text() == '["always","test"] 3\n'
