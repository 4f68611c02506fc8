"""Figures and animations that play on the static website (no kernel needed).

Animations are matplotlib ``FuncAnimation`` objects rendered by ``to_jshtml``: the
frames are embedded in the page with play, pause and scrub controls in plain
JavaScript.
"""

from __future__ import annotations

import re

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation

__all__ = [
    "animate_tokens",
    "plot_paths",
    "plot_phase_diagram",
    "plot_snapshots",
    "plot_stability",
    "plot_transition_distance",
]

#: colours of the three phases of Fig. 3
PHASE_COLOURS = {"no clusters": "#f4b6b6", "original clusters": "#f9d9a6", "new clusters": "#bfe3b4"}

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
    # matplotlib links Font Awesome 4 from a CDN for the player's icons; the book's
    # theme (and JupyterLab) already provide Font Awesome, and the site must not
    # reach outside itself
    return re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">\s*', "", html)


def plot_stability(comparisons: dict, *, ax=None):
    """Measured :math:`W_2(\\mu_t,\\nu_t)` (solid) and the bound (24) (dashed) against t,
    log scale, one colour per entry of ``comparisons`` (label -> StabilityComparison).
    The bound is drawn only where it is finite."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for k, (label, comp) in enumerate(comparisons.items()):
        colour = f"C{k}"
        keep = comp.w2 > 0
        ax.plot(comp.t[keep], comp.w2[keep], color=colour, lw=1.6, label=f"{label}: measured")
        finite = np.isfinite(comp.bound.w2_bound) & (comp.t > 0)
        ax.plot(comp.t[finite], comp.bound.w2_bound[finite], color=colour, lw=1.2, ls="--", label=f"{label}: bound (24)")
    first = next(iter(comparisons.values()))
    ax.plot(first.t, first.bound.diameter, color="k", lw=0.8, ls=":", label="diameter $2R_t$")
    ax.set(yscale="log", xlabel="time t (layers)", ylabel=r"$W_2(\mu_t, \nu_t)$")
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_transition_distance(pair, *, ax=None):
    """:math:`W_2` between the rescaled reference and perturbed tokens over time, with
    :math:`T_\\delta` and :math:`T^*(\\delta)` marked (Fig. 2's comparison)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    ax.plot(pair.t, pair.w2, color="C0", lw=1.5)
    ax.axvline(pair.T_delta, color="C1", ls="--", lw=1, label=rf"$T_\delta$ = {pair.T_delta:.1f}")
    if np.isfinite(pair.T_star):
        ax.axvline(pair.T_star, color="C3", ls="--", lw=1, label=rf"$T^*(\delta)$ = {pair.T_star:.1f}")
    ax.set(xlabel="time t (layers)", ylabel=r"$W_2(\mu_t, \tilde\mu_t)$ (rescaled tokens)")
    ax.legend(fontsize=8)
    return ax


def plot_phase_diagram(diagram, *, ax=None, paper_points=None):
    """Fig. 3 from a :class:`~lora_clusters.experiments.PhaseDiagram`: median
    :math:`T_\\delta` and :math:`T^*` over the seeds with a transition, their
    spread (min to max) as bands, the three phases shaded, the Prop. 5.8 bound, and
    optionally the paper's points (dict eps -> T*)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5))
    keep = diagram.has_transition
    eps = diagram.eps
    # no exit (inf) is left out of the statistics of each eps
    T_star = np.where(np.isfinite(diagram.T_star[keep]), diagram.T_star[keep], np.nan)
    T_delta = np.median(diagram.T_delta[keep])
    median = np.nanmedian(T_star, axis=0)
    bound = np.where(np.isfinite(diagram.bound[keep]), diagram.bound[keep], np.nan)
    top = 10 ** np.ceil(np.log10(np.nanmax(bound) * 1.5))
    ax.fill_between(eps, 1e-1, T_delta, color=PHASE_COLOURS["no clusters"], label="no clusters yet")
    ax.fill_between(eps, T_delta, median, color=PHASE_COLOURS["original clusters"], label="clusters of V = I")
    ax.fill_between(eps, median, top, color=PHASE_COLOURS["new clusters"], label="new clusters")
    ax.fill_between(eps, np.nanmin(T_star, axis=0), np.nanmax(T_star, axis=0), color="C3", alpha=0.25, lw=0,
                    label=f"$T^*$ range over {keep.sum()} seeds")
    ax.plot(eps, median, color="C3", lw=1.8, label=r"$T^*(\delta)$ (median)")
    ax.axhline(T_delta, color="k", ls=":", lw=1.2, label=rf"$T_\delta$ (median {T_delta:.1f})")
    ax.plot(eps, np.nanmedian(bound, axis=0), color="C2", ls="--", lw=1.5, label="bound of Prop. 5.8 (median)")
    if paper_points:
        ax.scatter(list(paper_points), list(paper_points.values()), marker="x", color="k", zorder=4, label="paper, Fig. 3")
    ax.set(xscale="log", yscale="log", xlim=(eps.min(), eps.max()), ylim=(1e-1, top),
           xlabel=r"perturbation size $\varepsilon = \|\tilde V - V\|_{op}$", ylabel="time t (layers)")
    ax.legend(fontsize=7, loc="upper right")
    return ax
