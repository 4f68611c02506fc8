r"""Chapter 3 (Sec. 5): the checks around the phase-transition studies of
:mod:`~lora_clusters.experiments.phase_transition`: the window of Thm 5.1, the
authors' notebook points against the phase diagram, and the limits of
:math:`\varphi_1^*`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import measures
from .phase_transition import PhaseDiagram, TransitionPair, limit_projections, transition_pair

__all__ = [
    "LimitCounts",
    "NotebookComparison",
    "TransitionWindow",
    "limit_counts",
    "notebook_comparison",
    "transition_window",
]


@dataclass
class TransitionWindow:
    r"""Result of :func:`transition_window`: per :math:`\varepsilon`, the largest
    distance of a perturbed token to the reference clusters and the largest
    :math:`W_2` between the two flows on the window :math:`[T_\delta, 10T_\delta]`."""

    eps: list
    worst_distance: dict
    worst_w2: dict
    delta: float
    n: int
    window_end: float

    def table(self) -> str:
        lines = [
            f"2 delta = {2 * self.delta}, delta/(n+1) = {self.delta / (self.n + 1):.5f}\n"
            f"{'eps':>7} {'max dist to clusters':>21} {'max W2 on window':>17}"
        ]
        lines += [f"{e:7.0e} {self.worst_distance[e]:21.4f} {self.worst_w2[e]:17.5f}" for e in self.eps]
        return "\n".join(lines)

    def glue_values(self) -> dict:
        limit = self.delta / (self.n + 1)
        return {
            "window_largest_2delta": max(e for e in self.eps if self.worst_distance[e] <= 2 * self.delta),
            "window_end": self.window_end,
            "window_w2_eps2": float(self.worst_w2[1e-2]),
            "window_w2_eps3": float(self.worst_w2[1e-3]),
            "window_limit": limit,
            "window_largest_ok": max(e for e in self.eps if self.worst_w2[e] <= limit),
        }


def transition_window(pair: TransitionPair, x0, eps_values, *, n_times: int = 400) -> TransitionWindow:
    r"""Thm 5.1 on the window :math:`[T_\delta, 10T_\delta]` of ``pair`` (Fig. 2's
    reference run): for each :math:`\varepsilon` of ``eps_values``, the pair of flows
    from ``x0`` (``pair`` itself at its own :math:`\varepsilon`, else a new
    :func:`transition_pair` run to :math:`10T_\delta`)."""
    worst_distance, worst_w2 = {}, {}
    for e in eps_values:
        p = (
            pair
            if e == pair.eps
            else transition_pair(x0, e, delta=pair.delta, t_max=10 * pair.T_delta, n_times=n_times)
        )
        window = (p.t >= p.T_delta) & (p.t <= 10 * p.T_delta)
        worst_distance[e] = measures.distance_to_clusters(p.perturbed.states[window], p.centers).max()
        worst_w2[e] = p.w2[window].max()
    return TransitionWindow(list(eps_values), worst_distance, worst_w2, pair.delta, len(x0), 10 * pair.T_delta)


@dataclass
class NotebookComparison:
    r"""Result of :func:`notebook_comparison`."""

    overflow_time: float
    notebook_scaled: dict
    interpolated: dict
    paper_points: dict

    def glue_values(self) -> dict:
        return {
            "overflow_time": float(self.overflow_time),
            "T_star_1e3_min": float(self.interpolated[1e-3].min()),
            "T_star_1e3_max": float(self.interpolated[1e-3].max()),
            "T_star_1e2_min": float(self.interpolated[1e-2].min()),
            "T_star_1e2_max": float(self.interpolated[1e-2].max()),
            "paper_scaled_min": float(min(self.notebook_scaled.values())),
            "paper_scaled_max": float(max(self.notebook_scaled.values())),
            # the paper's text gives T* = 10.5 at eps = 1e-2
            "text_vs_notebook": self.paper_points[1e-2] / 10.5,
        }


def notebook_comparison(diagram: PhaseDiagram, paper_points: dict, *, at=(1e-3, 1e-2)) -> NotebookComparison:
    r"""The exit times of the authors' notebook (``paper_points``, :math:`\varepsilon
    \mapsto T^*`) against ``diagram``: their :math:`T^*\varepsilon` without the point
    that sits at the float64 overflow of :math:`e^{2t}` (within 5 of it), and the
    diagram's :math:`T^*` of every seed with a transition, interpolated log-log at
    each :math:`\varepsilon` of ``at``."""
    overflow_time = np.log(np.finfo(float).max) / 2
    notebook_scaled = {e: T * e for e, T in paper_points.items() if abs(T - overflow_time) > 5}
    interpolated = {
        e: np.exp(
            [np.interp(np.log(e), np.log(diagram.eps), np.log(row)) for row in diagram.T_star[diagram.has_transition]]
        )
        for e in at
    }
    return NotebookComparison(overflow_time, notebook_scaled, interpolated, dict(paper_points))


@dataclass
class LimitCounts:
    r"""Result of :func:`limit_counts`: per configuration, the number of distinct
    limits of :math:`\varphi_1^*` at the later time, and the largest change between
    the two times."""

    counts: np.ndarray
    drift: float

    @property
    def histogram(self) -> dict:
        """``{number of distinct limits: how many configurations}``."""
        values, frequency = np.unique(self.counts, return_counts=True)
        return dict(zip(values.tolist(), frequency.tolist()))

    def glue_values(self) -> dict:
        values, frequency = np.unique(self.counts, return_counts=True)
        return {
            "limit_max_count": int(self.counts.max()),
            "limit_drift": float(self.drift),
            "limit_histogram": ", ".join(f"{f} with {v}" for v, f in zip(values, frequency)),
        }


def limit_counts(configs, V_tilde, t_before: float, t_after: float, *, tol: float = 1e-3) -> LimitCounts:
    r"""For each configuration of ``configs`` (k, n, d), the distinct values of
    :math:`\varphi_1^*` at ``t_after`` (merged at ``tol``, :func:`measures.cluster_centers`),
    and how far they moved since ``t_before`` (:func:`limit_projections`)."""
    before = limit_projections(configs, V_tilde, t_before)
    after = limit_projections(configs, V_tilde, t_after)
    counts = np.array([len(measures.cluster_centers(v[:, None], tol=tol)) for v in after])
    return LimitCounts(counts, np.abs(after - before).max())
