"""Figures, animations and panel views of chapters 1-5: tokens as particles.

Token snapshots and paths, the animations that play on the static website (no kernel
needed), the stability, phase-transition and phase-diagram figures, and the views
that live panels (:mod:`lora_clusters.widgets`) keep and update in place.

Animations are matplotlib ``FuncAnimation`` objects rendered by ``to_jshtml``: the
frames are embedded in the page with play, pause and scrub controls in plain
JavaScript.
"""

from __future__ import annotations

import re

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from .style import few_ticks, plain_log_ticks

__all__ = [
    "OrthogonalLoRAView",
    "plot_orthogonal_spread",
    "plot_rank_one_clustering",
    "plot_high_probability_check",
    "plot_collapse_bounds",
    "plot_cluster_counts",
    "animate_tokens",
    "BOUND_STYLE",
    "DIAMETER_STYLE",
    "END_STYLE",
    "MEASURED_STYLE",
    "PANEL_DPI",
    "PATH_STYLE",
    "PathsView",
    "PHASE_COLOURS",
    "plot_exit_time_spread",
    "plot_paths",
    "plot_phase_diagram",
    "plot_snapshots",
    "plot_stability",
    "plot_transition_distance",
    "plot_transition_snapshots",
    "StabilityView",
    "START_STYLE",
    "SYMLOG_SPREAD",
    "T_DELTA_STYLE",
    "T_STAR_STYLE",
    "token_animation",
    "TOKEN_STYLE",
    "TransitionView",
    "W2_LABEL",
]

#: colours of the three phases of Fig. 3
PHASE_COLOURS = {"no clusters": "#f4b6b6", "original clusters": "#f9d9a6", "new clusters": "#bfe3b4"}

TOKEN_STYLE = dict(s=22, color="C0", edgecolor="k", linewidth=0.4, zorder=3)
#: token paths: grey lines, open circles at the start, filled dots at the end
PATH_STYLE = dict(lw=0.8, color="0.55")
START_STYLE = dict(s=18, facecolor="none", edgecolor="k")
END_STYLE = dict(s=30, color="C3", zorder=3)
#: stability figures: measured W2, the bound (24) and the diameter 2R_t
MEASURED_STYLE = dict(lw=1.6)
BOUND_STYLE = dict(lw=1.2, ls="--")
DIAMETER_STYLE = dict(color="k", lw=0.8, ls=":")
#: the markers of T_delta and T*(delta)
T_DELTA_STYLE = dict(color="C1", ls="--", lw=1)
T_STAR_STYLE = dict(color="C3", ls="--", lw=1)
W2_LABEL = r"$W_2(\mu_t, \tilde\mu_t)$ (rescaled tokens)"


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


#: paths that end this many times farther out than they start are drawn on symlog axes
SYMLOG_SPREAD = 20.0


