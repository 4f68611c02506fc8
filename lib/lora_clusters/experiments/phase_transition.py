r"""Chapter 3 (Sec. 5, App. G.2): the phase transition of the clusters.

:func:`phase_transition_sweep` computes the data of the phase diagram (Fig. 3,
App. G.2.1): for :math:`Q = K = I` and the value matrices :math:`V = I` and
:math:`\tilde V_\varepsilon = \mathrm{diag}(1, 1-\varepsilon)`, the clustering time
:math:`T_\delta` of the unperturbed tokens and, for every :math:`\varepsilon`, the time
:math:`T^*(\delta)` at which the perturbed tokens leave the :math:`\delta`-neighbourhood
of the unperturbed clusters.  :func:`phase_diagram` repeats it over configurations
and :meth:`PhaseDiagram.summary` condenses it into the numbers Chapter 3 reports;
:func:`transition_pair` is Fig. 2 and :func:`limit_projections` the limit of Thm 5.4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import bounds, dynamics, measures, setups, spectra
from .._validation import as_finite_array, as_tokens, positive_scalar, seed_list
from ..progress import progress_bar

__all__ = [
    "PhaseDiagram",
    "PhaseDiagramSummary",
    "PhaseSweep",
    "ReferenceClusters",
    "TransitionPair",
    "exit_time_grid",
    "limit_projections",
    "phase_diagram",
    "phase_transition_sweep",
    "reference_clusters",
    "transition_pair",
]


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


@dataclass
class ReferenceClusters:
    r"""The unperturbed side of a phase-transition measurement (Q = K = V = I).

    ``trajectory`` is the rescaled flow sampled every 0.1 up to ``t_reference``;
    ``centers`` its distinct final positions; ``T_delta`` the time after which every
    token stays within ``delta`` of them.  It depends on ``x0`` and ``delta`` only,
    so it can be computed once and shared by sweeps over :math:`\varepsilon`.
    """

    x0: np.ndarray
    delta: float
    centers: np.ndarray
    T_delta: float
    trajectory: dynamics.Trajectory


def reference_clusters(
    x0,
    delta: float = 0.1,
    *,
    t_reference: float = 60.0,
    cluster_tol: float = 1e-3,
    rtol: float = 1e-7,
    atol: float = 1e-10,
) -> ReferenceClusters:
    r"""The clusters C of the unperturbed tokens and their clustering time
    :math:`T_\delta` (step 1 of :func:`phase_transition_sweep`): the flow is
    integrated with the adaptive integrator at ``rtol``/``atol``, sampled every 0.1,
    to ``t_reference``; final positions closer than ``cluster_tol`` are one cluster."""
    x0 = as_tokens(x0, "x0", allow_batch=False)
    delta = positive_scalar(delta, "delta")
    t_reference = positive_scalar(t_reference, "t_reference")
    identity = np.eye(x0.shape[1])
    reference = dynamics.simulate(
        x0,
        identity,
        identity,
        identity,
        t_max=t_reference,
        method="dopri5",
        t_eval=np.linspace(0.0, t_reference, int(round(t_reference / 0.1)) + 1),
        rtol=rtol,
        atol=atol,
    )
    centers = measures.cluster_centers(reference.final, tol=cluster_tol)
    T_delta = measures.clustering_time(reference.t, reference.states, centers, delta)
    if not np.isfinite(T_delta):
        raise RuntimeError(f"the unperturbed tokens are not {delta}-clustered by t_reference = {t_reference}")
    return ReferenceClusters(x0.copy(), delta, centers, float(T_delta), reference)


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
    reference: ReferenceClusters | None = None,
    progress: bool = False,
) -> PhaseSweep:
    r"""Phase-transition times for :math:`\tilde V = \mathrm{diag}(1,\dots,1-\varepsilon)`.

    1. The unperturbed tokens (Q = K = V = I) give the clusters C and
       :math:`T_\delta` (:func:`reference_clusters` with ``t_reference``,
       ``cluster_tol`` and the same tolerances; pass ``reference`` to reuse one
       computed before for the same ``x0`` and ``delta``).
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
    reference = _checked_reference(reference, x0, delta, t_reference, cluster_tol, rtol, atol)
    watch = _ExitWatch(reference.centers, reference.T_delta, delta, eps.size)
    traj = _perturbed_runs(x0, eps, t_max, rtol, atol, watch, progress)
    T_enter, T_star = _exit_times(traj, reference, delta, watch)
    return PhaseSweep(eps, delta, reference.T_delta, T_enter, T_star, reference.centers, traj.n_steps, traj.nfev)


