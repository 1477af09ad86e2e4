"""PNG figures (matplotlib, no display needed): grouped bars with std-over-seeds error bars.

Figures are drawn on a bare `matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, so no global backend or figure state is touched (safe in tests, servers and CI).
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass

import numpy as np


@dataclass
class Panel:
    title: str
    groups: list[str]  # x tick labels
    series: dict[str, list[tuple[float | None, float | None]]]  # legend label -> (mean, std) per group
    ylabel: str = ""
    xlabel: str = ""
    # reference levels drawn as dashed lines across the panel, e.g. {"pop": {"HR@10": 0.28}}:
    # reference name -> series label -> value (the line takes that series' colour)
    refs: dict[str, dict[str, float]] | None = None


def bar_figure(panels: list[Panel], suptitle: str = "") -> bytes:
    """Side-by-side panels of grouped bars; returns PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(len(panels), 1)
    widest = max((len(p.groups) for p in panels), default=1)
    width = min(max(4.8, 0.6 * widest + 1.4) * n, 16.0)
    fig = Figure(figsize=(width, 3.8), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, p in zip(axes, panels, strict=False):
        x = np.arange(len(p.groups))
        bar = 0.8 / max(len(p.series), 1)
        colours = {}
        for s, (name, vals) in enumerate(p.series.items()):
            means = [np.nan if m is None else m for m, _ in vals]
            errs = None if all(e is None for _, e in vals) else [0.0 if e is None else e for _, e in vals]
            bars = ax.bar(x + (s - (len(p.series) - 1) / 2) * bar, means, bar, yerr=errs, capsize=3, label=name)
            colours[name] = bars.patches[0].get_facecolor() if bars.patches else None
        for ref, levels in (p.refs or {}).items():
            for name, level in levels.items():
                ax.axhline(level, ls="--", lw=1.2, color=colours.get(name), label=f"{ref} ({name})")
        ax.set_xticks(x, p.groups, rotation=20 if max((len(g) for g in p.groups), default=0) > 8 else 0)
        ax.set_title(p.title, fontsize=10)
        ax.set_ylabel(p.ylabel)
        ax.set_xlabel(p.xlabel)
        ax.grid(axis="y", alpha=0.3)
        if p.series:
            ax.legend(fontsize=8)
    if suptitle:  # wrapped to the figure's width (about 11 characters per inch at this size)
        fig.suptitle(textwrap.fill(suptitle, int(width * 11), break_on_hyphens=False), fontsize=11)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
