"""`memoize` in `trainyard run --local`, against Argo v4.1.2 (workflow/controller/operator.go
executeTemplate, controller/cache/cache.go and configmap_cache.go)."""

from __future__ import annotations

from pathlib import Path

from tests.test_local_argo_semantics import WRITE, container, manifest
from workflows.local import LocalRunner

# Appends a line to argv[1] (how often it ran) and writes argv[3] to the output file argv[2].
COUNT = ("import sys, pathlib; c = pathlib.Path(sys.argv[1]); c.open('a').write('ran\\n');"
         "o = pathlib.Path(sys.argv[2]); o.parent.mkdir(parents=True, exist_ok=True); o.write_text(sys.argv[3])")


def _spec(tmp_path: Path, key: str, max_age: str = "") -> dict:
    memo = {"key": key, "cache": {"configMap": {"name": "cache"}}, **({"maxAge": max_age} if max_age else {})}
    produce = container("produce", COUNT, [str(tmp_path / "runs" / "count"), "/out/v", "{{inputs.parameters.x}}"],
                        inputs=[{"name": "x"}], outputs=[{"name": "v", "valueFrom": {"path": "/out/v"}}], memoize=memo)
    got = container("got", WRITE, [str(tmp_path / "runs" / "got"), "{{inputs.parameters.v}}"], inputs=[{"name": "v"}])
    return manifest([
        {"name": "produce", "template": "produce", "arguments": {"parameters": [{"name": "x", "value": "{{workflow.parameters.x}}"}]}},
        {"name": "got", "template": "got", "depends": "produce",
         "arguments": {"parameters": [{"name": "v", "value": "{{tasks.produce.outputs.parameters.v}}"}]}},
    ], [produce, got], parameters=[{"name": "x", "value": "a"}])


def _run(spec: dict, tmp_path: Path, run: str, **params: str):
    return LocalRunner(spec, tmp_path / "runs" / run, params, echo=lambda _: None).run()


def _ran(tmp_path: Path) -> int:
    return len((tmp_path / "runs" / "count").read_text().splitlines())


def test_a_hit_gives_the_cached_outputs_without_running(tmp_path: Path) -> None:
    # operator.go executeTemplate: a hit initializes a Succeeded node with the entry's outputs and
    # no pod; a miss runs and, once Succeeded, saves its outputs (operator.go podReconciliation).
    spec = _spec(tmp_path, "k-{{inputs.parameters.x}}")
    assert _run(spec, tmp_path, "r1").succeeded and _ran(tmp_path) == 1
    second = _run(spec, tmp_path, "r2")
    assert second.succeeded and _ran(tmp_path) == 1
    assert second.tasks["produce"].parameters == {"v": "a"} and (tmp_path / "runs" / "got").read_text() == "a"
    # Another key is a miss.
    assert _run(spec, tmp_path, "r3", x="b").succeeded and _ran(tmp_path) == 2


def test_an_expression_key_like_the_sweeps_record_key(tmp_path: Path) -> None:
    from workflows.sweep import RECORD_KEY

    key = RECORD_KEY.replace("dataset-repo", "x").replace("annotation-version", "x")
    spec = _spec(tmp_path, key)
    assert _run(spec, tmp_path, "r1").succeeded and _run(spec, tmp_path, "r2").succeeded
    assert _ran(tmp_path) == 1


def test_an_invalid_key_errors_the_node(tmp_path: Path) -> None:
    # controller/cache/cache.go cacheKeyRegex ^[a-zA-Z0-9][-a-zA-Z0-9]*$; configmap_cache.go load:
    # "invalid cache key: KEY".
    result = _run(_spec(tmp_path, "repo/{{inputs.parameters.x}}"), tmp_path, "r1")
    assert result.phase == "Error"
    assert result.tasks["produce"].message == "invalid cache key: repo/a"


def test_an_entry_older_than_max_age_is_a_miss(tmp_path: Path) -> None:
    # cache.go GetOutputsWithMaxAge: time.Since(creationTimestamp) > maxAge: expired, not a hit.
    spec = _spec(tmp_path, "k", max_age="0s")
    assert _run(spec, tmp_path, "r1").succeeded and _run(spec, tmp_path, "r2").succeeded
    assert _ran(tmp_path) == 2


def test_a_failed_node_is_not_cached(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "k")
    spec["spec"]["templates"][1]["container"]["args"][1] = str(tmp_path / "elsewhere")  # no output file: Error
    assert _run(spec, tmp_path, "r1").phase == "Error"
    assert not (tmp_path / "runs" / "memoize" / "cache.json").exists()
