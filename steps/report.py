"""Self-contained HTML reports: the test step's `index.html` and the evaluate step's `report.html`.

No external assets (the Argo UI shows an artifact's index.html as is): inline CSS, images saved
beside the page and linked relatively, charts drawn with Pillow (matplotlib is not in the
evaluate image). Everything that comes from data is HTML-escaped.
"""

from __future__ import annotations

import difflib
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path, PureWindowsPath  # the Windows flavour splits on '/' and '\\'
from urllib.parse import quote

from PIL import Image, ImageDraw

from steps.visualize import load_font

_STYLE = """
:root { --ok: #15803d; --bad: #c81e1e; --muted: #64748b; --line: #e2e8f0; --accent: #1e40af; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  sans-serif; color: #0f172a; background: #f8fafc; }
h1 { margin: 0 0 4px; font-size: 24px; } h2 { margin: 28px 0 10px; font-size: 18px; }
.meta { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 8px 0 0; padding: 0;
  color: var(--muted); font-size: 13px; }
.meta div { display: flex; gap: 6px; } .meta dt { font-weight: 600; } .meta dd { margin: 0;
  color: #0f172a; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.scroll { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; font-size: 14px; width: 100%; }
th, td { padding: 6px 12px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #f1f5f9; position: sticky; top: 0; }
tr.best td { background: #dcfce7; font-weight: 600; }
th.key, td.key { background: #eff6ff; }
tr.best td.key { background: #bbf7d0; }
tr.champion td { color: var(--muted); font-style: italic; border-top: 2px solid var(--line); }
.summary { margin: 6px 0 0; color: var(--muted); }
.grid { display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; overflow: hidden;
  box-shadow: 0 1px 2px rgb(0 0 0 / 6%); border-top: 4px solid var(--muted); }
.card.ok { border-top-color: var(--ok); } .card.bad { border-top-color: var(--bad); }
.card img { display: block; width: 100%; height: auto; background: #0f172a; }
.card .body { padding: 10px 12px 12px; }
.name { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px;
  word-break: break-all; }
.plates { list-style: none; margin: 8px 0; padding: 0; }
.plates li { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 15px; }
.mark { display: inline-block; width: 1.3em; font-weight: 700; }
.ok .mark, .mark.ok { color: var(--ok); } .mark.bad { color: var(--bad); }
.truth { color: var(--muted); }
.count { color: var(--muted); font-size: 13px; }
details { margin-top: 8px; font-size: 13px; } summary { cursor: pointer; color: var(--accent); }
.charts { display: grid; gap: 16px; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); }
.charts figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 8px; } .charts img { width: 100%; height: auto; display: block; }
.charts figcaption { color: var(--muted); font-size: 13px; padding: 4px; }
"""


@dataclass(frozen=True)
class ReportItem:
    """One test image in the report: its drawing and what was read on it."""

    file_name: str
    image: Image.Image  # predictions already drawn (steps.visualize.draw_predictions)
    plate_reads: list[str] = field(default_factory=list)
    truth_strings: list[str] | None = None  # None: no ground truth for this image
    num_detections: int = 0
    ground_truth_image: Image.Image | None = None  # shown under a "ground truth" toggle

    @property
    def all_read(self) -> bool | None:
        """Whether every truth string was read exactly; None without truth."""
        if self.truth_strings is None:
            return None
        return sorted(self.truth_strings) == sorted(self.plate_reads)


def write_test_report(
    out_dir: Path,
    items: list[ReportItem],
    metrics_table: dict[str, float | str],
    title: str,
    meta: dict[str, str],
) -> Path:
    """Write `out_dir/index.html` and its drawn images under `out_dir/images/`; return the page."""
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    cards = []
    for number, item in enumerate(items):
        # The number keeps names unique; the slug keeps them readable and safe in a URL.
        stem = f"{number:04d}_{_slug(PureWindowsPath(item.file_name).stem)}"
        link = _save_image(item.image, images_dir, stem)
        truth_link = None
        if item.ground_truth_image is not None:
            truth_link = _save_image(item.ground_truth_image, images_dir, f"{stem}_gt")
        cards.append(_card(item, link, truth_link))
    judged = [item.all_read for item in items if item.all_read is not None]
    summary = f"{sum(judged)} of {len(judged)} images with every plate read exactly. " if judged else ""
    body = f"""
<header><h1>{escape(title)}</h1>{_meta_list(meta)}</header>
<h2>Metrics</h2>
<div class="scroll">{_key_value_table(metrics_table)}</div>
<h2>Images</h2>
<p class="summary">{escape(summary)}{len(items)} image{'' if len(items) == 1 else 's'} shown.</p>
<div class="grid">{''.join(cards)}</div>
"""
    page = out_dir / "index.html"
    page.write_text(_page(title, body), encoding="utf-8")
    return page


