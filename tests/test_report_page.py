"""Both reports open in the Argo UI: one .html file each, its images loaded through the artifact server."""

from __future__ import annotations

import html
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from steps.errors import InputError
from steps.reports.argo_page import write_page
from workflows.local import inputs
from workflows.local.podfs import PodFS
from workflows.local.volumes import mount_volumes
from workflows.pipeline import build_pipeline

KEY_FORMAT = "trainyard/{{workflow.name}}/{{pod.name}}"  # charts/trainyard/values.yaml artifacts.keyFormat


def _ui_shows_inline(artifact: dict) -> bool:
    """The Argo UI's rule for showing an artifact in the run page (ui/src/workflows/components/
    workflow-details/artifact-panel.tsx): not a tgz, and a key ending in `/` or with a known
    extension. The key is keyFormat + "/" + the file's base name for an unarchived file
    (workflow/executor/executor.go `stageArchiveFile`)."""
    key = f"{KEY_FORMAT}/{os.path.basename(artifact['path'])}"
    tgz = "none" not in artifact.get("archive", {})
    extension = key.split("/")[-1].split(".")[-1]
    return not tgz and (key.endswith("/") or extension in ("gif", "jpg", "jpeg", "json", "html", "png", "txt"))


def test_both_reports_are_artifacts_the_argo_ui_shows() -> None:
    templates = {t["name"]: t for t in build_pipeline().to_dict()["spec"]["templates"]}
    outputs = {a["name"]: a for a in templates["test"]["outputs"]["artifacts"]}
    assert _ui_shows_inline(outputs["test-report"]) and _ui_shows_inline(outputs["evaluation-report"])
    assert not _ui_shows_inline(outputs["report"])  # the folder: downloadable, not shown (hence the pages)
    inputs = {a["name"] for a in templates["test"]["inputs"]["artifacts"]}
    assert inputs == {"evaluation"}


# An Argo page's URL: the UI's iframe src (ui/src/shared/services/workflows-service.ts artifactPath).
PAGE_URL = "https://argo.example/artifact-files/ns/workflows/wf/wf-node/outputs/{name}"


def _argo_file(url: str, node_folders: dict[str, dict[str, Path]]) -> Path | None:
    """The file the Argo artifact server streams for `url`, or None.

    server/artifacts/artifact_server.go `GetArtifactFile` splits the path at "/": [2] namespace,
    [3] workflows, [4] name, [5] node id, [6] "inputs" or "outputs", [7] artifact name, [8:] a file
    path (joined and path.Clean'ed); `getArtifactAndDriver` takes that node's input or output
    artifact by name and `art.AppendToKey(fileName)`s the path; without a trailing "/" the object is
    streamed as a file (`returnArtifact`; GCS has no `IsDirectory`). An unarchived folder artifact
    holds each file at `<key>/<relative path>` (workflow/artifacts/gcs/gcs.go `uploadObjects`), so
    the file is `<artifact folder>/<path>`; with no path, the artifact itself.
    """
    parts = urlsplit(url).path.split("/")
    if len(parts) < 8 or parts[1] != "artifact-files" or parts[5] != "wf-node" or parts[6] not in node_folders:
        return None
    artifact = node_folders[parts[6]].get(unquote(parts[7]))
    if artifact is None:
        return None
    name = posixpath.normpath(unquote("/".join(parts[8:]))) if len(parts) > 8 else ""
    if name.startswith("../") or name == "..":
        return None
    target = artifact / name if name not in ("", ".") else artifact
    return target if target.is_file() else None


def _links(page: str) -> list[str]:
    return [html.unescape(m.group(1)) for m in re.finditer(r'\b(?:src|href)="([^"]*)"', page)]


def _fake_reports(report: Path, evaluation: Path) -> None:
    """Report folders linked as steps/reports/pages.py links them: quoted, relative to the page."""
    (report / "images").mkdir(parents=True)
    (report / "images" / "a b.jpg").write_bytes(b"\xff\xd8jpeg")
    (report / "index.html").write_text(
        '<a href="images/a%20b.jpg"><img src="images/a%20b.jpg" alt="x"></a>'
        '<a href="https://example.com/x.png">x</a><a href="#top">top</a>', encoding="utf-8")
    (evaluation / "charts").mkdir(parents=True)
    (evaluation / "charts" / "selection.png").write_bytes(b"\x89PNG")
    (evaluation / "config.yaml").write_text("evaluate: {}\n")
    (evaluation / "report.html").write_text(
        '<a href="config.yaml">config.yaml</a><img src="charts/selection.png" alt="c">', encoding="utf-8")


