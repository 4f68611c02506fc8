"""Figures and animations that play on the static website (no kernel needed).

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

__all__ = [
    "BOOK_STYLE",
    "plot_eigenvalues",
    "plot_finetuning",
    "plot_forgetting",
    "plot_layer_comparison",
    "plot_pretraining",
    "plot_value_spectra",
    "PathsView",
    "StabilityView",
    "TransitionView",
    "animate_tokens",
    "token_animation",
    "plot_paths",
    "plot_phase_diagram",
    "plot_snapshots",
    "plot_stability",
    "plot_transition_distance",
    "use_book_style",
]

#: matplotlib settings shared by every chapter's figures (:func:`use_book_style`)
BOOK_STYLE = {"figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3}


def use_book_style() -> None:
    """Apply :data:`BOOK_STYLE` to the figures made from now on (each chapter calls it
    once), and, in a notebook, show them as 2x ("retina") PNGs: twice the pixels at the
    same displayed size, sharp on high-density screens."""
    plt.rcParams.update(BOOK_STYLE)
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # outside IPython there is no inline backend to configure
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


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


def _few_ticks(*axes, nbins: int = 5) -> None:
    """At most ``nbins`` intervals on each linear axis: every tick label is text
    drawn anew at each render, about a millisecond apiece."""
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins, steps=[1, 2, 2.5, 5, 10]))


def _plain_log_ticks(axis) -> None:
    """One plain tick label per decade (1e-03) and no minor ticks on a log axis: the
    default 10^k labels go through mathtext, and the minor ticks of a range of many
    decades are a hundred small artists; together they were half of a redraw."""
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _pos: f"{y:.0e}"))
    axis.set_minor_locator(matplotlib.ticker.NullLocator())


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
        _few_ticks(ax)

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
        _plain_log_ticks(ax.yaxis)

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
        _few_ticks(self.tokens_ax, self.w2_ax)

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


# --------------------------------------------------------------------------------------
# Chapter 6: the trained toy transformer (the study's results are numpy arrays)
# --------------------------------------------------------------------------------------
def _band(ax, x, curves, colour, label, **style):
    """Mean over the columns of ``curves`` (seeds) as a line, min to max as a band."""
    ax.fill_between(x, curves.min(axis=1), curves.max(axis=1), color=colour, alpha=0.2, lw=0)
    ax.plot(x, curves.mean(axis=1), color=colour, label=label, **style)


def plot_pretraining(study, *, axes=None):
    """Fig. 7: per depth (columns), the training loss (top, log scale) and the accuracy
    on the training pairs, the held-out pairs and all pairs (bottom), mean over seeds
    with the min-max band."""
    depths = study.depths
    if axes is None:
        _, axes = plt.subplots(2, len(depths), figsize=(2.9 * len(depths), 5.2), sharex=True, squeeze=False)
    for col, depth in enumerate(depths):
        r = study.pretrained[depth]
        epochs = np.arange(1, r.train_loss.shape[0] + 1)
        _band(axes[0, col], epochs, r.train_loss, "C0", "train loss")
        axes[0, col].set(yscale="log", title=f"depth {depth}")
        for key, colour, label in (
            ("train_acc", "C0", "train"),
            ("test_acc", "C3", "held-out"),
            ("all_acc", "k", "all pairs"),
        ):
            _band(axes[1, col], epochs, getattr(r, key), colour, label, lw=1.2)
        axes[1, col].set(xlabel="epoch", ylim=(-0.02, 1.02))
    axes[0, 0].set_ylabel("cross-entropy (nats)")
    axes[1, 0].set_ylabel("accuracy on x + y mod p")
    axes[1, -1].legend(fontsize=7, loc="lower right")
    return axes


def plot_eigenvalues(ax, eigenvalues, *, label, colour="C0", marker="o", size=14, filled=True):
    """Eigenvalues in the complex plane (real part horizontal)."""
    kw = dict(color=colour) if filled else dict(facecolors="none", edgecolors=colour)
    ax.scatter(np.real(eigenvalues), np.imag(eigenvalues), s=size, marker=marker, label=label, linewidths=0.8, **kw)
    ax.axhline(0, color="0.7", lw=0.6)
    ax.axvline(0, color="0.7", lw=0.6)
    ax.set(xlabel="Re λ", ylabel="Im λ")
    return ax


def plot_value_spectra(spectra_by_depth: dict, *, tuned: bool = False, axes=None):
    """Fig. 8 (``tuned=False``): per depth, the eigenvalues of :math:`W_V` (what the
    authors plotted, top) and of :math:`W_O W_V` (the particle picture's value matrix,
    bottom).  Fig. 9 (``tuned=True``): the same before (open) and after LoRA (filled),
    with the update scaled by alpha / r."""
    depths = list(spectra_by_depth)
    if axes is None:
        _, axes = plt.subplots(2, len(depths), figsize=(2.9 * len(depths), 5.6), squeeze=False)
    for col, depth in enumerate(depths):
        s = spectra_by_depth[depth]
        for row, (before, after, name) in enumerate(
            ((s.value, s.value_tuned, "$W_V$"), (s.ov, s.ov_tuned, "$W_O W_V$"))
        ):
            ax = axes[row, col]
            if tuned:
                plot_eigenvalues(ax, before, label="pre-trained", colour="0.45", filled=False, size=18)
                plot_eigenvalues(ax, after, label="after LoRA", colour="C3", size=8)
            else:
                plot_eigenvalues(ax, before, label=name, colour="C0" if row == 0 else "C2", size=10)
            ax.set_title(f"depth {depth}: {name}", fontsize=9)
            ax.set_aspect("equal", adjustable="datalim")
    if tuned:
        axes[0, -1].legend(fontsize=7, loc="best")
    return axes


def plot_finetuning(study, *, axes=None):
    """Figs 5 and 10: accuracy on addition (all pairs) and on held-out subtraction pairs
    during LoRA fine-tuning, per depth, mean over seeds with the min-max band."""
    depths = study.depths
    if axes is None:
        _, axes = plt.subplots(1, len(depths), figsize=(2.9 * len(depths), 3.0), sharey=True, squeeze=False)
        axes = axes[0]
    for ax, depth in zip(axes, depths):
        r = study.finetuned[depth]
        epochs = np.arange(r.add_acc.shape[0])
        _band(ax, epochs, r.add_acc, "C0", "addition (all pairs)")
        _band(ax, epochs, r.sub_test_acc, "C3", "subtraction (held-out)")
        _band(ax, epochs, r.sub_train_acc, "C1", "subtraction (train)", lw=0.8, ls="--")
        ax.axhline(0.5, color="k", ls=":", lw=0.8)
        ax.set(title=f"depth {depth}", xlabel="fine-tuning epoch", ylim=(-0.02, 1.02))
    axes[0].set_ylabel("accuracy")
    axes[-1].legend(fontsize=7, loc="center right")
    return axes


def plot_forgetting(depths, epochs, *, ax=None, level: float = 0.5):
    """Fine-tuning epochs until addition accuracy falls below ``level``, per depth: one
    dot per seed, and their mean."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.3))
    epochs = np.asarray(epochs, dtype=float)
    for k, depth in enumerate(depths):
        finite = epochs[k][np.isfinite(epochs[k])]
        ax.scatter(
            np.full(finite.size, depth), finite, color="C0", s=22, zorder=3, label="one seed" if k == 0 else None
        )
    means = [np.mean(row[np.isfinite(row)]) if np.isfinite(row).any() else np.nan for row in epochs]
    ax.plot(depths, means, color="C3", marker="_", ms=16, lw=1.2, label="mean over seeds")
    ax.set(xlabel="depth (layers)", ylabel=f"epochs until addition accuracy < {level}", xticks=list(depths))
    ax.legend(fontsize=8)
    return ax


