"""`trainyard run --local`: a rendered WorkflowTemplate's DAG on this machine, with Argo's semantics.

runner.py executes; checks.py says what it accepts; dag.py, stepgroups.py, fanout.py, retry.py, deadlines.py,
when.py, expr.py, nodes.py and template_io.py each reproduce one part of Argo's controller; pod.py runs a pod
in its own file system (podfs.py, volumes.py, inputs.py) and process.py its command; run.py wires in the local
stand-ins; summary.py reports.
"""

from workflows.local.runner import LocalRunner, RunResult, TaskResult
from workflows.local.templating import TemplateError

__all__ = ["LocalRunner", "RunResult", "TaskResult", "TemplateError"]