def write_evaluation_report(out_dir: Path, evaluation: dict, pr_curves: dict | None) -> Path:
    """Write `out_dir/report.html`: every checkpoint's metrics, the best highlighted, and charts.

    `evaluation` (the evaluate step's evaluation.json):
      {"select_key": "segm/AP", "select_mode": "max", "best": "<checkpoint>" (optional: computed),
       "checkpoints": [{"checkpoint": str, "iteration": int, "metrics": {key: float}}, ...],
       "champion": {"model_id": str, "metrics": {...}} or None (production, shown as a last row),
       other values (str, number, bool, None, or a dict of those): listed in the header}
    `pr_curves` (optional): {caption: {"recall": [...], "precision": [...]}} drawn here, or
    {caption: path of a PNG} copied beside the page. Precision < 0 (COCO's "undefined") is left out.
    """
    out_dir = Path(out_dir)
    charts_dir = out_dir / "charts"
    charts_dir.mkdir(parents=True, exist_ok=True)
    key, mode = str(evaluation["select_key"]), str(evaluation.get("select_mode", "max"))
    checkpoints = sorted(evaluation["checkpoints"], key=lambda c: int(c.get("iteration", 0)))
    best = evaluation.get("best") or _best_name(checkpoints, key, mode)

    scored = [c for c in checkpoints if _finite(c["metrics"].get(key))]
    points = [(float(c["iteration"]), float(c["metrics"][key])) for c in scored]
    best_points = [(float(c["iteration"]), float(c["metrics"][key])) for c in scored if _name(c) == best]
    champion = evaluation.get("champion")
    series = [Series(key, points), Series(f"selected ({mode})", best_points, marker_only=True)]
    branches = evaluation.get("branches") or []
    if branches:  # a sweep: one curve per branch instead of one for all
        series[:1] = [Series(str(b["branch"]), [(float(c["iteration"]), float(c["metrics"][key])) for c in scored
                                                 if c.get("branch") == b["branch"]]) for b in branches]
    if champion and _finite(champion["metrics"].get(key)) and points:
        # Production's score as a flat line: the bar the selected checkpoint has to clear.
        level = float(champion["metrics"][key])
        series.append(Series("production", [(points[0][0], level), (points[-1][0], level)], color=_CHAMPION_COLOR))
    figures = []
    if points:
        chart = line_chart(series, title=f"{key} per checkpoint", x_label="iteration", y_label=key)
        figures.append((_save_image(chart, charts_dir, "selection", fmt="PNG"), f"{key} by iteration"))
    for number, (caption, curve) in enumerate((pr_curves or {}).items()):
        stem = f"pr_{number:02d}_{_slug(str(caption))}"
        figures.append((_pr_figure(curve, str(caption), charts_dir, stem), str(caption)))

    header_meta = {"selection": f"{mode} of {key}", "selected checkpoint": str(best)}
    for name, value in evaluation.items():
        if name not in {"select_key", "select_mode", "best", "checkpoints", "champion", "branches"}:
            header_meta.update(_scalars(name, value))
    figure_html = "".join(
        f'<figure><img src="{escape(link)}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'
        for link, caption in figures
    ) or f'<p class="summary">No chart: no checkpoint has a finite {escape(key)}.</p>'
    body = f"""
<header><h1>Evaluation</h1>{_meta_list(header_meta)}</header>
{_branch_table(branches, key) if branches else ""}<h2>Checkpoints</h2>
<p class="summary">Best checkpoint: the {'highest' if mode == 'max' else 'lowest'} <b>{escape(key)}</b>
(highlighted row).</p>
<div class="scroll">{_checkpoint_table(checkpoints, key, best, champion)}</div>
<h2>Charts</h2>
<div class="charts">{figure_html}</div>
"""
    page = out_dir / "report.html"
    page.write_text(_page("Evaluation", body), encoding="utf-8")
    return page