def plot_layer_comparison(comparisons, *, axes=None):
    """The particle picture in the trained network, per depth (one colour each), against
    the layer index (the time of the dynamics; dotted: the trained depth): W2 between the
    pre-trained and fine-tuned token clouds relative to the token norm, the mean cosine
    similarity between tokens, and the mean number of clusters of a 4-token sequence."""
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(11.5, 3.3))
    for k, c in enumerate(comparisons):
        colour = f"C{k}"
        axes[0].plot(c.layers, c.relative_w2, color=colour, label=f"depth {c.depth}")
        axes[1].plot(c.layers, c.cosine_pre, color=colour, ls="--", lw=1)
        axes[1].plot(c.layers, c.cosine_tuned, color=colour)
        axes[2].plot(c.layers, c.clusters_pre, color=colour, ls="--", lw=1)
        axes[2].plot(c.layers, c.clusters_tuned, color=colour)
        for ax in axes:
            ax.axvline(c.depth, color=colour, ls=":", lw=0.8)
    axes[0].set(xlabel="layer", ylabel="W2(pre-trained, LoRA) / token norm")
    axes[1].set(xlabel="layer", ylabel="mean cosine between tokens")
    axes[2].set(xlabel="layer", ylabel="clusters per 4-token input")
    axes[0].legend(fontsize=7)
    axes[1].plot([], [], color="k", ls="--", lw=1, label="pre-trained")
    axes[1].plot([], [], color="k", label="after LoRA")
    axes[1].legend(fontsize=7)
    return axes


