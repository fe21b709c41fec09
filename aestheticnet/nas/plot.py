"""Draw a genotype's normal and reduction cells to a PNG with matplotlib alone (no graphviz binary).

Layout: the two cell inputs on the left, the intermediate nodes left to right in a zig-zag (so edges that skip
nodes do not run over other nodes), the concatenated output on the right. Each edge is an arrow labelled with
its op; arrows curve so that parallel edges stay apart.
"""

from __future__ import annotations

from pathlib import Path

from aestheticnet.io import atomic_path
from aestheticnet.nas.genotypes import Genotype

__all__ = ["plot_genotype"]

_COLORS = {
    "skip_connect": "#7f7f7f",
    "max_pool_3x3": "#2ca02c",
    "avg_pool_3x3": "#98df8a",
    "sep_conv_3x3": "#1f77b4",
    "sep_conv_5x5": "#17becf",
    "dil_conv_3x3": "#d62728",
    "dil_conv_5x5": "#ff7f0e",
}


def _draw_cell(ax, edges, concat, title: str) -> None:
    steps = len(edges) // 2
    pos = {0: (0.0, 1.2), 1: (0.0, -1.2)}
    for i in range(steps):
        pos[2 + i] = (1.6 + 1.5 * i, 0.8 if i % 2 == 0 else -0.8)
    out = 2 + steps
    pos[out] = (1.6 + 1.5 * steps, 0.0)
    labels = {0: "c_{k-2}", 1: "c_{k-1}", out: "c_{k}"}
    labels.update({2 + i: str(i) for i in range(steps)})

    for node, (x, y) in pos.items():
        face = "#c6dbef" if node < 2 else "#fdd0a2" if node == out else "#fff5b5"
        ax.text(
            x,
            y,
            f"${labels[node]}$" if node in (0, 1, out) else labels[node],
            ha="center",
            va="center",
            fontsize=11,
            zorder=3,
            bbox=dict(boxstyle="round,pad=0.4", fc=face, ec="black"),
        )

    for k, (op, inp) in enumerate(edges):
        node = 2 + k // 2
        rad = 0.25 if k % 2 == 0 else -0.25
        color = _COLORS.get(op, "black")
        ax.annotate(
            "",
            xy=pos[node],
            xytext=pos[inp],
            zorder=1,
            arrowprops=dict(
                arrowstyle="-|>", color=color, lw=1.5, shrinkA=14, shrinkB=14, connectionstyle=f"arc3,rad={rad}"
            ),
        )
        (x0, y0), (x1, y1) = pos[inp], pos[node]
        # Midpoint of the arc: the chord midpoint pushed sideways by rad times the chord length.
        mx, my = (x0 + x1) / 2 + rad * (y1 - y0) / 2, (y0 + y1) / 2 - rad * (x1 - x0) / 2
        ax.text(
            mx,
            my,
            op,
            fontsize=9,
            ha="center",
            va="center",
            color=color,
            zorder=2,
            bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8),
        )
    for node in concat:
        concat_arrow = dict(arrowstyle="-|>", color="#bbbbbb", lw=1.0, ls="--", shrinkA=12, shrinkB=14)
        ax.annotate("", xy=pos[out], xytext=pos[node], zorder=1, arrowprops=concat_arrow)
    ax.set_title(title)
    ax.set_xlim(-0.8, pos[out][0] + 0.8)
    ax.set_ylim(-2.0, 2.0)
    # arc3 curves are computed in display space: equal scales keep the labels on their curves.
    ax.set_aspect("equal")
    ax.axis("off")


def plot_genotype(genotype: Genotype, path: str | Path, title: str = "") -> Path:
    """Write a PNG with the normal cell above the reduction cell; returns the path."""
    # A bare Figure with the Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = genotype.steps
    fig = Figure(figsize=(2.4 + 1.9 * steps, 8.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1)
    _draw_cell(axes[0], genotype.normal, genotype.normal_concat, "normal cell")
    _draw_cell(axes[1], genotype.reduce, genotype.reduce_concat, "reduction cell")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return path
