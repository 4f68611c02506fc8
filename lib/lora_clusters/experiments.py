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

from . import bounds, dynamics, lora, measures, setups
from ._validation import as_finite_array, as_tokens, positive_scalar

__all__ = [
    "PhaseDiagram",
    "PhaseSweep",
    "ReferenceClusters",
    "reference_clusters",
    "StabilityComparison",
    "exit_time_grid",
    "fit_power_law",
    "limit_projections",
    "phase_diagram",
    "phase_transition_sweep",
    "stability_comparison",
    "TransitionPair",
    "transition_pair",
    "CollapseStudy",
    "collapse_study",
    "cluster_counts",
    "OrthogonalLoRARun",
    "orthogonal_lora_run",
    "max_distance_to_mean",
    "orthogonal_lora_retention",
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


@dataclass
class StabilityComparison:
    """Result of :func:`stability_comparison`: measured :math:`W_2(\\mu_t,\\nu_t)` at
    the times ``t`` and the bound (24) at the same times."""

    t: np.ndarray
    w2: np.ndarray
    bound: bounds.StabilityBound
    pretrained: dynamics.Trajectory
    lora: dynamics.Trajectory

    @property
    def ratio(self) -> np.ndarray:
        """bound / measured at every sampled time (inf where the bound is; nan at W2 = 0)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.bound.w2_bound / self.w2

    @property
    def holds(self) -> bool:
        """Whether the measured distance is below the bound at every sampled time."""
        return bool(np.all(self.w2 <= self.bound.w2_bound))


def stability_comparison(x0, Q, K, V, Q_tilde, K_tilde, V_tilde, t_max: float, n_times: int = 101,
                         *, rtol: float = 1e-10, atol: float = 1e-13) -> StabilityComparison:
    r"""Corollary 4.2 checked on one configuration.

    Both flows of eq. (2) (the tokens x, not the rescaled z: the bound is stated for
    them) start from ``x0``; they are integrated with the adaptive integrator at tight
    tolerances (so that integration error stays far below the smallest measured
    distance) and compared by the exact :math:`W_2` at ``n_times`` equally spaced
    times in [0, ``t_max``].  R is the largest initial token norm.
    """
    x0 = as_tokens(x0, "x0", allow_batch=False)
    t_max = positive_scalar(t_max, "t_max")
    t = np.linspace(0.0, t_max, int(n_times))
    common = dict(t_max=t_max, rescaled=False, method="dopri5", t_eval=t, rtol=rtol, atol=atol)
    pre = dynamics.simulate(x0, Q, K, V, **common)
    new = dynamics.simulate(x0, Q_tilde, K_tilde, V_tilde, **common)
    w2 = measures.wasserstein2_path(pre.states, new.states)
    R = float(np.max(np.linalg.norm(x0, axis=1)))
    return StabilityComparison(t, w2, bounds.stability_bound(t, Q, K, V, Q_tilde, K_tilde, V_tilde, R), pre, new)


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


def reference_clusters(x0, delta: float = 0.1, *, t_reference: float = 60.0, cluster_tol: float = 1e-3,
                       rtol: float = 1e-7, atol: float = 1e-10) -> ReferenceClusters:
    r"""The clusters C of the unperturbed tokens and their clustering time
    :math:`T_\delta` (step 1 of :func:`phase_transition_sweep`): the flow is
    integrated with the adaptive integrator at ``rtol``/``atol``, sampled every 0.1,
    to ``t_reference``; final positions closer than ``cluster_tol`` are one cluster."""
    x0 = as_tokens(x0, "x0", allow_batch=False)
    delta = positive_scalar(delta, "delta")
    t_reference = positive_scalar(t_reference, "t_reference")
    identity = np.eye(x0.shape[1])
    reference = dynamics.simulate(x0, identity, identity, identity, t_max=t_reference, method="dopri5",
                                  t_eval=np.linspace(0.0, t_reference, int(round(t_reference / 0.1)) + 1),
                                  rtol=rtol, atol=atol)
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
    d = x0.shape[1]
    identity = np.eye(d)
    if reference is None:
        reference = reference_clusters(x0, delta, t_reference=t_reference, cluster_tol=cluster_tol, rtol=rtol, atol=atol)
    elif not isinstance(reference, ReferenceClusters):
        raise TypeError(f"reference must be a ReferenceClusters (from reference_clusters), got {type(reference).__name__}")
    elif reference.x0.shape != x0.shape or not np.array_equal(reference.x0, x0) or reference.delta != delta:
        raise ValueError("reference was computed for other initial tokens or another delta than x0 and delta")
    centers, T_delta = reference.centers, reference.T_delta

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


@dataclass
class PhaseDiagram:
    """Phase sweeps (:func:`phase_transition_sweep`) for several random initialisations.

    ``T_star`` is (n_seeds, n_eps); ``T_delta`` is (n_seeds,); ``bound`` holds the
    Prop. 5.8 bound (:func:`bounds.phase_transition_time_bound`) per seed and eps.
    """

    seeds: np.ndarray
    eps: np.ndarray
    delta: float
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


def phase_diagram(seeds, eps, *, n: int = 20, d: int = 2, delta: float = 0.1, t_max: float = 20000.0,
                  progress: bool = False, **sweep_options) -> PhaseDiagram:
    r"""The phase diagram of Fig. 3 for each seed in ``seeds`` (Gaussian tokens,
    :func:`setups.initial_tokens`), with the bound of Prop. 5.8 for every point."""
    seeds = np.atleast_1d(np.asarray(seeds, dtype=int))
    eps = as_finite_array(eps, "eps").ravel()
    sweeps, bound = [], np.full((seeds.size, eps.size), np.inf)
    iterator = seeds
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(seeds, desc="phase diagram (seeds)")
    for k, seed in enumerate(iterator):
        x0 = setups.initial_tokens(n, d, seed=int(seed))
        sweep = phase_transition_sweep(x0, eps, delta=delta, t_max=t_max, **sweep_options)
        sweeps.append(sweep)
        for j, e in enumerate(eps):
            bound[k, j] = bounds.phase_transition_time_bound(
                x0, sweep.centers, delta, setups.perturbed_value_matrix(e, d), np.eye(d))
    return PhaseDiagram(
        seeds, eps, delta,
        np.array([s.T_delta for s in sweeps]),
        np.array([s.T_star for s in sweeps]),
        bound,
        np.array([len(s.centers) for s in sweeps]),
        sweeps,
    )


def fit_power_law(x, y) -> tuple[float, float]:
    r"""Least-squares line through :math:`(\log x, \log y)` over the finite, positive
    pairs: returns (slope, prefactor) with :math:`y \approx \text{prefactor}\cdot x^{\text{slope}}`."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same number of entries, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if keep.sum() < 2:
        raise ValueError("need at least two finite positive (x, y) pairs to fit a power law")
    slope, intercept = np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)
    return float(slope), float(np.exp(intercept))


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
    traj = dynamics.simulate(x0, Q, np.eye(d), V_tilde, t_max=t_final, method="dopri5",
                             t_eval=np.array([0.0, t_final]), rtol=rtol, atol=atol)
    eigvals, eigvecs = np.linalg.eig(np.asarray(V_tilde, dtype=float))
    top = int(np.argmax(np.abs(eigvals)))
    phi1 = np.real(eigvecs[:, top])
    phi1_dual = np.real(np.linalg.inv(eigvecs)[top]) * np.linalg.norm(phi1)
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


