"""`trainyard submit` against a stand-in Argo server on 127.0.0.1 that checks each request
against Argo's API shape and answers like Argo does."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from workflows.cli import main
from workflows.pipeline import PIPELINE_NAME, build_pipeline
from workflows.submit import ArgoServer

NAMESPACE = "ml"
TOKEN = "s3cret-token"
RUN = "trainyard-pipeline-x7k2p"
# Hera 7.1 serialises the request with pydantic's deprecated `.json()`; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The `json` method is deprecated:DeprecationWarning")


def _node(name: str, phase: str, started: str, message: str = "") -> dict[str, Any]:
    return {"id": f"{RUN}-{name}", "name": f"{RUN}.{name}", "displayName": name, "type": "Pod", "phase": phase,
            "startedAt": started, **({"message": message} if message else {})}


def _workflow(phase: str | None = None, nodes: list[dict[str, Any]] | None = None, message: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
    if nodes:
        status["nodes"] = {n["id"]: n for n in nodes}
        status["nodes"][RUN] = {"id": RUN, "name": RUN, "displayName": RUN, "type": "DAG", "phase": phase or "Running"}
    if message:
        status["message"] = message
    return {"metadata": {"name": RUN, "namespace": NAMESPACE, "uid": "1234"},
            "spec": {"workflowTemplateRef": {"name": PIPELINE_NAME}}, "status": status}


@dataclass
class FakeArgo:
    """What the server answers; what it received; and problems with the requests' shape."""

    submit_answer: tuple[int, Any] = (200, None)
    watch_answers: list[Any] = field(default_factory=list)
    # The template the Helm chart installed: its parameters may differ from this checkout's.
    installed: dict[str, Any] = field(default_factory=lambda: build_pipeline().to_dict())
    requests: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    url: str = ""

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        self.requests.append({"method": method, "path": path, "auth": headers.get("Authorization"),
                              "body": json.loads(body) if body else None})
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            self.problems.append(f"{method} {path}: Authorization {headers.get('Authorization')!r}")
        if method == "POST" and path == f"/api/v1/workflows/{NAMESPACE}/submit":
            if headers.get("Content-Type") != "application/json":
                self.problems.append("submit: Content-Type is not application/json")
            request = json.loads(body)
            if request.get("resourceKind") != "WorkflowTemplate" or not request.get("resourceName"):
                self.problems.append(f"submit: not a WorkflowTemplate submit request: {request}")
            status, answer = self.submit_answer
            return status, _workflow() if answer is None else answer
        if method == "GET" and path.split("?")[0] == f"/api/v1/workflow-templates/{NAMESPACE}/{PIPELINE_NAME}":
            return 200, self.installed
        if method == "GET" and path.split("?")[0] == f"/api/v1/workflows/{NAMESPACE}/{RUN}":
            answer = self.watch_answers.pop(0) if len(self.watch_answers) > 1 else self.watch_answers[0]
            return answer if isinstance(answer, tuple) else (200, answer)
        self.problems.append(f"unexpected {method} {path}")
        return 404, {"code": 5, "message": "not found"}


