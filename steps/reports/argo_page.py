"""A report page for the Argo UI: the report's HTML as one file, its links rebased to where it is written.

The Argo UI shows an output artifact inline only when its key ends in a known extension such as
`.html` (ui/src/workflows/components/workflow-details/artifact-panel.tsx: `supported`), in an
iframe whose src is `artifact-files/<ns>/workflows/<wf>/<nodeId>/outputs/<artifact name>`
(ui/src/shared/services/workflows-service.ts `artifactPath`). A folder artifact cannot be browsed
on GCS (the GCS driver's `IsDirectory` is unimplemented: workflow/artifacts/gcs/gcs.go), so each
report is also written as one `.html` file artifact.

Its images cannot be inlined as `data:` URIs: the artifact server sends every file with
`Content-Security-Policy: sandbox allow-same-origin; base-uri 'none'; default-src 'none';
img-src 'self'; style-src 'self' 'unsafe-inline'` (server/artifacts/artifact_server.go
`setSecurityHeaders`, called by `returnArtifact`), and `img-src 'self'` refuses `data:`. The
page links them instead, through the same artifact server: `GetArtifactFile` reads a URL as
`/artifact-files/<ns>/workflows/<wf>/<nodeId>/<inputs|outputs>/<artifact>/<path...>` and
`getArtifactAndDriver` appends `<path...>` to that artifact's key (`art.AppendToKey`), which for
an unarchived folder artifact is the key of the file under it (gcs.go `uploadObjects`). So a
relative link from the page at `.../<nodeId>/outputs/test-report` reaches
  `report/images/x.png`              -> file `images/x.png` of this node's output folder `report`;
  `../inputs/evaluation/charts/x.png` -> file `charts/x.png` of this node's input folder `evaluation`.

One rule serves the cluster and `trainyard run --local` alike: every relative link of the report
is rebased to the file the page is written to, as a relative file path (lexically, like a URL).
On the cluster that path is the URL path because the test template lays its container paths out
as Argo's URLs are (workflows/pipeline.py `_page`: the page at `<outputs>/<name>.html`, output
folders at `<outputs>/<name>`, input folders at `<inputs>/<name>`, `<inputs>` = `../inputs` from
`<outputs>`; tests/test_report_page.py checks it). The local runner gives each pod a file system
of its own on disk (workflows/local/podfs.py), the same layout: the same rule links the page to the
other folders there. No link is followed or read, so nothing
outside the report can end up in the page.
"""

from __future__ import annotations

import html
import os
import posixpath
import re
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from steps.errors import InputError

_LINK = re.compile(r'(?P<attr>\b(?:src|href))="(?P<value>[^"]*)"')


def write_page(page: Path, dest: Path) -> Path:
    """Write `page` into `dest` with its relative links rebased to `dest`; return the file written.
    A `dest` that is an existing folder (how `trainyard run --local` maps every artifact) gets the
    page as its index.html."""
    page = Path(page)
    try:
        text = page.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{page}: cannot read the report page ({exc.__class__.__name__}); was the report written?") from None
    dest = Path(dest) / "index.html" if Path(dest).is_dir() else Path(dest)
    source_dir, dest_dir = os.path.abspath(page.parent), os.path.abspath(dest.parent)

    def rebase(match: re.Match[str]) -> str:
        link = rebased_link(html.unescape(match.group("value")), source_dir, dest_dir)
        return f'{match.group("attr")}="{html.escape(link)}"' if link is not None else match.group(0)

    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    partial.write_text(_LINK.sub(rebase, text), encoding="utf-8")
    partial.replace(dest)  # whole or not at all
    return dest


def rebased_link(link: str, source_dir: str, dest_dir: str) -> str | None:
    """`link`, relative to `source_dir`, as a link relative to `dest_dir`; None for a link that is
    not a relative path (a URL, an absolute path, a fragment, a `data:` URI)."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/") or "\\" in parts.path:
        return None
    target = posixpath.normpath(posixpath.join(Path(source_dir).as_posix(), unquote(parts.path)))
    relative = posixpath.relpath(target, Path(dest_dir).as_posix())
    return urlunsplit(("", "", quote(relative), parts.query, parts.fragment))