def _checked_reference(reference, x0, delta, t_reference, cluster_tol, rtol, atol) -> ReferenceClusters:
    """``reference`` if it was computed for ``x0`` and ``delta``, or when None the
    unperturbed clusters computed now (step 1 of :func:`phase_transition_sweep`)."""
    if reference is None:
        return reference_clusters(x0, delta, t_reference=t_reference, cluster_tol=cluster_tol, rtol=rtol, atol=atol)
    if not isinstance(reference, ReferenceClusters):
        raise TypeError(
            f"reference must be a ReferenceClusters (from reference_clusters), got {type(reference).__name__}"
        )
    if reference.x0.shape != x0.shape or not np.array_equal(reference.x0, x0) or reference.delta != delta:
        raise ValueError("reference was computed for other initial tokens or another delta than x0 and delta")
    return reference


class _ExitWatch:
    r"""The ``stop_when`` of the perturbed runs: after :math:`T_\delta`, records per run
    the first accepted step at which its tokens are all within ``delta`` of the clusters
    (``entered_at``) and the first one after that at which
    :math:`\max_i \mathrm{dist}(\tilde z_i, C) > \delta` (``exited_at``, Sec. 5);
    returns True once every run has exited.

    Watching every accepted step can catch a short excursion between two points of the
    output grid; :math:`T^*` is the first exit over both sets of samples.
    """

    def __init__(self, centers: np.ndarray, T_delta: float, delta: float, n_runs: int):
        self.centers, self.T_delta, self.delta = centers, T_delta, delta
        self.entered_at = np.full(n_runs, np.inf)
        self.exited_at = np.full(n_runs, np.inf)

    def __call__(self, t: float, states: np.ndarray) -> bool:
        worst = measures.distance_to_clusters(states, self.centers).max(axis=-1)
        if t >= self.T_delta:
            new_exit = np.isfinite(self.entered_at) & np.isinf(self.exited_at) & (worst > self.delta)
            self.exited_at[new_exit] = t
            self.entered_at[np.isinf(self.entered_at) & (worst <= self.delta)] = t
        return bool(np.isfinite(self.exited_at).all())


def _perturbed_runs(x0, eps, t_max, rtol, atol, watch: _ExitWatch, progress) -> dynamics.Trajectory:
    r"""Step 2 of :func:`phase_transition_sweep`: the rescaled flow (8) with Q = K = I and
    :math:`\tilde V_\varepsilon` for every ``eps``, one batch over V, adaptive, output on
    :func:`exit_time_grid`, stopped by ``watch`` once every run has exited."""
    d = x0.shape[1]
    identity = np.eye(d)
    grid = exit_time_grid(t_max)
    return dynamics.simulate(
        x0,
        identity,
        identity,
        setups.perturbed_value_matrix(eps, d),
        t_max=t_max,
        method="dopri5",
        t_eval=grid,
        rtol=rtol,
        atol=atol,
        stop_when=watch,
        progress=progress,
    )


def _exit_times(traj, reference: ReferenceClusters, delta: float, watch: _ExitWatch) -> tuple[np.ndarray, np.ndarray]:
    r"""Per run, the entry time :math:`T_{\text{enter}}` (first sample at or after
    :math:`T_\delta` with every token within ``delta`` of the clusters) and the exit time
    :math:`T^*(\delta)` (first later sample with one farther), on the output grid of
    ``traj`` and at the accepted steps seen by ``watch``, whichever came first."""
    worst = measures.distance_to_clusters(traj.states, reference.centers).max(axis=-1)  # (B, m)
    n_runs = worst.shape[0]
    T_enter = np.full(n_runs, np.inf)
    T_star = np.full(n_runs, np.inf)
    for b in range(n_runs):
        inside = np.flatnonzero((traj.t >= reference.T_delta) & (worst[b] <= delta))
        if inside.size:
            T_enter[b] = traj.t[inside[0]]
            out = np.flatnonzero((traj.t > T_enter[b]) & (worst[b] > delta))
            T_star[b] = traj.t[out[0]] if out.size else np.inf
        T_enter[b] = min(T_enter[b], watch.entered_at[b])
        T_star[b] = min(T_star[b], watch.exited_at[b])
    return T_enter, T_star


