"""Both reports open in the Argo UI: one self-contained .html file each."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from steps.errors import InputError
from steps.report_page import inline_page
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


def test_a_page_inlines_its_own_images_and_nothing_outside(tmp_path: Path) -> None:
    report = tmp_path / "report"
    (report / "images").mkdir(parents=True)
    (report / "images" / "a b.jpg").write_bytes(b"\xff\xd8jpeg")
    (tmp_path / "secret.png").write_bytes(b"host file")
    (report / "images" / "link.png").symlink_to(tmp_path / "secret.png")
    (report / "index.html").write_text(
        '<a href="images/a b.jpg"><img src="images/a b.jpg"></a><img src="../secret.png">'
        '<img src="images/link.png"><img src="/etc/passwd.png"><a href="https://example.com/x.png">x</a>',
        encoding="utf-8")
    page = inline_page(report / "index.html", tmp_path / "pages" / "test-report.html").read_text()
    data = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8jpeg").decode()
    assert page.count(data) == 2
    assert 'src="../secret.png"' in page and 'src="images/link.png"' in page and 'src="/etc/passwd.png"' in page
    assert base64.b64encode(b"host file").decode() not in page
    assert 'href="https://example.com/x.png"' in page
    assert [p.name for p in (tmp_path / "pages").iterdir()] == ["test-report.html"]  # no partial file left


def test_a_missing_report_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="report.html: cannot read the report page"):
        inline_page(tmp_path / "report.html", tmp_path / "out.html")
