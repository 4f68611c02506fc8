"""Live ipywidgets panels for JupyterLab (they need a running kernel).

Each panel exposes its controls in ``panel.controls``, the data it last drew
(``panel.trajectory``, ``panel.comparison``, ``panel.pair`` or ``panel.run``) and the
figure that shows it (``panel.view``, a view from :mod:`lora_clusters.plots.particles`
kept for the panel's lifetime and updated in place), so that tests can move a slider
and check what changed.

The website has no kernel: there a panel is replaced by its static copy
(:mod:`lora_clusters.static_panels`), the pictures this same code draws for the values
of the panel's :attr:`~lora_clusters.panels.base.Panel.WEBSITE_GRID`, embedded in the page when the book is
built.  A panel carrying such a copy (``panel.website_html``) displays as both: the
live widget where a kernel runs it, the copy where the page is rendered without one.
"""

from __future__ import annotations

import ipywidgets as W
import numpy as np

from . import dynamics, experiments, lora, measures, setups
from .panels.base import Panel, another_value, render_png, show_in, shown_image
from .plots import particles

__all__ = [
    "DynamicsExplorer",
    "LowRankExplorer",
    "OrthogonalLoRAExplorer",
    "PhaseTransitionExplorer",
    "StabilityExplorer",
    "another_value",
    "render_png",
    "show_in",
    "shown_image",
]


class DynamicsExplorer(Panel):
    """Chapter 1 panel: re-simulates eq. (8) or (2) and redraws the token paths.

    Controls: ``n`` (tokens), ``seed``, ``t_max``, ``V`` (a kind from
    :data:`setups.VALUE_MATRIX_KINDS`), ``rescaled``.  Q = K = I, d = 2.
    """

    # t_max stays below 8 but for its top value: the flow (2) is capped at t = 8, and
    # two capped horizons would draw the same picture
    WEBSITE_GRID = {
        "n": [10, 20, 40],
        "seed": [5, 6, 7],
        "t_max": [2.0, 5.0, 10.0],
        "V": list(setups.VALUE_MATRIX_KINDS),
        "rescaled": [True, False],
    }

    def __init__(self, n: int = 20, seed: int = 0, t_max: float = 10.0, V: str = "identity", rescaled: bool = True):
        self.controls = {
            "n": W.IntSlider(value=n, min=2, max=100, description="tokens n"),
            "seed": W.IntSlider(value=seed, min=0, max=50, description="seed"),
            "t_max": W.FloatSlider(value=t_max, min=1.0, max=30.0, step=0.5, description="t_max"),
            "V": W.Dropdown(options=setups.VALUE_MATRIX_KINDS, value=V, description="V"),
            "rescaled": W.Checkbox(value=rescaled, description="rescaled z = e^{-tV} x"),
        }
        self.trajectory = None
        self.view = particles.PathsView()
        self._build([list(self.controls.values())[:3], list(self.controls.values())[3:]])

    def redraw(self) -> None:
        v = self.values()
        x0 = setups.initial_tokens(v["n"], 2, seed=v["seed"])
        identity = np.eye(2)
        V = setups.value_matrix(v["V"], 2, seed=v["seed"])
        t_max = v["t_max"] if v["rescaled"] else min(v["t_max"], 8.0)
        self.trajectory = dynamics.simulate(x0, identity, identity, V, t_max=t_max, dt=0.1, rescaled=v["rescaled"])
        self.n_clusters = len(measures.cluster_centers(self.trajectory.final, tol=1e-2))
        self.summary.value = (
            f"<b>{self.n_clusters}</b> distinct points (within 0.01) at t = {self.trajectory.t[-1]:.1f}"
            + ("" if v["rescaled"] or t_max == v["t_max"] else " (x grows like e^{tV}: capped at t = 8)")
        )
        show_in(
            self.output,
            self.view.update(
                self.trajectory.t,
                self.trajectory.states,
                title=f"V = {v['V']}, n = {v['n']}, seed = {v['seed']}",
                label="z" if v["rescaled"] else "x",
            ),
        )