@dataclass
class PhaseDiagram:
    """Phase sweeps (:func:`phase_transition_sweep`) for several random initialisations.

    ``T_star`` is (n_seeds, n_eps); ``T_delta`` is (n_seeds,); ``bound`` holds the
    Prop. 5.8 bound (:func:`bounds.phase_transition_time_bound`) per seed and eps.
    """

    seeds: np.ndarray
    eps: np.ndarray
    delta: float
    n: int
    T_delta: np.ndarray
    T_star: np.ndarray
    bound: np.ndarray
    n_clusters: np.ndarray
    sweeps: list

    @property
    def has_transition(self) -> np.ndarray:
        """Seeds whose perturbed tokens leave the clusters (before t_max) for at least one eps."""
        return np.any(np.isfinite(self.T_star), axis=1)

    @property
    def T_enter(self) -> np.ndarray:
        """(n_seeds, n_eps): when the perturbed tokens first enter the delta-clustering
        (``inf``: never, the middle phase is missing)."""
        return np.array([s.T_enter for s in self.sweeps])

    def summary(
        self, *, small_eps: float = 1e-2, bound_eps: float = 1e-3, settle_time: float = 300.0
    ) -> PhaseDiagramSummary:
        r"""What Chapter 3 reports about this diagram (see :class:`PhaseDiagramSummary`).

        ``small_eps``: the range :math:`\varepsilon \le` ``small_eps`` over which
        :math:`T^*\varepsilon` is compared; ``bound_eps``: where the leading term of the
        Prop. 5.8 bound dominates; ``settle_time``: how long the points without an exit
        are integrated to see where their tokens end.
        """
        eps, T_star, with_exit = self.eps, self.T_star, self.has_transition
        finite = np.isfinite(T_star)
        rows = np.flatnonzero(with_exit)
        slopes = np.array([measures.fit_power_law(eps, T_star[k])[0] for k in rows])
        scaled = T_star[with_exit] * eps  # T* eps (inf: no exit)
        small = eps <= small_eps
        if not np.isfinite(scaled[:, small]).all():
            raise ValueError(f"some configuration with a transition has no exit for eps <= {small_eps}")
        spread = scaled[:, small].max(axis=1) / scaled[:, small].min(axis=1)
        ratio = self.bound / T_star
        ratio_small = ratio[:, eps <= bound_eps][finite[:, eps <= bound_eps]]
        no_exit = [(int(k), float(e)) for k in rows for e, T in zip(eps, T_star[k]) if not np.isfinite(T)]
        d = self.sweeps[0].centers.shape[1]
        final_gap = []
        for k, e in no_exit:
            x0 = setups.initial_tokens(self.n, d, seed=int(self.seeds[k]))
            identity = np.eye(d)
            end = dynamics.simulate(
                x0,
                identity,
                identity,
                setups.perturbed_value_matrix(e, d),
                t_max=settle_time,
                method="dopri5",
                t_eval=np.array([0.0, settle_time]),
            ).final
            final_gap.append(float(measures.distance_to_clusters(end, self.sweeps[k].centers).max()))
        return PhaseDiagramSummary(
            n_seeds=int(self.seeds.size),
            seeds_with_transition=self.seeds[with_exit],
            seeds_without_transition=self.seeds[~with_exit],
            slopes=slopes,
            scaled=scaled,
            spread_small_eps=spread,
            scaled_small_eps=scaled[:, small],
            bound_ratio=ratio[finite],
            bound_ratio_small_eps=ratio_small,
            no_entry_count=int((~np.isfinite(self.T_enter[with_exit])).sum()),
            no_exit=[(int(self.seeds[k]), e) for k, e in no_exit],
            no_exit_final_gap=np.array(final_gap),
            small_eps=small_eps,
            settle_time=settle_time,
        )


