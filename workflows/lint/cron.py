"""A CronWorkflow's schedule: validate.go's `CronWorkflow` (schedules present and parseable
by robfig/cron's ParseStandard, a known timezone, concurrencyPolicy, startingDeadlineSeconds)."""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

from workflows.lint.findings import Finding, excerpt
from workflows.lint.walk import as_list

CONCURRENCY_POLICIES = ("", "Allow", "Forbid", "Replace")
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
           ("month", 1, 12, {m: i + 1 for i, m in enumerate(
               ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}),
           ("day of week", 0, 6, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}))
_DURATION = re.compile(r"^([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$")


def check_cron(m: Any) -> list[Finding]:
    if m.kind != "CronWorkflow":
        return []
    spec = m.doc.get("spec") if isinstance(m.doc.get("spec"), dict) else {}
    findings: list[Finding] = []
    schedules = [s for s in as_list(spec.get("schedules")) if isinstance(s, str)]
    if not schedules and not spec.get("schedule"):
        findings.append(Finding("spec.schedules", "a CronWorkflow needs at least one schedule"))
    for index, schedule in enumerate(schedules):
        problem = schedule_problem(schedule)
        if problem:
            findings.append(Finding(f"spec.schedules[{index}]",
                                    f"schedule {excerpt(schedule)!r} is malformed: {problem}"))
    timezone = spec.get("timezone")
    if isinstance(timezone, str) and timezone and not _known_zone(timezone):
        findings.append(Finding("spec.timezone", f"unknown timezone {excerpt(timezone)!r}"))
    policy = spec.get("concurrencyPolicy")
    if isinstance(policy, str) and policy not in CONCURRENCY_POLICIES:
        findings.append(Finding("spec.concurrencyPolicy", f"{excerpt(policy)!r} is not one of Allow, Forbid, Replace"))
    deadline = spec.get("startingDeadlineSeconds")
    if isinstance(deadline, (int, float)) and not isinstance(deadline, bool) and deadline < 0:
        findings.append(Finding("spec.startingDeadlineSeconds", "must not be negative"))
    return findings


def _known_zone(name: str) -> bool:
    if name in ("UTC", "Local"):
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def schedule_problem(schedule: str) -> str | None:
    """What robfig/cron's ParseStandard would reject in `schedule`, if anything."""
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        zone, _, text = text.partition(" ")
        if not _known_zone(zone.split("=", 1)[1]):
            return f"unknown time zone {zone.split('=', 1)[1]!r}"
        text = text.strip()
    if text.startswith("@"):
        if text in _DESCRIPTORS:
            return None
        if text.startswith("@every "):
            return None if _DURATION.match(text[7:].strip()) else "@every needs a duration such as 1h30m"
        return f"unknown descriptor {text.split()[0]!r}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}"
    for value, (what, low, high, aliases) in zip(fields, _FIELDS, strict=True):
        problem = _field_problem(value, low, high, aliases)
        if problem:
            return f"{what}: {problem}"
    return None


def _field_problem(field: str, low: int, high: int, aliases: dict[str, int]) -> str | None:
    for part in field.split(","):
        span, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return f"bad step {step!r}"
        if span in ("*", "?"):
            continue
        start, _, end = span.partition("-")
        for bound in (start, end) if end else (start,):
            number = aliases.get(bound.lower()) if not bound.isdigit() else int(bound)
            if number is None:
                return f"{bound!r} is not a number"
            if not low <= number <= high:
                return f"{number} is out of range {low}-{high}"
    return None