def _branch_table(branches: list[dict], key: str) -> str:
    """A sweep's branches side by side: settings, checkpoints scored, the best one and its scores."""
    shown = list(dict.fromkeys([key, "bbox/AP", "segm/AP", "dv_mAP", "EIR"]))
    head = "".join(f"<th>{escape(k)}</th>" for k in ["branch", "overrides", "checkpoints", "best", *shown])
    rows = []
    for b in branches:
        metrics = b.get("metrics", {})
        cells = [str(b["branch"]), str(b.get("overrides", "")), str(b.get("checkpoints", "")), str(b.get("best", ""))]
        cells += [f"{metrics[k]:.4f}" if _finite(metrics.get(k)) else "-" for k in shown]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return (f'<h2>Branches</h2><div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>\n')


def _card(item: ReportItem, link: str, truth_link: str | None) -> str:
    state = {True: "card ok", False: "card bad", None: "card"}[item.all_read]
    rows = [_plate_row(read, truth, item.truth_strings is not None) for read, truth in _pairs(item)]
    detections = f"{item.num_detections} detection{'' if item.num_detections == 1 else 's'}"
    truth_block = ""
    if truth_link is not None:
        truth_block = (
            f'<details><summary>ground truth</summary><img src="{escape(truth_link)}" '
            f'alt="ground truth of {escape(item.file_name)}" loading="lazy"></details>'
        )
    return f"""<article class="{state}">
<a href="{escape(link)}"><img src="{escape(link)}" alt="{escape(item.file_name)}" loading="lazy"></a>
<div class="body"><div class="name">{escape(item.file_name)}</div>
<ul class="plates">{''.join(rows) or '<li class="truth">no plate read, none expected</li>'}</ul>
<div class="count">{detections}</div>{truth_block}</div>
</article>"""


def _pairs(item: ReportItem) -> list[tuple[str | None, str | None]]:
    """(read, truth) rows: exact matches, then each other read with its closest leftover truth.

    None on one side: a read with no plate left to compare, or a plate that nothing read.
    """
    truths = list(item.truth_strings or [])
    pairs: list[tuple[str | None, str | None]] = []
    unmatched = []
    for read in item.plate_reads:
        if read in truths:
            truths.remove(read)
            pairs.append((read, read))
        else:
            unmatched.append(read)
    for read in unmatched:
        closest = max(truths, key=lambda truth: difflib.SequenceMatcher(None, read, truth).ratio(), default=None)
        if closest is not None:
            truths.remove(closest)
        pairs.append((read, closest))
    return pairs + [(None, truth) for truth in truths]


def _plate_row(read: str | None, truth: str | None, judged: bool) -> str:
    if read is None:
        shown = '<span class="truth">(not read)</span>'
    else:
        shown = escape(read) if read else '<span class="truth">(none)</span>'
    if not judged:
        return f'<li><span class="mark"></span>{shown}</li>'
    if read is not None and read == truth:
        return f'<li><span class="mark ok" title="read = truth">✓</span>{shown}</li>'
    expected = "(no plate)" if truth is None else escape(truth)
    mark = '<span class="mark bad" title="read ≠ truth">✗</span>'
    return f'<li>{mark}{shown} <span class="truth">/ {expected}</span></li>'


def _checkpoint_table(checkpoints: list[dict], key: str, best: object, champion: dict | None) -> str:
    rows_metrics = [c["metrics"] for c in checkpoints] + ([champion["metrics"]] if champion else [])
    columns = list(dict.fromkeys([key] + [k for metrics in rows_metrics for k in metrics]))  # first-seen order
    key_class = ' class="key"'
    head = "".join(f"<th{key_class if col == key else ''}>{escape(col)}</th>" for col in columns)
    rows = []
    for c in checkpoints:
        marker = ' class="best"' if _name(c) == best else ""
        label = escape(str(_name(c))) + (" ★" if _name(c) == best else "")
        iteration = escape(str(c.get("iteration", "")))
        cells = _cells(c["metrics"], columns, key)
        rows.append(f'<tr{marker}><td>{label}</td><td class="num">{iteration}</td>{cells}</tr>')
    if champion:
        label = f"production: {escape(str(champion.get('model_id', '')))}"
        rows.append(f'<tr class="champion"><td>{label}</td><td></td>{_cells(champion["metrics"], columns, key)}</tr>')
    head = f"<thead><tr><th>checkpoint</th><th>iteration</th>{head}</tr></thead>"
    return f"<table>{head}<tbody>{''.join(rows)}</tbody></table>"