# --------------------------------------------------------------------------------------
# Chapter 7: attention of real models
# --------------------------------------------------------------------------------------
def plot_layer_singular_values(spec, *, ax=None, cap: int | None = None):
    r"""Figs 6, 11-12: the singular values of every layer's :math:`\sum_h A_h`, divided by
    the largest, one line per layer coloured from first (light) to last (dark), on a
    log scale; ``cap`` marks the rank bound of grouped-query attention."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.4))
    sv = spec.layer_qk_singular
    colours = plt.cm.viridis(np.linspace(0.9, 0.1, sv.shape[0]))
    for values, colour in zip(sv, colours):
        ax.plot(np.arange(1, values.size + 1), values / values[0], color=colour, lw=0.9, label=None)
    if cap is not None:
        ax.axvline(cap, color="k", ls=":", lw=1, label=f"rank cap {cap}")
        ax.legend(fontsize=8, loc="lower left")
    ax.set(yscale="log", xlabel="index k", ylabel=r"$\sigma_k / \sigma_1$", title=spec.weights.name)
    return ax


def plot_layer_ranks(spec_by_name: dict, rtols=(1e-2, 1e-3), *, ax=None):
    r"""Fig. 14: the numerical rank of every layer's :math:`\sum_h A_h`, as a fraction of
    d, at the relative precisions ``rtols``, for each model of ``spec_by_name``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.4))
    markers = ["o", "s", "^", "D"]
    for k, (name, spec) in enumerate(spec_by_name.items()):
        d = spec.weights.d
        for rtol, ls in zip(rtols, ["-", "--", ":"]):
            ranks = spec.layer_qk_rank(rtol)
            ax.plot(
                np.arange(ranks.size),
                ranks / d,
                ls=ls,
                marker=markers[k],
                ms=3,
                color=f"C{k}",
                label=f"{name}, rtol {rtol:g}",
            )
        cap = spec.weights.n_kv_heads * spec.weights.head_dim
        if cap < d:
            ax.axhline(cap / d, color=f"C{k}", lw=0.8, ls=":")
    ax.set(xlabel="layer", ylabel="numerical rank / d", ylim=(0, 1.05))
    ax.legend(fontsize=7, loc="lower right")
    return ax


def plot_complex_spectrum(ax, eigenvalues, *, title: str, colour="C0"):
    """Eigenvalues in the complex plane, the unit circle for scale, the top one ringed."""
    eigenvalues = np.asarray(eigenvalues)
    ax.scatter(eigenvalues.real, eigenvalues.imag, s=7, color=colour, alpha=0.7, lw=0)
    top = eigenvalues[np.argmax(np.abs(eigenvalues))]
    ax.scatter([top.real], [top.imag], s=60, facecolor="none", edgecolor="C3", lw=1.2)
    theta = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(theta), np.sin(theta), color="0.6", lw=0.6, ls=":")
    ax.axhline(0, color="0.8", lw=0.5)
    ax.axvline(0, color="0.8", lw=0.5)
    ax.set(xlabel="Re", ylabel="Im", title=title)
    ax.set_aspect("equal", adjustable="datalim")
    _few_ticks(ax, nbins=4)
    return ax


#: colours of the Thm 5.4 verdict of a head
VERDICT_COLOURS = ["#bfe3b4", "#f4b6b6", "#f9d9a6"]
VERDICT_LABELS = ["hypotheses hold", r"$\lambda_1$ not real and > 0", r"$c_{1,1} \leq 0$ (or no gap)"]


