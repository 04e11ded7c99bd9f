"""One self-contained HTML file from a report folder, for the Argo UI.

The Argo UI shows an output artifact inline only when its key ends in a known extension such as
`.html` (ui/src/workflows/components/workflow-details/artifact-panel.tsx: `supported`), in an
iframe served from `/artifact-files/.../outputs/<artifact name>`: a page's relative links to its
images would point at other artifact names, and a folder artifact cannot be listed on GCS (the GCS
driver's `IsDirectory` is unimplemented: workflow/artifacts/gcs/gcs.go). So each report is also
written as one file with its images inlined as `data:` URIs.

Only files inside the report folder are inlined (resolved paths, no symlink escape); any other
link is left as it is.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from steps.errors import InputError

MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
               ".svg": "image/svg+xml", ".webp": "image/webp"}
_LINK = re.compile(r'(?P<attr>\b(?:src|href))="(?P<value>[^"]*)"')


def inline_page(page: Path, dest: Path) -> Path:
    """Write `page` with every local image it links to inlined into `dest`; return the file written.
    A `dest` that is an existing folder (how `trainyard run --local` maps every artifact) gets the
    page as its index.html."""
    page = Path(page)
    try:
        text = page.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{page}: cannot read the report page ({exc.__class__.__name__}); was the report written?") from None
    root = page.parent.resolve()
    cache: dict[str, str] = {}

    def inline(match: re.Match[str]) -> str:
        value = html.unescape(match.group("value"))
        if value not in cache:
            cache[value] = _data_uri(root, value) or match.group("value")
        return f'{match.group("attr")}="{cache[value]}"'

    dest = Path(dest) / "index.html" if Path(dest).is_dir() else Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    partial.write_text(_LINK.sub(inline, text), encoding="utf-8")
    partial.replace(dest)  # whole or not at all
    return dest


def _data_uri(root: Path, link: str) -> str | None:
    if not link or "://" in link or link.startswith(("/", "#", "data:", "mailto:")) or "\\" in link:
        return None
    media = MEDIA_TYPES.get(Path(link).suffix.lower())
    target = (root / link).resolve()
    if media is None or not target.is_relative_to(root) or not target.is_file():
        return None
    return f"data:{media};base64,{base64.b64encode(target.read_bytes()).decode('ascii')}"
