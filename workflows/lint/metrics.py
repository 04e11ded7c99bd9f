"""Prometheus metrics of a template: validate.go's `validateTemplate` with
metrics.IsValidMetricName, ValidateMetricLabels and ValidateMetricValues."""

from __future__ import annotations

import re
from typing import Any

from workflows.lint.findings import Finding, excerpt, item_path, key_path
from workflows.lint.walk import all_templates, as_list

METRIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # Prometheus' legacy names, minus ':'


def check_metrics(m: Any) -> list[Finding]:
    findings: list[Finding] = []
    for path, template in all_templates(m.spec, m.spec_path):
        metrics = template.get("metrics")
        if isinstance(metrics, dict):
            findings += check_prometheus(metrics.get("prometheus"), key_path(key_path(path, "metrics"), "prometheus"))
    return findings


def check_prometheus(metrics: Any, path: str) -> list[Finding]:
    findings: list[Finding] = []
    for index, metric in enumerate(as_list(metrics)):
        if not isinstance(metric, dict):
            continue
        where = item_path(path, index, metric)
        name = metric.get("name")
        if not isinstance(name, str) or not METRIC_NAME.match(name):
            findings.append(Finding(where,
                                    f"metric name {excerpt(str(name))!r} may only contain letters, digits and '_'"))
        for label_index, label in enumerate(as_list(metric.get("labels"))):
            key = label.get("key") if isinstance(label, dict) else None
            if not isinstance(key, str) or not METRIC_NAME.match(key):
                findings.append(Finding(f"{key_path(where, 'labels')}[{label_index}]",
                                        f"metric label {excerpt(str(key))!r} may only contain letters, digits and '_'"))
        if not metric.get("help"):
            findings.append(Finding(where, "a metric needs a help string"))
        for kind in ("gauge", "counter", "histogram"):
            body = metric.get(kind)
            if isinstance(body, dict):
                if body.get("value") in (None, ""):
                    findings.append(Finding(key_path(where, kind), f"{kind}.value is required"))
                elif kind == "gauge" and body.get("realtime") is True and "resourcesDuration." in str(body["value"]):
                    findings.append(Finding(key_path(key_path(where, kind), "value"),
                                            "resourcesDuration metrics cannot be real-time"))
    return findings
