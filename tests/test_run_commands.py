"""`trainyard runs|get|logs|stop|retry` on local runs, as a user types them, and on a cluster run
through a stand-in Argo server shaped like Argo's API (pkg/apiclient/http1, api/openapi-spec)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

from tests.test_e2e import TINY
from workflows.cli import main

# Hera 7.1 serialises stop and retry requests with pydantic's deprecated `.json()`; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The `json` method is deprecated:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]


def trainyard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workflows.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _wait_for(condition: Any, what: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _status(run: Path) -> dict:
    try:
        return json.loads((run / "status.json").read_text())
    except (OSError, ValueError):
        return {}


@pytest.mark.e2e
@pytest.mark.integration
def test_a_local_run_is_seen_while_it_runs_stopped_and_retried_from_the_failed_step(sample_repo: Path,
                                                                                   tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    # Long enough to be seen running and stopped; the retry shortens it (argo retry -p).
    config.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "iterations": 500, "checkpoint_period": 250}},
                                     sort_keys=False))
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "workflows.cli", "run", "--local", "--config", str(config), "--output", str(runs),
               "--dataset-repo", str(sample_repo)]
    runner = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        _wait_for(lambda: any(_status(r).get("tasks", {}).get("record") for r in runs.glob("local-*")), "record to finish")
        (run,) = runs.glob("local-*")
        _wait_for(lambda: (run / "train" / "log.txt").is_file(), "train to start")

        # While it runs: `runs` lists it as Running, `get` shows record done and train running.
        listed = trainyard("runs", "--runs-dir", str(runs), cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert f"{run.name}" in listed.stdout and "Running" in listed.stdout
        shown = trainyard("get", run.name, "--runs-dir", str(runs), cwd=tmp_path)
        assert "Status:    Running" in shown.stdout, shown.stdout
        assert any(line.split()[1:3] == ["record", "Succeeded"] for line in shown.stdout.splitlines() if "record" in line)
        assert any(line.split()[1:3] == ["train", "Running"] for line in shown.stdout.splitlines() if "train" in line)
        # prune never removes a running run, even with --keep 0
        pruned = trainyard("prune", "--runs-dir", str(runs), "--keep", "0", "--yes", cwd=tmp_path)
        assert f"keeping {run}: still running" in pruned.stdout and run.is_dir()

        # `stop`: like argo stop, the step gets SIGTERM and the exit handler records the run as Failed.
        stopped = trainyard("stop", run.name, "--runs-dir", str(runs), cwd=tmp_path)
        assert stopped.returncode == 0 and "stopping" in stopped.stdout, stopped.stderr
        out, _ = runner.communicate(timeout=300)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 1, out
    assert _status(run)["phase"] == "Failed"
    assert trainyard("stop", run.name, "--runs-dir", str(runs), cwd=tmp_path).stderr.startswith("error: ")
    listed = trainyard("runs", "--runs-dir", str(runs), cwd=tmp_path).stdout
    assert any(line.startswith(run.name) and " Failed " in line for line in listed.splitlines()), listed

    # `logs RUN STEP`: that step's lines, as `<step>: <line>`; an unknown step is one line naming the known ones.
    logs = trainyard("logs", run.name, "record", "--runs-dir", str(runs), cwd=tmp_path)
    assert logs.returncode == 0 and logs.stdout.startswith("record: $ ") and "train:" not in logs.stdout
    bad = trainyard("logs", run.name, "trian", "--runs-dir", str(runs), cwd=tmp_path)
    assert bad.returncode != 0 and "steps with logs: record, train" in bad.stderr and "Traceback" not in bad.stderr

    # `retry`: record is kept as it was (argo retry keeps succeeded nodes), train and the rest run again.
    record_log = (run / "record" / "log.txt").read_text()
    overrides = json.loads((run / "run.json").read_text())["parameters"]["overrides"]
    retried = trainyard("retry", run.name, "--runs-dir", str(runs), "-p",
                        f"overrides={overrides} train.iterations=2 train.checkpoint_period=1", cwd=tmp_path)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "keeping the succeeded tasks (record)" in retried.stdout
    assert (run / "record" / "log.txt").read_text() == record_log
    status = _status(run)
    assert status["phase"] == "Succeeded" and status["tasks"]["test"]["status"] == "Succeeded"
    listed = trainyard("runs", "--runs-dir", str(runs), cwd=tmp_path).stdout
    assert [line.split()[1] for line in listed.splitlines() if line.startswith(run.name)] == ["Succeeded"]
    assert trainyard("retry", run.name, "--runs-dir", str(runs), cwd=tmp_path).stderr.startswith(
        f"error: {run.name} succeeded: nothing to retry")
    # the whole run's logs, step by step in the order they ran, the exit handler last
    every = trainyard("logs", "@latest", "--runs-dir", str(runs), cwd=tmp_path).stdout.splitlines()
    steps = list(dict.fromkeys(line.split(":", 1)[0].split("(", 1)[0] for line in every))
    assert steps == ["record", "train", "evaluate", "select", "test", "notify"]


# -- a cluster run, through the Argo server ------------------------------------------------------

NAMESPACE, TOKEN, RUN = "ml", "t0ken", "trainyard-pipeline-abcde"


def _argo_workflow(phase: str) -> dict[str, Any]:
    nodes = {
        RUN: {"id": RUN, "name": RUN, "displayName": RUN, "type": "DAG", "phase": phase, "templateName": "main"},
        f"{RUN}-1": {"id": f"{RUN}-1", "name": f"{RUN}.record", "displayName": "record", "type": "Pod",
                     "templateName": "record", "phase": "Succeeded", "startedAt": "2026-01-01T10:00:00Z",
                     "finishedAt": "2026-01-01T10:01:00Z"},
        f"{RUN}-2": {"id": f"{RUN}-2", "name": f"{RUN}.train", "displayName": "train", "type": "Pod",
                     "templateName": "train", "phase": "Failed", "startedAt": "2026-01-01T10:01:00Z",
                     "finishedAt": "2026-01-01T10:09:00Z", "message": "main: Error (exit code 1)"},
    }
    return {"metadata": {"name": RUN, "namespace": NAMESPACE}, "spec": {"workflowTemplateRef": {"name": "trainyard-pipeline"}},
            "status": {"phase": phase, "startedAt": "2026-01-01T10:00:00Z", "nodes": nodes}}


@pytest.fixture
def argo_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Argo's server as its HTTP API answers (openapi-spec: WorkflowService_GetWorkflow, StopWorkflow,
    RetryWorkflow, WorkflowLogs as Server-Sent Events)."""
    seen: dict[str, Any] = {"requests": [], "problems": []}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path, _, query = self.path.partition("?")
            seen["requests"].append((self.command, path, query, json.loads(body) if body else None))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                seen["problems"].append(f"{self.command} {path}: no bearer token")
            base = f"/api/v1/workflows/{NAMESPACE}/{RUN}"
            if self.command == "GET" and path == f"/api/v1/workflows/{NAMESPACE}" and "pages" in seen:
                page = parse_qs(query).get("listOptions.continue", [""])[0]
                return self._json(200, seen["pages"][page])
            if self.command == "GET" and path == base:
                return self._json(200, _argo_workflow("Failed"))
            if self.command == "PUT" and path in (f"{base}/stop", f"{base}/retry"):
                if json.loads(body) != {"name": RUN, "namespace": NAMESPACE}:
                    seen["problems"].append(f"{path}: body {body!r}")
                return self._json(200, _argo_workflow("Running"))
            if self.command == "GET" and path == f"{base}/log":
                if self.headers.get("Accept") != "text/event-stream":
                    seen["problems"].append("log: not asked as text/event-stream")
                events = "".join(f'data: {json.dumps({"result": {"content": line, "podName": "pod-a"}})}\n\n'
                                 for line in ("train: step 1", "train: step 2"))
                data = events.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return None
            seen["problems"].append(f"unexpected {self.command} {self.path}")
            return self._json(404, {"code": 5, "message": f"workflows.argoproj.io \"{path.rsplit('/', 1)[-1]}\" not found"})

        def _json(self, code: int, answer: Any) -> None:
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    for name in ("ARGO_SERVER", "ARGO_NAMESPACE", "ARGO_SECURE", "ARGO_INSECURE_SKIP_VERIFY", "ARGO_BASE_HREF"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARGO_SERVER", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("ARGO_TOKEN", TOKEN)
    monkeypatch.setenv("ARGO_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    yield seen
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_cluster_runs_are_got_stopped_retried_and_their_logs_read_through_the_argo_api(
        argo_api: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = ["--runs-dir", str(tmp_path)]  # no local run of that name: the name is the cluster's
    assert main(["get", RUN, *runs]) == 0
    out = capsys.readouterr().out
    assert "Status:    Failed" in out
    assert any(line.split()[1:3] == ["train", "Failed"] and "exit code 1" in line for line in out.splitlines())

    assert main(["stop", RUN, *runs]) == 0 and main(["retry", RUN, *runs]) == 0
    assert [(m, p) for m, p, _, _ in argo_api["requests"][1:]] == [
        ("PUT", f"/api/v1/workflows/{NAMESPACE}/{RUN}/stop"), ("PUT", f"/api/v1/workflows/{NAMESPACE}/{RUN}/retry")]
    capsys.readouterr()

    # `logs RUN train`: the train step's pod, found by its node (util/pod_name.go v2 names), main container
    assert main(["logs", RUN, "train", *runs]) == 0
    assert capsys.readouterr().out.splitlines() == ["pod-a: train: step 1", "pod-a: train: step 2"]
    method, path, query, _ = argo_api["requests"][-1]
    from workflows.local.nodes import pod_name

    assert (method, path) == ("GET", f"/api/v1/workflows/{NAMESPACE}/{RUN}/log")
    assert f"podName={pod_name(RUN, f'{RUN}.train', 'train')}" in query and "logOptions.container=main" in query
    assert argo_api["problems"] == []

    # an unknown workflow: one line, the server's message, no traceback
    assert main(["get", "nope", *runs]) != 0
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not found" in err and "Traceback" not in err


def _listed(name: str, phase: str, created: str, finished: str | None = None, template: str = "trainyard-pipeline") -> dict:
    status = {"phase": phase, "startedAt": created, **({"finishedAt": finished} if finished else {})}
    return {"metadata": {"name": name, "creationTimestamp": created,
                         "labels": {"workflows.argoproj.io/workflow-template": template}},
            "spec": {"workflowTemplateRef": {"name": template}}, "status": status}


def test_cluster_runs_are_listed_as_argo_list_shows_them(argo_api: dict[str, Any], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # Two pages, joined by the server's continue token (cmd/argo/commands/list.go listWorkflows).
    argo_api["pages"] = {
        "": {"metadata": {"continue": "page-2"}, "items": [
            _listed("trainyard-pipeline-old", "Succeeded", "2026-01-01T02:00:00Z", "2026-01-01T03:30:00Z"),
            _listed("trainyard-sweep-run", "Running", "2026-01-02T09:00:00Z", template="trainyard-sweep")]},
        "page-2": {"metadata": {}, "items": [
            _listed("trainyard-pipeline-new", "Failed", "2026-01-02T02:00:00Z", "2026-01-02T02:10:00Z"),
            _listed("trainyard-pipeline-nightly", "Succeeded", "2026-01-03T02:00:00Z", "2026-01-03T02:30:00Z")]},
    }
    # The exit handler's rows in the run database: the model and the promotion of a finished run.
    from steps.db import Database
    from steps.notify.outcome import RunOutcome, record_outcome

    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    database = Database(url)
    database.migrate()
    record_outcome(database, RunOutcome(run_id="trainyard-pipeline-old", status="Succeeded",
                                        started_at="2026-01-01T02:00:00+00:00", finished_at="2026-01-01T03:30:00+00:00",
                                        dataset_version="datasets/v3", model_id="model-old", promoted=True,
                                        duration_seconds=5400))
    monkeypatch.setenv("TRAINYARD_DATABASE_URL", url)

    assert main(["runs", "--runs-dir", str(tmp_path / "none")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("runs of trainyard-pipeline, trainyard-sweep on ") and "namespace ml" in lines[0]
    table = [line.split() for line in lines[2:]]
    # argo list's order (workflow_types.go Workflows.Less): running first, then the last finished first
    assert [row[0] for row in table] == ["trainyard-sweep-run", "trainyard-pipeline-nightly", "trainyard-pipeline-new",
                                         "trainyard-pipeline-old"]
    assert table[0][1] == "Running" and table[2][1] == "Failed"
    old = lines[2 + 3]
    assert "datasets/v3" in old and "90.0" in old and old.endswith("model-old (promoted)")
    assert "Skipped" not in lines[2 + 1], "a run the database does not know is not shown as skipped"

    listed = [(p, parse_qs(q)) for m, p, q, _ in argo_api["requests"] if p == f"/api/v1/workflows/{NAMESPACE}"]
    assert len(listed) == 2 and listed[1][1]["listOptions.continue"] == ["page-2"]
    query = listed[0][1]
    # the controller labels each workflow with its template (operator.go setWfTemplateLabel)
    assert query["listOptions.labelSelector"] == ["workflows.argoproj.io/workflow-template in "
                                                  "(trainyard-pipeline,trainyard-sweep)"]
    fields = query["fields"][0].split(",")
    assert "items.status.nodes" not in fields and "items.status" not in fields and "items.metadata" in fields
    assert argo_api["problems"] == []


def test_a_server_that_never_stops_listing_is_read_to_a_bound(argo_api: dict[str, Any], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from workflows import argo_runs

    monkeypatch.setattr(argo_runs, "MAX_PAGES", 3)
    monkeypatch.delenv("TRAINYARD_DATABASE_URL", raising=False)

    class Endless(dict):
        def __missing__(self, key: str) -> dict:  # every page points at one more
            return {"metadata": {"continue": key + "x"}, "items": [
                _listed(f"trainyard-pipeline-{len(key)}", "Succeeded", "2026-01-01T02:00:00Z", "2026-01-01T02:05:00Z")]}

    argo_api["pages"] = Endless()
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "more than 3 workflows" in out and out.count("trainyard-pipeline-") == 3
    assert sum(p == f"/api/v1/workflows/{NAMESPACE}" for _, p, _, _ in argo_api["requests"]) == 3


def test_runs_lists_the_local_runs_when_asked_even_with_an_argo_server_set(argo_api: dict[str, Any], tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--local", "--runs-dir", str(tmp_path)]) != 0
    assert "no local database" in capsys.readouterr().err
    assert argo_api["requests"] == []


@pytest.mark.parametrize("name", ["trainyard-pipeline) or (x", "a,b", "", "x-", "UPPER"])
def test_a_template_name_that_is_not_a_name_never_reaches_the_label_selector(
        argo_api: dict[str, Any], tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--template", name, "--runs-dir", str(tmp_path)]) == 2
    assert "not a WorkflowTemplate name" in capsys.readouterr().err
    assert argo_api["requests"] == []