@dataclass
class PhaseDiagramSummary:
    r"""The numbers Chapter 3 quotes about a :class:`PhaseDiagram`.

    ``slopes``: log-log slope of :math:`T^*(\varepsilon)` per configuration with a
    transition; ``scaled``: :math:`T^*\varepsilon` for those configurations (inf: no
    exit), ``scaled_small_eps`` its columns with :math:`\varepsilon \le` ``small_eps``;
    ``spread_small_eps``: max/min of :math:`T^*\varepsilon` over
    :math:`\varepsilon \le` ``small_eps``; ``bound_ratio``: Prop. 5.8 bound / measured
    :math:`T^*` at every point with an exit (``bound_ratio_small_eps``: at small
    :math:`\varepsilon` only); ``no_exit``: (seed, eps) of the points of transition
    configurations without exit, and ``no_exit_final_gap`` the largest distance of
    their tokens to the clusters of V = I at ``settle_time``.
    """

    n_seeds: int
    seeds_with_transition: np.ndarray
    seeds_without_transition: np.ndarray
    slopes: np.ndarray
    scaled: np.ndarray
    spread_small_eps: np.ndarray
    scaled_small_eps: np.ndarray
    bound_ratio: np.ndarray
    bound_ratio_small_eps: np.ndarray
    no_entry_count: int
    no_exit: list
    no_exit_final_gap: np.ndarray
    small_eps: float
    settle_time: float

    def glue_values(self) -> dict:
        """The values the chapter glues into its text, by name."""
        return {
            "pd_n_seeds": self.n_seeds,
            "pd_n_with": int(self.seeds_with_transition.size),
            "pd_without": ", ".join(map(str, self.seeds_without_transition)) or "none",
            "pd_slope_min": float(self.slopes.min()),
            "pd_slope_max": float(self.slopes.max()),
            "pd_scaled_min": float(self.scaled_small_eps.min()),
            "pd_scaled_max": float(self.scaled_small_eps.max()),
            "pd_spread_max": float(self.spread_small_eps.max()),
            "pd_bound_ratio_min": float(self.bound_ratio.min()),
            "pd_bound_ratio_max": float(self.bound_ratio.max()),
            "pd_bound_ratio_small_min": float(self.bound_ratio_small_eps.min()),
            "pd_bound_ratio_small_max": float(self.bound_ratio_small_eps.max()),
            "pd_no_exit_count": len(self.no_exit),
            "pd_no_exit_eps": float(min(e for _, e in self.no_exit)) if self.no_exit else float("nan"),
            "pd_no_exit_gap": float(self.no_exit_final_gap.max()) if self.no_exit else float("nan"),
            "pd_no_entry_count": self.no_entry_count,
        }

    def table(self) -> str:
        """One row per configuration with a transition, then the seeds without one and
        the points without an exit (short lines: they are printed in a chapter)."""
        from ..report import table

        rows = [
            {
                "seed": int(s),
                "slope": f"{sl:+.3f}",
                "T*·eps min": row.min(),
                "max": row[np.isfinite(row)].max(),
                f"max/min, eps <= {self.small_eps:g}": f"{sp:.3f}",
                "eps without exit": int(np.sum(~np.isfinite(row))),
            }
            for s, sl, row, sp in zip(self.seeds_with_transition, self.slopes, self.scaled, self.spread_small_eps)
        ]
        lines = [str(table(rows)), f"seeds without any transition: {self.seeds_without_transition}"]
        lines.append(f"bound / measured T*: {self.bound_ratio.min():.1f} to {self.bound_ratio.max():.1f}")
        lines.append("no exit at (seed, eps):")
        lines.append(f"  {[(int(s), round(float(e), 3)) for s, e in self.no_exit]}")
        lines.append(
            f"largest distance to the V = I clusters at t = {self.settle_time:g}:\n"
            f"  {np.round(self.no_exit_final_gap, 4)}"
        )
        return "\n".join(lines)


