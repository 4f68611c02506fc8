"""Figures and animations that play on the static website (no kernel needed).

Animations are matplotlib ``FuncAnimation`` objects rendered by ``to_jshtml``: the
frames are embedded in the page with play, pause and scrub controls in plain
JavaScript.
"""

from __future__ import annotations

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation

__all__ = ["animate_tokens", "plot_snapshots", "plot_paths"]

TOKEN_STYLE = dict(s=22, color="C0", edgecolor="k", linewidth=0.4, zorder=3)


def _limits(states, pad=0.08):
    lo = states.reshape(-1, states.shape[-1]).min(axis=0)
    hi = states.reshape(-1, states.shape[-1]).max(axis=0)
    span = np.maximum(hi - lo, 1e-9)
    return lo - pad * span, hi + pad * span


def plot_snapshots(t, states, times, *, axes=None, label="z"):
    """Scatter plots of the tokens (first two coordinates) at the sampled times
    closest to ``times``; returns the axes."""
    times = list(times)
    if axes is None:
        _, axes = plt.subplots(1, len(times), figsize=(2.6 * len(times), 2.7), sharex=True, sharey=True)
    lo, hi = _limits(states[..., :2])
    for ax, when in zip(np.atleast_1d(axes), times):
        k = int(np.argmin(np.abs(t - when)))
        ax.scatter(states[k, :, 0], states[k, :, 1], **TOKEN_STYLE)
        ax.set(title=f"t = {t[k]:.1f}", xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel=f"${label}_1$")
        ax.set_aspect("equal", adjustable="box")
    np.atleast_1d(axes)[0].set_ylabel(f"${label}_2$")
    return axes


def plot_paths(t, states, *, ax=None, label="z"):
    """Token paths in the plane (first two coordinates), start marked by circles and
    end by filled dots."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    for i in range(states.shape[1]):
        ax.plot(states[:, i, 0], states[:, i, 1], lw=0.8, color="0.55")
    ax.scatter(states[0, :, 0], states[0, :, 1], s=18, facecolor="none", edgecolor="k", label="t = 0")
    ax.scatter(states[-1, :, 0], states[-1, :, 1], s=30, color="C3", zorder=3, label=f"t = {t[-1]:.0f}")
    ax.set(xlabel=f"${label}_1$", ylabel=f"${label}_2$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="best", fontsize=8)
    return ax


def animate_tokens(t, panels: dict, *, frames: int = 40, trail: int = 6, size=2.9, interval: int = 120,
                   follow: bool = False) -> str:
    """HTML (JavaScript player) animating one or more trajectories side by side.

    ``panels`` maps a title to an (m, n, d) array sampled at the times ``t``; all share
    the time axis.  Each frame shows the tokens and a short trail of their past
    positions.  With ``follow`` the axes rescale to the current cloud in every frame
    (for the unrescaled tokens x(t), which grow like e^{tV}).  Returns the HTML string of ``FuncAnimation.to_jshtml``.
    """
    items = list(panels.items())
    idx = np.unique(np.linspace(0, len(t) - 1, frames).round().astype(int))
    fig, axes = plt.subplots(1, len(items), figsize=(size * len(items), size + 0.3), squeeze=False)
    artists = []
    for ax, (title, states) in zip(axes[0], items):
        lo, hi = _limits(states[..., :2])
        ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel="coordinate 1", ylabel="coordinate 2")
        ax.set_aspect("equal", adjustable="box")
        trails = [ax.plot([], [], lw=0.7, color="0.6")[0] for _ in range(states.shape[1])]
        dots = ax.scatter(states[0, :, 0], states[0, :, 1], **TOKEN_STYLE)
        head = ax.set_title(title, fontsize=9)
        artists.append((states, trails, dots, head, title, ax))
    fig.tight_layout()

    def draw(frame):
        k = idx[frame]
        k0 = idx[max(frame - trail, 0)]
        out = []
        for states, trails, dots, head, title, ax in artists:
            if follow:
                lo, hi = _limits(states[k : k + 1, :, :2])
                ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
            for i, line in enumerate(trails):
                line.set_data(states[k0 : k + 1, i, 0], states[k0 : k + 1, i, 1])
            dots.set_offsets(states[k, :, :2])
            head.set_text(f"{title}   t = {t[k]:.1f}")
            out += [*trails, dots, head]
        return out

    anim = FuncAnimation(fig, draw, frames=len(idx), interval=interval, blit=False)
    with matplotlib.rc_context({"animation.embed_limit": 40}):
        html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return html