@pytest.fixture
def argo(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeArgo]:
    fake = FakeArgo()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = fake.handle(self.command, self.path, self.headers, body)
            raw = isinstance(answer, str) and not answer.startswith("json:")
            data = answer.encode() if raw else answer[5:].encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if raw else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    for name in ("ARGO_SERVER", "ARGO_TOKEN", "ARGO_NAMESPACE", "ARGO_SECURE", "ARGO_INSECURE_SKIP_VERIFY", "ARGO_BASE_HREF"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")  # the runner's own kubeconfig stays out
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _submit(*args: str) -> int:
    return main(["submit", *args])


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_submit_sends_argos_submit_request_and_prints_name_and_link(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    code = _submit("--server", argo.url, "--namespace", NAMESPACE, "--token", TOKEN,
                   "-p", "dataset-repo=https://github.com/example/plates.git", "--param", "overrides=train.iterations=9 a=b")
    assert code == 0 and argo.problems == []
    assert argo.requests[0]["path"] == f"/api/v1/workflow-templates/{NAMESPACE}/{PIPELINE_NAME}"  # names checked there
    assert argo.requests[1:] == [{
        "method": "POST", "path": f"/api/v1/workflows/{NAMESPACE}/submit", "auth": f"Bearer {TOKEN}",
        "body": {"namespace": NAMESPACE, "resourceKind": "WorkflowTemplate", "resourceName": PIPELINE_NAME,
                 "submitOptions": {"parameters": ["dataset-repo=https://github.com/example/plates.git",
                                                  "overrides=train.iterations=9 a=b"]}},
    }]
    out = capsys.readouterr().out
    assert f"submitted {RUN} in namespace {NAMESPACE}" in out
    assert f"{argo.url}/workflows/{NAMESPACE}/{RUN}" in out


def test_server_token_and_namespace_come_from_the_argo_environment(argo: FakeArgo, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ARGO_SERVER", argo.url.removeprefix("http://"))  # the argo CLI's host:port form
    monkeypatch.setenv("ARGO_SECURE", "false")
    monkeypatch.setenv("ARGO_TOKEN", f"Bearer {TOKEN}")  # as `argo auth token` prints it
    monkeypatch.setenv("ARGO_NAMESPACE", NAMESPACE)
    assert _submit() == 0 and argo.problems == []
    assert argo.requests[0]["body"]["submitOptions"] == {}
    assert f"{argo.url}/workflows/{NAMESPACE}/{RUN}" in capsys.readouterr().out


def test_argo_server_resolution() -> None:
    env = {"ARGO_SERVER": "argo.example.com:443", "ARGO_INSECURE_SKIP_VERIFY": "true", "ARGO_BASE_HREF": "/argo/"}
    server = ArgoServer.resolve(environ=env)
    assert server == ArgoServer(url="https://argo.example.com:443/argo", namespace="default", token=None, verify_ssl=False)
    assert server.ui_link("run-1") == "https://argo.example.com:443/argo/workflows/default/run-1"
    flags = ArgoServer.resolve("http://localhost:2746/", "team", "tok", environ=env)
    assert (flags.url, flags.namespace, flags.token) == ("http://localhost:2746/argo", "team", "tok")


def test_watch_follows_the_steps_to_success(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    argo.watch_answers = [
        _workflow("Running", [_node("record", "Running", "2024-05-01T02:00:00Z")]),
        _workflow("Running", [_node("record", "Succeeded", "2024-05-01T02:00:00Z"), _node("train", "Running", "2024-05-01T02:03:00Z")]),
        _workflow("Succeeded", [_node("record", "Succeeded", "2024-05-01T02:00:00Z"), _node("train", "Succeeded", "2024-05-01T02:03:00Z")]),
    ]
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN, "--watch", "--poll", "0.01") == 0
    assert argo.problems == []
    lines = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert lines == [["record", "Running"], ["record", "Succeeded"], ["train", "Running"], ["train", "Succeeded"],
                     [RUN, "Succeeded"]]
    assert [r["method"] for r in argo.requests] == ["POST", "GET", "GET", "GET"]  # no -p: no template lookup


def test_watch_of_a_failed_run_exits_1_with_the_failure(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    argo.watch_answers = [_workflow("Failed", [_node("record", "Failed", "2024-05-01T02:00:00Z", "Error (exit code 2)")],
                                    message="child 'record' failed")]
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN, "--watch", "--poll", "0.01") == 1
    out = capsys.readouterr().out
    assert "record" in out and "Failed: Error (exit code 2)" in out and f"{RUN} Failed: child 'record' failed" in out


def test_unknown_parameter_is_refused_before_anything_is_sent(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN, "-p", "annotation-versoin=annotations/v2") == 2
    line = _error(capsys)
    assert "annotation-versoin" in line and "annotation-version" in line
    assert [r["method"] for r in argo.requests] == ["GET"]  # the installed template's names; nothing submitted


def test_no_server_configured_says_how(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    assert _submit() == 2
    assert "ARGO_SERVER" in _error(capsys)


def test_unreachable_server_is_one_clear_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert _submit("--server", f"http://127.0.0.1:{port}", "--token", TOKEN) == 2
    line = _error(capsys)
    assert f"cannot reach the Argo server at http://127.0.0.1:{port}" in line and "connection refused" in line
    assert "port-forward" in line


def test_401_names_the_token_fix(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    argo.submit_answer = (401, {"code": 16, "message": "token not valid"})
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN) == 2
    line = _error(capsys)
    assert "401 Unauthorized: token not valid" in line and "refused" in line
    assert TOKEN not in line


def test_401_without_a_token_says_to_set_one(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    argo.submit_answer = (401, {"code": 16, "message": "token not valid"})
    assert _submit("--server", argo.url, "-n", NAMESPACE) == 2
    assert "ARGO_TOKEN" in _error(capsys)


def test_403_names_the_namespace_and_the_permissions(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    argo.submit_answer = (403, "<html><body>403 Forbidden</body></html>")  # as a proxy in front answers
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN) == 2
    line = _error(capsys)
    assert "403 Forbidden" in line and f"namespace {NAMESPACE}" in line and "workflowtemplates" in line


def test_404_says_to_install_the_chart(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    argo.submit_answer = (404, {"code": 5, "message": f'workflowtemplates.argoproj.io "{PIPELINE_NAME}" not found'})
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN) == 2
    line = _error(capsys)
    assert f"{PIPELINE_NAME} not found in namespace {NAMESPACE}" in line and "helm install" in line


def test_something_that_is_not_argo_is_named(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    argo.submit_answer = (200, "<html>welcome to nginx</html>")
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN) == 2
    assert "did not answer like an Argo server" in _error(capsys)


# -- like the argo CLI: the kubeconfig, the installed template, expiring tokens --------------------
def _kubeconfig(tmp_path: Any, user: dict[str, Any], namespace: str | None = NAMESPACE) -> str:
    """A kubeconfig whose current context names a namespace and a user, as `gcloud container
    clusters get-credentials` writes one (cmd/argo/commands/client/conn.go reads the same)."""
    import yaml

    context = {"cluster": "gke", "user": "me", **({"namespace": namespace} if namespace else {})}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gke",
        "clusters": [{"name": "gke", "cluster": {"server": "https://10.0.0.1"}}],
        "contexts": [{"name": "gke", "context": context}], "users": [{"name": "me", "user": user}]}))
    return str(path)


def _credential_plugin(tmp_path: Any, tokens: list[str]) -> dict[str, Any]:
    """An exec credential plugin (like gke-gcloud-auth-plugin) that hands out `tokens` in turn."""
    import sys

    state = tmp_path / "issued"
    script = tmp_path / "plugin.py"
    script.write_text(
        "import json, pathlib, sys\n"
        f"state = pathlib.Path({str(state)!r})\n"
        "n = int(state.read_text()) if state.exists() else 0\n"
        "state.write_text(str(n + 1))\n"
        f"tokens = {tokens!r}\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1', 'kind': 'ExecCredential',"
        " 'status': {'token': tokens[min(n, len(tokens) - 1)]}}))\n")
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable, "args": [str(script)]}}


