"""`trainyard submit`: a run of the installed WorkflowTemplate, through the Argo server's API.

What is sent is Argo's submit request (`POST /api/v1/workflows/{namespace}/submit` with
`resourceKind: WorkflowTemplate`), made by Hera's WorkflowsService; the server instantiates the
template the Helm chart installed, exactly as `argo submit --from workflowtemplate/...` does.
Where the server is and who we are come from flags or the environment variables the `argo` CLI
reads (ARGO_SERVER, ARGO_SECURE, ARGO_INSECURE_SKIP_VERIFY, ARGO_TOKEN, ARGO_NAMESPACE,
ARGO_BASE_HREF), then, like the argo CLI, from the kubeconfig's current context (namespace, and
the user's token or credential plugin). Every failure a user can cause is one line naming the
server and the fix; every call has an overall deadline.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from steps.deadline import call_with_deadline
from steps.errors import ConfigError, ExternalError, InputError, excerpt
from steps.redact import redact, redact_value
from workflows.kubeconfig import KubeContext, current_context
from workflows.pipeline import PIPELINE_NAME, WORKFLOW_PARAMETERS

REQUEST_TIMEOUT_SECONDS = 30  # per socket operation
DEADLINE_SECONDS = 60  # per call, overall: a server that trickles its answer cannot hang us
FINISHED = {"Succeeded", "Failed", "Error"}
PORT_FORWARD_HINT = ("e.g. `kubectl -n argo port-forward svc/argo-workflows-server 2746:2746` (the argo-helm chart's service, "
                     "see docs/cluster.md) and ARGO_SERVER=localhost:2746")


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class ArgoServer:
    """Where the Argo server is and how to talk to it."""

    url: str  # scheme://host:port[/base-href], no trailing slash
    namespace: str
    token: str | None = None
    verify_ssl: bool = True
    # Where a kubeconfig token came from, to fetch a fresh one when it expires (None: a given token).
    kube: KubeContext | None = field(default=None, compare=False)

    @classmethod
    def resolve(cls, server: str | None = None, namespace: str | None = None, token: str | None = None,
                insecure_skip_verify: bool = False, environ: Mapping[str, str] = os.environ) -> ArgoServer:
        """Flags first, then the `argo` CLI's environment variables."""
        address = server or environ.get("ARGO_SERVER", "")
        if not address:
            raise ConfigError(f"no Argo server: pass --server or set ARGO_SERVER ({PORT_FORWARD_HINT})")
        if "://" not in address:  # the argo CLI's form, host:port; TLS unless ARGO_SECURE=false
            secure = environ.get("ARGO_SECURE", "true").strip().lower() not in ("0", "false", "no")
            address = f"{'https' if secure else 'http'}://{address}"
        if not address.startswith(("http://", "https://")):
            raise ConfigError(f"Argo server {excerpt(address)}: use host:port or an http(s):// URL")
        base_href = environ.get("ARGO_BASE_HREF", "").strip("/")
        url = address.rstrip("/") + (f"/{base_href}" if base_href else "")
        namespace = namespace or environ.get("ARGO_NAMESPACE")
        token = token or environ.get("ARGO_TOKEN") or None
        kube = current_context(environ) if not (namespace and token) else None
        from_kube = kube is not None and token is None
        if from_kube:
            token = kube.token()
        return cls(
            url=url,
            namespace=namespace or (kube.namespace if kube else "default"),
            token=token,
            verify_ssl=not (insecure_skip_verify or _true(environ.get("ARGO_INSECURE_SKIP_VERIFY"))),
            kube=kube if from_kube and token else None,
        )

    @property
    def shown(self) -> str:
        """The URL for messages: without the credentials a user may have put in it."""
        return redact_value(self.url)

    def ui_link(self, name: str) -> str:
        return f"{self.shown}/workflows/{self.namespace}/{name}"


