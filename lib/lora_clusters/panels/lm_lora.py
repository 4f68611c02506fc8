r"""Chapter 9 panel: the eigenvalues LoRA adds to a language model's value maps, step by step.

The chapter fine-tunes a language model with LoRA of rank :math:`r` on its value
projections, once per seed, and reads at every checkpoint the nonzero eigenvalues of the
update of every layer's value map, :math:`(\alpha/r)\,O_G B A`
(:class:`~lora_clusters.nets.lm_lora.LoRARun`).  This panel shows one seed at one
checkpoint:

- the eigenvalues of every layer in the complex plane (colour: the layer), with the
  path each has taken since the start, on axes fixed for the whole run so that the
  growth is seen;
- the largest modulus per layer at that checkpoint, with the run's final one behind it;
- the training loss per step, and the held-out accuracy up to the chosen step (dots: on
  the first ``curve_examples`` held-out texts at each checkpoint; open square: on all of
  them before training).
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .base import Panel, show_in

__all__ = ["UpdateEigenvaluesExplorer"]


class UpdateEigenvaluesExplorer(Panel):
    r"""One LoRA run of Chapter 9 at one checkpoint (see the module's docstring).

    ``runs`` maps a seed to its :class:`~lora_clusters.nets.lm_lora.LoRARun` (or is a
    sequence of runs, keyed by their settings' seeds); all must share their checkpoints.
    Controls: ``seed`` and ``step`` (a checkpoint).  ``shown`` holds the eigenvalues
    drawn last, (layers, r), and the layer with the largest modulus.
    """

    def __init__(self, runs, seed: int | None = None, step: int | None = None):
        if not isinstance(runs, dict):
            runs = {int(run.settings.seed): run for run in runs}
        if not runs:
            raise ValueError("runs must hold at least one LoRARun")
        checkpoints = {tuple(int(c) for c in run.checkpoints) for run in runs.values()}
        if len(checkpoints) != 1:
            raise ValueError(f"runs must share their checkpoints, got {sorted(checkpoints)}")
        steps = list(checkpoints.pop())
        seed = next(iter(runs)) if seed is None else seed
        if seed not in runs:
            raise ValueError(f"seed must be one of {list(runs)}, got {seed!r}")
        step = steps[-1] if step is None else step
        if step not in steps:
            raise ValueError(f"step must be a checkpoint, one of {steps}, got {step!r}")
        self.runs = runs
        self.WEBSITE_GRID = {"seed": list(runs), "step": steps}
        self.controls = {
            "seed": W.Dropdown(options=list(runs), value=seed, description="seed"),
            "step": W.SelectionSlider(options=steps, value=step, description="step"),
        }
        self.shown = None
        self.figure = Figure(figsize=(10.5, 3.3), dpi=72)
        FigureCanvasAgg(self.figure)
        self._build([list(self.controls.values())])

    def redraw(self) -> None:
        v = self.values()
        run = self.runs[v["seed"]]
        k = list(int(c) for c in run.checkpoints).index(v["step"])
        eigenvalues = run.ov_eigenvalues[k]  # (layers, r)
        moduli = np.abs(eigenvalues).max(axis=1)
        top = int(moduli.argmax())
        n_complex = int((np.abs(eigenvalues.imag) > 1e-9 * (np.abs(eigenvalues) + 1e-300)).sum())
        self.shown = {"eigenvalues": eigenvalues, "top_layer": top}
        curve = dict(run.accuracy_curve)
        s = run.settings
        if v["step"] == 0:
            accuracy = f"before training, held-out accuracy <b>{run.accuracy_before:.3f}</b> (all {run.n_test})"
        else:
            n = min(s.curve_examples, run.n_test)
            accuracy = f"held-out accuracy <b>{curve[v['step']]:.2f}</b> on the first {n} held-out texts"
        self.summary.value = (
            f"step <b>{v['step']}</b> of {int(run.checkpoints[-1])} "
            f"({v['step'] * s.effective_batch} examples): {accuracy}; largest |eigenvalue| "
            f"<b>{moduli[top]:.3g}</b> in layer <b>{top}</b>; complex eigenvalues: "
            f"<b>{n_complex}</b> of {eigenvalues.size}"
        )
        self._draw(run, k, v)
        show_in(self.output, self.figure)

    def _draw(self, run, k, v) -> None:
        fig = self.figure
        fig.clear()
        plane, bars, learning = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.0, 1.1, 1.1]})
        layers = run.ov_eigenvalues.shape[1]
        colors = colormaps["viridis"](np.linspace(0, 0.95, layers))
        path = run.ov_eigenvalues[: k + 1]  # (checkpoints so far, layers, r)
        for layer in range(layers):
            for j in range(path.shape[2]):
                plane.plot(path[:, layer, j].real, path[:, layer, j].imag, color=colors[layer], lw=0.6, alpha=0.5)
        now = path[-1]
        plane.scatter(now.real.ravel(), now.imag.ravel(), s=12, c=np.repeat(colors, now.shape[1], axis=0), zorder=3)
        # fixed for the run; the imaginary parts are small, so that axis gets its own range
        reach = 1.08 * float(np.abs(run.ov_eigenvalues.real).max())
        height = max(1.15 * float(np.abs(run.ov_eigenvalues.imag).max()), 0.05 * reach)
        plane.set_xlim(-reach, reach)
        plane.set_ylim(-height, height)
        plane.axhline(0, color="0.8", lw=0.5)
        plane.axvline(0, color="0.8", lw=0.5)
        plane.set_xlabel(r"Re $\lambda(\Delta)$")
        plane.set_ylabel(r"Im $\lambda(\Delta)$")
        final = np.abs(run.ov_eigenvalues[-1]).max(axis=1)
        bars.bar(np.arange(layers), final, color="0.85", width=0.8, label="end of run")
        bars.bar(np.arange(layers), np.abs(now).max(axis=1), color=colors, width=0.5, label="this step")
        bars.set_ylim(0, 1.08 * float(np.abs(run.ov_eigenvalues).max()))
        bars.set_xlabel("layer")
        bars.set_ylabel("largest |eigenvalue|")
        bars.legend(loc="upper left", fontsize=8, frameon=False)
        steps = np.arange(1, run.loss.size + 1)
        learning.plot(steps, run.loss, color="0.75", lw=0.6, label="training loss")
        window = max(1, run.settings.checkpoint_every)
        smooth = np.convolve(run.loss, np.ones(window) / window, mode="valid")
        learning.plot(steps[window - 1 :], smooth, color="0.3", lw=1.0, label=f"mean of {window} steps")
        learning.axvline(v["step"], color="C3", lw=0.9, ls="--")
        learning.set_xlim(-0.03 * steps[-1], 1.01 * steps[-1])
        learning.set_xlabel("training step")
        learning.set_ylabel("loss")
        accuracy = learning.twinx()
        # the curve is read on the first curve_examples held-out texts; the open square
        # at step 0 is the accuracy before training on all of them
        accuracy.plot([0], [run.accuracy_before], "s", color="C0", mfc="none", ms=5)
        shown = [(int(a), float(b)) for a, b in run.accuracy_curve if a <= v["step"]]
        if shown:
            accuracy.plot(*zip(*shown), "o-", color="C0", ms=3, lw=1.0)
        accuracy.set_ylim(0.5, 1.0)
        accuracy.set_ylabel("held-out accuracy", color="C0")
        learning.legend(loc="upper right", fontsize=8, frameon=False)
        fig.suptitle(f"{run.model_name}, seed {v['seed']}: value-map updates at step {v['step']}", fontsize=10)
        fig.subplots_adjust(left=0.06, right=0.95, bottom=0.16, top=0.88, wspace=0.42)