def phase_diagram(
    seeds,
    eps,
    *,
    n: int = 20,
    d: int = 2,
    delta: float = 0.1,
    t_max: float = 20000.0,
    progress: bool = False,
    **sweep_options,
) -> PhaseDiagram:
    r"""The phase diagram of Fig. 3 for each seed in ``seeds`` (Gaussian tokens,
    :func:`setups.initial_tokens`), with the bound of Prop. 5.8 for every point."""
    seeds = seed_list(seeds, "seeds")
    eps = as_finite_array(eps, "eps").ravel()
    if eps.size == 0 or np.any(eps <= 0):
        raise ValueError(f"eps must be a non-empty list of perturbation sizes > 0, got {eps!r}")
    sweeps, bound = [], np.full((seeds.size, eps.size), np.inf)
    bar = progress_bar(seeds.size, "phase diagram (seeds)", unit="seed", enabled=progress)
    for k, seed in enumerate(seeds):
        x0 = setups.initial_tokens(n, d, seed=int(seed))
        sweep = phase_transition_sweep(x0, eps, delta=delta, t_max=t_max, **sweep_options)
        sweeps.append(sweep)
        for j, e in enumerate(eps):
            bound[k, j] = bounds.phase_transition_time_bound(
                x0, sweep.centers, delta, setups.perturbed_value_matrix(e, d), np.eye(d)
            )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return PhaseDiagram(
        seeds,
        eps,
        delta,
        n,
        np.array([s.T_delta for s in sweeps]),
        np.array([s.T_star for s in sweeps]),
        bound,
        np.array([len(s.centers) for s in sweeps]),
        sweeps,
    )


def limit_projections(x0, V_tilde, t_final: float, *, A=None, rtol: float = 1e-9, atol: float = 1e-12):
    r"""The values :math:`\varphi_1^*(z_i(t_{\text{final}}))` for the rescaled flow (8) with
    Q = K = I (or :math:`K^\top Q = A`, taking Q = A, K = I) and value matrix ``V_tilde``.

    ``x0`` may be a batch (B, n, d); returns (B, n) (or (n,)).  Thm 5.4 says that,
    when :math:`\lambda_1 > |\lambda_2|`, these values converge to at most three
    numbers :math:`\{-a, 0, c\}`.
    """
    x0 = as_tokens(x0, "x0")
    d = x0.shape[-1]
    Q = np.eye(d) if A is None else A
    traj = dynamics.simulate(
        x0, Q, np.eye(d), V_tilde, t_max=t_final, method="dopri5", t_eval=np.array([0.0, t_final]), rtol=rtol, atol=atol
    )
    phi1_dual = spectra.top_eigenpair(V_tilde).phi_dual
    return traj.final @ phi1_dual


@dataclass
class TransitionPair:
    """Result of :func:`transition_pair`: both rescaled flows on the common grid ``t``."""

    t: np.ndarray
    eps: float
    delta: float
    reference: dynamics.Trajectory
    perturbed: dynamics.Trajectory
    w2: np.ndarray
    centers: np.ndarray
    T_delta: float
    T_star: float


