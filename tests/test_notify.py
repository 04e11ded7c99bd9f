"""The exit handler (`python -m steps.notify`): the run's outcome in `pipeline_runs`, and the
summary posted to a webhook, here a local HTTP server."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from steps.db import Database
from steps.notify.__main__ import main
from steps.notify.outcome import parse_failures
from workflows.pipeline import EXIT_HANDLER, build_pipeline
from workflows.local.templating import substitute

RUN = "trainyard-pipeline-abc12"
FAILURES = json.dumps([{"displayName": "train(0)", "message": "OOMKilled (exit code 137)", "templateName": "train",
                        "phase": "Failed", "podName": f"{RUN}-train-1", "finishedAt": "2024-05-01T03:00:00Z"}])


@dataclass
class Webhook:
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
            self.send_response(hook.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/secret-path"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.delenv("TRAINYARD_WEBHOOK_URL", raising=False)
    yield hook
    server.shutdown()
    server.server_close()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'meta.sqlite'}"
    monkeypatch.setenv("TRAINYARD_DATABASE_URL", url)
    return url


def _seed_evaluation(url: str, promoted: bool) -> None:
    """The rows the evaluate step leaves for a run (steps/evaluate/store.py)."""
    db = Database(url)
    db.migrate()
    metrics = {"segm/AP": 0.4123, "bbox/AP": 0.5, "EIR": 0.75, "dv_mAP": 0.3}
    with db.transaction() as tx:
        tx.execute("INSERT INTO models (model_id, run_id, dataset_version, uri, metrics, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                   ("m-20240501", RUN, "datasets/v3", "gs://models/registry/models/m-20240501", json.dumps(metrics), "t"))
        tx.execute("INSERT INTO promotions (model_id, promoted, metric, challenger_score, champion_score, champion_model_id, "
                   "reason, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   ("m-20240501", int(promoted), "segm/AP", 0.4123, 0.4, "m-old", "beats production by 0.0123", "t"))


def _runs(url: str) -> list[dict[str, Any]]:
    with Database(url).transaction() as tx:
        rows = tx.query("SELECT run_id, dataset_version, status, started_at, finished_at, model_id, promoted, "
                        "duration_seconds, failures FROM pipeline_runs")
    keys = ["run_id", "dataset_version", "status", "started_at", "finished_at", "model_id", "promoted", "duration_seconds", "failures"]
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _notify(*args: str, status: str = "Succeeded", failures: str = "null") -> int:
    return main(["--run-id", RUN, "--namespace", "ml", "--status", status, "--failures", failures,
                 "--started-at", "2024-05-01T02:00:00Z", "--duration", "3725.5", *args])


def test_failures_from_argo_are_parsed_whatever_their_shape() -> None:
    assert parse_failures("null") == [] and parse_failures("") == [] and parse_failures("{{workflow.failures}}") == []
    assert parse_failures(FAILURES)[0]["displayName"] == "train(0)"
    assert parse_failures("pod deleted") == [{"message": "pod deleted"}]


def test_a_successful_run_is_recorded_and_summarised(database: str, webhook: Webhook, capsys: pytest.CaptureFixture[str]) -> None:
    _seed_evaluation(database, promoted=True)
    assert _notify("--webhook-url", webhook.url, "--ui-base-url", "https://argo.example.com/") == 0
    assert _runs(database) == [{
        "run_id": RUN, "dataset_version": "datasets/v3", "status": "Succeeded", "started_at": "2024-05-01T02:00:00Z",
        "finished_at": "2024-05-01T03:02:05+00:00", "model_id": "m-20240501", "promoted": 1,
        "duration_seconds": 3725.5, "failures": None,
    }]
    [post] = webhook.received
    assert post["path"] == "/hooks/T000/secret-path" and post["type"] == "application/json"
    text = post["body"]["text"]
    assert text.splitlines()[0] == f"✅ trainyard run {RUN}: Succeeded in 1h02m"
    assert "dataset: datasets/v3" in text and "segm/AP 0.412" in text and "EIR 0.750" in text
    assert "promoted to production: beats production by 0.0123" in text
    assert text.splitlines()[-1] == f"https://argo.example.com/workflows/ml/{RUN}"
    assert post["body"]["run"]["model_uri"] == "gs://models/registry/models/m-20240501"
    assert "summary posted (HTTP 200)" in capsys.readouterr().out


def test_a_retried_exit_handler_updates_the_same_row(database: str, webhook: Webhook) -> None:
    assert _notify(status="Running") == 0
    assert _notify(status="Failed", failures=FAILURES) == 0
    [row] = _runs(database)
    assert row["status"] == "Failed" and json.loads(row["failures"])[0]["message"] == "OOMKilled (exit code 137)"
    assert webhook.received == []  # no URL, no post


def test_a_failed_run_is_recorded_even_when_the_webhook_fails(database: str, webhook: Webhook,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    webhook.status = 500
    assert _notify("--webhook-url", webhook.url, status="Failed", failures=FAILURES) == 0
    [row] = _runs(database)
    assert (row["status"], row["model_id"], row["promoted"], row["dataset_version"]) == ("Failed", None, None, None)
    text = webhook.received[0]["body"]["text"]
    assert text.startswith(f"❌ trainyard run {RUN}: Failed") and "failed: train(0): OOMKilled (exit code 137)" in text
    err = capsys.readouterr().err
    assert "warning: webhook at 127.0.0.1" in err and "500" in err and "secret-path" not in err


def test_the_webhook_secret_is_used_unless_a_run_names_another(database: str, webhook: Webhook,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINYARD_WEBHOOK_URL", webhook.url + "/from-secret")
    assert _notify() == 0
    assert _notify("--webhook-url", webhook.url + "/from-parameter") == 0
    assert [p["path"] for p in webhook.received] == ["/hooks/T000/secret-path/from-secret", "/hooks/T000/secret-path/from-parameter"]


def test_an_unreachable_webhook_is_a_warning(database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert _notify("--webhook-url", f"http://127.0.0.1:{port}/hook") == 0
    assert f"webhook at 127.0.0.1:{port} unreachable" in capsys.readouterr().err
    assert _runs(database)[0]["status"] == "Succeeded"


def test_the_exit_handler_template_command_line_runs(database: str, webhook: Webhook) -> None:
    """The exit handler's args, with Argo's variables filled in as Argo would, parse and run."""
    template = next(t for t in build_pipeline().to_dict()["spec"]["templates"] if t["name"] == EXIT_HANDLER)
    values = {"workflow.name": RUN, "workflow.namespace": "ml", "workflow.status": "Error", "workflow.failures": FAILURES,
              "workflow.creationTimestamp": "2024-05-01T02:00:00Z", "workflow.duration": "61",
              "workflow.parameters.webhook-url": webhook.url, "workflow.parameters.config": "",
              "workflow.parameters.overrides": ""}
    container = template["container"]
    assert container["command"] == ["python", "-m", "steps.notify"]
    args = [substitute(a, values, "notify") for a in container["args"]]
    assert main(args) == 0
    assert _runs(database)[0]["status"] == "Error" and len(webhook.received) == 1
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["TRAINYARD_WEBHOOK_URL"]["optional"] is True and "optional" not in env["TRAINYARD_DATABASE_URL"]


def test_notify_has_help() -> None:
    done = subprocess.run([sys.executable, "-m", "steps.notify", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "python -m steps.notify" in done.stdout and "--webhook-url" in done.stdout


@pytest.mark.integration
def test_outcomes_on_postgresql(fresh_postgres: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINYARD_DATABASE_URL", fresh_postgres)
    _seed_evaluation(fresh_postgres, promoted=False)
    assert _notify() == 0 and _notify(status="Failed", failures=FAILURES) == 0
    [row] = _runs(fresh_postgres)
    assert (row["status"], row["model_id"], row["promoted"], row["duration_seconds"]) == ("Failed", "m-20240501", 0, 3725.5)