def _cells(metrics: Mapping[str, object], columns: list[str], key: str) -> str:
    return "".join(
        f'<td class="num{" key" if col == key else ""}">{escape(_format(metrics.get(col, "")))}</td>' for col in columns
    )


def _name(checkpoint: Mapping[str, object]) -> object:
    """A checkpoint row's name: evaluate writes `checkpoint`; `name` is accepted too."""
    return checkpoint.get("checkpoint", checkpoint.get("name"))


def _scalars(name: str, value: object) -> dict[str, str]:
    """Header entries for a value: itself if plain, or one entry per plain value of a dict."""
    if isinstance(value, dict):
        return {f"{name} {k}".replace("_", " "): _format(v) for k, v in value.items() if _plain(v)}
    return {name.replace("_", " "): _format(value)} if _plain(value) else {}


def _plain(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _key_value_table(values: Mapping[str, object]) -> str:
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td{_numeric_class(v)}>{escape(_format(v))}</td></tr>"
        for k, v in values.items()
    )
    return f"<table><tbody>{rows or '<tr><td>no metrics</td></tr>'}</tbody></table>"


def _numeric_class(value: object) -> str:
    """Numbers align right (digits line up); text stays left."""
    return ' class="num"' if isinstance(value, int | float) and not isinstance(value, bool) else ""


def _meta_list(meta: Mapping[str, str]) -> str:
    entries = "".join(f"<div><dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd></div>" for k, v in meta.items())
    return f'<dl class="meta">{entries}</dl>'


def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{_STYLE}</style></head>
<body>{body}</body></html>
"""


def _pr_figure(curve: object, caption: str, charts_dir: Path, stem: str) -> str:
    if isinstance(curve, str | Path):
        target = charts_dir / f"{stem}{Path(curve).suffix or '.png'}"
        shutil.copyfile(curve, target)
        return f"{charts_dir.name}/{quote(target.name)}"
    data = dict(curve)  # type: ignore[call-overload]
    points = [(float(r), float(p)) for r, p in zip(data["recall"], data["precision"]) if float(p) >= 0]
    chart = line_chart([Series("precision", points)], title=caption, x_label="recall", y_label="precision",
                       x_range=(0.0, 1.0), y_range=(0.0, 1.0))
    return _save_image(chart, charts_dir, stem, fmt="PNG")


def _save_image(image: Image.Image, folder: Path, stem: str, fmt: str = "JPEG") -> str:
    """Save under `folder`; return the link relative to the page one level above it."""
    name = f"{stem}.{'jpg' if fmt == 'JPEG' else 'png'}"
    if fmt == "JPEG":
        # 4:4:4 chroma keeps the thin coloured outlines and tag text crisp.
        image.convert("RGB").save(folder / name, format="JPEG", quality=90, subsampling=0)
    else:
        image.save(folder / name, format=fmt)
    return f"{folder.name}/{quote(name)}"


def _slug(text: str) -> str:
    """Letters, digits, '-' and '_' only: safe as a file name and in a URL."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in text)[:60] or "image"