def _test_args() -> tuple[dict, dict[str, str]]:
    templates = {t["name"]: t for t in build_pipeline().to_dict()["spec"]["templates"]}
    test = templates["test"]
    args = test["container"]["args"]
    flags = {flag: args[args.index(flag) + 1] for flag in ("--output", "--test-page", "--evaluation", "--evaluation-page")}
    return test, flags


def test_argo_pages_link_their_images_through_the_artifact_server(tmp_path: Path) -> None:
    """The test template's own paths, the step's page writer, and Argo's URL resolution: every
    image link of both pages reaches an existing file of one of the node's artifacts, and no page
    has a `data:` URI (refused by the artifact server's `img-src 'self'`: artifact_server.go
    `setSecurityHeaders`)."""
    test, flags = _test_args()
    pod = tmp_path / "pod"

    def local(container_path: str) -> Path:  # the pod's filesystem, under tmp_path
        return pod / container_path.lstrip("/")

    _fake_reports(local(flags["--output"]), local(flags["--evaluation"]))
    write_page(local(flags["--output"]) / "index.html", local(flags["--test-page"]))
    write_page(local(flags["--evaluation"]) / "report.html", local(flags["--evaluation-page"]))
    node_folders = {direction: {a["name"]: local(a["path"]) for a in test[direction]["artifacts"]}
                    for direction in ("inputs", "outputs")}
    for name in ("test-report", "evaluation-report"):
        page = node_folders["outputs"][name].read_text()
        assert "data:" not in page
        links = [link for link in _links(page) if not link.startswith(("https:", "#"))]
        files = [_argo_file(urljoin(PAGE_URL.format(name=name), link), node_folders) for link in links]
        assert len(links) == 2 and None not in files, (name, links)
    test_page = node_folders["outputs"]["test-report"].read_text()
    assert 'src="report/images/a%20b.jpg"' in test_page
    assert 'href="https://example.com/x.png"' in test_page and 'href="#top"' in test_page
    assert 'src="../inputs/evaluation/charts/selection.png"' in node_folders["outputs"]["evaluation-report"].read_text()


def test_local_pages_link_the_runners_folders(tmp_path: Path) -> None:
    """`trainyard run --local` gives each pod a file system of its own in the step's folder
    (workflows/local/podfs.py): its volume, the input copied to its path there, the outputs made by
    the step as in a pod. The page is the file there, as on the cluster, and links the other
    folders on disk."""
    test, flags = _test_args()
    producer = tmp_path / "run" / "select" / "evaluation"
    producer.mkdir(parents=True)
    task = tmp_path / "run" / "test"
    pod = PodFS(task / "fs").make()
    mount_volumes(test["container"], test, {}, pod, task, tmp_path / "run", "test")
    [evaluation] = test["inputs"]["artifacts"]
    _fake_reports(Path(pod.local(flags["--output"])), producer)
    inputs.load("evaluation", producer, pod.place(evaluation["path"]), optional=False)
    pages = [write_page(Path(pod.local(flags["--output"])) / "index.html", Path(pod.local(flags["--test-page"]))),
             write_page(Path(pod.local(flags["--evaluation"])) / "report.html", Path(pod.local(flags["--evaluation-page"])))]
    assert all(p.is_relative_to(task) for p in pages)
    for page in pages:
        links = [link for link in _links(page.read_text()) if not link.startswith(("https:", "#"))]
        assert len(links) == 2 and "data:" not in page.read_text()
        assert all((page.parent / unquote(link)).is_file() for link in links), links


def test_only_relative_paths_are_rebased(tmp_path: Path) -> None:
    report = tmp_path / "report"
    report.mkdir()
    (report / "index.html").write_text(
        '<img src="images/x.png?v=1#f"><img src="/etc/passwd"><img src="data:image/png;base64,AA">'
        '<a href="mailto:a@b.c">m</a><a href="//evil.example/x">e</a><a href="a&amp;b.png">amp</a>', encoding="utf-8")
    page = write_page(report / "index.html", tmp_path / "pages" / "test-report.html").read_text()
    assert 'src="../report/images/x.png?v=1#f"' in page
    assert 'src="/etc/passwd"' in page and 'src="data:image/png;base64,AA"' in page  # left as they were
    assert 'href="mailto:a@b.c"' in page and 'href="//evil.example/x"' in page
    assert 'href="../report/a%26b.png"' in page
    assert [p.name for p in (tmp_path / "pages").iterdir()] == ["test-report.html"]  # no partial file left


def test_a_missing_report_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="report.html: cannot read the report page"):
        write_page(tmp_path / "report.html", tmp_path / "out.html")