def plot_paths(t, states, *, ax=None, label="z"):
    """Token paths in the plane (first two coordinates), start marked by circles and
    end by filled dots.

    When the tokens spread far beyond their starting cloud (more than
    :data:`SYMLOG_SPREAD` times its extent, as for a value matrix with a negative
    eigenvalue), both axes become symmetric-log, linear within the starting cloud, so
    that the start stays visible next to the far end instead of shrinking to a dot."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    xy = states[..., :2]
    ax.add_collection(LineCollection(np.swapaxes(xy, 0, 1), **PATH_STYLE))
    ax.scatter(xy[0, :, 0], xy[0, :, 1], label="t = 0", **START_STYLE)
    ax.scatter(xy[-1, :, 0], xy[-1, :, 1], label=f"t = {t[-1]:.0f}", **END_STYLE)
    start_extent = float(np.abs(xy[0]).max()) or 1.0
    far = [float(np.abs(xy[..., k]).max()) > SYMLOG_SPREAD * start_extent for k in (0, 1)]
    if any(far):
        # a square box; each far-reaching axis symmetric-log, symmetric about 0
        for k, axis in enumerate("xy"):
            name = f"${label}_{k + 1}$"
            if far[k]:
                reach = 1.5 * float(np.abs(xy[..., k]).max())
                getattr(ax, f"set_{axis}scale")("symlog", linthresh=start_extent)
                getattr(ax, f"set_{axis}lim")(-reach, reach)
                name += " (symlog)"
            getattr(ax, f"set_{axis}label")(name)
        ax.set_box_aspect(1)
    else:
        ax.set(xlabel=f"${label}_1$", ylabel=f"${label}_2$")
        ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="best", fontsize=8)
    return ax


def _square_limits(xy, pad=0.08):
    """Limits of one square data window around all points ``xy`` (..., 2): with equal
    aspect the axes box stays square however unequal the two spans are (a window fitted
    to each span separately collapsed the box to nothing when one span was 200 times
    the other)."""
    lo, hi = _limits(xy, pad)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2
    return centre - half, centre + half


def token_animation(
    t, panels: dict, *, frames: int = 40, trail: int = 6, size=2.9, interval: int = 120, follow: bool = False
):
    """The figure and ``FuncAnimation`` that :func:`animate_tokens` renders, and the
    axes of its panels (for tests that look at every frame)."""
    items = list(panels.items())
    idx = np.unique(np.linspace(0, len(t) - 1, frames).round().astype(int))
    fig, axes = plt.subplots(1, len(items), figsize=(size * len(items), size + 0.3), squeeze=False)
    artists = []
    for ax, (title, states) in zip(axes[0], items):
        lo, hi = _square_limits(states[..., :2])
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
                lo, hi = _square_limits(states[k : k + 1, :, :2])
                ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
            for i, line in enumerate(trails):
                line.set_data(states[k0 : k + 1, i, 0], states[k0 : k + 1, i, 1])
            dots.set_offsets(states[k, :, :2])
            head.set_text(f"{title}   t = {t[k]:.1f}")
            out += [*trails, dots, head]
        return out

    anim = FuncAnimation(fig, draw, frames=len(idx), interval=interval, blit=False)
    return fig, anim, [a[-1] for a in artists]


def animate_tokens(
    t, panels: dict, *, frames: int = 40, trail: int = 6, size=2.9, interval: int = 120, follow: bool = False
) -> str:
    """HTML (JavaScript player) animating one or more trajectories side by side.

    ``panels`` maps a title to an (m, n, d) array sampled at the times ``t``; all share
    the time axis.  Each frame shows the tokens and a short trail of their past
    positions in a square window (equal aspect).  With ``follow`` the window follows
    the current cloud in every frame (for the unrescaled tokens x(t), which grow like
    e^{tV}).  Returns the HTML string of ``FuncAnimation.to_jshtml``.
    """
    fig, anim, _ = token_animation(t, panels, frames=frames, trail=trail, size=size, interval=interval, follow=follow)
    with matplotlib.rc_context({"animation.embed_limit": 40}):
        html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    # matplotlib links Font Awesome 4 from a CDN for the player's icons; the book's
    # theme (and JupyterLab) already provide Font Awesome, and the site must not
    # reach outside itself
    return re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">\s*', "", html)


def plot_stability(comparisons: dict, *, ax=None, legend: bool = True):
    """Measured :math:`W_2(\\mu_t,\\nu_t)` (solid) and the bound (24) (dashed) against t,
    log scale, one colour per entry of ``comparisons`` (label -> StabilityComparison),
    and the diameter :math:`2R_t` of the first entry.  The bound is drawn only where
    it is finite."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for k, (label, comp) in enumerate(comparisons.items()):
        colour = f"C{k}"
        keep = comp.w2 > 0
        ax.plot(comp.t[keep], comp.w2[keep], color=colour, label=f"{label}: measured", **MEASURED_STYLE)
        finite = np.isfinite(comp.bound.w2_bound) & (comp.t > 0)
        ax.plot(comp.t[finite], comp.bound.w2_bound[finite], color=colour, label=f"{label}: bound (24)", **BOUND_STYLE)
    first = next(iter(comparisons.values()))
    ax.plot(first.t, first.bound.diameter, label="diameter $2R_t$", **DIAMETER_STYLE)
    ax.set(yscale="log", xlabel="time t (layers)", ylabel=r"$W_2(\mu_t, \nu_t)$")
    if legend:
        ax.legend(fontsize=7, ncol=2)
    return ax