def transition_pair(x0, eps: float, *, delta: float = 0.1, t_max: float | None = None, n_times: int = 400,
                    sweep_t_max: float = 20000.0, rtol: float = 1e-8, atol: float = 1e-11,
                    reference: ReferenceClusters | None = None) -> TransitionPair:
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
    both = dynamics.simulate(x0, identity, identity, np.stack([identity, setups.perturbed_value_matrix(eps, d)]),
                             t_max=t_max, method="dopri5", t_eval=t, rtol=rtol, atol=atol)
    reference, perturbed = both.select(0), both.select(1)
    w2 = measures.wasserstein2_path(reference.states, perturbed.states)
    return TransitionPair(t, eps, delta, reference, perturbed, w2, sweep.centers, sweep.T_delta, T_star)


def max_distance_to_mean(states, z0) -> np.ndarray:
    r""":math:`\max_i\|z_i(t) - \bar z(0)\|` along a trajectory (..., m, n, d), with
    :math:`\bar z(0)` the mean of the initial tokens ``z0`` (..., n, d)."""
    mean = np.asarray(z0).mean(axis=-2)[..., None, None, :]
    return np.linalg.norm(np.asarray(states) - mean, axis=-1).max(axis=-1)


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


def collapse_study(n_runs: int, *, n: int = 20, d: int = 3, rank: int = 1, radius: float = 1.0, delta: float = 0.1,
                   eps: float = 0.05, V=None, seed: int = 0, dt: float = 0.01, image_component: float = 0.0,
                   t_max: float | None = None) -> CollapseStudy:
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
        x0 = x0 + np.stack([setups.uniform_in_subspace_ball(n, image, image_component, seed=10_000 + seed + k)
                            for k in range(int(n_runs))])
    lam = np.real(np.linalg.eigvals(perp.T @ V @ perp))
    if t_max is None:
        # long enough for the slowest direction to shrink 2C to delta, with margin
        t_max = (np.log(2 * radius / delta) + 2.0) / lam.min()
    t = np.arange(0.0, t_max + dt, dt)
    traj = dynamics.simulate(x0, A, A, V, t_max=float(t[-1]), method="dopri5", t_eval=t, rtol=1e-9, atol=1e-12)
    worst = max_distance_to_mean(traj.states, x0)
    T_delta = np.array([measures.first_crossing_time(traj.t, w, delta) for w in worst])
    z_perp = x0 @ perp @ perp.T        # the bounds concern the Im(A)^perp part
    b33 = np.array([bounds.collapse_time_bound(z, delta, V, A) for z in z_perp])
    b33s = np.array([bounds.collapse_time_bound(z, delta, V, A, eigenvalue="smallest") for z in z_perp])
    b34 = bounds.collapse_time_high_probability_bound(n, perp.shape[1], radius, delta, eps, lam.max())
    return CollapseStudy(T_delta, b33, b33s, b34, eps, radius, delta, traj.t, worst)


