"""`trainyard run --local`: a rendered WorkflowTemplate's DAG on this machine, with Argo's semantics.

runner.py executes; dag.py, retry.py, when.py, expr.py, nodes.py and template_io.py each reproduce one part of
Argo's controller; process.py runs a step; run.py wires in the local stand-ins; summary.py reports.
"""

from workflows.local.runner import LocalRunner, RunResult, TaskResult
from workflows.local.templating import TemplateError

__all__ = ["LocalRunner", "RunResult", "TaskResult", "TemplateError"]