class ArgoAPIError(Exception):
    """The server answered with an HTTP error status."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


class _Session(requests.Session):
    """A session whose requests time out, and whose HTTP errors surface with the server's message
    (Hera's own mapping needs a JSON body with a `message`; proxies answer with HTML)."""

    def __init__(self) -> None:
        super().__init__()
        self.hooks["response"].append(self._raise_for_status)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", REQUEST_TIMEOUT_SECONDS)
        return super().request(method, url, *args, **kwargs)

    @staticmethod
    def _raise_for_status(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code < 400:
            return
        try:
            message = str(response.json().get("message", "")).strip()
        except ValueError:
            message = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        raise ArgoAPIError(response.status_code, message or response.reason or "")


def parse_parameters(items: Sequence[str], known: Sequence[str] | None = tuple(WORKFLOW_PARAMETERS),
                     template: str = PIPELINE_NAME) -> list[str]:
    """`NAME=VALUE` items, checked against `known`: the installed template's parameters (the
    server's copy, which may be older or newer than this code) before anything is submitted;
    None checks the form only."""
    parameters = []
    for item in items:
        name, sep, _ = item.partition("=")
        if not sep:
            raise InputError(f"--param {item!r}: expected NAME=VALUE, e.g. --param annotation-version=annotations/v2")
        if known is not None and name not in known:
            raise InputError(f"--param {name}: not a parameter of the installed {template} (known: {', '.join(known)})")
        parameters.append(item)
    return parameters


class ArgoClient:
    """The two calls `trainyard submit` makes, with errors that say what to do."""

    def __init__(self, server: ArgoServer):
        from hera.workflows.service import WorkflowsService

        self.server = server
        self.service = WorkflowsService(host=server.url + "/", token=server.token, namespace=server.namespace,
                                        verify_ssl=server.verify_ssl, session=_Session())

    def template_parameters(self, template: str = PIPELINE_NAME) -> list[str]:
        """The parameter names of the template installed on the server."""
        installed = self._call("read workflowtemplates", template,
                               lambda: self.service.get_workflow_template(template, namespace=self.server.namespace))
        arguments = getattr(getattr(installed, "spec", None), "arguments", None)
        return [p.name for p in (getattr(arguments, "parameters", None) or [])]

    def submit(self, parameters: Sequence[str], template: str = PIPELINE_NAME) -> str:
        """Submit a run of `template`; returns the new workflow's name."""
        from hera.workflows.models import SubmitOpts, WorkflowSubmitRequest

        request = WorkflowSubmitRequest(
            namespace=self.server.namespace, resource_kind="WorkflowTemplate", resource_name=template,
            submit_options=SubmitOpts(parameters=list(parameters) or None),
        )
        workflow = self._call("submit workflows", template,
                              lambda: self.service.submit_workflow(request, namespace=self.server.namespace))
        name = getattr(getattr(workflow, "metadata", None), "name", None)
        if not name:  # never print "submitted None": the server's answer is not a created workflow
            raise ExternalError(f"the Argo server at {self.server.shown} accepted the submission but answered without "
                                f"a workflow name; check `argo list -n {self.server.namespace}` before submitting again")
        return name

    def status(self, name: str) -> Any:
        """The workflow's status (phase, nodes, message)."""
        workflow = self._call("read workflows", name, lambda: self.service.get_workflow(name, namespace=self.server.namespace))
        return workflow.status

    def refresh_token(self) -> bool:
        """A fresh token from the kubeconfig's credential plugin (GKE's expire after an hour);
        False when the token was given (flag or ARGO_TOKEN) and cannot be refreshed here."""
        if self.server.kube is None:
            return False
        token = self.server.kube.token()
        if not token or token == self.service.token:
            return False
        self.service.token = token
        return True

    def _call(self, action: str, resource: str, call: Callable[[], Any]) -> Any:
        server, namespace = self.server.shown, self.server.namespace
        try:
            return call_with_deadline(call, DEADLINE_SECONDS,
                                      f"the Argo server at {server} did not answer within {DEADLINE_SECONDS}s")
        except ArgoAPIError as exc:
            raise ExternalError(self._explain(exc, action, resource)) from None
        except requests.exceptions.SSLError as exc:
            raise ExternalError(f"TLS error talking to the Argo server at {server}: {_reason(exc)}; for a self-signed "
                                "certificate pass --insecure-skip-verify (or ARGO_INSECURE_SKIP_VERIFY=true)") from None
        except requests.exceptions.Timeout:
            raise ExternalError(f"the Argo server at {server} did not answer within {REQUEST_TIMEOUT_SECONDS}s") from None
        except requests.exceptions.ConnectionError as exc:
            raise ExternalError(f"cannot reach the Argo server at {server} ({_reason(exc)}); check --server or "
                                f"ARGO_SERVER, {PORT_FORWARD_HINT}") from None
        except (ValueError, TypeError, AttributeError):  # a 2xx answer that is not a workflow: something else listens there
            raise ExternalError(f"{server} did not answer like an Argo server (namespace {namespace}); "
                                "check --server or ARGO_SERVER") from None

    def _explain(self, exc: ArgoAPIError, action: str, resource: str) -> str:
        server, namespace = self.server.shown, self.server.namespace
        said = f": {exc.message}" if exc.message else ""
        if exc.status == 401:
            fix = ("no token was sent: set ARGO_TOKEN or pass --token (e.g. ARGO_TOKEN=\"Bearer $(kubectl create token "
                   "SERVICE_ACCOUNT)\")") if not self.server.token else "the token was refused (expired or for another cluster?)"
            return f"the Argo server at {server} answered 401 Unauthorized{said}; {fix}"
        if exc.status == 403:
            return (f"the Argo server at {server} answered 403 Forbidden{said}; the token's account may not {action} in "
                    f"namespace {namespace}: it needs create on workflows and get on workflowtemplates there")
        if exc.status == 404:
            return (f"{resource} not found in namespace {namespace} on {server}{said}; install the templates with "
                    f"`helm install trainyard charts/trainyard -n {namespace}` (its README lists the required values), "
                    "or pass --namespace, or --template for a release not named trainyard")
        return f"the Argo server at {server} answered {exc.status}{said}"


def _reason(exc: Exception) -> str:
    text = str(exc.args[0] if exc.args else exc)
    for known in ("Connection refused", "Name or service not known", "No route to host", "certificate verify failed",
                  "timed out", "Temporary failure in name resolution"):
        if known in text:
            return known.lower()
    return redact(text.strip().splitlines()[0] if text.strip() else "no reason given")[:160]  # redacted, then cut


def watch(client: ArgoClient, name: str, echo: Callable[[str], None] = print, poll_seconds: float = 5.0) -> str:
    """Follow a workflow's pods until it finishes; prints each step as its phase changes.
    Returns the final phase (Succeeded, Failed or Error).

    A multi-hour run outlives a one-hour token: on a 401 the token is refreshed from the kubeconfig
    when it came from there; otherwise the error says the run goes on and how to watch it again."""
    check_poll(poll_seconds)
    seen: dict[str, str] = {}
    while True:
        status = _status_or_resume_hint(client, name)
        for node in _pods(status):
            phase = node.phase or "Pending"
            if seen.get(node.id) != phase:
                seen[node.id] = phase
                message = f": {node.message}" if node.message and phase in ("Failed", "Error") else ""
                echo(f"  {node.display_name:<32} {phase}{message}")
        phase = status.phase if status is not None else None
        if phase in FINISHED:
            message = f": {status.message}" if status.message else ""
            echo(f"{name} {phase}{message}")
            return phase
        time.sleep(poll_seconds)


def check_poll(seconds: float) -> None:
    if not (math.isfinite(seconds) and seconds > 0):
        raise InputError(f"--poll {seconds}: must be a positive number of seconds, e.g. --poll 5")


def _status_or_resume_hint(client: ArgoClient, name: str) -> Any:
    try:
        return client.status(name)
    except ExternalError as exc:
        if "401" not in str(exc):
            raise
        if client.refresh_token():
            return client.status(name)
        namespace = client.server.namespace
        raise ExternalError(f"{exc}. The run {name} goes on; the token expired while watching. Get a fresh token "
                            f"and resume with `trainyard submit --watch-only {name} -n {namespace}` "
                            f"(or `argo watch -n {namespace} {name}`)") from None


def _pods(status: Any) -> list[Any]:
    nodes = list((status.nodes or {}).values()) if status is not None else []
    pods = [node for node in nodes if node.type == "Pod"]
    def started(node: Any) -> tuple[int, str]:
        moment = getattr(node.started_at, "root", None)  # Hera wraps the timestamp in a Time model
        return (0, moment.isoformat()) if moment is not None else (1, "")

    return sorted(pods, key=lambda node: (*started(node), node.display_name or ""))
