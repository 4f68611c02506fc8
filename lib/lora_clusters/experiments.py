r"""Experiment drivers that combine the dynamics and the measures.

:func:`phase_transition_sweep` computes the data of the phase diagram (Fig. 3,
App. G.2.1): for :math:`Q = K = I` and the value matrices :math:`V = I` and
:math:`\tilde V_\varepsilon = \mathrm{diag}(1, 1-\varepsilon)`, the clustering time
:math:`T_\delta` of the unperturbed tokens and, for every :math:`\varepsilon`, the time
:math:`T^*(\delta)` at which the perturbed tokens leave the :math:`\delta`-neighbourhood
of the unperturbed clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dynamics, measures, setups
from ._validation import as_finite_array, as_tokens, positive_scalar

__all__ = ["PhaseSweep", "exit_time_grid", "phase_transition_sweep"]


@dataclass
class PhaseSweep:
    """Result of :func:`phase_transition_sweep`.

    ``T_star[i]`` is the exit time for ``eps[i]`` (``inf`` if none before ``t_max``);
    ``T_enter[i]`` the first time >= ``T_delta`` at which the perturbed tokens are
    all within ``delta`` of the clusters (the exit is searched after it).
    """

    eps: np.ndarray
    delta: float
    T_delta: float
    T_enter: np.ndarray
    T_star: np.ndarray
    centers: np.ndarray
    n_steps: int
    nfev: int


def exit_time_grid(t_max: float, fine_until: float = 20.0, fine_dt: float = 0.05, ratio: float = 1.002) -> np.ndarray:
    """Sampling times for exit-time measurements: spacing ``fine_dt`` up to
    ``fine_until``, then geometric with the given ratio (relative resolution
    ``ratio - 1``) up to ``t_max``."""
    t_max = positive_scalar(t_max, "t_max")
    fine = np.arange(0.0, min(fine_until, t_max), fine_dt)
    start = fine[-1] + fine_dt if fine.size else fine_dt
    n_geo = int(np.ceil(np.log(t_max / start) / np.log(ratio))) + 1 if t_max > start else 0
    coarse = start * ratio ** np.arange(n_geo)
    grid = np.concatenate([fine, coarse[coarse < t_max], [t_max]])
    return np.unique(grid)


def phase_transition_sweep(
    x0,
    eps,
    delta: float = 0.1,
    t_max: float = 20000.0,
    *,
    t_reference: float = 60.0,
    cluster_tol: float = 1e-3,
    rtol: float = 1e-7,
    atol: float = 1e-10,
    progress: bool = False,
) -> PhaseSweep:
    r"""Phase-transition times for :math:`\tilde V = \mathrm{diag}(1,\dots,1-\varepsilon)`.

    1. The unperturbed tokens (Q = K = V = I) are integrated with RK4 (dt = 0.1) to
       ``t_reference``; their distinct final positions (``cluster_tol``) are the
       clusters C, and :math:`T_\delta` is when all tokens are within
       :math:`\delta` of C for good.
    2. All perturbed runs are integrated together (a batch over V) with the
       adaptive integrator, stopping once every run has left the
       :math:`\delta`-clustering of C.  :math:`T^*` is the first time after the
       perturbed tokens have entered it (at or after :math:`T_\delta`) at which
       :math:`\max_i \mathrm{dist}(\tilde z_i, C) > \delta`, sampled on
       :func:`exit_time_grid`.
    """
    x0 = as_tokens(x0, "x0", allow_batch=False)
    eps = as_finite_array(eps, "eps").ravel()
    if eps.size == 0 or np.any(eps <= 0):
        raise ValueError("eps must be a non-empty array of positive perturbation sizes")
    delta = positive_scalar(delta, "delta")
    d = x0.shape[1]
    identity = np.eye(d)

    reference = dynamics.simulate(x0, identity, identity, identity, t_max=t_reference, dt=0.1)
    centers = measures.cluster_centers(reference.final, tol=cluster_tol)
    T_delta = measures.clustering_time(reference.t, reference.states, centers, delta)
    if not np.isfinite(T_delta):
        raise RuntimeError(f"the unperturbed tokens are not {delta}-clustered by t_reference = {t_reference}")

    # the exit is also watched at every accepted step, which can catch a short excursion
    # between two points of the output grid; T* is the first exit over both sets of samples
    entered_at = np.full(eps.size, np.inf)
    exited_at = np.full(eps.size, np.inf)

    def all_exited(t, states):
        worst = measures.distance_to_clusters(states, centers).max(axis=-1)
        if t >= T_delta:
            new_exit = np.isfinite(entered_at) & np.isinf(exited_at) & (worst > delta)
            exited_at[new_exit] = t
            entered_at[np.isinf(entered_at) & (worst <= delta)] = t
        return bool(np.isfinite(exited_at).all())

    grid = exit_time_grid(t_max)
    traj = dynamics.simulate(
        x0, identity, identity, setups.perturbed_value_matrix(eps, d), t_max=t_max,
        method="dopri5", t_eval=grid, rtol=rtol, atol=atol, stop_when=all_exited, progress=progress,
    )
    worst = measures.distance_to_clusters(traj.states, centers).max(axis=-1)  # (B, m)
    T_enter = np.full(eps.size, np.inf)
    T_star = np.full(eps.size, np.inf)
    for b in range(eps.size):
        inside = np.flatnonzero((traj.t >= T_delta) & (worst[b] <= delta))
        if inside.size:
            T_enter[b] = traj.t[inside[0]]
            out = np.flatnonzero((traj.t > T_enter[b]) & (worst[b] > delta))
            T_star[b] = traj.t[out[0]] if out.size else np.inf
        T_enter[b] = min(T_enter[b], entered_at[b])
        T_star[b] = min(T_star[b], exited_at[b])
    return PhaseSweep(eps, delta, T_delta, T_enter, T_star, centers, traj.n_steps, traj.nfev)
