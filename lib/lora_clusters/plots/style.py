"""What both halves of the book's figures share: the book's matplotlib style and the
tick helpers that keep figures and panels light.  Chapters 1-5 draw with
:mod:`lora_clusters.plots.particles`, chapters 6-9 with :mod:`lora_clusters.plots.networks`.
"""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.ticker

__all__ = ["BOOK_STYLE", "few_ticks", "plain_log_ticks", "use_book_style"]

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


def few_ticks(*axes, nbins: int = 5) -> None:
    """At most ``nbins`` intervals on each linear axis: every tick label is text
    drawn anew at each render, about a millisecond apiece."""
    for ax in axes:
        for axis in (ax.xaxis, ax.yaxis):
            # a log or symlog axis keeps its own locator (one tick per decade): a linear
            # locator there labels 2e-03 twice
            if axis.get_scale() == "linear":
                axis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins, steps=[1, 2, 2.5, 5, 10]))


def plain_log_ticks(axis) -> None:
    """One plain tick label per decade (1e-03) and no minor ticks on a log axis: the
    default 10^k labels go through mathtext, and the minor ticks of a range of many
    decades are a hundred small artists; together they were half of a redraw."""
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _pos: f"{y:.0e}"))
    axis.set_minor_locator(matplotlib.ticker.NullLocator())