def plot_hypotheses_map(spec, *, ax=None):
    """Every head of a model, layer by layer: whether the hypotheses of Thm 5.4 hold for
    its value map, and if not, the first one that fails."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 5))
    real_positive = (np.abs(spec.top.imag) <= 1e-12) & (spec.top.real > 0)
    verdict = np.where(spec.holds, 0, np.where(~real_positive, 1, 2))
    ax.imshow(verdict, cmap=ListedColormap(VERDICT_COLOURS), vmin=0, vmax=2, aspect="auto", interpolation="nearest")
    ax.set(xlabel="head", ylabel="layer", title=spec.weights.name)
    ax.legend(
        handles=[Patch(color=c, label=lab) for c, lab in zip(VERDICT_COLOURS, VERDICT_LABELS)],
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=1,
        frameon=False,
    )
    return ax


# --------------------------------------------------------------------------------------
# Chapter 8: tokens through a repeated stack
# --------------------------------------------------------------------------------------
KIND_COLOURS = {"random words": "C0", "dummy text": "C1", "wikipedia": "C2"}


def plot_depth_similarity(result, *, ax=None, skip_first: bool = True):
    """Fig. 16: mean pairwise cosine similarity of the token states after every layer,
    mean over the texts of each kind with their range as a band; dashed lines where the
    trained stack ends and where each repetition ends."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.4))
    values = result.mean_no_first if skip_first else result.mean
    for kind in result.kinds:
        colour = KIND_COLOURS.get(kind, None)
        _band(ax, result.layers, values[kind].T, colour, f"{kind} ({values[kind].shape[0]} texts)")
    for k in range(1, result.times):
        ax.axvline(k * result.trained_depth, color="k", ls="--" if k == 1 else ":", lw=0.9)
    ax.set(
        xlabel="layer (state after it; 0 = embeddings)",
        ylabel="mean cosine similarity",
        title="without the first token" if skip_first else "all tokens",
        ylim=(min(0, float(np.min([v.min() for v in values.values()]))), 1.0),
    )
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_similarity_histograms(result, kind: str, *, axes=None):
    """Figs 17-18: the distribution of pairwise cosine similarities (first token left
    out, all texts of ``kind`` pooled) at each layer kept in ``result.samples``."""
    layers = sorted(result.samples[kind])
    if axes is None:
        _, axes = plt.subplots(1, len(layers), figsize=(2.6 * len(layers), 2.6), sharex=True)
    bins = np.linspace(-0.5, 1.0, 46)
    for ax, layer in zip(np.ravel(axes), layers):
        values = result.samples[kind][layer]
        ax.hist(values, bins=bins, color=KIND_COLOURS.get(kind, "C0"), density=True)
        ax.axvline(values.mean(), color="k", lw=1, ls="--")
        ax.set(title=f"{kind}, after layer {layer}", xlabel="cosine similarity")
        ax.title.set_fontsize(9)
    np.ravel(axes)[0].set_ylabel("density")
    return axes


# --------------------------------------------------------------------------------------
# Chapter 9: LoRA on a language model
# --------------------------------------------------------------------------------------
def plot_lora_learning(run, *, axes=None, window: int = 20):
    """Training loss per step with its running mean, and held-out accuracy at every
    checkpoint against the accuracy before fine-tuning and chance."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    steps = np.arange(1, run.loss.size + 1)
    axes[0].plot(steps, run.loss, color="0.75", lw=0.7, label="each step")
    if run.loss.size >= window:
        running = np.convolve(run.loss, np.ones(window) / window, mode="valid")
        axes[0].plot(steps[window - 1 :], running, color="C0", lw=1.6, label=f"mean of {window} steps")
    axes[0].set(xlabel="step", ylabel="loss at the answer (nats)", yscale="log")
    axes[0].legend(fontsize=8)
    if run.accuracy_curve:
        at, accuracy = zip(*run.accuracy_curve)
        axes[1].plot(at, accuracy, "o-", color="C2", ms=3, label="held-out accuracy")
    axes[1].axhline(run.accuracy_before, color="k", ls="--", lw=1, label="before fine-tuning")
    axes[1].axhline(0.5, color="0.5", ls=":", lw=1, label="chance")
    axes[1].set(xlabel="step", ylabel="accuracy", ylim=(0.3, 1.0))
    axes[1].legend(fontsize=8, loc="lower right")
    return axes


def plot_update_eigenvalues(run, *, ax=None):
    """The paper's Fig. 15: for every layer, the paths of the nonzero eigenvalues of the
    value-map update over the checkpoints (from 0 at the start), the final ones dotted."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5))
    eig = run.ov_eigenvalues  # (checkpoints, layers, r)
    colours = plt.cm.viridis(np.linspace(0.9, 0.1, eig.shape[1]))
    for layer in range(eig.shape[1]):
        for k in range(eig.shape[2]):
            path = eig[:, layer, k]
            ax.plot(path.real, path.imag, color=colours[layer], lw=0.8, alpha=0.8)
            ax.scatter(path[-1].real, path[-1].imag, color=colours[layer], s=14, zorder=3)
    ax.axhline(0, color="0.8", lw=0.5)
    ax.axvline(0, color="0.8", lw=0.5)
    ax.set(xlabel="Re", ylabel="Im", title="eigenvalues of the value-map update, per layer")
    mappable = plt.cm.ScalarMappable(cmap="viridis_r", norm=plt.Normalize(0, eig.shape[1] - 1))
    ax.figure.colorbar(mappable, ax=ax, label="layer")
    return ax
