r"""Chapter 4 (Sec. 6): collapse in :math:`\mathrm{Im}(A)^\perp` (Prop. 6.1) and cluster counts (Prop. 6.2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import bounds, dynamics, measures, setups
from ..integrators import PRECISE

__all__ = [
    "ClusterCountStudy",
    "CollapseBoundCheck",
    "CollapseStudy",
    "HighProbabilityCheck",
    "RankOneClustering",
    "cluster_count_study",
    "cluster_counts",
    "collapse_bound_check",
    "collapse_study",
    "high_probability_check",
    "largest_after_collapse",
    "rank_one_clustering",
]


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


@dataclass
class CollapseBoundCheck:
    """Result of :func:`collapse_bound_check`."""

    gap_identity: float
    paper_ok: float
    smallest_ok: float

    def summary(self) -> str:
        return (
            f"V = I: largest |T_delta - bound| = {self.gap_identity:.1e}\n"
            f"V = diag(1, 0.3, 0.6): under the bound with lambda_1 = 0.6: {self.paper_ok:.0%},\n"
            f"  with the smallest eigenvalue 0.3: {self.smallest_ok:.0%}"
        )

    def glue_values(self) -> dict:
        return {
            "collapse_gap_identity": float(self.gap_identity),
            "collapse_paper_ok": float(self.paper_ok),
            "collapse_smallest_ok": float(self.smallest_ok),
        }


def collapse_bound_check(identity_runs: CollapseStudy, spread_runs: CollapseStudy, *, slack: float = 1e-9):
    """The bound (33) against the measured :math:`T_\\delta`: its largest gap for
    V = I (where it is exact), and the fraction of ``spread_runs`` under it with the
    paper's eigenvalue and with the smallest one (within ``slack``)."""
    return CollapseBoundCheck(
        np.abs(identity_runs.T_delta - identity_runs.bound_33).max(),
        np.mean(spread_runs.T_delta <= spread_runs.bound_33 + slack),
        np.mean(spread_runs.T_delta <= spread_runs.bound_33_smallest + slack),
    )


def largest_after_collapse(study: CollapseStudy) -> float:
    r"""Largest distance of a token to the initial mean after its run's
    :math:`T_\delta`, over all runs of ``study``."""
    return max(w[study.t >= T].max() for w, T in zip(study.worst, study.T_delta))


@dataclass
class HighProbabilityCheck:
    """Result of :func:`high_probability_check`."""

    radii: np.ndarray
    fractions: np.ndarray
    eps: float

    @property
    def first_fail(self) -> float:
        r"""The first radius at which fewer than :math:`1 - 2\varepsilon` of the runs
        are under the bound (34) (inf if none)."""
        fails = self.fractions < 1 - 2 * self.eps
        return self.radii[np.argmax(fails)] if np.any(fails) else np.inf

    def rows(self) -> list[dict]:
        return [{"radius C": C, "fraction under the bound": f} for C, f in zip(self.radii, self.fractions)]

    def glue_values(self) -> dict:
        return {
            "hp_fraction_C1": float(self.fractions[0]),
            "hp_first_fail": float(self.first_fail),
            "hp_fraction_last": float(self.fractions[-1]),
        }


def high_probability_check(radii, *, eps: float, n_runs: int, seed: int, **study_options) -> HighProbabilityCheck:
    """The high-probability bound (34) at each radius C of ``radii``: the fraction of
    ``n_runs`` configurations of :func:`collapse_study` (with ``study_options``)
    whose :math:`T_\\delta` is under it."""
    radii = np.asarray(radii, dtype=float)
    fractions = np.array(
        [collapse_study(n_runs, radius=C, eps=eps, seed=seed, **study_options).fraction_under_34 for C in radii]
    )
    return HighProbabilityCheck(radii, fractions, eps)


