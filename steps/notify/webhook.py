"""The run summary posted to a webhook: JSON with a human-readable `text` (what Slack, Teams
and Google Chat incoming webhooks display) and the structured outcome under `run`."""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from steps.deadline import call_with_deadline
from steps import decision_figures
from steps.errors import ExternalError, excerpt
from steps.notify.outcome import RunOutcome
from steps.redact import MASK, redact

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
        reason = outcome.promotion.get("reason")
        lines.append(verdict + (f": {reason}" if reason else ""))
        figures = decision_figures.shown(outcome.promotion)
        if figures:  # under evaluation.json's names, written as the report writes them
            lines.append("decision: " + ", ".join(f"{name} {value}" for name, value in figures))
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
    webhook URLs carry their token in the userinfo, the path or the query)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ExternalError("webhook URL is malformed; expected https://HOST/PATH") from None
    if parts.scheme not in ("http", "https"):
        raise ExternalError(f"webhook URL scheme {excerpt(parts.scheme or '(none)', 20)} refused: "
                            "only http and https")
    if not host:
        raise ExternalError("webhook URL has no host; expected https://HOST/PATH")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ExternalError(f"webhook URL for {_host(parts)} contains a space or control character; "
                            "percent-encode it (%20)")
    return _host(parts)


def _host(parts: urllib.parse.SplitResult) -> str:
    return parts.netloc.rpartition("@")[2]


def _secrets(url: str) -> list[str]:
    """What of a webhook URL is secret: all but the scheme and host (tokens ride in each part)."""
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    found = [userinfo, parts.path, parts.query, parts.fragment, urllib.parse.unquote(userinfo)]
    return sorted({part for part in found if len(part) > 1}, key=len, reverse=True)


def _without_secrets(text: object, url: str) -> str:
    text = str(text)
    for secret in _secrets(url):
        text = text.replace(secret, MASK)
    return redact(text)


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
    parts = urllib.parse.urlsplit(url)
    headers = {"Content-Type": "application/json", "User-Agent": "trainyard-notify"}
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:  # urllib would take it for part of the host: send it as HTTP basic auth
        user, _, password = userinfo.partition(":")
        pair = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        parts = parts._replace(netloc=host)
    request = urllib.request.Request(parts.geturl(), data=json.dumps(body).encode(), method="POST", headers=headers)
    opener = urllib.request.build_opener(_SameHostRedirects(parts))
    try:
        # urlopen's timeout is per socket read: a server that trickles its headers byte by byte would
        # never trip it. The deadline bounds the whole exchange.
        return call_with_deadline(lambda: _status(opener, request, timeout), timeout,
                                  f"webhook at {host} did not answer within {timeout:g}s")
    except urllib.error.HTTPError as exc:
        raise ExternalError(f"webhook at {host} answered {exc.code} {_without_secrets(exc.reason, url)[:200]}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise ExternalError(f"webhook at {host} unreachable: {_without_secrets(reason, url)[:200]}") from None


def _status(opener: urllib.request.OpenerDirector, request: urllib.request.Request, timeout: float) -> int:
    with opener.open(request, timeout=timeout) as response:
        return response.status


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
