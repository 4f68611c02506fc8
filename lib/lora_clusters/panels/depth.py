r"""Chapter 8 panel: one text's mean token similarity through a layer stack run twice.

The chapter runs a language model's stack of :math:`L` layers several times over
(layer :math:`kL + i` reuses layer :math:`i`) and measures, after every layer, the mean
cosine similarity between the states of different tokens of one text
(:class:`~lora_clusters.nets.depth.LayerSimilarities`).  This panel shows one text of
one kind:

- left: its mean pairwise cosine against the layer over the whole repeated stack, in
  front of the mean (dashed) and the range (band, smallest to largest) of all texts of
  that kind, with the end of every pass (layers :math:`L, 2L, \dots`) marked and the
  text's values at the trained depth and at the end of the stack as dots;
- right: the size of the update each layer adds, relative to the state it is added to
  (:math:`\|x_\ell - x_{\ell-1}\| / \|x_{\ell-1}\|`, first token left out), for the text
  and the mean of its kind: the large update of the last layer of each pass is where the
  similarity drops (the chapter's "sawtooth").
  The run stores this size for the residual stream only (before the final norm,
  first token left out), so the right-hand plot does not follow the two checkboxes;
  its title says so.

The similarity is read with or without the first token (an attention sink with a huge
norm) and before or after the model's final norm, from the stored arrays themselves,
so the summary line's numbers agree with the chapter's tables (its "mean cosine" and
"with first token" columns are the means over the texts of the kind).
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .base import Panel, show_in

__all__ = ["LayerCosineExplorer"]

#: the arrays of LayerSimilarities behind each setting of (first_token, final_norm)
SOURCES = {
    (False, False): "mean_no_first",
    (True, False): "mean",
    (False, True): "normed_no_first",
    (True, True): "normed",
}
#: how many texts of each kind the website offers (the first ones)
WEBSITE_TEXTS = 4


class LayerCosineExplorer(Panel):
    r"""One text of Chapter 8's study, layer by layer (see the module's docstring).

    ``result`` is a :class:`~lora_clusters.nets.depth.LayerSimilarities` holding the
    arrays after the final norm and the updates' sizes (``normed``, ``normed_no_first``,
    ``update_ratio``).  Controls: ``kind`` (of text), ``text`` (its index among the
    texts of that kind; the slider's range follows the kind), ``first_token`` (the
    similarity over all tokens, else without the first) and ``final_norm`` (states
    after the model's final norm, else before it, as the chapter's tables read them).
    ``shown`` holds what was drawn last: the curve and the numbers of the summary.
    """

    def __init__(
        self, result, kind: str | None = None, text: int = 0, first_token: bool = False, final_norm: bool = False
    ):
        kinds = list(getattr(result, "kinds", []))
        if not kinds:
            raise ValueError("result must be a LayerSimilarities with at least one kind of text")
        needed = (*SOURCES.values(), "update_ratio")
        missing = [name for name in needed if set(kinds) - set(getattr(result, name, {}))]
        if missing:
            raise ValueError(f"result holds no {', '.join(missing)} for some kinds: a run made before they were kept")
        kind = kinds[0] if kind is None else kind
        if kind not in kinds:
            raise ValueError(f"kind must be one of {kinds}, got {kind!r}")
        counts = {k: int(np.shape(result.mean[k])[0]) for k in kinds}
        if isinstance(text, bool) or not isinstance(text, (int, np.integer)) or not 0 <= text < counts[kind]:
            raise ValueError(
                f"text must be the index of one of the {counts[kind]} {kind!r} texts, "
                f"0 to {counts[kind] - 1}, got {text!r}"
            )
        for name, value in (("first_token", first_token), ("final_norm", final_norm)):
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        self.result = result
        self.counts = counts
        text = int(text)

        # the website: every kind, the first texts (and the chosen one), both checkboxes;
        # a text the smaller kinds lack is lowered to their last, which is offered too
        texts = set(range(min(WEBSITE_TEXTS, min(counts.values())))) | {text}
        texts |= {n - 1 for n in counts.values() if text > n - 1}
        self.WEBSITE_GRID = {
            "kind": kinds,
            "text": sorted(texts),
            "first_token": [False, True],
            "final_norm": [False, True],
        }
        if len(set(counts.values())) == 1:
            self.LIVE_RANGES = {"text": f"from 0 to {counts[kinds[0]] - 1}"}
        else:
            ranges = ", ".join(f"{k}: to {n - 1}" for k, n in counts.items())
            self.LIVE_RANGES = {"text": f"from 0 to the kind's last text ({ranges})"}

        self.controls = {
            "kind": W.Dropdown(options=kinds, value=kind, description="kind of text"),
            "text": W.IntSlider(value=text, min=0, max=counts[kind] - 1, description="text"),
            "first_token": W.Checkbox(value=bool(first_token), description="first token included"),
            "final_norm": W.Checkbox(value=bool(final_norm), description="after the final norm"),
        }
        # the text slider's range follows the kind (observed before the redraw: a kind
        # with fewer texts lowers the text first, and that lowering draws nothing)
        self._adjusting = False
        self.controls["kind"].observe(self._bound_text, names="value")
        self.shown = None
        self._setup_figure()
        self._build([list(self.controls.values())[:2], list(self.controls.values())[2:]])

    def _bound_text(self, change) -> None:
        self._adjusting = True
        try:
            self.controls["text"].max = self.counts[change["new"]] - 1
        finally:
            self._adjusting = False

    # -- the figure, made once --------------------------------------------------------
    def _setup_figure(self) -> None:
        r = self.result
        self.figure = fig = Figure(figsize=(9.6, 3.4), dpi=72)
        FigureCanvasAgg(fig)
        self.ax, self.ax_update = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1.0]})
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.86, wspace=0.25)
        layers = np.arange(r.total + 1)
        ax, up = self.ax, self.ax_update
        # one scale for every kind and every setting, so that moving a control compares
        lows = [np.nanmin(getattr(r, name)[k]) for name in SOURCES.values() for k in r.kinds]
        ax.set(xlim=(-1, r.total + 1), ylim=(min(0.0, float(np.floor(10 * min(lows)) / 10)), 1.0))
        ax.set(xlabel="layer (state after it; 0 = embeddings)", ylabel="mean pairwise cosine")
        ratios = np.concatenate([np.ravel(r.update_ratio[k])[np.ravel(r.update_ratio[k]) > 0] for k in r.kinds])
        up.set_yscale("log")
        if ratios.size:
            up.set_ylim(float(ratios.min()) / 1.3, float(ratios.max()) * 1.3)
        up.set(xlim=(-1, r.total + 1), xlabel="layer", ylabel="||update|| / ||state before||")
        # stored for one reading only: say so, since the checkboxes change the left plot
        up.set_title("size of each layer's update\n(first token left out, before the final norm)", fontsize=8.5)
        for a in (ax, up):
            for k in range(1, r.times + 1):
                a.axvline(k * r.trained_depth, color="k", ls="--" if k == 1 else ":", lw=0.9, zorder=1)
        # the artists the redraw updates (fixed z-orders: a redraw adds none)
        zero = np.zeros_like(layers, dtype=float)
        self._band = ax.fill_between(layers, zero, zero, color="C0", alpha=0.2, lw=0, zorder=2)
        (self._kind_line,) = ax.plot(layers, zero, color="C0", ls="--", lw=1.0, zorder=3)
        (self._text_line,) = ax.plot(layers, zero, color="C0", lw=1.8, zorder=4)
        (self._dots,) = ax.plot([], [], "o", color="k", ms=4, zorder=5)
        (self._kind_update,) = up.plot(layers[1:], zero[1:], color="C0", ls="--", lw=1.0, zorder=3)
        (self._text_update,) = up.plot(layers[1:], zero[1:], "o-", color="C0", ms=2.0, lw=1.0, zorder=4)
        self._pass_end = Line2D([], [], color="k", ls="--", lw=0.9)
        ends = ", ".join(str(k * r.trained_depth) for k in range(1, r.times + 1))
        self._labels = ["this text", "mean of the kind's texts", "their range", f"end of a pass (layer {ends})"]

    # -- what a move of a control does ------------------------------------------------
    def redraw(self) -> None:
        if self._adjusting:
            return
        v = self.values()
        r, kind, i = self.result, v["kind"], v["text"]
        values = np.asarray(getattr(r, SOURCES[(v["first_token"], v["final_norm"])])[kind], dtype=float)
        ratio = np.asarray(r.update_ratio[kind], dtype=float)
        L, end = r.trained_depth, r.total
        curve = values[i]
        n_tokens = int(r.n_tokens[kind][i])
        self.shown = {
            "kind": kind,
            "text": i,
            "curve": curve,
            "trained": float(curve[L]),
            "end": float(curve[end]),
            "n_tokens": n_tokens,
            "kind_trained": float(values[:, L].mean()),
            "kind_end": float(values[:, end].mean()),
        }
        s = self.shown
        tokens = "all tokens" if v["first_token"] else "first token left out"
        norm = "after the final norm" if v["final_norm"] else "before the final norm"
        self.summary.value = (
            f"{kind}, text <b>{i}</b> of {values.shape[0]} (<b>{n_tokens}</b> tokens; {tokens}, {norm}): "
            f"mean pairwise cosine <b>{s['trained']:.3f}</b> at the trained depth (layer {L}) and "
            f"<b>{s['end']:.3f}</b> at the end of the stack (layer {end}), a change of "
            f"{s['end'] - s['trained']:+.3f}; mean of the {values.shape[0]} {kind} texts: "
            f"{s['kind_trained']:.3f} and {s['kind_end']:.3f}"
        )
        self._draw(kind, i, values, ratio, v, tokens, norm)
        show_in(self.output, self.figure)

    def _draw(self, kind, i, values, ratio, v, tokens, norm) -> None:
        r = self.result
        layers = np.arange(r.total + 1)
        colour = f"C{r.kinds.index(kind) % 10}"
        low, high = values.min(axis=0), values.max(axis=0)
        self._band.set_verts([np.column_stack([np.r_[layers, layers[::-1]], np.r_[low, high[::-1]]])])
        self._band.set_facecolor(colour)
        self._kind_line.set_ydata(values.mean(axis=0))
        self._text_line.set_ydata(values[i])
        self._dots.set_data([r.trained_depth, r.total], [values[i, r.trained_depth], values[i, r.total]])
        self._kind_update.set_ydata(np.nanmean(ratio[:, 1:], axis=0))
        self._text_update.set_ydata(ratio[i, 1:])
        for artist in (self._kind_line, self._text_line, self._kind_update, self._text_update):
            artist.set_color(colour)
        # legends made again: their keys take the kind's colour
        self.ax.legend(
            [self._text_line, self._kind_line, self._band, self._pass_end],
            self._labels,
            loc="lower right",
            fontsize=8,
            frameon=False,
            ncol=2,
        )
        self.ax_update.legend(
            [self._text_update, self._kind_update],
            ["this text", "mean of the kind"],
            loc="upper right",
            fontsize=8,
            frameon=False,
        )
        self.ax.set_title(f"{kind}, text {i} ({int(r.n_tokens[kind][i])} tokens): {tokens}, {norm}", fontsize=9)