@dataclass
class RankOneClustering:
    """Result of :func:`rank_one_clustering`: the flows with Q = K = I and with
    Q = K = e1 e1ᵀ from the same tokens, their cluster counts, the distance of the
    rank-one attention matrix to :math:`\\mathcal P^*` over time, and how far the
    rank-one clusters are from the two extreme tokens (the leaders)."""

    x0: np.ndarray
    full: dynamics.Trajectory
    rank_one: dynamics.Trajectory
    n_full: int
    n_rank_one: int
    P_star_gap: list
    leader_gap: float

    def glue_values(self) -> dict:
        return {
            "fig4_full": self.n_full,
            "fig4_rank_one": self.n_rank_one,
            "fig4_Pstar": float(self.P_star_gap[-1]),
            "fig4_leader_gap": float(self.leader_gap),
        }


def rank_one_clustering(
    *, n: int, d: int, seed: int, scale: float, t_max: float, n_times: int, tol: float = 5e-3
) -> RankOneClustering:
    """Fig. 4: tokens uniform in [-``scale``, ``scale``]^d, the rescaled flow (8) with
    V = I and Q = K = I or Q = K = e1 e1ᵀ, sampled at ``n_times`` times in
    [0, ``t_max``]; clusters merged at ``tol``."""
    x0 = setups.initial_tokens(n, d, seed=seed, law="uniform", scale=scale)
    rank_one = setups.low_rank_attention(d, 1, seed=None)  # e1 e1^T
    t_eval = np.linspace(0.0, t_max, n_times)
    common = dict(t_max=t_max, t_eval=t_eval, options=PRECISE)
    full_run = dynamics.simulate(x0, np.eye(d), np.eye(d), np.eye(d), **common)
    rank_one_run = dynamics.simulate(x0, rank_one, rank_one, np.eye(d), **common)
    n_full = len(measures.cluster_centers(full_run.final, tol=tol))
    n_rank_one = len(measures.cluster_centers(rank_one_run.final, tol=tol))
    P_star_gap = [
        measures.distance_to_P_star(dynamics.attention_matrix(z, rank_one, rank_one, t=t, V=np.eye(d)))
        for t, z in zip(rank_one_run.t, rank_one_run.states)
    ]
    leaders = np.argsort(x0[:, 0])[[0, -1]]  # extreme first coordinates
    leader_gap = np.abs(
        measures.cluster_centers(rank_one_run.final, tol=tol) - np.sort(rank_one_run.final[leaders], axis=0)
    ).max()
    return RankOneClustering(x0, full_run, rank_one_run, n_full, n_rank_one, P_star_gap, leader_gap)


@dataclass
class ClusterCountStudy:
    """Result of :func:`cluster_count_study`: ``counts`` (len(ranks), len(dims),
    len(seeds)) from :func:`cluster_counts`."""

    dims: list
    ranks: list
    n: int
    counts: np.ndarray

    def summary(self) -> str:
        return "\n".join(
            f"rank {label!s:>4}: mean clusters for d = {self.dims}:\n"
            f"           {np.round(row.mean(axis=1), 1).tolist()}"
            for label, row in zip(self.ranks, self.counts)
        )

    def glue_values(self) -> dict:
        counts = self.counts
        rank_one_range = sorted({int(counts[0].min()), int(counts[0].max())})
        return {
            "count_rank1_text": f"exactly {rank_one_range[0]}"
            if len(rank_one_range) == 1
            else f"between {rank_one_range[0]} and {rank_one_range[1]}",
            "count_full_64": float(counts[2, -1].mean()),
            "count_full_2": float(counts[2, 0].mean()),
            "count_rank2_max": int(counts[1].max()),
        }


def cluster_count_study(dims, ranks, seeds, *, n: int = 20, **options) -> ClusterCountStudy:
    """:func:`cluster_counts` kept with its dimensions and ranks (the rows of
    Chapter 4's counts: rank 1, rank 2, full rank)."""
    return ClusterCountStudy(list(dims), list(ranks), n, cluster_counts(dims, ranks, seeds, n=n, **options))
