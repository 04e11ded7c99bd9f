"""Deadlines, enforced as Argo v4.1.2 and the kubelet enforce them.

- A container or script template's `activeDeadlineSeconds` (an integer or a template of one) is its
  pod's `spec.activeDeadlineSeconds` (controller/workflowpod.go build); its `timeout` (a duration,
  "30s", "2m") sets a shorter one from the node's start (checkTemplateTimeouts). The kubelet ends a
  pod past it, and the node is Failed with the pod's message (operator.go inferFailedReason).
- The workflow's `spec.activeDeadlineSeconds`, from its start (truncated to the second,
  getWorkflowDeadline): the executor kills the running steps and the controller fails them, and
  every step due later, with "Step exceeded its deadline" (executor.go monitorDeadline,
  exec_control.go applyExecutionControl, failNodesWithoutCreatedPodsAfterDeadlineOrShutdown); a
  Retry node stops with "retry exceeded workflow deadline <time>" (processNodeRetries). The exit
  handler and exit hooks are not held to it (workflowpod.go: onExit pods ignore the deadline).

A value Argo cannot use makes the node Error, as a pod that cannot be built does.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from workflows.local.retry import parse_duration
from workflows.local.templating import NodeError, TemplateError, substitute

POD_DEADLINE = "Pod was active on the node longer than the specified deadline"  # the kubelet's pod message
WORKFLOW_DEADLINE = "Step exceeded its deadline"


def pod_seconds(template: dict, values: dict[str, str | None], where: str) -> float | None:
    """The pod's deadline in seconds, or None: the smaller of activeDeadlineSeconds and timeout."""
    limits = []
    ads = template.get("activeDeadlineSeconds")
    if ads is not None:
        text = substitute(str(ads), values, f"{where}.activeDeadlineSeconds").strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            # intstr.Int64 in workflowpod.go build: the pod is not created.
            raise NodeError(f'{where}.activeDeadlineSeconds: strconv.ParseInt: parsing "{text}": invalid syntax')
        limits.append(float(int(text)))
    timeout = template.get("timeout")
    if timeout:
        text = substitute(str(timeout), values, f"{where}.timeout").strip()
        try:
            limits.append(parse_duration(text, f"{where}.timeout"))
        except TemplateError as exc:
            raise NodeError(f"invalid timeout format {exc}") from None
    return min(limits) if limits else None


def workflow_deadline(spec: dict, started: datetime) -> datetime | None:
    seconds = spec.get("activeDeadlineSeconds")
    if seconds is None:
        return None
    return started.replace(microsecond=0) + timedelta(seconds=int(seconds))


def go_time(moment: datetime) -> str:
    """time.Time's String() of a UTC time to the second, as `%s` prints it in Argo's messages."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")