def plot_transition_snapshots(pair, times, *, axes=None, labels=("V = I", "V~")):
    """Fig. 2's snapshots: the reference tokens of ``pair`` (top row) and the perturbed
    ones (bottom row) at the sampled times closest to ``times``, each row's y label
    naming its value matrix (``labels``); returns the axes (2, len(times))."""
    times = list(times)
    if axes is None:
        _, axes = plt.subplots(2, len(times), figsize=(2.6 * len(times), 5.6), sharex=True, sharey=True)
    for row, states, label in zip(axes, (pair.reference.states, pair.perturbed.states), labels):
        plot_snapshots(pair.t, states, times, axes=row)
        row[0].set_ylabel(f"{label}\n$z_2$")
    return axes


def plot_transition_distance(pair, *, ax=None):
    """:math:`W_2` between the rescaled reference and perturbed tokens over time, with
    :math:`T_\\delta` and :math:`T^*(\\delta)` marked (Fig. 2's comparison)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    ax.plot(pair.t, pair.w2, color="C0", lw=1.5)
    ax.axvline(pair.T_delta, label=rf"$T_\delta$ = {pair.T_delta:.1f}", **T_DELTA_STYLE)
    if np.isfinite(pair.T_star):
        ax.axvline(pair.T_star, label=rf"$T^*(\delta)$ = {pair.T_star:.1f}", **T_STAR_STYLE)
    ax.set(xlabel="time t (layers)", ylabel=W2_LABEL)
    ax.legend(fontsize=8)
    return ax


def plot_exit_time_spread(spread, *, ax=None, diagram_scaled=None):
    r"""Histogram of :math:`T^*\varepsilon` over the configurations of an
    :class:`~lora_clusters.experiments.ExitTimeSpread` that have an exit (logarithmic
    bins), with the number without an exit in the legend, and optionally the range of
    the phase diagram's configurations (``diagram_scaled``: their values) shaded."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    scaled = spread.scaled
    bins = np.geomspace(scaled.min() / 1.05, scaled.max() * 1.05, 25)
    without = int((~spread.has_exit).sum())
    ax.hist(
        scaled,
        bins=bins,
        color="C0",
        edgecolor="white",
        label=f"{scaled.size} configurations with an exit ({without} without, by t = {spread.t_max:.0f})",
    )
    if diagram_scaled is not None:
        ax.axvspan(
            np.min(diagram_scaled),
            np.max(diagram_scaled),
            color="C1",
            alpha=0.2,
            zorder=0,
            label="the phase diagram's range",
        )
    ax.axvline(np.median(scaled), color="k", lw=1, ls="--", label=f"median {np.median(scaled):.2f}")
    # a few plain labels (0.2, 0.5, 1, 2, ...) instead of one per minor tick; room above
    # the bars for the legend
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([0.1, 0.2, 0.5, 1, 2, 5, 10]))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlim(bins[0], bins[-1])
    ax.set_ylim(0, 1.5 * ax.get_ylim()[1])
    ax.set(
        xlabel=rf"$T^*\varepsilon$ at $\varepsilon = {spread.eps:g}$ (time $\times$ perturbation size)",
        ylabel="configurations",
    )
    ax.legend(fontsize=8, loc="upper left")
    return ax


