"""The diagram of lesson 07: which hidden states `output` and `h_n` hold (matplotlib, static)."""

from __future__ import annotations

from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

__all__ = ["draw_output_and_h_n"]


def draw_output_and_h_n(num_layers: int = 2, steps: int = 5) -> Figure:
    """A grid of hidden states, time left to right and layers bottom to top: `output` is the top
    row (every step of the last layer), `h_n` the last column (the last step of every layer)."""
    fig, ax = plt.subplots(figsize=(1.3 * steps + 2.2, 1.1 * num_layers + 1.4))
    for layer in range(num_layers):
        for t in range(steps):
            in_output, in_h_n = layer == num_layers - 1, t == steps - 1
            color = "#f6c28b" if in_h_n else "#9ecae1" if in_output else "#eeeeee"
            ax.add_patch(FancyBboxPatch((t - 0.32, layer - 0.28), 0.64, 0.56, boxstyle="round,pad=0.02",
                                        facecolor=color, edgecolor="#555555"))
            ax.text(t, layer, f"h{layer + 1},{t + 1}", ha="center", va="center", fontsize=9)
            if t < steps - 1:
                ax.add_patch(FancyArrowPatch((t + 0.34, layer), (t + 0.66, layer), arrowstyle="->", mutation_scale=10))
            if layer < num_layers - 1:
                ax.add_patch(FancyArrowPatch((t, layer + 0.3), (t, layer + 0.7), arrowstyle="->", mutation_scale=10))
        ax.text(-0.55, layer, f"layer {layer + 1}", ha="right", va="center", fontsize=9)
    for t in range(steps):
        ax.text(t, -0.7, f"x{t + 1}", ha="center", va="center", fontsize=9)
        ax.add_patch(FancyArrowPatch((t, -0.55), (t, -0.3), arrowstyle="->", mutation_scale=10))
    ax.text((steps - 1) / 2, num_layers - 0.2, "output: the last layer at every step, (N, T, H)", ha="center",
            va="bottom", fontsize=9, color="#08519c")
    ax.text(steps - 0.55, (num_layers - 1) / 2, "h_n: every layer\nat the last step,\n(layers, N, H)", ha="left",
            va="center", fontsize=9, color="#a63603")
    ax.set_xlim(-1.6, steps + 1.4)
    ax.set_ylim(-1.0, num_layers + 0.1)
    ax.axis("off")
    ax.set_title(f"A {num_layers}-layer RNN unrolled in time (one direction)", fontsize=10)
    fig.tight_layout()
    return fig