class StabilityExplorer(Panel):
    r"""Chapter 2 panel: measured :math:`W_2(\mu_t,\nu_t)` against the bound (24).

    Controls: ``log10_size`` (:math:`\log_{10}` of the LoRA update's operator norm),
    ``rank``, ``target`` (``V``, ``A`` or ``both``, see :func:`lora.lora_triple`),
    ``radius`` (R, the largest initial token norm), ``t_max``.  n = 20 tokens in d = 3,
    pre-trained Q = K = V = I.
    """

    d = 3
    WEBSITE_GRID = {
        "log10_size": [-3.0, -2.0, -1.0],
        "rank": [1, 2, 3],
        "target": list(lora.LORA_TARGETS),
        "radius": [0.1, 0.2, 0.5],
        "t_max": [1.5, 3.0, 6.0],
    }

    def __init__(
        self,
        log10_size: float = -2.0,
        rank: int = 1,
        target: str = "V",
        radius: float = 0.2,
        t_max: float = 3.0,
        seed: int = 0,
    ):
        self.seed = seed
        self.controls = {
            "log10_size": W.FloatSlider(value=log10_size, min=-4.0, max=-1.0, step=0.25, description="log10 size"),
            "rank": W.IntSlider(value=rank, min=1, max=self.d, description="LoRA rank"),
            "target": W.Dropdown(options=lora.LORA_TARGETS, value=target, description="perturb"),
            "radius": W.FloatSlider(value=radius, min=0.05, max=1.0, step=0.05, description="radius R"),
            "t_max": W.FloatSlider(value=t_max, min=0.5, max=6.0, step=0.5, description="t_max"),
        }
        self.comparison = self.triple = None
        self.view = particles.StabilityView()
        self._build([list(self.controls.values())[:3], list(self.controls.values())[3:]])

    def redraw(self) -> None:
        v = self.values()
        x0 = setups.initial_tokens(20, self.d, seed=self.seed)
        x0 = v["radius"] * x0 / np.max(np.linalg.norm(x0, axis=1))
        I = np.eye(self.d)
        self.triple = lora.lora_triple(
            I, I, I, target=v["target"], size=10.0 ** v["log10_size"], rank=v["rank"], seed=self.seed
        )
        self.comparison = experiments.stability_comparison(x0, I, I, I, *self.triple, t_max=v["t_max"], n_times=41)
        c = self.comparison
        finite = c.ratio[1:][np.isfinite(c.ratio[1:])]
        self.summary.value = (
            f"bound holds at every sample: <b>{c.holds}</b>; informative (below 2R<sub>t</sub>) until "
            f"t = <b>{c.bound.informative_until:.2f}</b>; smallest bound/measured ratio: "
            + (f"<b>{finite.min():.3g}</b>" if finite.size else "none finite")
        )
        show_in(self.output, self.view.update(c, f"{v['target']}, rank {v['rank']}"))


