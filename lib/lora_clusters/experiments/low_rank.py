r"""Chapter 4 (Sec. 6): collapse in :math:`\mathrm{Im}(A)^\perp` (Prop. 6.1) and cluster counts (Prop. 6.2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import bounds, dynamics, measures, setups
from ..integrators import PRECISE

__all__ = ["CollapseStudy", "cluster_counts", "collapse_study"]


@dataclass
class CollapseStudy:
    """Result of :func:`collapse_study`: per run the measured :math:`T_\\delta` and
    the bound (33) with the paper's eigenvalue and with the smallest one; the
    high-probability bound (34) and the fraction of runs below it."""

    T_delta: np.ndarray
    bound_33: np.ndarray
    bound_33_smallest: np.ndarray
    bound_34: float
    eps: float
    radius: float
    delta: float
    t: np.ndarray
    worst: np.ndarray

    @property
    def fraction_under_34(self) -> float:
        return float(np.mean(self.T_delta <= self.bound_34))


def collapse_study(
    n_runs: int,
    *,
    n: int = 20,
    d: int = 3,
    rank: int = 1,
    radius: float = 1.0,
    delta: float = 0.1,
    eps: float = 0.05,
    V=None,
    seed: int = 0,
    dt: float = 0.01,
    image_component: float = 0.0,
    t_max: float | None = None,
) -> CollapseStudy:
    r"""Prop. 6.1: tokens uniform in :math:`B(0,C)\cap\mathrm{Im}(A)^\perp` for
    :math:`A` the projector onto the first ``rank`` axes (Q = K = A), rescaled flow
    (8) with value matrix ``V`` (default I; it should leave :math:`\mathrm{Im}(A)^\perp`
    invariant).  Each of the ``n_runs`` configurations is simulated until it has
    collapsed, and :math:`T_\delta` is the time at which the farthest token comes within
    :math:`\delta` of the initial mean (:func:`measures.first_crossing_time`).

    ``image_component`` > 0 adds to every token a component in :math:`\mathrm{Im}(A)`,
    uniform in the ball of that radius: the perturbed setting of eq. (35)."""
    A = setups.low_rank_attention(d, rank, seed=None)
    V = np.eye(d) if V is None else np.asarray(V, dtype=float)
    image, perp = setups.image_and_complement(A)
    x0 = np.stack([setups.uniform_in_subspace_ball(n, perp, radius, seed=seed + k) for k in range(int(n_runs))])
    if image_component > 0:
        x0 = x0 + np.stack(
            [
                setups.uniform_in_subspace_ball(n, image, image_component, seed=10_000 + seed + k)
                for k in range(int(n_runs))
            ]
        )
    lam = np.real(np.linalg.eigvals(perp.T @ V @ perp))
    if t_max is None:
        # long enough for the slowest direction to shrink 2C to delta, with margin
        t_max = (np.log(2 * radius / delta) + 2.0) / lam.min()
    t = np.arange(0.0, t_max + dt, dt)
    traj = dynamics.simulate(x0, A, A, V, t_max=float(t[-1]), t_eval=t, options=PRECISE)
    worst = measures.max_distance_to_mean(traj.states, x0)
    T_delta = np.array([measures.first_crossing_time(traj.t, w, delta) for w in worst])
    z_perp = x0 @ perp @ perp.T  # the bounds concern the Im(A)^perp part
    b33 = np.array([bounds.collapse_time_bound(z, delta, V, A) for z in z_perp])
    b33s = np.array([bounds.collapse_time_bound(z, delta, V, A, eigenvalue="smallest") for z in z_perp])
    b34 = bounds.collapse_time_high_probability_bound(n, perp.shape[1], radius, delta, eps, lam.max())
    return CollapseStudy(T_delta, b33, b33s, b34, eps, radius, delta, traj.t, worst)


def cluster_counts(
    dims, ranks, seeds, *, n: int = 20, radius: float = 5.0, t_max: float = 30.0, tol: float = 1e-3
) -> np.ndarray:
    r"""Number of clusters of the rescaled flow (8) with V = I and Q = K the projector
    onto the first ``rank`` axes (``rank="full"``: Q = K = I), tokens uniform in
    :math:`[-C, C]^d` (Fig. 4's law), at ``t_max``.  Returns (len(ranks), len(dims), len(seeds))."""
    counts = np.zeros((len(ranks), len(dims), len(seeds)), dtype=int)
    for a, rank in enumerate(ranks):
        for b, d in enumerate(dims):
            r = d if rank == "full" else min(int(rank), d)
            A = setups.low_rank_attention(d, r, seed=None)
            x0 = np.stack([setups.initial_tokens(n, d, seed=int(s), law="uniform", scale=radius) for s in seeds])
            traj = dynamics.simulate(x0, A, A, np.eye(d), t_max=t_max, t_eval=np.array([0.0, t_max]), options=PRECISE)
            counts[a, b] = [len(measures.cluster_centers(z, tol=tol * radius)) for z in traj.final]
    return counts
