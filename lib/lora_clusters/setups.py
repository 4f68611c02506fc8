r"""Initial tokens and attention parameters used across the chapters.

Everything random takes an explicit ``seed`` so that a rebuilt book shows the same
numbers.
"""

from __future__ import annotations

import numpy as np

from ._validation import positive_int, positive_scalar

__all__ = [
    "VALUE_MATRIX_KINDS",
    "image_and_complement",
    "initial_tokens",
    "low_rank_attention",
    "perturbed_value_matrix",
    "uniform_in_subspace_ball",
    "value_matrix",
]


def initial_tokens(n: int, d: int, seed: int = 0, *, law: str = "gaussian", scale: float = 1.0) -> np.ndarray:
    r"""n tokens in :math:`\mathbb R^d`, i.i.d. standard Gaussian times ``scale`` or
    uniform on :math:`[-\text{scale}, \text{scale}]^d` (``law="uniform"``; Fig. 4 uses
    scale 5)."""
    n, d = positive_int(n, "n"), positive_int(d, "d")
    scale = positive_scalar(scale, "scale")
    rng = np.random.default_rng(seed)
    if law == "gaussian":
        return scale * rng.standard_normal((n, d))
    if law == "uniform":
        return rng.uniform(-scale, scale, size=(n, d))
    raise ValueError(f"law must be 'gaussian' or 'uniform', got {law!r}")


#: the value matrices offered in Chapter 1 and its widget
VALUE_MATRIX_KINDS = ("identity", "symmetric", "negative eigenvalue", "rotation")


def value_matrix(kind: str, d: int, seed: int = 0) -> np.ndarray:
    r"""A value matrix V of a named kind.

    - ``identity``: :math:`V = I_d` (clustering at the vertices of a polytope).
    - ``symmetric``: :math:`V = I_d + \tfrac{1}{2}(G + G^\top)/\sqrt{d}`, rescaled so that
      its eigenvalues lie in [0.2, 1] with the top one simple (a generic positive
      symmetric V).
    - ``negative eigenvalue``: :math:`\mathrm{diag}(1, -1/2, 1, \dots)`: the rescaled
      tokens spread along :math:`e_2` instead of collapsing.
    - ``rotation``: :math:`\begin{pmatrix}1/2&-1\\1&1/2\end{pmatrix}` in the first plane
      (complex eigenvalues :math:`1/2 \pm i`), identity elsewhere.
    """
    d = positive_int(d, "d")
    if kind == "identity":
        return np.eye(d)
    if kind == "symmetric":
        rng = np.random.default_rng(seed)
        G = rng.standard_normal((d, d))
        S = 0.5 * (G + G.T)
        w, U = np.linalg.eigh(S)
        # map the spectrum affinely onto [0.2, 1]; the top eigenvalue stays simple a.s.
        w = 0.2 + 0.8 * (w - w.min()) / max(w.max() - w.min(), 1e-12) if d > 1 else np.ones(1)
        return (U * w) @ U.T
    if kind == "negative eigenvalue":
        if d < 2:
            raise ValueError("d must be >= 2 for kind='negative eigenvalue'")
        V = np.eye(d)
        V[1, 1] = -0.5
        return V
    if kind == "rotation":
        if d < 2:
            raise ValueError("d must be >= 2 for kind='rotation'")
        V = np.eye(d)
        V[:2, :2] = [[0.5, -1.0], [1.0, 0.5]]
        return V
    raise ValueError(f"kind must be one of {VALUE_MATRIX_KINDS}, got {kind!r}")


def perturbed_value_matrix(eps, d: int = 2) -> np.ndarray:
    r""":math:`\tilde V = I_d - \varepsilon\, e_d e_d^\top` (Fig. 2, Fig. 3: diag(1, 1 - eps) in d = 2).

    ``eps`` may be an array; the result is then a batch (len(eps), d, d).
    """
    d = positive_int(d, "d")
    eps_arr = np.asarray(eps, dtype=float)
    if not np.all(np.isfinite(eps_arr)) or np.any(eps_arr < 0):
        raise ValueError(f"eps must be finite and >= 0, got {eps!r}")
    V = np.broadcast_to(np.eye(d), eps_arr.shape + (d, d)).copy()
    V[..., d - 1, d - 1] -= eps_arr
    return V


def low_rank_attention(d: int, rank: int, seed: int | None = 0) -> np.ndarray:
    r"""Q = K = :math:`UU^\top` for U (d, rank) with orthonormal columns, so that
    :math:`A = K^\top Q = UU^\top` is the orthogonal projector onto a random
    ``rank``-dimensional subspace (symmetric, rank ``rank``, Sec. 6).  ``seed=None``
    takes the first ``rank`` coordinate axes instead of a random subspace."""
    d, rank = positive_int(d, "d"), positive_int(rank, "rank")
    if rank > d:
        raise ValueError(f"rank must be at most d = {d}, got {rank}")
    if seed is None:
        U = np.eye(d)[:, :rank]
    else:
        U, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, rank)))
    return U @ U.T


def image_and_complement(A, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    r"""Orthonormal bases (as columns) of :math:`\mathrm{Im}(A)` and :math:`\mathrm{Im}(A)^\perp`
    for a symmetric A (eigenvectors with :math:`|\lambda| >` ``tol`` times the largest)."""
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or not np.allclose(A, A.T):
        raise ValueError(f"A must be a symmetric square matrix, got shape {A.shape}")
    w, U = np.linalg.eigh(A)
    keep = np.abs(w) > tol * max(np.abs(w).max(), 1e-300)
    return U[:, keep], U[:, ~keep]


def uniform_in_subspace_ball(n: int, basis, radius: float, seed: int = 0) -> np.ndarray:
    r"""n points uniform in :math:`B(0, \text{radius})\cap\mathrm{span}(\text{basis})`
    (the law of Prop. 6.1, eq. (34)); ``basis`` is (d, k) with orthonormal columns."""
    n = positive_int(n, "n")
    radius = positive_scalar(radius, "radius")
    basis = np.asarray(basis, dtype=float)
    if basis.ndim != 2 or basis.shape[1] == 0:
        raise ValueError(f"basis must be a (d, k) matrix with k >= 1 columns, got shape {basis.shape}")
    k = basis.shape[1]
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, k))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    r = radius * rng.uniform(size=(n, 1)) ** (1.0 / k)
    return (g * r) @ basis.T