def plot_phase_diagram(diagram, *, ax=None, paper_points=None, paper_label="authors' notebook"):
    """Fig. 3 from a :class:`~lora_clusters.experiments.PhaseDiagram`: median
    :math:`T_\\delta` and :math:`T^*` over the seeds with a transition, their
    spread (min to max) as bands, the three phases shaded, the Prop. 5.8 bound, and
    optionally reference points (dict eps -> T*) labelled ``paper_label`` (the
    values hard-coded in the authors' public notebook; the paper's text has none)."""
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
    ax.fill_between(
        eps,
        np.nanmin(T_star, axis=0),
        np.nanmax(T_star, axis=0),
        color="C3",
        alpha=0.25,
        lw=0,
        label=f"$T^*$ range over {keep.sum()} seeds",
    )
    ax.plot(eps, median, color="C3", lw=1.8, label=r"$T^*(\delta)$ (median)")
    ax.axhline(T_delta, color="k", ls=":", lw=1.2, label=rf"$T_\delta$ (median {T_delta:.1f})")
    ax.plot(eps, np.nanmedian(bound, axis=0), color="C2", ls="--", lw=1.5, label="bound of Prop. 5.8 (median)")
    if paper_points:
        ax.scatter(list(paper_points), list(paper_points.values()), marker="x", color="k", zorder=4, label=paper_label)
    ax.set(
        xscale="log",
        yscale="log",
        xlim=(eps.min(), eps.max()),
        ylim=(1e-1, top),
        xlabel=r"perturbation size $\varepsilon = \|\tilde V - V\|_{op}$",
        ylabel="time t (layers)",
    )
    ax.legend(fontsize=7, loc="upper right")
    return ax


# --------------------------------------------------------------------------------------
# views: figures that a live panel keeps and updates in place
# --------------------------------------------------------------------------------------
# A panel redraws on every slider move.  Building a figure costs more than drawing it
# (axes, ticks and text are created anew each time), so a panel keeps one view, moves
# the data of its artists, and re-renders.  The figures live outside pyplot: the
# inline backend never shows them by itself and they are never closed.

#: resolution at which panels render (the PNG sent to the front end)
PANEL_DPI = 72


def _panel_figure(figsize) -> Figure:
    # created at the resolution it is saved at, so that every render reuses one Agg
    # renderer and its text-layout cache
    figure = Figure(figsize=figsize, dpi=PANEL_DPI)
    FigureCanvasAgg(figure)
    return figure


class PathsView:
    """Token paths in the plane (first two coordinates), as :func:`plot_paths` draws
    them: grey paths, open circles at t = 0, filled dots at the end."""

    def __init__(self, figsize=(4.5, 4.5)):
        self.figure = figure = _panel_figure(figsize)
        figure.subplots_adjust(left=0.14, right=0.97, bottom=0.11, top=0.92)
        self.ax = ax = figure.add_subplot()
        self.paths = ax.add_collection(LineCollection([], **PATH_STYLE))
        self.start = ax.scatter([], [], **START_STYLE)
        self.end = ax.scatter([], [], **END_STYLE)
        ax.set_aspect("equal", adjustable="box")
        few_ticks(ax)

    def update(self, t, states, *, title: str, label: str = "z", title_size: float = 10) -> Figure:
        """Show the trajectory ``states`` (m, n, d) sampled at ``t``; returns the figure."""
        xy = np.asarray(states)[..., :2]
        self.paths.set_segments(np.swapaxes(xy, 0, 1))
        self.start.set_offsets(xy[0])
        self.end.set_offsets(xy[-1])
        lo, hi = _limits(xy)
        self.ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel=f"${label}_1$", ylabel=f"${label}_2$")
        self.ax.set_title(title, fontsize=title_size)
        self.ax.legend([self.start, self.end], ["t = 0", f"t = {t[-1]:.0f}"], loc="best", fontsize=8)
        return self.figure


class StabilityView:
    """One :class:`~lora_clusters.experiments.StabilityComparison` as
    :func:`plot_stability` draws it (measured W2, bound (24), diameter), with the
    vertical axis capped at 100 times the diameter: above the diameter the bound says
    nothing, and it grows like exp(exp(t)), so uncapped limits would span hundreds of
    decades."""

    def __init__(self, figsize=(6, 3.6)):
        self.figure = figure = _panel_figure(figsize)
        figure.subplots_adjust(left=0.13, right=0.97, bottom=0.14, top=0.95)
        self.ax = ax = figure.add_subplot()
        (self.measured,) = ax.plot([], [], color="C0", **MEASURED_STYLE)
        (self.bound,) = ax.plot([], [], color="C0", **BOUND_STYLE)
        (self.diameter,) = ax.plot([], [], **DIAMETER_STYLE)
        ax.set(yscale="log", xlabel="time t (layers)", ylabel=r"$W_2(\mu_t, \nu_t)$")
        plain_log_ticks(ax.yaxis)

    def update(self, comparison, label: str) -> Figure:
        c = comparison
        keep = c.w2 > 0
        self.measured.set_data(c.t[keep], c.w2[keep])
        finite = np.isfinite(c.bound.w2_bound) & (c.t > 0)
        self.bound.set_data(c.t[finite], c.bound.w2_bound[finite])
        self.diameter.set_data(c.t, c.bound.diameter)
        measured = c.w2[keep]
        bottom = 0.3 * float(measured.min()) if measured.size else 1e-12
        self.ax.set(xlim=(0.0, float(c.t[-1])), ylim=(bottom, 100.0 * float(np.max(c.bound.diameter))))
        self.ax.legend(
            [self.measured, self.bound, self.diameter],
            [f"{label}: measured", f"{label}: bound (24)", "diameter $2R_t$"],
            fontsize=7,
            ncol=2,
            loc="lower right",
        )
        return self.figure


