"""A cluster run through the Argo server's API: get, stop, retry and logs, as the argo CLI does them.

The calls are the ones `argo get|stop|retry|logs` make through the server (pkg/apiclient/http1:
workflow-service-client.go): `GET /api/v1/workflows/{ns}/{name}`, `PUT .../{name}/stop` and
`PUT .../{name}/retry` with a {name, namespace} body, and `GET .../{name}/log` read as Server-Sent
Events (`Accept: text/event-stream`, one `data: {"result": LogEntry}` line per log line:
server-sent-events-client.go `RecvEvent`), printed as `<pod>: <line>` (cmd/argo/commands/common/logs.go).
Errors and deadlines are `trainyard submit`'s (workflows/submit.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from steps.errors import ExternalError, InputError
from workflows.local.nodes import pod_name
from workflows.submit import REQUEST_TIMEOUT_SECONDS, ArgoClient


def get(client: ArgoClient, name: str) -> Any:
    """The workflow (Hera's model): metadata, spec and status."""
    namespace = client.server.namespace
    return client._call("get workflows", name, lambda: client.service.get_workflow(name, namespace=namespace))


def stop(client: ArgoClient, name: str) -> str:
    """`argo stop`: the running pods get SIGTERM, nothing new starts, exit handlers still run."""
    from hera.workflows.models import WorkflowStopRequest

    namespace = client.server.namespace
    request = WorkflowStopRequest(name=name, namespace=namespace)
    workflow = client._call("update workflows", name, lambda: client.service.stop_workflow(name, request, namespace=namespace))
    return str(getattr(workflow.status, "phase", None) or "Running")


def retry(client: ArgoClient, name: str, parameters: list[str] | None = None) -> str:
    """`argo retry [-p NAME=VALUE]`: the failed nodes run again (with these parameters changed), the
    succeeded ones are kept with their outputs."""
    from hera.workflows.models import WorkflowRetryRequest

    namespace = client.server.namespace
    request = WorkflowRetryRequest(name=name, namespace=namespace, parameters=list(parameters or []) or None)
    workflow = client._call("update workflows", name, lambda: client.service.retry_workflow(name, request, namespace=namespace))
    return str(getattr(workflow.status, "phase", None) or "Running")


def pods_of_step(workflow: Any, step: str) -> list[str]:
    """The pod names of a step (`train`, `evaluate` and its fan-out children `evaluate(0:...)`,
    retried attempts): every Pod node whose display name is the step's, by util/pod_name.go (v2)."""
    nodes = (workflow.status.nodes or {}).values() if workflow.status else []
    name = workflow.metadata.name
    pods = [node for node in nodes if node.type == "Pod"
            and (node.display_name or "").split("(", 1)[0] == step]
    if not pods:
        known = sorted({(n.display_name or "").split("(", 1)[0] for n in nodes if n.type == "Pod"})
        raise InputError(f"{name}: no step {step!r} has run (steps with pods: {', '.join(known) or 'none yet'})")
    return [pod_name(name, node.name, node.template_name or "") for node in pods]


def logs(client: ArgoClient, name: str, pod: str = "", follow: bool = False,
         echo: Callable[[str], None] = print) -> None:
    """`argo logs NAME [POD] [--follow]`: the main containers' lines as `<pod>: <line>`."""
    params = {"logOptions.container": "main", **({"podName": pod} if pod else {}),
              **({"logOptions.follow": "true"} if follow else {})}
    for entry in _events(client, f"api/v1/workflows/{client.server.namespace}/{name}/log", params, name, follow):
        echo(f"{entry.get('podName', '')}: {entry.get('content', '')}")


def _events(client: ArgoClient, path: str, params: dict[str, str], name: str, follow: bool) -> Iterator[dict]:
    """The `result` objects of a Server-Sent Events stream; a stream's `error` ends it with a message."""
    server = client.server
    headers = {"Accept": "text/event-stream"}
    if client.service.token:
        token = client.service.token
        headers["Authorization"] = token if token.startswith("Bearer ") else f"Bearer {token}"
    try:
        # A followed stream stays open as long as the run: only the connection has a deadline then.
        read = None if follow else REQUEST_TIMEOUT_SECONDS
        response = client.service.session.get(f"{server.url}/{path}", params=params, headers=headers, stream=True,
                                              timeout=(REQUEST_TIMEOUT_SECONDS, read), verify=server.verify_ssl)
    except Exception as exc:  # noqa: BLE001 - the same translation as every other call
        client._call("get workflows", name, lambda: _raise(exc))
        return
    with response:
        for raw in response.iter_lines(decode_unicode=True):
            if not raw or not raw.startswith("data: "):
                continue  # the stream's blank separators and comments
            try:
                event = json.loads(raw[len("data: "):])
            except ValueError:
                raise ExternalError(f"the Argo server at {server.url} sent a log event that is not JSON: {raw[:80]!r}") from None
            if isinstance(event, dict) and isinstance(event.get("error"), dict):
                raise ExternalError(f"the Argo server at {server.url} ended the log stream: "
                                    f"{event['error'].get('message', 'error')}")
            result = event.get("result") if isinstance(event, dict) else None
            if isinstance(result, dict):
                yield result


def _raise(exc: Exception) -> None:
    raise exc



# `argo list`'s fields (cmd/argo/commands/list.go defaultFields): not the nodes, which make a long
# run's answer megabytes; the spec stays, as Hera's Workflow model requires one.
LIST_FIELDS = ("metadata,items.metadata,items.spec,items.status.phase,items.status.message,items.status.finishedAt,"
               "items.status.startedAt,items.status.estimatedDuration,items.status.progress")
TEMPLATE_LABEL = "workflows.argoproj.io/workflow-template"  # workflow/common/common.go LabelKeyWorkflowTemplate
CRON_LABEL = "workflows.argoproj.io/cron-workflow"  # LabelKeyCronWorkflow
PAGE_SIZE = 500
MAX_PAGES = 20  # 10,000 workflows; a server that keeps answering "continue" cannot keep us forever


def list_runs(client: ArgoClient, templates: list[str]) -> tuple[list[Any], bool]:
    """The workflows run from these WorkflowTemplates, as `argo list -l` finds them, newest first;
    and whether there were more than MAX_PAGES pages of them (the rest not read).

    The controller labels every workflow that references a WorkflowTemplate with its name
    (workflow/controller/operator.go setWfTemplateLabel; a submission from a template gets it from
    workflow/common/convert.go), so the nightly's runs are found too."""
    namespace = client.server.namespace
    selector = f"{TEMPLATE_LABEL} in ({','.join(templates)})"
    found: list[Any] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        page = client._call("list workflows", "workflows", lambda: client.service.list_workflows(
            namespace=namespace, label_selector=selector, limit=str(PAGE_SIZE), continue_=token, fields=LIST_FIELDS))
        found.extend(page.items or [])
        token = getattr(page.metadata, "continue_", None) if page.metadata else None
        if not token:
            return _newest_first(found), False
    return _newest_first(found), True


def _newest_first(workflows: list[Any]) -> list[Any]:
    """`argo list`'s order (pkg/apis/workflow/v1alpha1/workflow_types.go Workflows.Less): unfinished
    runs first, newest created first; then finished ones, last finished first."""
    def moment(workflow: Any, field: str) -> str:
        value = getattr(workflow.status, field, None) if field == "finished_at" else \
            getattr(workflow.metadata, "creation_timestamp", None)
        value = getattr(value, "root", value)  # Hera wraps timestamps in a Time model
        return value.isoformat() if hasattr(value, "isoformat") else ""

    running = [w for w in workflows if not (w.status and moment(w, "finished_at"))]
    finished = [w for w in workflows if w.status and moment(w, "finished_at")]
    return (sorted(running, key=lambda w: moment(w, "created"), reverse=True)
            + sorted(finished, key=lambda w: moment(w, "finished_at"), reverse=True))
