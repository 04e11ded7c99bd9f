"""The run summary posted to a webhook: JSON with a human-readable `text` (what Slack, Teams
and Google Chat incoming webhooks display) and the structured outcome under `run`."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from steps.errors import ExternalError
from steps.notify.outcome import RunOutcome

TIMEOUT_SECONDS = 15
METRICS_SHOWN = ("segm/AP", "bbox/AP", "dv_mAP", "EIR")


def summary_text(outcome: RunOutcome) -> str:
    icon = {"Succeeded": "✅", "Failed": "❌", "Error": "❌"}.get(outcome.status, "ℹ️")
    lines = [f"{icon} trainyard run {outcome.run_id}: {outcome.status}"]
    if outcome.duration_seconds is not None:
        lines[0] += f" in {_duration(outcome.duration_seconds)}"
    if outcome.dataset_version:
        lines.append(f"dataset: {outcome.dataset_version}")
    if outcome.model_id:
        shown = [f"{key} {outcome.metrics[key]:.3f}" for key in METRICS_SHOWN
                 if isinstance(outcome.metrics.get(key), (int, float))]
        lines.append(f"model: {outcome.model_id}" + (f" ({', '.join(shown)})" if shown else ""))
    if outcome.promoted is not None:
        verdict = "promoted to production" if outcome.promoted else "not promoted"
        lines.append(verdict + (f": {outcome.promotion_reason}" if outcome.promotion_reason else ""))
    for failure in outcome.failures:
        where = failure.get("displayName") or failure.get("templateName") or "workflow"
        lines.append(f"failed: {where}: {failure.get('message', '')}".rstrip(": "))
    if outcome.ui_url:
        lines.append(outcome.ui_url)
    return "\n".join(lines)


def payload(outcome: RunOutcome) -> dict[str, Any]:
    return {"text": summary_text(outcome), "run": outcome.as_dict()}


def post(url: str, body: dict[str, Any], timeout: float = TIMEOUT_SECONDS) -> int:
    """POST `body` as JSON; returns the HTTP status. Errors name the host, never the full URL
    (webhook URLs often carry their token in the path)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "trainyard-notify"},
    )
    host = urllib.parse.urlparse(url).netloc or "?"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise ExternalError(f"webhook at {host} answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ExternalError(f"webhook at {host} unreachable: {reason}") from None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
