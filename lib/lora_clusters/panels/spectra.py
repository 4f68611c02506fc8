r"""Chapter 7 panel: the value map of one head of a pretrained model, and its layer.

The chapter computes, for every head :math:`h` of every layer of a model, the
:math:`d_h` eigenvalues of its value map :math:`W_O^hW_V^{g(h)}` that can be nonzero
(:class:`~lora_clusters.nets.head_spectra.HeadSpectra`) and whether the hypotheses of
Thm 5.4 hold for it: a real positive top eigenvalue :math:`\lambda_1`, a gap
:math:`\lambda_1 > |\lambda_2|`, and :math:`c_{1,1} = \langle A_h\varphi_1,\varphi_1\rangle > 0`.
This panel shows one head:

- left, those eigenvalues in the complex plane, :math:`\lambda_1` ringed, and the
  circle of radius :math:`|\lambda_2|`: there is a gap when :math:`\lambda_1` lies on
  the positive real axis outside that circle;
- right, every head of the same layer: :math:`|\lambda_1|` (bar) and :math:`|\lambda_2|`
  (tick), the bar coloured by the head's verdict as in the chapter's map of the
  hypotheses (:func:`~lora_clusters.plots.networks.plot_hypotheses_map`), the chosen
  head outlined.

Every number it prints is read off the
:class:`~lora_clusters.nets.head_spectra.HeadSpectra` (``top``, ``second``, ``c11``,
``real_positive``, ``has_gap``, ``holds``, ``relative_gap()``, ``layer_shares()``), so it
agrees with the chapter's tables.
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..nets.head_spectra import HeadSpectra
from ..plots.networks import VERDICT_COLOURS, VERDICT_LABELS
from ..plots.style import few_ticks
from .base import Panel, show_in

__all__ = ["HeadSpectraExplorer", "verdict"]


def verdict(spec: HeadSpectra, layer: int, head: int) -> tuple[int, str]:
    """The verdict of Thm 5.4 on one head, as the chapter's map colours it (0: the
    hypotheses hold; 1: its top eigenvalue is not real and positive; 2: it is, but has
    no gap or :math:`c_{1,1} \\le 0`), and the first hypothesis that fails, in words
    (the order of :meth:`HeadSpectra.rows`)."""
    top = spec.top[layer, head]
    if spec.holds[layer, head]:
        return 0, "they hold"
    if not spec.real_positive[layer, head]:
        return 1, "λ<sub>1</sub> is complex" if abs(top.imag) > 1e-12 else "λ<sub>1</sub> is not positive"
    if not spec.has_gap[layer, head]:
        return 2, "no gap: λ<sub>1</sub> ties with |λ<sub>2</sub>|"
    return 2, "c<sub>1,1</sub> ≤ 0"


def format_eigenvalue(value: complex) -> str:
    """A top eigenvalue as the summary prints it: real part, and ``± |Im| i`` when complex
    (a conjugate pair has no preferred member)."""
    if abs(value.imag) <= 1e-12:
        return f"{value.real:.4g}"
    return f"{value.real:.4g} ± {abs(value.imag):.4g}i"


class HeadSpectraExplorer(Panel):
    r"""One head of a pretrained model: the eigenvalues of its value map and its verdict
    under Thm 5.4, beside the other heads of its layer (see the module's docstring).

    ``spectra`` maps a model's name to its
    :class:`~lora_clusters.nets.head_spectra.HeadSpectra` (Chapter 7's ``spectra``).
    Controls: ``model``, ``layer`` and ``head``, whose ranges follow the model (a layer
    or head beyond a smaller model's is lowered to its last).  ``shown`` holds what was
    drawn last: the model's name, layer, head, its eigenvalues and its verdict.
    """

    #: about how many layers and heads the website's copy offers (evenly spread)
    LAYERS_OFFERED = 5
    HEADS_OFFERED = 3
    LIVE_RANGES = {"layer": "from 0 to the model's last layer", "head": "from 0 to the model's last head"}

    def __init__(self, spectra: dict, model: str | None = None, layer: int = 0, head: int = 0):
        if not isinstance(spectra, dict) or not spectra:
            raise ValueError("spectra must be a non-empty dict: model name -> HeadSpectra")
        for name, spec in spectra.items():
            if not isinstance(spec, HeadSpectra):
                raise ValueError(f"spectra[{name!r}] must be a HeadSpectra, got {type(spec).__name__}")
        model = next(iter(spectra)) if model is None else model
        if model not in spectra:
            raise ValueError(f"model must be one of {list(spectra)}, got {model!r}")
        weights = spectra[model].weights
        layer = _index(layer, "layer", weights.n_layers, model)
        head = _index(head, "head", weights.n_heads, model)
        self.spectra = spectra
        last_layers = sorted({s.weights.n_layers - 1 for s in spectra.values()})
        last_heads = sorted({s.weights.n_heads - 1 for s in spectra.values()})
        # the website's copy: every model; for each, its first and last layer and head and
        # a few evenly in between; and the ones the panel starts on
        self.WEBSITE_GRID = {
            "model": list(spectra),
            "layer": sorted({*_spread(last_layers, self.LAYERS_OFFERED), layer}),
            "head": sorted({*_spread(last_heads, self.HEADS_OFFERED), head}),
        }
        self.controls = {
            "model": W.Dropdown(options=list(spectra), value=model, description="model"),
            "layer": W.IntSlider(value=layer, min=0, max=weights.n_layers - 1, description="layer"),
            "head": W.IntSlider(value=head, min=0, max=weights.n_heads - 1, description="head"),
        }
        # the ranges follow the model: observed before the redraw (set by _build), which
        # waits until both are set (a slider lowered past its value moves, and redraws)
        self._moving_bounds = False
        self.controls["model"].observe(self._follow_model, names="value")
        self.shown = None
        self.figure = Figure(figsize=(9.6, 3.4), dpi=72)
        FigureCanvasAgg(self.figure)
        self._build([list(self.controls.values())])

    def _follow_model(self, change) -> None:
        weights = self.spectra[change["new"]].weights
        self._moving_bounds = True
        try:
            self.controls["layer"].max = weights.n_layers - 1
            self.controls["head"].max = weights.n_heads - 1
        finally:
            self._moving_bounds = False

    def redraw(self) -> None:
        if self._moving_bounds:
            return
        v = self.values()
        name, layer, head = v["model"], v["layer"], v["head"]
        spec = self.spectra[name]
        n_heads = spec.weights.n_heads
        code, reason = verdict(spec, layer, head)
        top, second = complex(spec.top[layer, head]), float(spec.second[layer, head])
        self.shown = {
            "model": name,
            "layer": layer,
            "head": head,
            "eigenvalues": spec.ov_eigenvalues[layer, head],
            "verdict": code,
        }
        if spec.real_positive[layer, head]:
            detail = (
                f" (relative gap {100 * float(spec.relative_gap()[layer, head]):.3g}%), "
                f"c<sub>1,1</sub> = <b>{float(spec.c11[layer, head]):.4g}</b>"
            )
        else:
            detail = ""
        holding = int(spec.holds[layer].sum())
        real_positive = float(spec.layer_shares()["real_positive"][layer])
        self.summary.value = (
            f"{name}, layer {layer}, head {head}: λ<sub>1</sub> = <b>{format_eigenvalue(top)}</b>, "
            f"|λ<sub>2</sub>| = <b>{second:.4g}</b>{detail}; Thm 5.4's hypotheses "
            + ("<b>hold</b>" if code == 0 else f"<b>fail</b> ({reason})")
            + f". In layer {layer}: <b>{holding}</b> of {n_heads} heads meet them, "
            f"<b>{round(real_positive * n_heads)}</b> of {n_heads} ({real_positive:.0%}) have a real positive "
            "λ<sub>1</sub>"
        )
        self._draw(spec, name, layer, head)
        show_in(self.output, self.figure)

    def _draw(self, spec: HeadSpectra, name: str, layer: int, head: int) -> None:
        fig = self.figure
        fig.clear()
        plane = fig.add_axes((0.065, 0.14, 0.27, 0.7))
        bars = fig.add_axes((0.43, 0.14, 0.36, 0.7))
        # the head's eigenvalues, on a square window around the largest
        eigenvalues = spec.ov_eigenvalues[layer, head]
        top, second = spec.top[layer, head], float(spec.second[layer, head])
        reach = 1.15 * float(np.abs(eigenvalues).max()) or 1.0  # a zero map: any window
        angle = np.linspace(0, 2 * np.pi, 200)
        plane.axhline(0, color="0.8", lw=0.5)
        plane.axvline(0, color="0.8", lw=0.5)
        plane.plot(second * np.cos(angle), second * np.sin(angle), color="0.55", lw=0.8, ls="--")
        plane.scatter(eigenvalues.real, eigenvalues.imag, s=12, color="C2", alpha=0.8, lw=0)
        plane.scatter([top.real], [top.imag], s=70, facecolor="none", edgecolor="C3", lw=1.3)
        plane.set(xlim=(-reach, reach), ylim=(-reach, reach), xlabel="Re", ylabel="Im")
        plane.set_aspect("equal", adjustable="box")
        few_ticks(plane, nbins=4)
        plane.set_title(r"eigenvalues of $W_O^hW_V^{g(h)}$", fontsize=10)
        plane.legend(
            [Line2D([], [], ls="", marker="o", mfc="none", mec="C3"), Line2D([], [], color="0.55", ls="--")],
            [r"$\lambda_1$", r"$|z| = |\lambda_2|$"],
            loc="upper left",
            fontsize=8,
            frameon=False,
            handletextpad=0.2,
            borderaxespad=0.2,
        )
        # every head of the layer: |lambda_1| (bar), |lambda_2| (tick), coloured by verdict
        n_heads = spec.weights.n_heads
        codes = [verdict(spec, layer, h)[0] for h in range(n_heads)]
        x = np.arange(n_heads)
        moduli = np.abs(spec.top[layer])
        bars.bar(x, moduli, width=0.75, color=[VERDICT_COLOURS[c] for c in codes], edgecolor="0.5", lw=0.5)
        bars.bar([head], [moduli[head]], width=0.75, color="none", edgecolor="k", lw=2.0)
        bars.scatter(x, spec.second[layer], marker="_", s=90, color="k", lw=1.5, zorder=3)
        bars.set(xlim=(-0.6, n_heads - 0.4), ylim=(0, 1.1 * float(moduli.max())), xlabel="head")
        bars.set_xticks(x, [str(h) for h in x], fontsize=8 if n_heads > 10 else 9)
        bars.get_xticklabels()[head].set_fontweight("bold")
        bars.yaxis.set_major_locator(MaxNLocator(4, steps=[1, 2, 2.5, 5, 10]))
        bars.set_ylabel(r"$|\lambda_1|$ (bar), $|\lambda_2|$ (tick)")
        holding = int(spec.holds[layer].sum())
        bars.set_title(f"layer {layer}: {holding} of {n_heads} heads meet Thm 5.4", fontsize=10)
        bars.legend(
            [*(Patch(facecolor=c, edgecolor="0.5", lw=0.5) for c in VERDICT_COLOURS), Patch(fc="none", ec="k", lw=2)],
            [*VERDICT_LABELS, f"head {head}"],
            loc="center left",
            bbox_to_anchor=(1.02, 0.5),
            fontsize=8,
            frameon=False,
        )
        shape = f"{spec.weights.n_layers} layers of {n_heads} heads"
        fig.suptitle(f"{name} ({shape}): layer {layer}, head {head}", fontsize=10, y=0.985)


def _index(value, name: str, size: int, model: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < size:
        raise ValueError(f"{name} must be an integer in [0, {size - 1}] for {model}, got {value!r}")
    return int(value)


def _spread(lasts: list[int], count: int) -> list[int]:
    """For each of ``lasts`` (a model's last layer or head), ``count`` indices evenly
    spread from 0 to it, its last included (where a smaller model's slider stops)."""
    return sorted({int(round(k)) for last in lasts for k in np.linspace(0, last, count)})