def transition_pair(
    x0,
    eps: float,
    *,
    delta: float = 0.1,
    t_max: float | None = None,
    n_times: int = 400,
    sweep_t_max: float = 20000.0,
    rtol: float = 1e-8,
    atol: float = 1e-11,
    reference: ReferenceClusters | None = None,
) -> TransitionPair:
    r"""Fig. 2: the rescaled tokens for :math:`Q = K = V = I` and for
    :math:`\tilde V = I - \varepsilon e_d e_d^\top`, from the same ``x0``.

    :math:`T_\delta` and :math:`T^*(\delta)` come from :func:`phase_transition_sweep`;
    both flows are then sampled at ``n_times`` equally spaced times up to ``t_max``
    (default: twice :math:`T^*`, or 50 if there is no exit), as one batch over the two
    value matrices with the adaptive integrator at tolerances ``rtol``/``atol``, and
    compared by the exact :math:`W_2` at every sample.  ``reference`` (from
    :func:`reference_clusters` for the same ``x0`` and ``delta``) saves recomputing
    the unperturbed clusters when only ``eps`` changes.
    """
    x0 = as_tokens(x0, "x0", allow_batch=False)
    eps = positive_scalar(eps, "eps")
    d = x0.shape[1]
    sweep = phase_transition_sweep(x0, [eps], delta=delta, t_max=sweep_t_max, reference=reference)
    T_star = float(sweep.T_star[0])
    if t_max is None:
        t_max = 2.0 * T_star if np.isfinite(T_star) else 50.0
    t_max = positive_scalar(t_max, "t_max")
    t = np.linspace(0.0, t_max, int(n_times))
    identity = np.eye(d)
    both = dynamics.simulate(
        x0,
        identity,
        identity,
        np.stack([identity, setups.perturbed_value_matrix(eps, d)]),
        t_max=t_max,
        method="dopri5",
        t_eval=t,
        rtol=rtol,
        atol=atol,
    )
    reference, perturbed = both.select(0), both.select(1)
    w2 = measures.wasserstein2_path(reference.states, perturbed.states)
    return TransitionPair(t, eps, delta, reference, perturbed, w2, sweep.centers, sweep.T_delta, T_star)


# --------------------------------------------------------------------------------------
# how T* eps varies between configurations, and what the authors' scheme does to T*
# --------------------------------------------------------------------------------------
def _exit_after_entry(t, worst, T_delta: float, delta: float) -> float:
    """T*: the first sample after the tokens entered the delta-clustering (at or after
    T_delta) at which one of them is farther than delta from it; inf if none."""
    inside = np.flatnonzero((t >= T_delta) & (worst <= delta))
    if inside.size == 0:
        return float("inf")
    out = np.flatnonzero((t > t[inside[0]]) & (worst > delta))
    return float(t[out[0]]) if out.size else float("inf")


@dataclass
class ExitTimeSpread:
    r"""Result of :func:`exit_time_spread`: one exit time per random configuration.

    ``T_star[k]`` is ``inf`` when the tokens of seed ``seeds[k]`` had not left the
    original clusters by ``t_max``; ``n_clusters[k]`` counts the clusters of
    :math:`V = I`."""

    seeds: np.ndarray
    eps: float
    delta: float
    t_max: float
    T_star: np.ndarray
    n_clusters: np.ndarray

    @property
    def has_exit(self) -> np.ndarray:
        return np.isfinite(self.T_star)

    @property
    def scaled(self) -> np.ndarray:
        r""":math:`T^*\varepsilon` of the configurations with an exit."""
        return self.T_star[self.has_exit] * self.eps

    @property
    def fraction_without_exit(self) -> float:
        return float(np.mean(~self.has_exit))

    def glue_values(self) -> dict:
        """The values Chapter 3 glues into its text, by name."""
        scaled = self.scaled
        low, high = np.quantile(scaled, [0.1, 0.9])
        return {
            "spread_n": int(self.seeds.size),
            "spread_eps": self.eps,
            "spread_t_max": self.t_max,
            "spread_without": int((~self.has_exit).sum()),
            "spread_without_fraction": self.fraction_without_exit,
            "spread_min": float(scaled.min()),
            "spread_max": float(scaled.max()),
            "spread_median": float(np.median(scaled)),
            "spread_q10": float(low),
            "spread_q90": float(high),
            "spread_ratio_q90_q10": float(high / low),
        }


def exit_time_spread(
    seeds,
    eps: float = 0.03,
    *,
    n: int = 20,
    d: int = 2,
    delta: float = 0.1,
    t_max: float | None = None,
    progress: bool = False,
) -> ExitTimeSpread:
    r""":math:`T^*(\delta)` at one :math:`\varepsilon` for many random configurations
    (Gaussian tokens of :func:`setups.initial_tokens`, one per seed), each measured as
    in :func:`phase_transition_sweep`, up to ``t_max`` (default :math:`100/\varepsilon`).

    Prop. 5.8 makes :math:`T^*\varepsilon` roughly constant *along* a configuration; this
    shows how much the constant varies *between* configurations, and how often there is
    no exit at all."""
    seeds = seed_list(seeds, "seeds")
    eps = positive_scalar(eps, "eps")
    t_max = 100.0 / eps if t_max is None else positive_scalar(t_max, "t_max")
    T_star = np.full(seeds.size, np.inf)
    n_clusters = np.zeros(seeds.size, dtype=int)
    bar = progress_bar(seeds.size, f"exit times at eps = {eps:g}", unit="config", enabled=progress)
    for k, seed in enumerate(seeds):
        sweep = phase_transition_sweep(setups.initial_tokens(n, d, seed=int(seed)), [eps], delta=delta, t_max=t_max)
        T_star[k], n_clusters[k] = sweep.T_star[0], len(sweep.centers)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return ExitTimeSpread(seeds, eps, delta, t_max, T_star, n_clusters)


