"""The reports' charts, drawn with matplotlib (headless, Agg) into PNG files beside the page.

Sized for the page's two-column grid: a 6.4 x 4 in figure shows at about 640 px, so 11 pt text is
about 15 px on screen; saved at 150 dpi so it stays sharp on high-density screens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in a pod or a test; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

_SIZE = (6.4, 4.0)  # inches
_DPI = 150
_STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.titleweight": "bold", "axes.grid": True,
          "grid.color": "#e2e8f0", "axes.edgecolor": "#94a3b8", "axes.spines.top": False,
          "axes.spines.right": False, "legend.fontsize": 10, "legend.frameon": False}
CHAMPION_COLOR = "#94a3b8"


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=_DPI)
    plt.close(fig)
    return path


def metrics_by_checkpoint(
    rows: Sequence[Mapping[str, object]], columns: Sequence[str], selected: int | None,
    champion: Mapping[str, float] | None, path: Path, title: str,
) -> Path | None:
    """One line per metric over the checkpoints' iterations; the selected checkpoint ringed.

    `rows`: {"iteration": int, column: float, ...}; `champion`: production's values, dashed.
    None when no column has a finite value.
    """
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=_SIZE)
        drawn = False
        for number, column in enumerate(columns):
            points = [(int(r["iteration"]), float(r[column])) for r in rows if _finite(r.get(column))]
            if not points:
                continue
            drawn = True
            color = f"C{number}"
            ax.plot(*zip(*points), marker="o", color=color, label=column, linewidth=2)
            if champion and _finite(champion.get(column)):
                ax.axhline(float(champion[column]), color=color, linestyle=":", linewidth=1.5)
            _ring(ax, points, selected)
        if not drawn:
            plt.close(fig)
            return None
        ax.set(title=title, xlabel="iteration", ylabel="value", ylim=(0, 1.02))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
        return _save(fig, path)


def branches_by_checkpoint(
    lines: Mapping[str, Sequence[Mapping[str, object]]], key: str, selected_branch: object, selected: int | None,
    champion: object, path: Path, title: str,
) -> Path | None:
    """A sweep: `key` over each branch's own checkpoints, one line per branch; the selected
    checkpoint ringed, production dotted. `lines`: {branch: [{"iteration": int, key: float}, ...]}."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=_SIZE)
        drawn = False
        for number, (branch, rows) in enumerate(lines.items()):
            points = [(int(r["iteration"]), float(r[key])) for r in rows if _finite(r.get(key))]  # type: ignore[arg-type]
            if not points:
                continue
            drawn = True
            ax.plot(*zip(*points), marker="o", color=f"C{number}", label=branch, linewidth=2)
            if branch == selected_branch:
                _ring(ax, points, selected)
        if not drawn:
            plt.close(fig)
            return None
        if _finite(champion):
            ax.axhline(float(champion), color=CHAMPION_COLOR, linestyle=":", linewidth=1.5, label="production")  # type: ignore[arg-type]
        ax.set(title=title, xlabel="iteration", ylabel=key, ylim=(0, 1.02))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4)
        return _save(fig, path)


def training_curves(log: Sequence[Mapping[str, float]], path: Path) -> Path | None:
    """Total and per-part training loss (log scale), and the learning rate, by iteration."""
    entries = [e for e in log if _finite(e.get("iteration")) and _finite(e.get("loss"))]
    if not entries:
        return None
    iterations = [int(e["iteration"]) for e in entries]
    parts = [k for k in entries[-1] if k.startswith("loss_")]
    with plt.rc_context(_STYLE):
        fig, (loss_ax, lr_ax) = plt.subplots(1, 2, figsize=_SIZE, gridspec_kw={"width_ratios": [3, 2]})
        loss_ax.plot(iterations, [e["loss"] for e in entries], color="#0f172a", linewidth=2.5, label="total")
        for number, part in enumerate(parts):
            values = [e.get(part, math.nan) for e in entries]
            loss_ax.plot(iterations, values, color=f"C{number}", linewidth=1.5, label=part.removeprefix("loss_"))
        loss_ax.set(title="training loss", xlabel="iteration", yscale="log")
        # Labels at 1, 2 and 5 of each decade, as plain numbers (0.5, not 5x10^-1); unlabelled minor
        # ticks: labelling every minor tick piles the labels on top of each other.
        loss_ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        loss_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
        loss_ax.yaxis.set_minor_formatter(NullFormatter())
        loss_ax.legend(fontsize=9, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))
        lr_ax.plot(iterations, [e.get("lr", math.nan) for e in entries], color="#1e40af", linewidth=2)
        lr_ax.set(title="learning rate", xlabel="iteration", ylim=(0, None))
        lr_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
        return _save(fig, path)


def pr_curves(curves: Mapping[str, Mapping[str, Sequence[float]]], path: Path, title: str) -> Path | None:
    """Precision over recall, one line per curve; COCO's undefined precision (< 0) left out."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=_SIZE)
        drawn = False
        for number, (name, curve) in enumerate(curves.items()):
            points = [(float(r), float(p)) for r, p in zip(curve["recall"], curve["precision"]) if float(p) >= 0]
            if points:
                drawn = True
                ax.plot(*zip(*points), color=f"C{number}", linewidth=2.5, label=name)
        if not drawn:
            plt.close(fig)
            return None
        ax.set(title=title, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(loc="lower left", fontsize=9)
        return _save(fig, path)


def _ring(ax: plt.Axes, points: Sequence[tuple[int, float]], selected: int | None) -> None:
    """A green ring around the selected checkpoint's point."""
    for x, y in points:
        if x == selected:
            ax.plot([x], [y], marker="o", markersize=14, markerfacecolor="none", markeredgecolor="#15803d",
                    markeredgewidth=2.5)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
