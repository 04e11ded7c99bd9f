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


def _node(display: str, message: str, template: str, phase: str = "Failed") -> dict[str, Any]:
    """One entry of Argo's failedNodeStatus (workflow/controller/operator.go), fields in its order."""
    return {"displayName": display, "message": message, "templateName": template, "phase": phase,
            "podName": f"{RUN}-{template}-1", "finishedAt": "2024-05-01T03:00:00Z"}


def go_json_marshal(value: Any) -> str:
    r"""encoding/json Marshal of plain data: compact; `"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f` escaped,
    other controls below 0x20 as `\u00XX`, `<` `>` `&` and U+2028/U+2029 as `\u....` (HTML-safe);
    DEL and everything else as it is (encode.go appendString)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def go_quote(text: str) -> str:
    r"""strconv.Quote (quote.go appendEscapedRune): `"` and `\\` escaped, printable runes as they are,
    the named escapes, `\xHH` below 0x20 and for DEL, `\uhhhh` / `\Uhhhhhhhh` for other unprintables."""
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif char in named:
            out.append(named[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def argo_failures(nodes: list[dict[str, Any]] | None) -> str:
    """`{{workflow.failures}}` exactly as Argo v4.1.2 hands it to a container: `operate` in
    workflow/controller/operator.go sets it to strconv.Quote(json.Marshal(failedNodes)) (a nil list
    marshals to `null`); util/template/simple_template.go `simpleReplaceStrict` escapes it for the
    JSON of the template and the container gets back that quoted string."""
    return go_quote(go_json_marshal(nodes))


CLEAN = argo_failures(None)
# Every Failed or Error node of a run whose train was OOM-killed (not retried by the expression):
# the DAG root, the retry node and its one attempt.
FAILURES = argo_failures([
    _node(RUN, f"child '{RUN}-1234' failed", "pipeline"),
    _node("train", "retryStrategy.expression evaluated to false", "train"),
    _node("train(0)", "main: OOMKilled (exit code 137)", "train"),
])
# A run that succeeded after train's first pod was preempted: only that attempt failed.
RETRIED = argo_failures([_node("train(0)", "Pod was terminated in response to imminent node shutdown.", "train")])


@dataclass
class Webhook:
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    redirect_to: str | None = None


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if hook.redirect_to:
                self.send_response(307)
                self.send_header("Location", hook.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
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


def _notify(*args: str, status: str = "Succeeded", failures: str = CLEAN) -> int:
    return main(["--run-id", RUN, "--namespace", "ml", "--status", status, "--failures", failures,
                 "--started-at", "2024-05-01T02:00:00Z", "--duration", "3725.5", *args])


def test_argo_failures_strings_are_decoded() -> None:
    assert CLEAN == '"null"' and len(CLEAN) == 6
    assert parse_failures(CLEAN) == ([], [])
    failures, retries = parse_failures(FAILURES)
    assert [f["displayName"] for f in failures] == [RUN, "train", "train(0)"] and retries == []
    assert failures[2]["message"] == "main: OOMKilled (exit code 137)"
    failures, retries = parse_failures(RETRIED)
    assert failures == [] and [r["displayName"] for r in retries] == ["train(0)"]
    # Quotes, backslashes, HTML characters and non-ASCII text in a message survive both encodings.
    odd = 'bad "value" \\ <x> & ü'
    assert parse_failures(argo_failures([_node("record", odd, "record")]))[0][0]["message"] == odd
    # Not Argo's form: kept, never lost, never a traceback.
    assert parse_failures("") == ([], []) and parse_failures("{{workflow.failures}}") == ([], [])
    assert parse_failures("pod deleted") == ([{"message": "pod deleted"}], [])
    assert parse_failures('"[{\\"displayName\\": 3"') == ([{"message": '[{"displayName": 3'}], [])


@pytest.mark.parametrize("message", [
    "C:\\app\\x41",  # a literal backslash before what looks like an escape: Quote doubles it
    "tab\there \\a\\v \\U0001F600 \\u0041",  # json escapes the tab; the rest is literal text
    "bell \a, DEL \x7f, soft hyphen \u00ad, line sep \u2028, tag \U000E0041, emoji \U0001F600",
    "ends with a backslash \\",
])
def test_messages_survive_go_quote_of_json_marshal_exactly(message: str) -> None:
    # Every escape Go's strconv.Quote writes for json.Marshal's text (backslash-quote, a doubled
    # backslash, x7f, u...., U........) is undone once, left to right: a message round-trips whole.
    quoted = argo_failures([_node("evaluate(3:b3)", message, "evaluate")])
    assert parse_failures(quoted)[0][0]["message"] == message


def test_escapes_quote_never_writes_for_json_mean_the_text_is_not_argos() -> None:
    # A backslash-a, backslash-x41 or a bare quote cannot come from Quote(json.Marshal(...)): kept
    # as one message.
    for text in ('"[{\\"displayName\\":\\"a\\x41\\"}]"', '"\\a"', '"a"b"'):
        assert parse_failures(text) == ([{"message": text}], [])


def test_absurdly_nested_failures_are_kept_as_one_message_and_the_run_is_recorded(database: str) -> None:
    nested = '"' + "[" * 50_000 + "]" * 50_000 + '"'  # issue 27: a RecursionError, and nothing recorded
    failures, retries = parse_failures(nested)
    assert retries == [] and len(failures) == 1 and failures[0]["message"] == "[" * 2000
    assert _notify(status="Failed", failures=nested) == 0
    [row] = _runs(database)
    assert row["status"] == "Failed" and json.loads(row["failures"]) == [{"message": "[" * 2000}]


def test_a_clean_run_stores_no_failure(database: str) -> None:
    assert _notify(failures=CLEAN) == 0
    assert _runs(database)[0]["failures"] is None


def test_a_run_that_succeeded_after_a_retry_reports_a_retry_not_a_failure(
        database: str, webhook: Webhook, capsys: pytest.CaptureFixture[str]) -> None:
    assert _notify("--webhook-url", webhook.url, failures=RETRIED) == 0
    [row] = _runs(database)
    assert row["status"] == "Succeeded" and row["failures"] is None
    body = webhook.received[0]["body"]
    assert "retried: train(0): Pod was terminated in response to imminent node shutdown." in body["text"]
    assert "failed:" not in body["text"] and body["run"]["retries"][0]["displayName"] == "train(0)"


def test_a_failed_run_stores_each_failed_node(database: str) -> None:
    assert _notify(status="Failed", failures=FAILURES) == 0
    stored = json.loads(_runs(database)[0]["failures"])
    assert [(f["displayName"], f["phase"]) for f in stored] == [(RUN, "Failed"), ("train", "Failed"), ("train(0)", "Failed")]


def test_a_misspelled_override_still_records_the_outcome(database: str, webhook: Webhook,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    # The run failed because of this very override: the exit handler must still record and report it.
    assert _notify("--webhook-url", webhook.url, "--set-list", "trian.iterations=5", status="Failed",
                   failures=FAILURES) == 0
    assert _runs(database)[0]["status"] == "Failed"
    text = webhook.received[0]["body"]["text"]
    assert "note: config not used:" in text and "trian" in text
    assert "trian" in capsys.readouterr().err
    assert _notify("--config", "/nonexistent/cluster.yaml") == 0  # a missing config file too


@pytest.mark.parametrize("duration", ["nan", "inf", "-inf", "-5", "soon"])
def test_a_duration_that_is_not_a_number_is_stored_as_unknown(database: str, duration: str) -> None:
    assert main(["--run-id", RUN, "--status", "Succeeded", "--failures", CLEAN, f"--duration={duration}",
                 "--started-at", "2024-05-01T02:00:00Z"]) == 0
    assert _runs(database)[0]["duration_seconds"] is None


@pytest.mark.parametrize(("url", "said"), [
    ("file:///etc/passwd", "scheme 'file' refused"),
    ("ftp://example.com/hook", "scheme 'ftp' refused"),
    ("http://[::1/hook", "malformed"),
    ("http://127.0.0.1:99999/hook", "malformed"),
    ("https:///no-host", "no host"),
    ("hooks.example.com/T0/B0/token", "scheme '(none)' refused"),
])
def test_a_bad_webhook_url_is_a_warning(database: str, url: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _notify("--webhook-url", url) == 0
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and "token" not in err and "passwd" not in err
    assert _runs(database)[0]["status"] == "Succeeded"


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
    assert row["status"] == "Failed" and json.loads(row["failures"])[2]["message"] == "main: OOMKilled (exit code 137)"
    assert webhook.received == []  # no URL, no post


def test_a_failed_run_is_recorded_even_when_the_webhook_fails(database: str, webhook: Webhook,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    webhook.status = 500
    assert _notify("--webhook-url", webhook.url, status="Failed", failures=FAILURES) == 0
    [row] = _runs(database)
    assert (row["status"], row["model_id"], row["promoted"], row["dataset_version"]) == ("Failed", None, None, None)
    text = webhook.received[0]["body"]["text"]
    assert text.startswith(f"❌ trainyard run {RUN}: Failed") and "failed: train(0): main: OOMKilled (exit code 137)" in text
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
              "workflow.parameters.overrides": "", "workflow.parameters.chart-overrides": ""}
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


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """A server that answers with a header byte every 0.2 s, forever: each read is quick, the
    answer never ends."""
    import socket

    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100000:
                    if stop.wait(0.2):
                        break
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    stop.set()
    thread.join(5)
    listener.close()


def test_a_webhook_that_trickles_its_headers_hits_the_overall_deadline(trickling_server: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from steps.errors import ExternalError
    from steps.notify.webhook import post

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(ExternalError, match="did not answer within 1s"):
        post(trickling_server, {"text": "x"}, timeout=1)


def test_a_webhook_redirect_to_another_host_is_refused(database: str, webhook: Webhook,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    webhook.redirect_to = webhook.url.replace("127.0.0.1", "localhost")  # the same server, by another name
    assert _notify("--webhook-url", webhook.url) == 0
    assert "redirected to another host (localhost); refused" in capsys.readouterr().err
    assert webhook.received == [] and _runs(database)[0]["status"] == "Succeeded"
