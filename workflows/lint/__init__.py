"""`trainyard lint`: check Argo manifests strictly and offline.

Any Workflow, WorkflowTemplate, CronWorkflow or ClusterWorkflowTemplate is checked, ours or
not; other documents in a file (a ConfigMap, a Role) are skipped. The checks:

- `schema`: unknown keys and wrong types, against Hera's generated Argo models;
- one rule module per concern of Argo's validator (workflow/validate/validate.go), listed in
  RULES, each naming the validate.go function it mirrors;
- `crossdoc`: templateRef and workflowTemplateRef resolved among all the files given.

Paths are written as `findings` describes; in a file of several YAML documents they start
with the document's 0-based position, e.g. `documents[1].spec.templates[name=main]`. Each
problem also names the line, which `loader` remembers while reading.
"""

from __future__ import annotations

import difflib
import pathlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

import yaml

from workflows.lint.arguments import check_arguments
from workflows.lint.cron import check_cron
from workflows.lint.crossdoc import check_cross_document
from workflows.lint.findings import Finding, excerpt
from workflows.lint.leaf import check_leaves
from workflows.lint.loader import line_of, load_documents
from workflows.lint.metrics import check_metrics
from workflows.lint.model import Catalog, Manifest
from workflows.lint.names import check_names
from workflows.lint.outputs import check_outputs
from workflows.lint.schema import KIND_MODELS, check_manifest
from workflows.lint.spec import check_spec
from workflows.lint.templates import check_templates
from workflows.lint.variables import check_variables

SUPPORTED_KINDS: tuple[str, ...] = tuple(KIND_MODELS)
ARGO_API_VERSION = "argoproj.io/v1alpha1"
STDIN = "-"