@dataclass
class FrozenAttentionComparison:
    r"""Result of :func:`frozen_attention_comparison`: :math:`T^*` per configuration
    from the accurate integration (``T_star``) and from the authors' RK4 with the
    attention frozen within each step (``T_star_frozen``)."""

    seeds: np.ndarray
    eps: float
    delta: float
    dt: float
    T_star: np.ndarray
    T_star_frozen: np.ndarray

    @property
    def relative_difference(self) -> np.ndarray:
        """(frozen - accurate) / accurate, per configuration with an exit in both."""
        both = np.isfinite(self.T_star) & np.isfinite(self.T_star_frozen)
        return (self.T_star_frozen[both] - self.T_star[both]) / self.T_star[both]

    def rows(self) -> list[dict]:
        """One row per configuration, for :func:`lora_clusters.report.table`."""
        return [
            {
                "seed": int(seed),
                "T* accurate": accurate,
                "T* frozen attention": frozen,
                "difference": f"{(frozen - accurate) / accurate:+.1%}" if np.isfinite(accurate) else "no exit",
            }
            for seed, accurate, frozen in zip(self.seeds, self.T_star, self.T_star_frozen)
        ]

    def glue_values(self) -> dict:
        """The values Chapter 3 glues into its text, by name."""
        rel = self.relative_difference
        return {
            "frozen_n": int(rel.size),
            "frozen_eps": self.eps,
            "frozen_rel_min": float(rel.min() * 100),
            "frozen_rel_max": float(rel.max() * 100),
            "frozen_abs_median": float(np.median(np.abs(rel)) * 100),
        }


def frozen_attention_comparison(
    seeds, eps: float = 0.01, *, n: int = 20, d: int = 2, delta: float = 0.1, dt: float = 0.1
) -> FrozenAttentionComparison:
    r"""What the authors' time stepping does to :math:`T^*`: for each configuration the
    exit time of the accurate adaptive integration (:func:`phase_transition_sweep`) and
    the one found on :func:`dynamics.simulate_frozen_attention` with step ``dt``
    (their notebook's 0.1), measured against the same clusters and :math:`T_\delta` of
    :math:`V = I` and sampled every ``dt``, up to 1.5 times the accurate :math:`T^*`
    (or :math:`100/\varepsilon` without an exit)."""
    seeds = seed_list(seeds, "seeds")
    eps = positive_scalar(eps, "eps")
    dt = positive_scalar(dt, "dt")
    accurate = np.full(seeds.size, np.inf)
    frozen = np.full(seeds.size, np.inf)
    identity = np.eye(d)
    for k, seed in enumerate(seeds):
        x0 = setups.initial_tokens(n, d, seed=int(seed))
        reference = reference_clusters(x0, delta)
        accurate[k] = phase_transition_sweep(x0, [eps], delta=delta, t_max=100.0 / eps, reference=reference).T_star[0]
        horizon = 1.5 * accurate[k] if np.isfinite(accurate[k]) else 100.0 / eps
        traj = dynamics.simulate_frozen_attention(
            x0, identity, identity, setups.perturbed_value_matrix(eps, d), t_max=horizon, dt=dt
        )
        worst = measures.distance_to_clusters(traj.states, reference.centers).max(axis=-1)
        frozen[k] = _exit_after_entry(traj.t, worst, reference.T_delta, delta)
    return FrozenAttentionComparison(seeds, eps, delta, dt, accurate, frozen)
