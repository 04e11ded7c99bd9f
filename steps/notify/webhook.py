"""The run summary posted to a webhook: JSON with a human-readable `text` (what Slack, Teams
and Google Chat incoming webhooks display) and the structured outcome under `run`."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from steps.deadline import call_with_deadline
from steps.errors import ExternalError
from steps.notify.outcome import RunOutcome

TIMEOUT_SECONDS = 15
METRICS_SHOWN = ("segm/AP", "bbox/AP", "dv_mAP", "EIR")


def summary_text(outcome: RunOutcome) -> str:
    icon = "⚠️" if outcome.partial else {"Succeeded": "✅", "Failed": "❌", "Error": "❌"}.get(outcome.status, "ℹ️")
    lines = [f"{icon} trainyard run {outcome.run_id}: {outcome.status}" + (" (partial)" if outcome.partial else "")]
    if outcome.duration_seconds is not None:
        lines[0] += f" in {_duration(outcome.duration_seconds)}"
    if outcome.partial:
        lines.append("partial result: the steps below failed and the rest went on without them; a partial "
                     "result is never promoted automatically")
    if outcome.dataset_version:
        lines.append(f"dataset: {outcome.dataset_version}")
    if outcome.model_id:
        shown = [f"{key} {outcome.metrics[key]:.3f}" for key in METRICS_SHOWN
                 if isinstance(outcome.metrics.get(key), (int, float))]
        lines.append(f"model: {outcome.model_id}" + (f" ({', '.join(shown)})" if shown else ""))
    if outcome.promoted is not None:
        verdict = "promoted to production" if outcome.promoted else "not promoted"
        lines.append(verdict + (f": {outcome.promotion_reason}" if outcome.promotion_reason else ""))
    for label, nodes in (("failed", outcome.failures), ("retried", outcome.retries)):
        for node in nodes:
            where = node.get("displayName") or node.get("templateName") or "workflow"
            lines.append(f"{label}: {where}: {node.get('message', '')}".rstrip(": "))
    lines += [f"note: {note}" for note in outcome.notes]
    if outcome.ui_url:
        lines.append(outcome.ui_url)
    return "\n".join(lines)


def payload(outcome: RunOutcome) -> dict[str, Any]:
    return {"text": summary_text(outcome), "run": outcome.as_dict()}


def check_url(url: str) -> str:
    """The webhook URL's host, or an ExternalError naming what is wrong (never the URL itself:
    webhook URLs often carry their token in the path)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ExternalError("webhook URL is malformed; expected https://HOST/PATH") from None
    if parts.scheme not in ("http", "https"):
        raise ExternalError(f"webhook URL scheme {parts.scheme or '(none)'!r} refused: only http and https")
    if not host:
        raise ExternalError("webhook URL has no host; expected https://HOST/PATH")
    return parts.netloc.rpartition("@")[2]


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same scheme and host: a webhook must not be bounced elsewhere
    (with our summary, or to a file:// or internal URL)."""

    def __init__(self, origin: urllib.parse.SplitResult) -> None:
        self.origin = origin

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        target = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl))
        if (target.scheme, target.hostname, target.port) != (self.origin.scheme, self.origin.hostname, self.origin.port):
            raise ExternalError(f"webhook at {self.origin.hostname} redirected to another host ({target.hostname}); refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def post(url: str, body: dict[str, Any], timeout: float = TIMEOUT_SECONDS) -> int:
    """POST `body` as JSON within `timeout` seconds overall; returns the HTTP status. Errors name
    the host, never the full URL."""
    host = check_url(url)
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "trainyard-notify"},
    )
    opener = urllib.request.build_opener(_SameHostRedirects(urllib.parse.urlsplit(url)))
    try:
        # urlopen's timeout is per socket read: a server that trickles its headers byte by byte would
        # never trip it. The deadline bounds the whole exchange.
        return call_with_deadline(lambda: _status(opener, request, timeout), timeout,
                                  f"webhook at {host} did not answer within {timeout:g}s")
    except urllib.error.HTTPError as exc:
        raise ExternalError(f"webhook at {host} answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise ExternalError(f"webhook at {host} unreachable: {reason}") from None


def _status(opener: urllib.request.OpenerDirector, request: urllib.request.Request, timeout: float) -> int:
    with opener.open(request, timeout=timeout) as response:
        return response.status


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