class PhaseTransitionExplorer(Panel):
    r"""Chapter 3 panel: Fig. 2 for any :math:`\varepsilon`, n and seed.

    Shows the rescaled tokens of both flows at the end of the run (twice
    :math:`T^*`) and :math:`W_2` between them over time with :math:`T_\delta` and
    :math:`T^*(\delta)` marked; ``pair`` holds the last :class:`experiments.TransitionPair`.
    """

    #: the exit is looked for until t = min(max_horizon, horizon_times_eps / eps): past the
    #: T*·eps of the configurations of Chapter 3's phase diagram, while a run without
    #: exit costs time in proportion to its horizon (the flow is stiff near the clusters)
    horizon_times_eps = 4.0
    max_horizon = 2000.0
    WEBSITE_GRID = {"log10_eps": [-3.0, -2.5, -2.0, -1.5, -1.0], "n": [10, 20, 40], "seed": [5, 6, 7]}

    def __init__(self, log10_eps: float = -2.0, n: int = 20, seed: int = 5):
        self.controls = {
            "log10_eps": W.FloatSlider(value=log10_eps, min=-3.0, max=-1.0, step=0.25, description="log10 eps"),
            "n": W.IntSlider(value=n, min=4, max=60, description="tokens n"),
            "seed": W.IntSlider(value=seed, min=0, max=40, description="seed"),
        }
        self.pair = None
        self.view = particles.TransitionView()
        self._references: dict[tuple[int, int], experiments.ReferenceClusters] = {}
        self._build([list(self.controls.values())])

    def reference(self, n: int, seed: int) -> experiments.ReferenceClusters:
        """The clusters of V = I for these tokens, computed once per (n, seed): an
        eps move then only integrates the perturbed flow."""
        key = (n, seed)
        if key not in self._references:
            if len(self._references) >= 64:
                self._references.clear()
            self._references[key] = experiments.reference_clusters(setups.initial_tokens(n, 2, seed=seed))
        return self._references[key]

    def redraw(self) -> None:
        v = self.values()
        reference = self.reference(v["n"], v["seed"])
        eps = 10.0 ** v["log10_eps"]
        # the curves at display accuracy (rtol 1e-5, 100 samples) keep a slider move
        # interactive; T_delta and T* come from the sweep at its own tolerances, as in
        # Chapter 3, whose Fig. 2 also draws the curves at the tighter default
        horizon = min(self.max_horizon, self.horizon_times_eps / eps)
        self.pair = p = experiments.transition_pair(
            reference.x0, eps, n_times=100, rtol=1e-5, atol=1e-8, sweep_t_max=horizon, reference=reference
        )
        exit_text = (
            f"T* = <b>{p.T_star:.1f}</b>, T*·eps = <b>{p.T_star * eps:.3f}</b>"
            if np.isfinite(p.T_star)
            else f"<b>no exit</b> before t = {horizon:.0f} (the clusters of V = I may also be stable for this V~)"
        )
        self.summary.value = (
            f"eps = {eps:.3g}: {len(p.centers)} clusters of V = I, T<sub>δ</sub> = <b>{p.T_delta:.1f}</b>, {exit_text}"
        )
        show_in(self.output, self.view.update(p))


class LowRankExplorer(Panel):
    r"""Chapter 4 panel: clusters for a rank-r attention matrix in dimension d.

    Q = K = the projector onto the first ``rank`` axes (``rank`` = d: Q = K = I),
    V = I, n tokens uniform in :math:`[-5, 5]^d` (Fig. 4's law), rescaled flow (8) to
    t = 20.  Shows the token paths in the first two coordinates and reports the
    number of clusters and the distance of P(t) to :math:`\mathcal P^*`.
    """

    # a rank above d is lowered to d, as the live slider's range follows d: the static
    # copy then moves its rank control down too
    WEBSITE_GRID = {"rank": [1, 2, 3, 8], "d": [2, 3, 8, 20], "n": [10, 20, 40], "seed": [1, 2, 3]}
    LIVE_RANGES = {"rank": "from 1 to d"}

    def __init__(self, rank: int = 1, d: int = 2, n: int = 20, seed: int = 1):
        self.controls = {
            "rank": W.IntSlider(value=rank, min=1, max=20, description="rank of A"),
            "d": W.IntSlider(value=d, min=2, max=20, description="dimension d"),
            "n": W.IntSlider(value=n, min=4, max=60, description="tokens n"),
            "seed": W.IntSlider(value=seed, min=0, max=40, description="seed"),
        }
        # the rank of A cannot exceed d: the slider's range follows d (observed before the
        # redraw, so that a smaller d lowers the rank first)
        self.controls["rank"].max = d
        self.controls["d"].observe(self._bound_rank, names="value")
        self.trajectory = None
        self.view = particles.PathsView(figsize=(4.8, 4.5))
        self._build([list(self.controls.values())[:2], list(self.controls.values())[2:]])

    def _bound_rank(self, change) -> None:
        self.controls["rank"].max = change["new"]

    def redraw(self) -> None:
        v = self.values()
        d, rank = v["d"], v["rank"]
        A = setups.low_rank_attention(d, rank, seed=None)
        x0 = setups.initial_tokens(v["n"], d, seed=v["seed"], law="uniform", scale=5.0)
        self.trajectory = dynamics.simulate(
            x0, A, A, np.eye(d), t_max=20.0, method="dopri5", t_eval=np.linspace(0.0, 20.0, 81), rtol=1e-8, atol=1e-11
        )
        self.n_clusters = len(measures.cluster_centers(self.trajectory.final, tol=5e-3))
        self.P_star_distance = measures.distance_to_P_star(
            dynamics.attention_matrix(self.trajectory.final, A, A, t=20.0, V=np.eye(d))
        )
        self.summary.value = (
            f"rank {rank} in d = {d}: <b>{self.n_clusters}</b> clusters at t = 20; "
            f"distance of P(20) to P*: <b>{self.P_star_distance:.1e}</b>"
        )
        show_in(
            self.output,
            self.view.update(
                self.trajectory.t,
                self.trajectory.states,
                title=f"rank(A) = {rank}, d = {d}, n = {v['n']} (first two coordinates)",
                title_size=9,
            ),
        )