class TransitionView:
    r"""A :class:`~lora_clusters.experiments.TransitionPair` in two panels: the
    rescaled tokens of both flows at the last sample, and their W2 over time with
    :math:`T_\delta` and :math:`T^*(\delta)` marked (:func:`plot_transition_distance`).
    The markers are labelled in place rather than by legends (the token legend alone
    was about a seventh of a redraw)."""

    def __init__(self, figsize=(8.4, 3.2)):
        self.figure = figure = _panel_figure(figsize)
        figure.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.9, wspace=0.3)
        self.tokens_ax, self.w2_ax = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.7]})
        self.reference = self.tokens_ax.scatter([], [], s=36, facecolors="none", edgecolors="C0")
        self.perturbed = self.tokens_ax.scatter([], [], s=12, color="C3")
        self.tokens_ax.set(xlabel="$z_1$", ylabel="$z_2$")
        (self.w2,) = self.w2_ax.plot([], [], color="C0", lw=1.5)
        self.T_delta = self.w2_ax.axvline(0.0, **T_DELTA_STYLE)
        self.T_star = self.w2_ax.axvline(0.0, **T_STAR_STYLE)
        # labels at the top of the markers: x in data units, y in axes units
        on_top = self.w2_ax.get_xaxis_transform()
        self.T_delta_label = self.w2_ax.text(
            0.0, 0.97, "", transform=on_top, color=T_DELTA_STYLE["color"], fontsize=8, va="top", ha="left"
        )
        self.T_star_label = self.w2_ax.text(
            0.0, 0.87, "", transform=on_top, color=T_STAR_STYLE["color"], fontsize=8, va="top", ha="right"
        )
        self.w2_ax.set(xlabel="time t (layers)", ylabel=W2_LABEL)
        few_ticks(self.tokens_ax, self.w2_ax)

    def update(self, pair) -> Figure:
        p = pair
        self.reference.set_offsets(p.reference.final[:, :2])
        self.perturbed.set_offsets(p.perturbed.final[:, :2])
        lo, hi = _limits(np.concatenate([p.reference.final, p.perturbed.final])[None, :, :2], pad=0.15)
        self.tokens_ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]))
        self.tokens_ax.set_title(f"t = {p.t[-1]:.0f}: ○ V = I,  ● V~ = I - eps e2 e2ᵀ", fontsize=9)
        self.w2.set_data(p.t, p.w2)
        self.T_delta.set_xdata([p.T_delta, p.T_delta])
        self.T_delta_label.set_x(p.T_delta)
        self.T_delta_label.set_text(f" T_δ = {p.T_delta:.1f}")
        has_exit = bool(np.isfinite(p.T_star))
        for artist in (self.T_star, self.T_star_label):
            artist.set_visible(has_exit)
        if has_exit:
            self.T_star.set_xdata([p.T_star, p.T_star])
            self.T_star_label.set_x(p.T_star)
            self.T_star_label.set_text(f"T*(δ) = {p.T_star:.1f} ")
        top = float(np.max(p.w2))
        self.w2_ax.set(xlim=(0.0, float(p.t[-1])), ylim=(-0.03 * top, 1.15 * top if top > 0 else 1.0))
        return self.figure