def test_namespace_and_token_come_from_the_kubeconfig_like_the_argo_cli(argo: FakeArgo, tmp_path: Any,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", _kubeconfig(tmp_path, {"token": TOKEN}))
    assert _submit("--server", argo.url) == 0 and argo.problems == []
    assert argo.requests[0]["path"] == f"/api/v1/workflows/{NAMESPACE}/submit"
    monkeypatch.setenv("KUBECONFIG", _kubeconfig(tmp_path, _credential_plugin(tmp_path, [TOKEN])))
    assert _submit("--server", argo.url) == 0 and argo.problems == []
    monkeypatch.setenv("KUBECONFIG", _kubeconfig(tmp_path, {"token": TOKEN}, namespace=None))
    assert ArgoServer.resolve(argo.url).namespace == "default"  # a context without a namespace


def test_parameters_are_checked_against_the_installed_template(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    parameters = argo.installed["spec"]["arguments"]["parameters"]
    argo.installed["spec"]["arguments"]["parameters"] = [
        *[p for p in parameters if p["name"] != "force-retrain"], {"name": "gpu-type", "value": "l4"}]
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN, "-p", "gpu-type=a100") == 0
    assert argo.requests[-1]["body"]["submitOptions"] == {"parameters": ["gpu-type=a100"]}
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN, "-p", "force-retrain=true") == 2
    line = _error(capsys)
    assert "force-retrain: not a parameter of the installed trainyard-pipeline" in line and "gpu-type" in line
    assert argo.requests[-1]["method"] == "GET"  # nothing submitted


