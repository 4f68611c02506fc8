r"""Chapter 6 panel: one LoRA fine-tuning of the toy transformer, picked from the stored runs.

The chapter fine-tunes, with LoRA on :math:`W_V` only, every pre-trained model of every
depth on subtraction, under several sets of settings (the book's, the authors', other
learning rates, a learning rate scaled per model).  This panel shows one of those runs:

- its curves over the fine-tuning epochs: addition accuracy on all :math:`p^2` pairs
  (what is forgotten), subtraction accuracy on its training and held-out pairs (what is
  learned), the level 1/2 that defines the forgetting epoch, and that epoch;
- the relative size of the update of the value map,
  :math:`\|W_O\,\Delta W_V\|_F / \|W_O W_V\|_F`, over the same epochs;
- the eigenvalues of :math:`W_O W_V` before and of :math:`W_O(W_V + \Delta W_V)` after
  fine-tuning, with the circle that holds the pre-trained spectrum.

Every number it prints comes from the stored run itself
(:meth:`~lora_clusters.nets.toy.FinetuneResult.forgetting_epoch`,
:func:`~lora_clusters.nets.toy_study.value_spectra`,
:func:`~lora_clusters.spectra.outside_disc`), so it agrees with the chapter's tables.
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .. import spectra
from .base import Panel, show_in

__all__ = ["ForgettingExplorer"]

#: the level below which addition counts as forgotten (the chapter's)
LEVEL = 0.5
_COLORS = {"addition": "C3", "sub_train": "C0", "sub_test": "C2", "before": "0.55", "after": "C1"}


class ForgettingExplorer(Panel):
    r"""One stored LoRA run of Chapter 6: accuracy curves, relative update and the
    spectrum of the value map before and after (see the module's docstring).

    ``runs`` maps a label (e.g. "book's settings, lr 1e-4") to ``{depth: FinetuneResult}``
    as the chapter's studies hold them; every set must have the same depths and seeds.
    Controls: ``runs`` (which set), ``depth``, ``seed`` (the model's index in its stack).
    ``model`` holds what was last drawn: the run, the seed, its forgetting epoch and its
    :class:`~lora_clusters.nets.toy_study.ValueSpectra`.
    """

    def __init__(self, runs: dict, run: str | None = None, depth: int | None = None, seed: int = 0):
        if not isinstance(runs, dict) or not runs:
            raise ValueError("runs must be a non-empty dict: label -> {depth: FinetuneResult}")
        shapes = {label: (tuple(sorted(by_depth)), _n_seeds(by_depth)) for label, by_depth in runs.items()}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"runs must all have the same depths and number of seeds, got {shapes}")
        depths, n_seeds = next(iter(shapes.values()))
        run = next(iter(runs)) if run is None else run
        if run not in runs:
            raise ValueError(f"run must be one of {list(runs)}, got {run!r}")
        depth = depths[0] if depth is None else depth
        if depth not in depths:
            raise ValueError(f"depth must be one of {list(depths)}, got {depth!r}")
        if not (isinstance(seed, (int, np.integer)) and 0 <= seed < n_seeds):
            raise ValueError(f"seed must be an integer in [0, {n_seeds - 1}], got {seed!r}")
        self.runs = runs
        self.WEBSITE_GRID = {"run": list(runs), "depth": list(depths), "seed": list(range(n_seeds))}
        self.controls = {
            "run": W.Dropdown(options=list(runs), value=run, description="runs", layout=W.Layout(width="330px")),
            "depth": W.SelectionSlider(options=list(depths), value=depth, description="depth"),
            "seed": W.IntSlider(value=int(seed), min=0, max=n_seeds - 1, description="seed"),
        }
        if n_seeds == 1:  # one model per depth (the smoke scale): nothing to choose
            del self.controls["seed"], self.WEBSITE_GRID["seed"]
        # one scale for the relative update of a set of runs, so that its depths and
        # seeds compare by eye (the learning rates differ too much to share one)
        self._update_max = {
            label: max(float(np.nanmax(r.relative_update)) for r in by_depth.values())
            for label, by_depth in runs.items()
        }
        self._spectra = {}
        self.model = None
        self.figure = Figure(figsize=(10.5, 3.3), dpi=72)
        FigureCanvasAgg(self.figure)
        self._build([list(self.controls.values())])

    def spectra_of(self, run: str, depth: int, seed: int):
        """The value map's spectra of one model (computed once per model)."""
        from ..nets import toy_study  # torch: only once a run is drawn, which holds tensors

        key = (run, depth, seed)
        if key not in self._spectra:
            finetuned = self.runs[run][depth]
            self._spectra[key] = toy_study.value_spectra(finetuned.pretrained, seed, finetuned)
        return self._spectra[key]

    def redraw(self) -> None:
        v = self.values()
        run = self.runs[v["run"]][v["depth"]]
        m = v.get("seed", 0)
        forgot = float(run.forgetting_epoch(LEVEL)[m])
        values = self.spectra_of(v["run"], v["depth"], m)
        radius = float(np.abs(values.ov).max())
        outside, excess = spectra.outside_disc(values.ov_tuned, radius)
        self.model = {"run": run, "seed": m, "forgetting_epoch": forgot, "spectra": values}
        epochs = np.arange(run.add_acc.shape[0])
        when = (
            f"addition accuracy falls below {LEVEL} at epoch <b>{forgot:.0f}</b>"
            if np.isfinite(forgot)
            else f"addition accuracy stays at or above {LEVEL} for all <b>{epochs[-1]}</b> epochs"
        )
        self.summary.value = (
            f"{when}; at the end: addition <b>{run.add_acc[-1, m]:.2f}</b>, subtraction held-out "
            f"<b>{run.sub_test_acc[-1, m]:.2f}</b>, relative update <b>{run.relative_update[-1, m]:.3f}</b>; "
            f"eigenvalues of W<sub>O</sub>W<sub>V</sub> beyond the pre-trained radius {radius:.2f}: "
            f"<b>{outside}</b>" + (f" (farthest {100 * excess:.1f}% beyond)" if outside else "")
        )
        self._draw(run, m, forgot, values, radius, v)
        show_in(self.output, self.figure)

    def _draw(self, run, m, forgot, values, radius, v) -> None:
        fig = self.figure
        fig.clear()
        curves, update, plane = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.25, 1.0, 0.85]})
        epochs = np.arange(run.add_acc.shape[0])
        curves.plot(epochs, run.add_acc[:, m], color=_COLORS["addition"], label="addition, all pairs")
        curves.plot(epochs, run.sub_train_acc[:, m], color=_COLORS["sub_train"], label="subtraction, train")
        curves.plot(epochs, run.sub_test_acc[:, m], color=_COLORS["sub_test"], label="subtraction, held out")
        curves.axhline(LEVEL, color="0.5", lw=0.8, ls=":")
        update.plot(epochs, run.relative_update[:, m], color="C4")
        update.set_ylim(0, 1.05 * self._update_max[v["run"]])
        for ax in (curves, update):
            if np.isfinite(forgot):
                ax.axvline(forgot, color=_COLORS["addition"], lw=0.8, ls="--")
            ax.set_xlabel("fine-tuning epoch")
            ax.set_xlim(0, epochs[-1])
        curves.set_ylim(-0.02, 1.02)
        curves.set_ylabel("accuracy")
        curves.legend(loc="center right", fontsize=8, frameon=False)
        update.set_ylabel(r"$\|W_O\,\Delta W_V\|_F\,/\,\|W_O W_V\|_F$")
        angle = np.linspace(0, 2 * np.pi, 200)
        plane.plot(radius * np.cos(angle), radius * np.sin(angle), color="0.7", lw=0.8, ls="--")
        plane.scatter(
            values.ov.real, values.ov.imag, s=14, facecolors="none", edgecolors=_COLORS["before"], label="before LoRA"
        )
        plane.scatter(values.ov_tuned.real, values.ov_tuned.imag, s=8, color=_COLORS["after"], label="after LoRA")
        plane.set_aspect("equal", adjustable="datalim")
        plane.set_xlabel(r"Re $\lambda(W_O W_V)$")
        plane.set_ylabel(r"Im $\lambda$")
        plane.legend(loc="upper left", fontsize=8, frameon=False, handletextpad=0.2)
        fig.suptitle(f"{v['run']}: depth {v['depth']}, seed {m}", fontsize=10)
        fig.subplots_adjust(left=0.06, right=0.99, bottom=0.16, top=0.88, wspace=0.38)


def _n_seeds(by_depth: dict) -> int:
    counts = {run.add_acc.shape[1] for run in by_depth.values()}
    if len(counts) != 1:
        raise ValueError(f"every depth of a set of runs must have the same number of seeds, got {sorted(counts)}")
    return counts.pop()