class OrthogonalLoRAView:
    r"""An :class:`~lora_clusters.experiments.OrthogonalLoRARun` in two panels: each
    token's coordinate along v over time for the pre-trained head (grey) and the LoRA
    head (coloured by the sign of :math:`\langle z_i(0), v\rangle`), time on a symlog
    axis as in the chapter's figure; and the LoRA tokens' distance to the line
    :math:`\mathbb R v` over time (log scale) with the initial size
    :math:`\varepsilon` marked (Prop. 7.4)."""

    def __init__(self, figsize=(8.4, 3.2)):
        self.figure = figure = _panel_figure(figsize)
        figure.subplots_adjust(left=0.1, right=0.98, bottom=0.16, top=0.9, wspace=0.36)
        self.along_ax, self.off_ax = figure.subplots(1, 2)
        self.pretrained = self.along_ax.add_collection(LineCollection([], lw=0.8, color="0.65"))
        self.lora = self.along_ax.add_collection(LineCollection([], lw=1.0))
        self.along_ax.set_xscale("symlog", linthresh=1.0)
        self.along_ax.set(xlabel="time t (layers, symlog)", ylabel=r"$\langle z_i(t), v\rangle$")
        self.off_line = self.off_ax.add_collection(LineCollection([], lw=0.8, color="C0"))
        self.eps_line = self.off_ax.axhline(1.0, **DIAMETER_STYLE)
        self.eps_label = self.off_ax.text(
            0.98, 1.0, "", transform=self.off_ax.get_yaxis_transform(), fontsize=8, ha="right", va="bottom"
        )
        self.off_ax.set(yscale="log", xlabel="time t (layers)", ylabel=r"distance of $z_i(t)$ to $\mathbb{R}v$")
        plain_log_ticks(self.off_ax.yaxis)
        few_ticks(self.off_ax)
        self.along_ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))

    @staticmethod
    def _segments(t, values):
        return np.stack([np.broadcast_to(t, values.T.shape), values.T], axis=-1)

    def update(self, run, eps: float) -> Figure:
        """Show ``run`` (its tokens were started at distance ``eps`` from the line)."""
        t = run.lora.t
        along_pre, along_lora = run.along_v("pretrained"), run.along_v("lora")
        self.pretrained.set_segments(self._segments(t, along_pre))
        self.lora.set_segments(self._segments(t, along_lora))
        self.lora.set_color(np.where(along_lora[0] > 0, "C0", "C3"))
        top = float(max(np.abs(along_pre).max(), np.abs(along_lora).max())) or 1.0
        self.along_ax.set(xlim=(0.0, float(t[-1])), ylim=(-1.1 * top, 1.1 * top))
        self.along_ax.set_title(
            f"{len(run.clusters_lora)} LoRA cluster(s), {len(run.clusters_pretrained)} pre-trained", fontsize=9
        )
        distance = run.off_line_distance("lora")
        self.off_line.set_segments(self._segments(t, np.maximum(distance, 1e-300)))
        positive = distance[distance > 0]
        lo = min(float(positive.min()) if positive.size else eps, eps)
        hi = max(float(distance.max()), eps)
        self.off_ax.set(xlim=(0.0, float(t[-1])), ylim=(lo / 2, hi * 2))
        self.eps_line.set_ydata([eps, eps])
        self.eps_label.set_y(eps)
        self.eps_label.set_text(f"ε = {eps:.0e}")
        self.off_ax.set_title("LoRA head: distance to the line R v", fontsize=9)
        return self.figure