def cluster_counts(dims, ranks, seeds, *, n: int = 20, radius: float = 5.0, t_max: float = 30.0, tol: float = 1e-3) -> np.ndarray:
    r"""Number of clusters of the rescaled flow (8) with V = I and Q = K the projector
    onto the first ``rank`` axes (``rank="full"``: Q = K = I), tokens uniform in
    :math:`[-C, C]^d` (Fig. 4's law), at ``t_max``.  Returns (len(ranks), len(dims), len(seeds))."""
    counts = np.zeros((len(ranks), len(dims), len(seeds)), dtype=int)
    for a, rank in enumerate(ranks):
        for b, d in enumerate(dims):
            r = d if rank == "full" else min(int(rank), d)
            A = setups.low_rank_attention(d, r, seed=None)
            x0 = np.stack([setups.initial_tokens(n, d, seed=int(s), law="uniform", scale=radius) for s in seeds])
            traj = dynamics.simulate(x0, A, A, np.eye(d), t_max=t_max, method="dopri5",
                                     t_eval=np.array([0.0, t_max]), rtol=1e-9, atol=1e-12)
            counts[a, b] = [len(measures.cluster_centers(z, tol=tol * radius)) for z in traj.final]
    return counts


@dataclass
class OrthogonalLoRARun:
    """Result of :func:`orthogonal_lora_run`."""

    z0: np.ndarray
    pretrained: dynamics.Trajectory
    lora: dynamics.Trajectory
    v: np.ndarray
    clusters_pretrained: np.ndarray
    clusters_lora: np.ndarray
    labels_lora: np.ndarray
    distance_to_line: float

    @property
    def split_by_sign(self) -> bool:
        """Whether the LoRA clusters are exactly the tokens with <z(0), v> > 0 and < 0."""
        side = np.sign(self.z0 @ self.v)
        return len(self.clusters_lora) == 2 and all(len(set(side[self.labels_lora == k])) == 1 for k in (0, 1))


