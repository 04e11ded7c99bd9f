"""A parameter value substituted into `when` (Argo substitutes it as text) cannot hang, crash or
abort a local run: the expression is evaluated as Argo's Go code evaluates it (RE2 regexes),
nesting is bounded, and whatever goes wrong ends one task Error while the run goes on to its
exit handler and summary (controller/dag.go executeDAGTask: an invalid `when` initialises the
task's node as Error; operator.go operate then runs onExit with workflow.status Error)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_local_argo_semantics import OK, _exit_handler, manifest, run
from workflows.local.expr import evaluate
from workflows.local.summary import print_summary
from workflows.local.templating import NotSupported
from workflows.local.when import should_execute

# The pipeline's `when` shape, with a workflow parameter quoted inside it.
WHEN = "'{{workflow.parameters.p}}' == 'true'"


def _spec(when: str, tmp_path: Path) -> dict:
    spec = manifest([{"name": "a", "template": "ok", "when": when}, {"name": "b", "template": "ok", "depends": "a"}],
                    [OK], parameters=[{"name": "p", "value": "false"}])
    return _exit_handler(spec, tmp_path / "exit.txt")


@pytest.mark.timeout(60)  # a hang guard: Python's backtracking `re` takes hours on this input
def test_a_catastrophic_regex_smuggled_in_a_parameter_ends_at_once(tmp_path: Path) -> None:
    # govaluate's =~ is Go's regexp.MatchString: RE2, linear time. `x' =~ '^(a+)+$` closes the
    # quote and compares with a regex; (a =~ b) == 'true' is a bool compared with a string: false.
    evil = "a" * 100_000 + "!' =~ '^(a+)+$"
    result = run(_spec(WHEN, tmp_path), tmp_path, p=evil)
    assert result.tasks["a"].status == "Skipped" and result.succeeded
    assert should_execute("'" + "a" * 100_000 + "!' =~ '^(a+)+$'") is False
    assert evaluate("'" + "a" * 100_000 + "!' matches '^(a+)+$'", {}) is False


def test_a_regex_go_refuses_is_a_task_error_naming_the_expression(tmp_path: Path) -> None:
    # Go's regexp has no look-arounds: govaluate's error makes the task Error (dag.go executeDAGTask);
    # Python's `re` would have matched. An unbalanced pattern is an error too, never a traceback.
    for pattern in ("(?=a)", "("):
        result = run(_spec(f"'a' =~ '{pattern}'", tmp_path), tmp_path)
        task = result.tasks["a"]
        assert task.status == "Error" and task.message.startswith(f"Invalid 'when' expression ''a' =~ '{pattern}''")
        assert "error parsing regexp" in task.message and not result.refusals
        assert result.tasks["b"].status == "Omitted" and result.phase == "Error"
        status = (tmp_path / "exit.txt").read_text().split("\n")[0]
        assert status == "Error"  # the exit handler ran, with the workflow's status


def test_deep_nesting_is_refused_by_name_and_the_run_still_ends_with_its_exit_handler(tmp_path: Path) -> None:
    # 400 parentheses are a valid govaluate expression; the runner bounds its parser's depth and
    # says so, instead of a RecursionError aborting the run before its exit handler and summary.
    deep = "(" * 400 + "true" + ")" * 400
    with pytest.raises(NotSupported, match="nested deeper than"):
        should_execute(deep)
    with pytest.raises(NotSupported, match="nested deeper than"):
        evaluate("(" * 400 + "1" + ")" * 400, {})
    result = run(_spec(deep, tmp_path), tmp_path)
    assert result.tasks["a"].status == "Error" and result.tasks["a"].message.startswith("refused by the local runner")
    assert result.refusals and "nested deeper than" in result.refusals[0]
    assert result.tasks["bye"].status == "Succeeded"
    print_summary(result)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["phase"] == "Error" and summary["refusals"] == result.refusals


def test_a_parameter_that_breaks_the_expression_is_a_task_error_not_a_traceback(tmp_path: Path) -> None:
    # An unbalanced quote in the value leaves govaluate an unclosed string literal.
    result = run(_spec(WHEN, tmp_path), tmp_path, p="it's")
    assert result.tasks["a"].status == "Error" and "Invalid 'when' expression" in result.tasks["a"].message
    assert result.tasks["bye"].status == "Succeeded"