# --------------------------------------------------------------------------------------
# Chapter 4: low-rank attention
# --------------------------------------------------------------------------------------
def plot_collapse_bounds(identity_runs, spread_runs, *, ax=None):
    """The bound (33) on :math:`T_\\delta` against the measured one, for V = I and for
    V = diag(1, 0.3, 0.6) with the paper's eigenvalue and with the smallest one."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 4.2))
    ax.scatter(identity_runs.bound_33, identity_runs.T_delta, s=10, label="V = I")
    ax.scatter(
        spread_runs.bound_33,
        spread_runs.T_delta,
        s=10,
        marker="^",
        label=r"V = diag(1, 0.3, 0.6), $\lambda_1$ = 0.6",
    )
    ax.scatter(
        spread_runs.bound_33_smallest,
        spread_runs.T_delta,
        s=10,
        marker="s",
        label="same V, smallest eigenvalue 0.3",
    )
    lim = [0, 1.05 * max(spread_runs.bound_33_smallest.max(), spread_runs.T_delta.max())]
    ax.plot(lim, lim, "k--", lw=1, label="measured = bound")
    ax.set(
        xlim=lim,
        ylim=lim,
        xlabel="bound on $T_\\delta$ (time units)",
        ylabel="measured $T_\\delta$ (time units)",
    )
    ax.legend(fontsize=7)
    return ax


def plot_high_probability_check(check, *, ax=None):
    """The fraction of configurations under the bound (34) against the radius C, and
    the claimed :math:`1 - 2\\varepsilon`."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 3.4))
    ax.plot(check.radii, check.fractions, "o-", label="fraction of configurations under the bound")
    ax.axhline(1 - 2 * check.eps, color="C3", ls="--", label=r"claimed: $1 - 2\varepsilon$")
    ax.set(xscale="log", xlabel="radius C of the initial ball", ylabel="fraction", ylim=(-0.05, 1.05))
    ax.legend(fontsize=8)
    return ax


def plot_rank_one_clustering(result, *, axes=None):
    """Fig. 4: the paths for Q = K = I and for Q = K = e1 e1ᵀ with their cluster
    counts, and the distance of the rank-one attention matrix to :math:`\\mathcal P^*`."""
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    plot_paths(result.full.t, result.full.states, ax=axes[0])
    axes[0].set_title(f"Q = K = I: {result.n_full} clusters")
    plot_paths(result.rank_one.t, result.rank_one.states, ax=axes[1])
    axes[1].set_title(f"Q = K = e1 e1ᵀ: {result.n_rank_one} clusters")
    axes[2].semilogy(result.rank_one.t, np.maximum(result.P_star_gap, 1e-17))
    axes[2].set(xlabel="time t (layers)", ylabel=r"distance of $P(t)$ to $\mathcal{P}^*$", title="rank one")
    return axes


def plot_cluster_counts(study, *, ax=None):
    """Mean number of clusters (min to max as error bars) against the dimension, one
    line per rank of A, and the number of tokens."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.8, 3.8))
    for k, label in enumerate(study.ranks):
        mean = study.counts[k].mean(axis=1)
        ax.errorbar(
            study.dims,
            mean,
            yerr=[mean - study.counts[k].min(axis=1), study.counts[k].max(axis=1) - mean],
            marker="o",
            capsize=3,
            label=f"rank(A) = {label}",
        )
    ax.axhline(study.n, color="k", ls=":", lw=1, label=f"n = {study.n} tokens")
    ax.set(xscale="log", xlabel="dimension d", ylabel="number of clusters at t = 30")
    ax.set_xticks(study.dims, [str(x) for x in study.dims])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(fontsize=8)
    return ax


# --------------------------------------------------------------------------------------
# Chapter 5: orthogonal LoRA
# --------------------------------------------------------------------------------------
def plot_orthogonal_spread(spread, *, ax=None):
    """Final largest distance to the line against the initial one, per C (mean, min to
    max as error bars), and the diagonal."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 3.8))
    eps_values, distance = spread.eps_values, spread.distance
    for k, C in enumerate(spread.C_values):
        mean = distance[k].mean(axis=1)
        ax.errorbar(
            eps_values,
            mean,
            yerr=[mean - distance[k].min(axis=1), distance[k].max(axis=1) - mean],
            marker="o",
            capsize=3,
            label=f"C = {C:g}",
        )
    ax.plot(eps_values, eps_values, "k--", lw=1, label=r"$\varepsilon$")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=r"initial distance to the line $\varepsilon$",
        ylabel=r"final $\max_i \mathrm{dist}(z_i, \mathbb{R}v)$",
    )
    ax.legend(fontsize=8)
    return ax
