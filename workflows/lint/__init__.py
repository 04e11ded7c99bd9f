"""`trainyard lint`: check Argo manifests strictly and offline.

Any Workflow, WorkflowTemplate, CronWorkflow or ClusterWorkflowTemplate is checked, ours or
not; other documents in a file (a ConfigMap, a Role) are skipped. Two kinds of check run:

- schema (`lint_schema`): unknown keys and wrong types, against Hera's generated Argo models;
- structure (`lint_templates`, `lint_dag`, `lint_refs`): entrypoint and template names, DAG
  dependencies and cycles, and `{{...}}` references to tasks, steps, inputs and parameters.

Paths are written as `lint_findings` describes; in a file of several YAML documents they start
with the document's 0-based position, e.g. `documents[1].spec.templates[name=main]`.
"""

from __future__ import annotations

import difflib
import pathlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from workflows.lint.findings import Finding
from workflows.lint.refs import check_references
from workflows.lint.schema import KIND_MODELS, check_manifest
from workflows.lint.templates import check_templates
from workflows.lint.loader import ManifestLoader

SUPPORTED_KINDS: tuple[str, ...] = tuple(KIND_MODELS)
ARGO_API_VERSION = "argoproj.io/v1alpha1"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a manifest file, printed as `file: path: message` (`file: message`
    when it is about the whole file, e.g. a missing one)."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        if not self.path:  # about the file as a whole (missing, unreadable)
            return f"{self.file}: {self.message}"
        return f"{self.file}: {self.path}: {self.message}"


def lint_manifest(doc: dict[str, Any], source: str = "<manifest>") -> list[Problem]:
    """Problems in one manifest of a supported kind; an unsupported kind is itself a problem."""
    return _to_problems(source, "", _manifest_findings(doc))


def lint_text(text: str, source: str) -> list[Problem]:
    """Problems in every supported manifest of a YAML stream; a syntax error is a problem too."""
    documents: list[Any] = []
    syntax_error: yaml.YAMLError | None = None
    try:
        for doc in yaml.load_all(text, Loader=ManifestLoader):
            documents.append(doc)
    except yaml.YAMLError as error:  # the documents before it are still checked
        syntax_error = error
    several = len(documents) + (syntax_error is not None) > 1
    problems: list[Problem] = []
    for index, doc in enumerate(documents):
        if _is_argo_manifest(doc):
            prefix = f"documents[{index}]" if several else ""
            problems += _to_problems(source, prefix, _manifest_findings(doc))
    if syntax_error is not None:
        problems.append(_yaml_problem(source, syntax_error))
    return problems


def lint_paths(paths: Iterable[pathlib.Path]) -> list[Problem]:
    """Problems in the given files; a folder stands for the *.yaml and *.yml files under it."""
    problems: list[Problem] = []
    for path in map(pathlib.Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            files = [path]
        for file in files:
            problems += _lint_file(file)
    return problems


def _lint_file(file: pathlib.Path) -> list[Problem]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [Problem(str(file), "", "file not found")]
    except (OSError, UnicodeDecodeError) as error:
        return [Problem(str(file), "", f"cannot read the file: {error}")]
    return lint_text(text, str(file))


def _manifest_findings(doc: Any) -> list[Finding]:
    if not isinstance(doc, dict):
        return [Finding("", "a manifest must be a mapping with apiVersion, kind, metadata and spec")]
    kind = doc.get("kind")
    if kind not in SUPPORTED_KINDS:
        return [Finding("kind", f"{_unsupported_kind(kind)}; lint checks {', '.join(SUPPORTED_KINDS)}")]
    findings = check_manifest(doc, kind)
    api_version = doc.get("apiVersion")
    if api_version != ARGO_API_VERSION:
        findings.insert(0, Finding("apiVersion", f"expected {ARGO_API_VERSION!r}, got {api_version!r}"))
    return findings + check_templates(doc, kind) + check_references(doc, kind)


def _is_argo_manifest(doc: Any) -> bool:
    """Whether a document in a stream is one to lint: an Argo kind, or a misspelling of one."""
    if not isinstance(doc, dict):
        return False
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    if kind in SUPPORTED_KINDS:
        return api_version is None or str(api_version).startswith("argoproj.io/")
    # `kind: Worfklow` next to an Argo apiVersion is a typo, not some other resource.
    return str(api_version).startswith("argoproj.io/") and bool(_close_kind(kind))


def _unsupported_kind(kind: Any) -> str:
    if kind is None:
        return "kind is missing"
    close = _close_kind(kind)
    return f"unknown kind {kind!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _close_kind(kind: Any) -> list[str]:
    return difflib.get_close_matches(str(kind), SUPPORTED_KINDS, n=1, cutoff=0.8)


def _to_problems(source: str, prefix: str, findings: list[Finding]) -> list[Problem]:
    def full(path: str) -> str:
        if not prefix:
            return path
        return f"{prefix}.{path}" if path else prefix

    return [Problem(source, full(f.path), f.message) for f in findings]


def _yaml_problem(source: str, error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
    what = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    return Problem(source, where, f"invalid YAML: {what}" + (f" ({context})" if context else ""))
