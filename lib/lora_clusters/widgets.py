"""Live ipywidgets panels for JupyterLab (they need a running kernel).

Each panel exposes its controls in ``panel.controls`` and the data it last drew
(``panel.trajectory``), so that tests can move a slider and check what changed.
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from . import dynamics, measures, setups, plots

__all__ = ["DynamicsExplorer"]


class DynamicsExplorer:
    """Chapter 1 panel: re-simulates eq. (8) or (2) and redraws the token paths.

    Controls: ``n`` (tokens), ``seed``, ``t_max``, ``V`` (a kind from
    :data:`setups.VALUE_MATRIX_KINDS`), ``rescaled``.  Q = K = I, d = 2.
    """

    def __init__(self, n: int = 20, seed: int = 0, t_max: float = 10.0, V: str = "identity", rescaled: bool = True):
        self.controls = {
            "n": W.IntSlider(value=n, min=2, max=100, description="tokens n"),
            "seed": W.IntSlider(value=seed, min=0, max=50, description="seed"),
            "t_max": W.FloatSlider(value=t_max, min=1.0, max=30.0, step=0.5, description="t_max"),
            "V": W.Dropdown(options=setups.VALUE_MATRIX_KINDS, value=V, description="V"),
            "rescaled": W.Checkbox(value=rescaled, description="rescaled z = e^{-tV} x"),
        }
        self.output = W.Output()
        self.summary = W.HTML()
        for control in self.controls.values():
            control.observe(lambda _change: self.redraw(), names="value")
        self.widget = W.VBox([W.HBox(list(self.controls.values())[:3]), W.HBox(list(self.controls.values())[3:]),
                              self.summary, self.output])
        self.trajectory = None
        self.redraw()

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def redraw(self) -> None:
        v = self.values()
        x0 = setups.initial_tokens(v["n"], 2, seed=v["seed"])
        identity = np.eye(2)
        V = setups.value_matrix(v["V"], 2, seed=v["seed"])
        t_max = v["t_max"] if v["rescaled"] else min(v["t_max"], 8.0)
        self.trajectory = dynamics.simulate(x0, identity, identity, V, t_max=t_max, dt=0.1, rescaled=v["rescaled"])
        self.n_clusters = len(measures.cluster_centers(self.trajectory.final, tol=1e-2))
        self.summary.value = (f"<b>{self.n_clusters}</b> distinct points (within 0.01) at t = {self.trajectory.t[-1]:.1f}"
                              + ("" if v["rescaled"] or t_max == v["t_max"] else " (x grows like e^{tV}: capped at t = 8)"))
        with self.output:
            self.output.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(4.5, 4.5))
            plots.plot_paths(self.trajectory.t, self.trajectory.states, ax=ax, label="z" if v["rescaled"] else "x")
            ax.set_title(f"V = {v['V']}, n = {v['n']}, seed = {v['seed']}")
            plt.show()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