def test_a_token_that_expires_while_watching_says_the_run_goes_on(argo: FakeArgo, capsys: pytest.CaptureFixture[str]) -> None:
    argo.watch_answers = [_workflow("Running", [_node("train", "Running", "2024-05-01T02:00:00Z")]),
                          (401, {"code": 16, "message": "token is expired"})]
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN, "--watch", "--poll", "0.01") == 2
    line = _error(capsys)
    assert "401" in line and f"The run {RUN} goes on" in line and f"--watch-only {RUN}" in line


def test_a_kubeconfig_token_is_refreshed_while_watching(argo: FakeArgo, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KUBECONFIG", _kubeconfig(tmp_path, _credential_plugin(tmp_path, ["expired-token", TOKEN])))
    done = _workflow("Succeeded", [_node("train", "Succeeded", "2024-05-01T02:00:00Z")])
    argo.watch_answers = [(401, {"code": 16, "message": "token is expired"}), done]
    assert _submit("--server", argo.url, "--watch-only", RUN, "--poll", "0.01") == 0
    assert f"{RUN} Succeeded" in capsys.readouterr().out
    assert [r["auth"] for r in argo.requests] == ["Bearer expired-token", f"Bearer {TOKEN}"]


@pytest.mark.parametrize("answer", ["json:[1, 2]", 'json:"a workflow"', "json:null", {"metadata": {}}])
def test_an_answer_that_is_not_a_workflow_is_one_line(argo: FakeArgo, answer: Any, capsys: pytest.CaptureFixture[str]) -> None:
    argo.submit_answer = (200, answer)
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN) == 2
    line = _error(capsys)
    assert "did not answer like an Argo server" in line or "without a workflow name" in line
    assert "submitted None" not in capsys.readouterr().out


@pytest.mark.parametrize("poll", ["-1", "0", "nan", "inf"])
def test_a_poll_interval_must_be_positive(argo: FakeArgo, poll: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _submit("--server", argo.url, "-n", NAMESPACE, "--token", TOKEN, "--watch", f"--poll={poll}") == 2
    assert "--poll" in _error(capsys) and argo.requests == []


def test_a_server_that_trickles_hits_the_overall_deadline(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import workflows.submit

    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def trickle() -> None:  # each byte comes well within the per-read timeout; the answer never ends
        conn, _ = listener.accept()
        with conn:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100000:
                if stop.wait(0.2):
                    return
                conn.sendall(bytes([byte]))

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    monkeypatch.setattr(workflows.submit, "DEADLINE_SECONDS", 1)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    try:
        assert _submit("--server", f"http://127.0.0.1:{listener.getsockname()[1]}", "-n", NAMESPACE, "--token", TOKEN) == 2
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert "did not answer within 1s" in _error(capsys)