def orthogonal_lora_run(*, C: float = 2.0, eps: float = 0.01, n: int = 20, V=None, spread: float = 0.5,
                        seed: int = 0, t_max: float = 60.0, tol: float = 1e-4) -> OrthogonalLoRARun:
    r"""Sec. 7 in d = 3: pre-trained :math:`Q = K = \mathrm{diag}(1, 1, 0)` (so
    :math:`\mathrm{Im}(A)^\perp = \mathbb R e_3`), LoRA :math:`\tilde Q = Q + vv^\top`,
    :math:`\tilde K = K + vv^\top` with :math:`v = e_3` (condition (36)).

    Tokens: :math:`\langle z_i, v\rangle = \pm u_i` with :math:`u_i` uniform in
    [C, (1 + ``spread``) C], alternating signs (C-separated, Assumption 7.1; Assumption
    7.3 holds when ``spread`` <= 1/2), plus an off-line part of norm exactly ``eps``
    (eq. (39)).  Both flows (8) run to ``t_max``; clusters are merged at ``tol``.
    """
    d = 3
    Q = np.diag([1.0, 1.0, 0.0])
    v = np.array([0.0, 0.0, 1.0])
    Qt, Kt = lora.orthogonal_rank_one_lora(Q, Q, v)
    V = np.eye(d) if V is None else np.asarray(V, dtype=float)
    rng = np.random.default_rng(seed)
    side = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    on_line = side * rng.uniform(C, (1.0 + spread) * C, size=n)
    off = rng.standard_normal((n, 2))
    off *= eps / np.linalg.norm(off, axis=1, keepdims=True)
    z0 = np.column_stack([off, on_line])
    common = dict(t_max=t_max, method="dopri5", t_eval=np.linspace(0.0, t_max, 121), rtol=1e-9, atol=1e-12)
    pre = dynamics.simulate(z0, Q, Q, V, **common)
    new = dynamics.simulate(z0, Qt, Kt, V, **common)
    c_pre = measures.cluster_centers(pre.final, tol=tol)
    c_new, labels = measures.cluster_centers(new.final, tol=tol, return_labels=True)
    off_line = new.final - np.outer(new.final @ v, v)
    return OrthogonalLoRARun(z0, pre, new, v, c_pre, c_new, labels, float(np.linalg.norm(off_line, axis=1).max()))


def orthogonal_lora_retention(seeds, *, n: int = 20, t_max: float = 40.0, tol: float = 1e-3):
    r"""What the orthogonal LoRA of :func:`orthogonal_lora_run` keeps of the pre-trained
    clustering (Q = K = diag(1, 1, 0), v = e_3, V = I), for Gaussian tokens of each seed.

    Returns ``(exact_gap, kept)``: ``exact_gap[k]`` is the largest difference between
    the two flows for the tokens with their v-component removed (they lie in Im(A),
    where :math:`\tilde A = A`); ``kept[k]`` is the fraction of pairs of generic tokens
    that share a cluster of the pre-trained flow in the plane Im(A) and still share
    one under the LoRA flow.
    """
    Q = np.diag([1.0, 1.0, 0.0])
    Qt, Kt = lora.orthogonal_rank_one_lora(Q, Q, np.array([0.0, 0.0, 1.0]))
    I3 = np.eye(3)
    common = dict(t_max=t_max, method="dopri5", t_eval=np.array([0.0, t_max]), rtol=1e-9, atol=1e-12)
    off_diagonal = ~np.eye(n, dtype=bool)
    exact_gap, kept = [], []
    for seed in seeds:
        z = np.random.default_rng(int(seed)).standard_normal((n, 3))
        z_image = z * [1.0, 1.0, 0.0]
        exact_gap.append(float(np.abs(dynamics.simulate(z_image, Q, Q, I3, **common).final
                                      - dynamics.simulate(z_image, Qt, Kt, I3, **common).final).max()))
        labels = []
        for q, k in ((Q, Q), (Qt, Kt)):
            final = dynamics.simulate(z, q, k, I3, **common).final
            labels.append(measures.cluster_centers(final[:, :2], tol=tol, return_labels=True)[1])
        together = (labels[0][:, None] == labels[0][None]) & off_diagonal
        kept.append(float(np.sum(together & (labels[1][:, None] == labels[1][None])) / max(np.sum(together), 1)))
    return np.array(exact_gap), np.array(kept)