# One rule module per concern; each returns findings for one manifest.
RULES: tuple[Callable[[Manifest], list[Finding]], ...] = (
    check_templates,
    check_names,
    check_arguments,
    check_outputs,
    check_leaves,
    check_spec,
    check_metrics,
    check_cron,
    check_variables,
    check_cross_document,
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a manifest file, printed as `file:line: path: message` (`file:
    message` when it is about the whole file, e.g. a missing one)."""

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        if not self.path:  # about the file as a whole (missing, unreadable)
            return f"{where}: {self.message}"
        return f"{where}: {self.path}: {self.message}"


@dataclass
class _Document:
    """A manifest read from a file, with what is needed to place its findings."""

    file: str
    prefix: str
    data: Any
    lines: dict[int, tuple[int, Any]]
    manifest: Manifest | None = None


def lint_manifest(doc: dict[str, Any], source: str = "<manifest>") -> list[Problem]:
    """Problems in one manifest of a supported kind; an unsupported kind is itself a problem."""
    return _lint([_Document(source, "", doc, {})])


def lint_text(text: str, source: str) -> list[Problem]:
    """Problems in every supported manifest of a YAML stream; a syntax error is a problem too."""
    documents, problems = _read(text, source)
    return _lint(documents) + problems


def lint_paths(paths: Iterable[pathlib.Path | str]) -> list[Problem]:
    """Problems in the given files; a folder stands for the *.yaml and *.yml files under it."""
    return lint_sources(paths)[0]


MAX_BYTES = 32 * 1024 * 1024  # far above any manifest (the Kubernetes API takes ~1.5 MB an object)


def lint_sources(paths: Iterable[pathlib.Path | str], stdin: IO[bytes] | IO[str] | None = None
                 ) -> tuple[list[Problem], int]:
    """Problems in the given files, checked together (a templateRef into another file given is
    followed), and how many files were read; a folder stands for its *.yaml and *.yml files,
    `-` for standard input. At most MAX_BYTES are read from each. Files without a single Argo
    manifest are a problem, as they are for `argo lint` ("found nothing to lint")."""
    documents: list[_Document] = []
    problems: list[Problem] = []
    count = 0
    sources: list[str] = []
    for path in paths:
        if str(path) == STDIN:
            count += 1
            sources.append("<stdin>")
            stream = stdin if stdin is not None else sys.stdin.buffer
            text, trouble = _read_bounded(stream, "<stdin>")
        else:
            path = pathlib.Path(path)
            files = [path]
            if path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            for file in files:
                count += 1
                sources.append(str(file))
                found, trouble = _read_file(file)
                documents += found
                problems += trouble
            continue
        if text is not None:
            found, more = _read(text, "<stdin>")
            documents += found
            trouble += more
        problems += trouble
    if count and not documents and not problems:
        where = sources[0] if len(sources) == 1 else f"{len(sources)} files"
        problems.append(Problem(where, "", f"found nothing to lint: no {', '.join(SUPPORTED_KINDS)} "
                                "(as `argo lint`, this is a failure)"))
    return _lint(documents) + problems, count


def _read_file(file: pathlib.Path) -> tuple[list[_Document], list[Problem]]:
    try:
        with file.open("rb") as stream:
            text, problems = _read_bounded(stream, str(file))
    except FileNotFoundError:
        return [], [Problem(str(file), "", "file not found")]
    except OSError as error:
        return [], [Problem(str(file), "", f"cannot read the file: {error}")]
    if text is None:
        return [], problems
    return _read(text, str(file))


def _read_bounded(stream: IO[bytes] | IO[str], source: str) -> tuple[str | None, list[Problem]]:
    """The text of a stream read up to MAX_BYTES (endless input, /dev/zero, stop there)."""
    data = stream.read(MAX_BYTES + 1)
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogateescape")
    if len(data) > MAX_BYTES:
        return None, [Problem(source, "", f"more than {MAX_BYTES // (1024 * 1024)} MiB: not a manifest; "
                              "give the files of the manifests themselves")]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as error:
        return None, [Problem(source, "", f"cannot read the file: not UTF-8 text ({error.reason} at byte {error.start})")]


def _read(text: str, source: str) -> tuple[list[_Document], list[Problem]]:
    data, lines, error = load_documents(text)
    several = len(data) + (error is not None) > 1
    documents = [
        _Document(source, f"documents[{index}]" if several else "", doc, lines)
        for index, doc in enumerate(data)
        if _is_argo_manifest(doc)
    ]
    return documents, ([_yaml_problem(source, error)] if error is not None else [])


def _lint(documents: list[_Document]) -> list[Problem]:
    """Check every document against the others: templateRefs resolve among all of them."""
    catalog = Catalog()
    for document in documents:
        data = document.data
        if isinstance(data, dict) and data.get("kind") in SUPPORTED_KINDS:
            document.manifest = Manifest(data, data["kind"], catalog, document.file)
            catalog.add(document.manifest)
    placed = {id(d.manifest): d for d in documents if d.manifest is not None}
    problems: list[Problem] = []
    for document in documents:
        findings = _manifest_findings(document)
        for finding in findings[:MAX_PER_DOCUMENT]:
            target = placed.get(id(finding.target), document) if finding.target is not None else document
            problems.append(_problem(target, finding))
        if len(findings) > MAX_PER_DOCUMENT:
            more = f"{len(findings) - MAX_PER_DOCUMENT} more problems in this manifest are not shown"
            problems.append(_problem(document, Finding("", more)))
    files = {d.file: index for index, d in reversed(list(enumerate(documents)))}
    # One file's problems in the order of its lines (a finding about the whole manifest first).
    return sorted(dict.fromkeys(problems), key=lambda p: (files.get(p.file, len(files)), p.line or 0))


MAX_PATH, MAX_MESSAGE = 300, 500  # a hostile manifest must not make lint print megabytes
MAX_PER_DOCUMENT = 200


def _problem(document: _Document, finding: Finding) -> Problem:
    path = finding.path
    full = f"{document.prefix}.{path}" if document.prefix and path else (document.prefix or path)
    line = line_of(document.data, path, document.lines)
    return Problem(document.file, excerpt(full, MAX_PATH), excerpt(finding.message, MAX_MESSAGE), line)


def _manifest_findings(document: _Document) -> list[Finding]:
    doc = document.data
    if not isinstance(doc, dict):
        return [Finding("", "a manifest must be a mapping with apiVersion, kind, metadata and spec")]
    kind = doc.get("kind")
    if kind not in SUPPORTED_KINDS or document.manifest is None:
        return [Finding("kind", f"{_unsupported_kind(kind)}; lint checks {', '.join(SUPPORTED_KINDS)}")]
    try:  # the rules recurse as deep as the manifest nests
        findings = check_manifest(doc, kind)
        api_version = doc.get("apiVersion")
        if api_version != ARGO_API_VERSION:
            findings.insert(0, Finding("apiVersion",
                                       f"expected {ARGO_API_VERSION!r}, got {excerpt(str(api_version))!r}"))
        for rule in RULES:
            findings += rule(document.manifest)
    except RecursionError:
        return [Finding("", "the manifest is nested too deeply to check")]
    return findings


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
    return f"unknown kind {excerpt(str(kind))!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _close_kind(kind: Any) -> list[str]:
    return difflib.get_close_matches(str(kind), SUPPORTED_KINDS, n=1, cutoff=0.8)


def _yaml_problem(source: str, error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
    what = excerpt(getattr(error, "problem", None) or str(error), 200)
    context = getattr(error, "context", None)
    message = f"invalid YAML: {what}" + (f" ({context})" if context else "")
    return Problem(source, where, message, mark.line + 1 if mark else None)