def _best_name(checkpoints: Sequence[dict], key: str, mode: str) -> object:
    scored = [c for c in checkpoints if _finite(c["metrics"].get(key))]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return _name(pick(scored, key=lambda c: float(c["metrics"][key])))


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _format(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


# Charts: a small Pillow line chart, enough for a metric per iteration and a PR curve.

_CHART_SIZE = (960, 480)
_MARGIN = (84, 56, 28, 64)  # left, top, right, bottom
_LINE_COLOR = (30, 64, 175)
_MARK_COLOR = (21, 128, 61)
_CHAMPION_COLOR = (148, 163, 184)
_GRID_COLOR = (226, 232, 240)
_TEXT_COLOR = (15, 23, 42)


@dataclass(frozen=True)
class Series:
    name: str
    points: list[tuple[float, float]]
    marker_only: bool = False  # drawn as large rings (a highlighted point), not as a line
    color: tuple[int, int, int] | None = None  # default: blue lines, green rings


def line_chart(
    series: list[Series],
    title: str,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
) -> Image.Image:
    """A white PNG-ready chart of `series` with gridlines, tick labels and a legend."""
    width, height = _CHART_SIZE
    left, top, right, bottom = _MARGIN
    chart = Image.new("RGB", _CHART_SIZE, "white")
    draw = ImageDraw.Draw(chart)
    every = [p for s in series for p in s.points]
    xs, ys = _ticks(x_range or _span([x for x, _ in every])), _ticks(y_range or _span([y for _, y in every]))
    plot = (left, top, width - right, height - bottom)

    def at(x: float, y: float) -> tuple[float, float]:
        fx = (x - xs[0]) / (xs[-1] - xs[0])
        fy = (y - ys[0]) / (ys[-1] - ys[0])
        return plot[0] + fx * (plot[2] - plot[0]), plot[3] - fy * (plot[3] - plot[1])

    small, normal, bold = load_font(14), load_font(15), load_font(18)
    for y in ys:
        py = at(xs[0], y)[1]
        draw.line([(plot[0], py), (plot[2], py)], fill=_GRID_COLOR, width=1)
        draw.text((plot[0] - 8, py), _tick_label(y, ys), fill=_TEXT_COLOR, font=small, anchor="rm")
    for x in xs:
        px = at(x, ys[0])[0]
        draw.line([(px, plot[1]), (px, plot[3])], fill=_GRID_COLOR, width=1)
        draw.text((px, plot[3] + 8), _tick_label(x, xs), fill=_TEXT_COLOR, font=small, anchor="mt")
    draw.rectangle(plot, outline=(148, 163, 184), width=1)
    draw.text((left, 18), title, fill=_TEXT_COLOR, font=bold)
    draw.text(((plot[0] + plot[2]) / 2, height - 18), x_label, fill=_TEXT_COLOR, font=normal, anchor="ms")
    _vertical_text(chart, y_label, normal, center=(22, (plot[1] + plot[3]) / 2))

    legend_x = width - right
    for s in reversed(series):
        if not s.points:
            continue
        color = s.color or (_MARK_COLOR if s.marker_only else _LINE_COLOR)
        pixels = [at(x, y) for x, y in sorted(s.points)]
        if s.marker_only:
            for (px, py), (_, y) in zip(pixels, sorted(s.points)):
                draw.ellipse((px - 9, py - 9, px + 9, py + 9), outline=color, width=3)
                draw.text((px, py - 14), f"{y:.4f}", fill=color, font=small, anchor="mb")
        else:
            if len(pixels) > 1:
                draw.line(pixels, fill=color, width=3, joint="curve")
            for px, py in pixels if len(pixels) <= 40 else []:  # dots only while they stay apart
                draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=color)
        if len([s for s in series if s.points]) < 2:
            continue  # one series: its name is the title already
        text_w = draw.textlength(s.name, font=small)
        legend_x -= text_w + 28
        draw.rectangle((legend_x, 24, legend_x + 14, 38), fill=color)
        draw.text((legend_x + 20, 31), s.name, fill=_TEXT_COLOR, font=small, anchor="lm")
    return chart


def _vertical_text(chart: Image.Image, text: str, font: object, center: tuple[float, float]) -> None:
    """Draw `text` turned 90 degrees anticlockwise, centred on `center` (a y-axis label)."""
    probe = ImageDraw.Draw(chart)
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)  # type: ignore[arg-type]
    label = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(label).text((2 - left, 2 - top), text, fill=255, font=font)  # type: ignore[arg-type]
    turned = label.rotate(90, expand=True)
    corner = (round(center[0] - turned.width / 2), round(center[1] - turned.height / 2))
    chart.paste(Image.new("RGB", turned.size, _TEXT_COLOR), corner, turned)


def _span(values: list[float]) -> tuple[float, float]:
    if not values:
        return (0.0, 1.0)
    low, high = min(values), max(values)
    if low == high:  # one point or a flat line: give it some room
        pad = abs(low) * 0.1 or 1.0
        return (low - pad, high + pad)
    return (low, high)


def _ticks(span: tuple[float, float], count: int = 5) -> list[float]:
    """Round tick values covering `span` (steps of 1, 2 or 5 x 10^k)."""
    low, high = span
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [i * step for i in range(first, last + 1)]


def _tick_label(value: float, ticks: list[float]) -> str:
    step = ticks[1] - ticks[0]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:,.{decimals}f}"
