r"""Empirical measures, Wasserstein distances and clusters of token configurations.

A configuration :math:`(z_1,\dots,z_n)` is identified with its empirical measure
:math:`\mu = \frac1n\sum_i \delta_{z_i}` (eq. (9)).  Distances between configurations
are the quadratic Wasserstein distance of App. A, eq. (40) with p = 2,

.. math:: W_2(\mu,\nu)^2 = \min_{\pi\in\Pi(\mu,\nu)} \sum_{i,j}\pi_{ij}\,\|x_i-y_j\|^2,

solved exactly: as an assignment problem when both measures are uniform on the
same number of atoms (the extreme points of the transport polytope are then
permutations, by Birkhoff's theorem), otherwise as a linear program (``ot.emd2``
from POT).  The cost matrix is formed from coordinate differences, one coordinate at
a time, so it needs O(n m) memory and a permuted cloud is at distance exactly 0.

Clusters are the distinct limit points of the rescaled dynamics (Assumption 5.1);
:math:`S_\delta(t)` of eq. (25) is the set of tokens within :math:`\delta` of them,
and the times :math:`T_\delta` and :math:`T^*(\delta)` (eq. (28) and App. G.2.1) are
read off a trajectory.  :func:`fit_power_law` and :func:`max_distance_to_mean` are
the summaries the chapters fit and plot.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ._validation import as_finite_array, as_tokens, finite_scalar, positive_scalar

__all__ = [
    "cluster_centers",
    "clustering_time",
    "delta_clustered_set",
    "distance_to_clusters",
    "distance_to_P_star",
    "exit_time",
    "first_crossing_time",
    "fit_power_law",
    "max_distance_to_mean",
    "wasserstein2",
    "wasserstein2_path",
]


def _weights(w, n: int, name: str) -> np.ndarray:
    if w is None:
        return np.full(n, 1.0 / n)
    w = as_finite_array(w, name)
    if w.shape != (n,) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
        raise ValueError(f"{name} must be {n} nonnegative weights summing to 1, got shape {w.shape}")
    return w


def wasserstein2(X, Y, a=None, b=None) -> float:
    r"""Exact :math:`W_2` between :math:`\sum_i a_i\delta_{x_i}` and :math:`\sum_j b_j\delta_{y_j}`.

    ``X`` is (n, d), ``Y`` is (m, d); the weights default to uniform (empirical
    measures, eq. (9)).  The cost is the squared Euclidean distance, eq. (40) with
    p = 2.  Two uniform measures on n atoms each have an optimal plan that is a
    permutation (Birkhoff), found by ``scipy.optimize.linear_sum_assignment``; any
    other pair is solved by the network simplex (``ot.emd2``).
    """
    X = as_tokens(X, "X", allow_batch=False)
    Y = as_tokens(Y, "Y", allow_batch=False)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same dimension d, got {X.shape[1]} and {Y.shape[1]}")
    uniform = a is None and b is None and X.shape[0] == Y.shape[0]
    a = _weights(a, X.shape[0], "a")
    b = _weights(b, Y.shape[0], "b")
    scale = _power_of_two_scale(X, Y)
    cost = _squared_distances(X / scale, Y / scale)
    if uniform:
        return scale * _uniform_w2(cost)
    import ot  # here, not at the top: POT imports torch when it is installed

    w2_squared = float(ot.emd2(a, b, cost, numItermax=1_000_000))
    return scale * float(np.sqrt(max(w2_squared, 0.0)))


def _power_of_two_scale(*clouds) -> float:
    """The power of two nearest above the largest coordinate: dividing by it is exact in
    floating point, and keeps the squared costs of clouds at 1e200 or 1e-200 inside
    float64 (W2 is homogeneous: W2(X/s, Y/s) = W2(X, Y)/s)."""
    largest = max(float(np.abs(c).max()) for c in clouds)
    return 1.0 if largest == 0.0 else float(2.0 ** np.frexp(largest)[1])


def _squared_distances(X, Y) -> np.ndarray:
    """(n, m) matrix of squared distances, summed from coordinate differences in compiled
    code (``cdist``): O(n m) memory, never the (n, m, d) array of all differences."""
    # from differences, not |x|^2 + |y|^2 - 2<x, y>: that expansion loses all digits
    # for nearby points (W2 of a permutation came out 1e-8, not 0)
    return cdist(X, Y, "sqeuclidean")


def _uniform_w2(cost) -> float:
    """W2 between two uniform measures on n atoms from their (n, n) squared-distance
    matrix: the cheapest permutation, each pair carrying mass 1/n."""
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(max(cost[rows, cols].sum() / cost.shape[0], 0.0)))


def wasserstein2_path(states_a, states_b) -> np.ndarray:
    """:math:`W_2(\\mu_t, \\nu_t)` along two trajectories sampled at the same times.

    ``states_a`` and ``states_b`` are (m, n, d); returns an array of shape (m,).
    """
    A = as_finite_array(states_a, "states_a")
    B = as_finite_array(states_b, "states_b")
    if A.ndim != 3 or A.shape != B.shape:
        raise ValueError(
            f"states_a and states_b must both be (m, n, d) arrays of one shape, got {A.shape} and {B.shape}"
        )
    out = np.empty(A.shape[0])
    for k, (x, y) in enumerate(zip(A, B)):
        scale = _power_of_two_scale(x, y)
        out[k] = scale * _uniform_w2(_squared_distances(x / scale, y / scale))
    return out


def cluster_centers(points, tol: float = 1e-3, *, return_labels: bool = False):
    """Distinct points of a configuration, merging points closer than ``tol``.

    Single-linkage grouping: two tokens share a cluster when a chain of tokens joins
    them with every link shorter than ``tol``.  Returns the cluster means, (k, d),
    sorted lexicographically so that the output is reproducible; with
    ``return_labels`` also the cluster index of every token, (n,).
    """
    Z = as_tokens(points, "points", allow_batch=False)
    tol = positive_scalar(tol, "tol")
    if Z.shape[0] == 1:
        labels = np.zeros(1, dtype=int)
    else:
        labels = fcluster(linkage(Z, method="single"), t=tol, criterion="distance") - 1
    centers = np.array([Z[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
    order = np.lexsort(centers.T[::-1])
    centers = centers[order]
    relabel = np.empty_like(order)
    relabel[order] = np.arange(order.size)
    return (centers, relabel[labels]) if return_labels else centers


def distance_to_clusters(states, centers) -> np.ndarray:
    r""":math:`\mathrm{dist}(z_i, \{c_1,\dots,c_k\})` for every token.

    ``states`` is (..., n, d) (one configuration or a whole trajectory), ``centers``
    is (k, d); returns (..., n).
    """
    Z = as_finite_array(states, "states")
    C = as_tokens(centers, "centers", allow_batch=False)
    if Z.ndim < 2 or Z.shape[-1] != C.shape[1]:
        raise ValueError(f"states must be (..., n, d) with d = {C.shape[1]} as in centers, got shape {Z.shape}")
    # one cluster at a time: memory of the size of ``states``, not k times it
    nearest = None
    for center in C:
        diff = Z - center
        squared = np.einsum("...d,...d->...", diff, diff)
        nearest = squared if nearest is None else np.minimum(nearest, squared, out=nearest)
    return np.sqrt(nearest)


def delta_clustered_set(states, centers, delta: float) -> np.ndarray:
    r"""The set :math:`S_\delta` of eq. (25): indices i with :math:`\mathrm{dist}(z_i, C) \le \delta`.

    ``states`` is one configuration (n, d); returns the sorted indices.
    """
    Z = as_tokens(states, "states", allow_batch=False)
    delta = positive_scalar(delta, "delta")
    return np.flatnonzero(distance_to_clusters(Z, centers) <= delta)


def _check_times(t) -> np.ndarray:
    t = as_finite_array(t, "t")
    if t.ndim != 1 or np.any(np.diff(t) <= 0):
        raise ValueError("t must be a strictly increasing 1-D array of sample times")
    return t


def _check_path(t, states, centers):
    t = _check_times(t)
    dist = distance_to_clusters(states, centers)
    if dist.ndim != 2 or t.shape != dist.shape[:1]:
        raise ValueError(f"t must be (m,) and states (m, n, d) with the same m, got {t.shape} and {np.shape(states)}")
    return t, dist.max(axis=1)


def clustering_time(t, states, centers, delta: float) -> float:
    r"""Sampled :math:`T_\delta`: the first sampled time from which every token stays
    within :math:`\delta` of the clusters up to the end of the trajectory
    (:math:`S_\delta(s) = \{1..n\}` for all later samples s, Thm 5.4).

    Returns ``inf`` if the last sample is not yet :math:`\delta`-clustered.
    """
    t, worst = _check_path(t, states, centers)
    delta = positive_scalar(delta, "delta")
    outside = np.flatnonzero(worst > delta)
    if outside.size == 0:
        return float(t[0])
    if outside[-1] == t.size - 1:
        return float("inf")
    return float(t[outside[-1] + 1])


def exit_time(t, states, centers, delta: float, after: float = 0.0) -> float:
    r"""Sampled exit time :math:`T^*(\delta)` (eq. (28), App. G.2.1): the first sampled
    time :math:`\ge` ``after`` at which some token is farther than :math:`\delta`
    from the clusters.  Returns ``inf`` if that never happens on the trajectory.
    """
    t, worst = _check_path(t, states, centers)
    delta = positive_scalar(delta, "delta")
    after = finite_scalar(after, "after")
    hits = np.flatnonzero((t >= after) & (worst > delta))
    return float(t[hits[0]]) if hits.size else float("inf")


def first_crossing_time(t, values, level: float) -> float:
    r"""First time at which the positive sampled quantity ``values`` drops to ``level``
    and stays at or below it until the end, located by interpolating
    :math:`\log(\text{values})` linearly between the two samples around the crossing
    (exact for exponential decay).  Returns ``inf`` if the last sample is above it."""
    t = _check_times(t)
    values = as_finite_array(values, "values")
    level = positive_scalar(level, "level")
    if t.shape != values.shape:
        raise ValueError(f"t and values must be 1-D arrays of one length, got {t.shape} and {values.shape}")
    if np.any(values < 0):
        raise ValueError("values must be nonnegative (a distance or a norm): the crossing is located on log(values)")
    above = np.flatnonzero(values > level)
    if above.size == 0:
        return float(t[0])
    k = above[-1]
    if k == t.size - 1:
        return float("inf")
    lo, hi = np.log(max(values[k], 1e-300)), np.log(max(values[k + 1], 1e-300))
    frac = (lo - np.log(level)) / (lo - hi) if lo > hi else 1.0
    return float(t[k] + frac * (t[k + 1] - t[k]))


def distance_to_P_star(P) -> float:
    r"""How far an attention matrix is from the set :math:`\mathcal P^*` of Prop. 6.2
    (every row supported on the same two leader columns):
    :math:`1 - \min_i (P_{i\ell^+} + P_{i\ell^-})` for the two columns
    :math:`\ell^\pm` with the largest total attention.  0 exactly on :math:`\mathcal P^*`."""
    P = as_finite_array(P, "P")
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] < 2:
        raise ValueError(f"P must be a square (n, n) matrix with n >= 2, got shape {P.shape}")
    if np.any(P < 0) or not np.allclose(P.sum(axis=1), 1.0, rtol=0.0, atol=1e-9):
        raise ValueError("P must be row-stochastic (nonnegative entries, rows summing to 1), like an attention matrix")
    leaders = np.argsort(-P.sum(axis=0))[:2]
    return float(max(0.0, 1.0 - P[:, leaders].sum(axis=1).min()))


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


def max_distance_to_mean(states, z0) -> np.ndarray:
    r""":math:`\max_i\|z_i(t) - \bar z(0)\|` along a trajectory (..., m, n, d), with
    :math:`\bar z(0)` the mean of the initial tokens ``z0`` (..., n, d)."""
    mean = np.asarray(z0).mean(axis=-2)[..., None, None, :]
    return np.linalg.norm(np.asarray(states) - mean, axis=-1).max(axis=-1)
