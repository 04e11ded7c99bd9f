"""`withItems` / `withParam` fan-out and fan-in in `trainyard run --local`, against Argo v4.1.2's
controller (argoproj/argo-workflows, tag v4.1.2): each test names the source whose outcome it asserts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_local_argo_semantics import OK, WRITE, container, manifest
from workflows.local import LocalRunner

# Writes argv[2] to argv[1]; exits 3 when argv[2] is "bad".
WRITE_OR_FAIL = WRITE.replace("sys.exit(int(sys.argv[3]) if len(sys.argv) > 3 else 0)",
                              "sys.exit(3 if sys.argv[2] == 'bad' else 0)")
ECHO = container("echo", WRITE_OR_FAIL, ["/out/v", "{{inputs.parameters.x}}"], inputs=[{"name": "x"}],
                 outputs=[{"name": "v", "valueFrom": {"path": "/out/v"}}])


def _got(tmp_path: Path) -> dict:
    return container("got", WRITE, [str(tmp_path / "got"), "{{inputs.parameters.all}}|{{inputs.parameters.maps}}"],
                     inputs=[{"name": "all"}, {"name": "maps"}])


def _run(spec: dict, tmp_path: Path, parallel: int = 1):
    return LocalRunner(spec, tmp_path / "run-1", {}, echo=lambda _: None, parallel=parallel).run()


GOT_ARGS = {"parameters": [{"name": "all", "value": "{{tasks.fan.outputs.parameters.v}}"},
                           {"name": "maps", "value": "{{tasks.fan.outputs.parameters}}"}]}


def test_with_items_expands_and_aggregates_outputs_as_json_lists(tmp_path: Path) -> None:
    # controller/dag.go expandTask + operator.go processItem/generateNodeName: one child per item,
    # named task(index:item); operator.go processAggregateNodeOutputs: outputs.parameters.P is the
    # JSON list of the children's values in index order, outputs.parameters the list of maps.
    spec = manifest([
        {"name": "fan", "template": "echo", "withItems": ["b", 1.50, True],
         "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}},
        {"name": "got", "template": "got", "depends": "fan", "arguments": GOT_ARGS},
    ], [ECHO, _got(tmp_path)])
    result = _run(spec, tmp_path)
    assert result.succeeded
    fan = result.tasks["fan"]
    assert [c.name for c in fan.children] == ["fan(0:b)", "fan(1:1.5)", "fan(2:true)"]
    values, maps = (tmp_path / "got").read_text().split("|")
    assert json.loads(values) == ["b", "1.5", "true"]
    assert json.loads(maps) == [{"v": "b"}, {"v": "1.5"}, {"v": "true"}]


def test_with_param_of_maps_gives_item_keys_and_parses_json_outputs(tmp_path: Path) -> None:
    # operator.go processItem: a map item sets {{item.KEY}} and names the child by its sorted
    # key:value pairs; aggregatedJSONValueList: values that are all JSON maps/lists are parsed.
    items = json.dumps([{"lr": 0.01, "net": "r34"}, {"lr": 0.02, "net": "r(50)"}])
    produce = container("produce", WRITE, ["/out/items", items], outputs=[{"name": "items", "valueFrom": {"path": "/out/items"}}])
    echo_map = container("echo", WRITE, ["/out/v", '{"lr": {{inputs.parameters.x}}}'], inputs=[{"name": "x"}],
                         outputs=[{"name": "v", "valueFrom": {"path": "/out/v"}}])
    spec = manifest([
        {"name": "produce", "template": "produce"},
        {"name": "fan", "template": "echo", "depends": "produce", "withParam": "{{tasks.produce.outputs.parameters.items}}",
         "arguments": {"parameters": [{"name": "x", "value": "{{item.lr}}"}]}},
        {"name": "got", "template": "got", "depends": "fan", "arguments": GOT_ARGS},
    ], [produce, echo_map, _got(tmp_path)])
    result = _run(spec, tmp_path)
    assert result.succeeded
    assert [c.name for c in result.tasks["fan"].children] == ["fan(0:lr:0.01,net:r34)", "fan(1:lr:0.02,net:r50)"]
    values, maps = (tmp_path / "got").read_text().split("|")
    assert json.loads(values) == [{"lr": 0.01}, {"lr": 0.02}]
    assert json.loads(maps) == [{"v": '{"lr": 0.01}'}, {"v": '{"lr": 0.02}'}]


def test_a_failed_child_fails_the_group_and_only_succeeded_children_aggregate(tmp_path: Path) -> None:
    # dag.go executeDAGTask: the TaskGroup takes a failed child's phase; its dependants are
    # omitted by the depends logic; processAggregateNodeOutputs skips non-Succeeded children.
    spec = manifest([
        {"name": "fan", "template": "echo", "withItems": ["a", "bad", "c"],
         "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}},
        {"name": "got", "template": "got", "depends": "fan", "arguments": GOT_ARGS},
        {"name": "any", "template": "got", "depends": "fan.Failed", "arguments": GOT_ARGS},
    ], [ECHO, _got(tmp_path)])
    result = _run(spec, tmp_path)
    assert result.phase == "Failed"
    assert [c.status for c in result.tasks["fan"].children] == ["Succeeded", "Failed", "Succeeded"]
    assert result.tasks["fan"].status == "Failed"
    assert result.tasks["got"].status == "Omitted"
    assert json.loads((tmp_path / "got").read_text().split("|")[0]) == ["a", "c"]


def test_an_empty_with_param_skips_the_group_and_dependants_still_run(tmp_path: Path) -> None:
    # dag.go executeDAGTask: "Skipped, empty params"; a Skipped dependency satisfies `depends`.
    produce = container("produce", WRITE, ["/out/items", "[]"], outputs=[{"name": "items", "valueFrom": {"path": "/out/items"}}])
    spec = manifest([
        {"name": "produce", "template": "produce"},
        {"name": "fan", "template": "echo", "depends": "produce", "withParam": "{{tasks.produce.outputs.parameters.items}}",
         "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}},
        {"name": "after", "template": "ok", "depends": "fan"},
    ], [produce, ECHO, OK])
    result = _run(spec, tmp_path)
    assert result.succeeded
    assert (result.tasks["fan"].status, result.tasks["fan"].message) == ("Skipped", "Skipped, empty params")
    assert result.tasks["after"].status == "Succeeded"


def test_a_with_param_that_is_not_a_json_list_errors_the_task(tmp_path: Path) -> None:
    # dag.go expandTask: "withParam value could not be parsed as a JSON list".
    spec = manifest([{"name": "fan", "template": "echo", "withParam": '{"a": 1}',
                      "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}}], [ECHO])
    result = _run(spec, tmp_path)
    assert result.phase == "Error"
    assert "could not be parsed as a JSON list" in result.tasks["fan"].message


def test_when_is_evaluated_per_child_with_its_item(tmp_path: Path) -> None:
    # operator.go processItem substitutes {{item}} into the whole task, `when` included; dag.go
    # executeDAGTask then skips each child whose `when` is false; the group still succeeds.
    spec = manifest([{"name": "fan", "template": "echo", "withItems": ["a", "b"], "when": "'{{item}}' == 'b'",
                      "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}}], [ECHO])
    result = _run(spec, tmp_path)
    assert result.succeeded
    assert [c.status for c in result.tasks["fan"].children] == ["Skipped", "Succeeded"]


def test_parallel_runs_children_at_the_same_time(tmp_path: Path) -> None:
    # Each child waits (up to 60 s) for the other's marker: it passes only when both run at once.
    meet = ("import sys, time, pathlib; d = pathlib.Path(sys.argv[1]); (d / sys.argv[2]).write_text('x');"
            "t = time.time() + 60\nwhile len(list(d.iterdir())) < 2 and time.time() < t: time.sleep(0.05)\n"
            "sys.exit(0 if len(list(d.iterdir())) == 2 else 1)")
    (tmp_path / "meet").mkdir()
    rendezvous = container("meet", meet, [str(tmp_path / "meet"), "{{inputs.parameters.x}}"], inputs=[{"name": "x"}])
    spec = manifest([{"name": "fan", "template": "meet", "withItems": ["a", "b"],
                      "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}}], [rendezvous])
    assert _run(spec, tmp_path, parallel=2).succeeded


def test_template_parallelism_bounds_the_runner(tmp_path: Path) -> None:
    # The DAG template's `parallelism` caps its running children (operator.go checkParallelism),
    # whatever --parallel says: with 1, the second child starts after the first ended.
    order = "import sys, pathlib; p = pathlib.Path(sys.argv[1]); p.open('a').write(sys.argv[2] + ' ')"
    log = tmp_path / "order"
    step = container("step", order, [str(log), "{{inputs.parameters.x}}"], inputs=[{"name": "x"}])
    spec = manifest([{"name": "fan", "template": "step", "withItems": ["a", "b", "c"],
                      "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}}], [step])
    spec["spec"]["templates"][0]["parallelism"] = 1
    assert _run(spec, tmp_path, parallel=4).succeeded
    assert log.read_text() == "a b c "


def test_any_succeeded_and_all_failed_look_at_the_fan_outs_children(tmp_path: Path) -> None:
    # controller/dag.go evaluateDependsLogic: for a TaskGroup, AnySucceeded is true when one child
    # Succeeded; AllFailed when it has children and every one is Failed. Both are false for a task
    # that did not fan out. The group itself is Failed, so plain `depends: fan` omits its dependant.
    spec = manifest([
        {"name": "fan", "template": "echo", "withItems": ["a", "bad"],
         "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}},
        {"name": "all-bad", "template": "echo", "withItems": ["bad", "bad"],
         "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]}},
        {"name": "plain", "template": "ok"},
        {"name": "some", "template": "ok", "depends": "fan.AnySucceeded"},
        {"name": "none", "template": "ok", "depends": "all-bad.AnySucceeded"},
        {"name": "every", "template": "ok", "depends": "all-bad.AllFailed"},
        {"name": "not-every", "template": "ok", "depends": "fan.AllFailed"},
        {"name": "plain-any", "template": "ok", "depends": "plain.AnySucceeded"},
    ], [ECHO, OK])
    result = _run(spec, tmp_path)
    status = {name: task.status for name, task in result.tasks.items()}
    assert status == {"fan": "Failed", "all-bad": "Failed", "plain": "Succeeded", "some": "Succeeded",
                      "none": "Omitted", "every": "Succeeded", "not-every": "Omitted", "plain-any": "Omitted"}
    # assessDAGPhase: the failed fan-outs are not targets here (tasks depend on them), and their
    # dependants that ran succeeded; the omitted ones inherit their branch's Failed phase.
    assert result.phase == "Failed"