class OrthogonalLoRAExplorer(Panel):
    r"""Chapter 5 panel: the pre-trained head and its orthogonal rank-one LoRA (Sec. 7),
    as :func:`experiments.orthogonal_lora_run` computes them, for chosen tokens.

    d = 3, pre-trained :math:`Q = K = \mathrm{diag}(1, 1, 0)`, LoRA
    :math:`\tilde Q = Q + vv^\top`, :math:`\tilde K = K + vv^\top` with v = e3 (condition
    (36)), n = 20 tokens, both flows (8) to t = 60.  Controls: ``log10_eps`` (the tokens'
    distance to the line :math:`\mathbb R v`, eq. (39)), ``C`` (their separation along v,
    Assumption 7.1), ``spread`` (each side spans [C, (1 + spread) C] along v: Assumption
    7.3 holds up to 1/2), ``V`` (a key of :attr:`VALUE_MATRICES`: v is a top eigenvector
    of V = I, not of diag(3, 3, 1), as Prop. 7.4 asks), ``seed``.  ``run`` holds the last
    :class:`experiments.OrthogonalLoRARun`.
    """

    #: the value matrices offered: V = I and Chapter 5's diag(3, 3, 1), whose top
    #: eigenvectors are e1 and e2, not v = e3
    VALUE_MATRICES = {"I": np.eye(3), "diag(3, 3, 1)": np.diag([3.0, 3.0, 1.0])}
    WEBSITE_GRID = {
        "log10_eps": [-3.0, -2.0, -1.0],
        "C": [0.05, 0.5, 2.0],
        "spread": [0.5, 10.0],
        "V": list(VALUE_MATRICES),
        "seed": [0, 1, 2],
    }

    def __init__(self, log10_eps: float = -2.0, C: float = 2.0, spread: float = 0.5, V: str = "I", seed: int = 0):
        self.controls = {
            "log10_eps": W.FloatSlider(value=log10_eps, min=-4.0, max=-1.0, step=0.25, description="log10 eps"),
            "C": W.FloatSlider(value=C, min=0.01, max=4.0, step=0.01, description="separation C"),
            "spread": W.FloatSlider(value=spread, min=0.1, max=10.0, step=0.1, description="side width / C"),
            "V": W.Dropdown(options=list(self.VALUE_MATRICES), value=V, description="V"),
            "seed": W.IntSlider(value=seed, min=0, max=40, description="seed"),
        }
        self.run = None
        self.view = particles.OrthogonalLoRAView()
        self._build([list(self.controls.values())[:3], list(self.controls.values())[3:]])

    def redraw(self) -> None:
        v = self.values()
        eps = 10.0 ** v["log10_eps"]
        self.run = r = experiments.orthogonal_lora_run(
            C=v["C"], eps=eps, spread=v["spread"], V=self.VALUE_MATRICES[v["V"]], seed=v["seed"]
        )
        self.summary.value = (
            f"LoRA head: <b>{len(r.clusters_lora)}</b> cluster(s), split by the sign of "
            f"⟨z(0), v⟩: <b>{r.split_by_sign}</b>; distance to the line R v at t = {r.lora.t[-1]:.0f}: "
            f"<b>{r.distance_to_line:.1e}</b> = <b>{r.distance_to_line / eps:.2f}</b> ε; "
            f"pre-trained head: <b>{len(r.clusters_pretrained)}</b> cluster(s)"
        )
        show_in(self.output, self.view.update(r, eps))
