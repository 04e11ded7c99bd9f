"""Partial results: one evaluate pod or sweep branch failing does not throw the others away.

Argo v4.1.2 (workflow/controller/dag.go `evaluateDependsLogic`): `depends: evaluate` is true only
when the whole TaskGroup Succeeded (or was Skipped: workflow/common/ancestry.go
`expandDependency`), and a group with one failed child is Failed; `evaluate.AnySucceeded` is true
when one child Succeeded. A fanned-out task's outputs aggregate its Succeeded children only
(controller/operator.go `processAggregateNodeOutputs`). The DAG's phase follows its last tasks
(dag.go `assessDAGPhase`): a run whose select and test succeed is Succeeded, its failed pods in
`{{workflow.failures}}`.

The rendered templates run here with the local runner (which implements the same depends logic),
their containers swapped for stand-ins that keep each step's file contract; select's own
partial-result handling runs for real below with stand-in models.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from steps.db import Database
from steps.evaluate import evaluate as evaluate_module
from tests.test_evaluate import StandInBackend, dataset, write_model
from workflows.local import LocalRunner
from workflows.pipeline import DATABASE_SECRET, build_pipeline
from workflows.sweep import build_sweep

REPO = Path(__file__).resolve().parents[1]
# Each step's file contract, nothing more; evaluate fails for a checkpoint or branch in STANDIN_FAIL.
STANDIN = r'''
import json, os, pathlib, sys
step, args = sys.argv[1], sys.argv[2:]
def opt(name):
    return args[args.index(name) + 1] if name in args else None
def write(path, text):
    path = pathlib.Path(path); path.parent.mkdir(parents=True, exist_ok=True); path.write_text(text)
fail = set(os.environ.get("STANDIN_FAIL", "").split(",")) - {""}
names = [f"model_{i:07d}.pth" for i in (1, 2, 3)]
if step == "record":
    write(opt("--output-version"), "datasets/v1"); write(opt("--output-needs-training"), "true")
elif step == "train":
    if opt("--branch") in fail:
        sys.exit(1)
    out = pathlib.Path(opt("--output"))
    for name in names:
        write(out / "checkpoints" / name, "weights")
    if opt("--output-checkpoint-groups"):
        from steps.evaluate.groups import write_groups
        write_groups(out, 1, pathlib.Path(opt("--output-checkpoint-groups")))
    if opt("--output-branch"):
        write(opt("--output-branch"), json.dumps({"branch": opt("--branch"), "overrides": opt("--branch-overrides"),
                                                  "checkpoints": ",".join(names), "source": "/durable/" + opt("--branch")}))
elif step == "evaluate":
    only = names if opt("--only") == "all" else opt("--only").split(",")
    branch = opt("--branch") or ""
    if fail & {branch, *only}:
        sys.exit(1)
    extra = {"branch": branch, "overrides": opt("--branch-overrides"), "source": opt("--checkpoint-uri")} if branch else {}
    rows = [{"checkpoint": n, "iteration": int(n[6:13]), "metrics": {"segm/AP": int(n[6:13]) / 10}, **extra} for n in only]
    write(opt("--output-scores"), json.dumps(rows))
    pathlib.Path(opt("--output")).mkdir(parents=True, exist_ok=True)
elif step == "select":
    from steps.select.scores import parse_upstream, partial, read_scores
    rows = read_scores(pathlib.Path(opt("--scores")))
    folder = opt("--checkpoints")
    expected = sorted(p.name for p in pathlib.Path(folder).rglob("model_*.pth")) if folder else None
    missing = partial(rows, expected, parse_upstream(opt("--upstream")))
    write(pathlib.Path(opt("--output")) / "evaluation.json", json.dumps(
        {"checkpoints": [r["checkpoint"] for r in rows], "partial": missing.as_dict() if missing else None}))
    write(opt("--output-promoted"), "false" if missing else "true"); write(opt("--output-model-uri"), "/registry/m1")
elif step == "test":
    pathlib.Path(opt("--output")).mkdir(parents=True, exist_ok=True)
    write(opt("--test-page"), "<html>"); write(opt("--evaluation-page"), "<html>")
elif step == "notify":
    from steps.notify.__main__ import main
    sys.exit(main(args))
'''


def _stand_ins(manifest: dict, script: Path) -> dict:
    for template in manifest["spec"]["templates"]:
        if "container" in template:
            template["container"]["command"] = ["python", str(script), template["name"]]
    return manifest


def _run(manifest: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str, artifacts=None, **parameters: str):
    script = tmp_path / "standin.py"
    script.write_text(STANDIN)
    monkeypatch.setenv("STANDIN_FAIL", fail)
    database = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    lines: list[str] = []
    runner = LocalRunner(_stand_ins(manifest, script), tmp_path / "run-1", parameters, secrets={DATABASE_SECRET: database},
                         echo=lines.append, cwd=REPO, artifacts=artifacts)
    return runner.run(), tmp_path / "meta.sqlite", lines


def _evaluation(result) -> dict:
    return json.loads((result.tasks["select"].artifacts["evaluation"] / "evaluation.json").read_text())


def test_a_failed_evaluate_pod_leaves_a_partial_selection_that_says_what_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, database, lines = _run(build_pipeline().to_dict(), tmp_path, monkeypatch, fail="model_0000002.pth")
    group = result.tasks["evaluate"]
    assert group.status == "Failed" and [c.status for c in group.children] == ["Succeeded", "Failed", "Succeeded"]
    # select ran on the two that succeeded (AnySucceeded), and so did test; the run is Succeeded.
    assert (result.tasks["select"].status, result.tasks["test"].status, result.phase) == ("Succeeded",) * 3
    evaluation = _evaluation(result)
    assert evaluation["checkpoints"] == ["model_0000001.pth", "model_0000003.pth"]
    assert evaluation["partial"]["missing"] == ["model_0000002.pth"]
    assert evaluation["partial"]["failed"] == {"evaluate": "Failed"}
    assert result.tasks["select"].parameters["promoted"] == "false"
    # The exit handler got the failed pod in {{workflow.failures}}: a partial success, said so.
    [(status, failures)] = sqlite3.connect(database).execute("SELECT status, failures FROM pipeline_runs").fetchall()
    assert status == "Succeeded" and "evaluate(1:checkpoints:model_0000002.pth" in failures
    notify_log = (tmp_path / "run-1" / "notify" / "log.txt").read_text()
    assert "Succeeded (partial)" in notify_log and "never promoted automatically" in notify_log


def test_the_same_template_runs_with_its_objects_in_a_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              gcs_emulator) -> None:
    # `trainyard run --local --artifacts gs://...`: the scores objects at the keys the cluster uses,
    # select's input read back from the bucket (the GCS emulator), one pod still failing.
    import uuid

    from google.cloud import storage as gcs

    from workflows.local.artifacts import BucketArtifacts, chart_key_format

    bucket = f"artifacts-{uuid.uuid4().hex[:8]}"
    gcs_emulator.make_bucket(bucket)
    store = BucketArtifacts(f"gs://{bucket}", chart_key_format())
    result, _, _ = _run(build_pipeline().to_dict(), tmp_path, monkeypatch, fail="model_0000002.pth", artifacts=store)
    names = {b.name for b in gcs.Client.create_anonymous_client().list_blobs(bucket) if "/scores/" in b.name}
    assert names == {f"trainyard/run-1/scores/model_000000{i}/scores.json" for i in (1, 3)}
    assert _evaluation(result)["partial"]["missing"] == ["model_0000002.pth"]
    assert not (tmp_path / "run-1" / "objects").exists()


def test_when_every_evaluate_pod_fails_nothing_is_selected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fail = "model_0000001.pth,model_0000002.pth,model_0000003.pth"
    result, _, _ = _run(build_pipeline().to_dict(), tmp_path, monkeypatch, fail=fail)
    assert (result.tasks["select"].status, result.tasks["test"].status) == ("Omitted", "Omitted")
    assert result.phase == "Failed"


def test_a_complete_evaluation_is_not_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, _, _ = _run(build_pipeline().to_dict(), tmp_path, monkeypatch, fail="")
    assert result.phase == "Succeeded" and _evaluation(result)["partial"] is None
    assert result.tasks["select"].parameters["promoted"] == "true"


def test_a_failed_sweep_branch_leaves_a_partial_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    branches = json.dumps([{"branch": f"b{i}", "overrides": f"train.lr=0.0{i + 1}"} for i in range(3)])
    result, database, _ = _run(build_sweep().to_dict(), tmp_path, monkeypatch, fail="b1", sweep=branches)
    assert [c.status for c in result.tasks["train"].children] == ["Succeeded", "Failed", "Succeeded"]
    # Only the branches that trained are evaluated (Argo aggregates Succeeded children's outputs).
    assert [c.status for c in result.tasks["evaluate"].children] == ["Succeeded", "Succeeded"]
    evaluation = _evaluation(result)
    assert sorted({c.split("/")[0] for c in evaluation["checkpoints"]}) == ["b0", "b2"]
    assert evaluation["partial"]["failed"] == {"train": "Failed"}
    assert result.phase == "Succeeded" and result.tasks["select"].parameters["promoted"] == "false"
    assert "train(1:branch:b1" in sqlite3.connect(database).execute("SELECT failures FROM pipeline_runs").fetchone()[0]


# -- select itself: a partial result is registered and reported, never promoted ---------------------
@pytest.fixture
def select_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = dataset(tmp_path / "data", ["plate"])
    monkeypatch.setattr(evaluate_module, "get_backend", lambda name: StandInBackend(name, data / "val.json"))
    monkeypatch.setenv("TRAINYARD_DATABASE_URL", f"sqlite:///{tmp_path / 'meta.sqlite'}")
    train = tmp_path / "train"
    for name in ("model_0000001.pth", "model_0000002.pth", "model_0000003.pth"):
        write_model(train / "checkpoints" / name, ["plate"])
    return tmp_path, data, train


def _select(tmp_path: Path, data: Path, train: Path, scored: list[str], upstream: str) -> dict:
    from steps.select.__main__ import main

    scores = tmp_path / "scores"
    for name in scored:  # as the evaluate pods wrote them: one object per group
        (scores / Path(name).stem).mkdir(parents=True)
        # 1.0: what select recomputes for these stand-ins (it refuses a claim far from its own)
        rows = [{"checkpoint": name, "iteration": int(name[6:13]), "metrics": {"segm/AP50": 1.0}}]
        (scores / Path(name).stem / "scores.json").write_text(json.dumps(rows))
    out = tmp_path / "evaluation"
    assert main(["--scores", str(scores), "--upstream", upstream, "--checkpoints", str(train), "--dataset-dir", str(data),
                 "--output", str(out), "--run-id", "run-1", "--set", f"promotion.registry={tmp_path / 'registry'}",
                 "--set", "evaluate.select_key=segm/AP50", "--set", "promotion.bootstrap_samples=50"]) == 0
    return json.loads((out / "evaluation.json").read_text())


def test_select_registers_a_partial_result_and_does_not_promote_it(select_setup) -> None:
    tmp_path, data, train = select_setup
    evaluation = _select(tmp_path, data, train, ["model_0000001.pth", "model_0000003.pth"], "evaluate=Failed")
    assert evaluation["partial"] == {"missing": ["model_0000002.pth"], "failed": {"evaluate": "Failed"},
                                     "reason": "1 checkpoint(s) not scored: model_0000002.pth; evaluate Failed"}
    promotion = evaluation["promotion"]
    assert promotion["promoted"] is False and promotion["reason"].startswith("partial result (1 checkpoint(s) not scored")
    assert (tmp_path / "registry" / "models" / promotion["model_id"]).is_dir()  # registered all the same
    assert not (tmp_path / "registry" / "production.json").exists()
    page = (tmp_path / "evaluation" / "report.html").read_text()
    assert "Partial result:" in page and "model_0000002.pth" in page
    with Database(f"sqlite:///{tmp_path / 'meta.sqlite'}").transaction() as tx:
        assert tx.query("SELECT promoted FROM promotions") == [(0,)]


def test_select_promotes_a_complete_first_model(select_setup) -> None:
    # The same first model, every checkpoint scored: promoted (what the partial one is refused).
    tmp_path, data, train = select_setup
    evaluation = _select(tmp_path, data, train, ["model_0000001.pth", "model_0000002.pth", "model_0000003.pth"],
                         "evaluate=Succeeded")
    assert "partial" not in evaluation and evaluation["promotion"]["promoted"] is True


def test_select_reads_every_failed_upstream_as_partial(select_setup) -> None:
    tmp_path, data, train = select_setup
    scored = ["model_0000001.pth", "model_0000002.pth", "model_0000003.pth"]
    evaluation = _select(tmp_path, data, train, scored, "train=Failed evaluate=Succeeded")
    assert evaluation["partial"]["failed"] == {"train": "Failed"} and evaluation["promotion"]["promoted"] is False


def test_upstream_phases_are_checked() -> None:
    from steps.errors import InputError
    from steps.select.scores import parse_upstream

    assert parse_upstream("train=Failed evaluate=Succeeded") == {"train": "Failed", "evaluate": "Succeeded"}
    with pytest.raises(InputError, match="TASK=PHASE"):
        parse_upstream("evaluate=$(rm -rf /)")




def test_select_rescores_what_the_pods_stored_and_predicts_again_only_when_it_cannot(
        select_setup, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each evaluate pod stores its checkpoints' predictions in its scores object; select scores the
    # best one's itself without running the model, unless the file is not the one the pod recorded.
    from steps.evaluate.__main__ import main as evaluate_main
    from steps.select.__main__ import main as select_main

    tmp_path, data, train = select_setup
    names = ["model_0000001.pth", "model_0000002.pth", "model_0000003.pth"]
    common = ["--dataset-dir", str(data), "--run-id", "run-1", "--set", f"promotion.registry={tmp_path / 'registry'}",
              "--set", "evaluate.select_key=segm/AP50", "--set", "promotion.bootstrap_samples=50"]
    scores = tmp_path / "scores"
    for name in names:
        group = scores / Path(name).stem
        assert evaluate_main(["--only", name, "--checkpoints", str(train), "--output", str(tmp_path / "pods" / name),
                              "--output-scores", str(group / "scores.json"), *common]) == 0
    (scores / "model_0000003" / "predictions" / f"model_0000003-{'0' * 16}.json.gz").write_bytes(b"left by a killed try")
    predicted = []
    real = evaluate_module.score_checkpoints
    monkeypatch.setattr(evaluate_module, "score_checkpoints", lambda *a, **k: predicted.append(a[3]) or real(*a, **k))

    def select(out: str) -> dict:
        assert select_main(["--scores", str(scores), "--upstream", "evaluate=Succeeded", "--checkpoints", str(train),
                            "--output", str(tmp_path / out), *common]) == 0
        return json.loads((tmp_path / out / "evaluation.json").read_text())

    stored = select("stored")
    assert predicted == [] and stored["best"] == "model_0000003.pth"
    kept = json.loads((scores / "model_0000003" / "scores.json").read_text())[0]["predictions"]
    (scores / "model_0000003" / kept["file"]).write_bytes(b"not what the pod recorded")
    again = select("again")
    assert [[path.name for _, path in checkpoints] for checkpoints in predicted] == [["model_0000003.pth"]]
    assert again["checkpoints"] == stored["checkpoints"] and "predictions" not in json.dumps(stored["checkpoints"])
