r"""LoRA perturbations of the attention matrices, eqs. (3)-(5).

A LoRA update of rank k adds a product of two thin factors to a pre-trained matrix,

.. math:: \tilde W = W + W_A^\top W_B, \qquad W_A, W_B \in M_{k,d}(\mathbb R),

for W one of V (eq. (3)), K (eq. (4)) or Q (eq. (5)).  The chapters need such
updates at a prescribed operator-norm size, on the value matrix, on the attention
matrix :math:`A = K^\top Q` (through Q), or on both, and the perturbation
:math:`\tilde V = I - \varepsilon e_d e_d^\top` of Fig. 2 (a rank-one LoRA of V).
"""

from __future__ import annotations

import numpy as np

from ._validation import as_finite_array, as_square_matrix, positive_int, positive_scalar

__all__ = ["LORA_TARGETS", "lora_triple", "lora_update", "op_norm", "orthogonal_rank_one_lora", "random_lora_factors"]

#: which attention parameters :func:`lora_triple` perturbs
LORA_TARGETS = ("V", "A", "both")


def op_norm(M) -> float:
    r""":math:`\|M\|_{op}`, the largest singular value (the norm of Sec. 3)."""
    return float(np.linalg.norm(as_finite_array(M, "M"), 2))


def lora_update(W, W_A, W_B) -> np.ndarray:
    r""":math:`\tilde W = W + W_A^\top W_B` (eqs. (3)-(5)); ``W`` is (d, d), the factors (k, d)."""
    W = as_square_matrix(W, "W", allow_batch=False)
    d = W.shape[0]
    factors = []
    for name, F in (("W_A", W_A), ("W_B", W_B)):
        F = as_finite_array(F, name)
        if F.ndim != 2 or F.shape[1] != d:
            raise ValueError(f"{name} must be a (k, {d}) matrix, got shape {F.shape}")
        factors.append(F)
    if factors[0].shape[0] != factors[1].shape[0]:
        raise ValueError(f"W_A and W_B must have the same rank k, got {factors[0].shape[0]} and {factors[1].shape[0]}")
    return W + factors[0].T @ factors[1]


def random_lora_factors(d: int, rank: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian LoRA factors (W_A, W_B), each (rank, d), with a seeded generator."""
    d, rank = positive_int(d, "d"), positive_int(rank, "rank")
    if rank > d:
        raise ValueError(f"rank must be at most d = {d}, got {rank}")
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rank, d)), rng.standard_normal((rank, d))


def lora_triple(Q, K, V, *, target: str = "V", size: float = 1e-2, rank: int = 1, seed: int = 0):
    r"""A LoRA triple :math:`(\tilde Q, \tilde K, \tilde V)` at a prescribed size.

    - ``target="V"``: :math:`\tilde V = V + V_A^\top V_B` with
      :math:`\|\tilde V - V\|_{op} =` ``size``; Q and K unchanged.
    - ``target="A"``: :math:`\tilde Q = Q + Q_A^\top Q_B`, scaled so that
      :math:`\|\tilde A - A\|_{op} = \|K^\top (\tilde Q - Q)\|_{op} =` ``size``; V unchanged.
    - ``target="both"``: both of the above, each of the given size (independent factors).

    The update has rank ``rank`` (at most; exactly for generic factors and invertible K).
    """
    Q, K, V = (
        as_square_matrix(Q, "Q", allow_batch=False),
        as_square_matrix(K, "K", allow_batch=False),
        as_square_matrix(V, "V", allow_batch=False),
    )
    d = Q.shape[0]
    if K.shape != (d, d) or V.shape != (d, d):
        raise ValueError(f"Q, K and V must all be ({d}, {d}), got {Q.shape}, {K.shape} and {V.shape}")
    if target not in LORA_TARGETS:
        raise ValueError(f"target must be one of {LORA_TARGETS}, got {target!r}")
    size = positive_scalar(size, "size")
    rank = positive_int(rank, "rank")
    Q_new, V_new = Q.copy(), V.copy()
    if target in ("V", "both"):
        V_A, V_B = random_lora_factors(d, rank, seed)
        dV = V_A.T @ V_B
        V_new = V + dV * (size / op_norm(dV))
    if target in ("A", "both"):
        Q_A, Q_B = random_lora_factors(d, rank, seed + 1)
        dQ = Q_A.T @ Q_B
        dA_norm = op_norm(K.T @ dQ)
        if dA_norm < 1e-12 * op_norm(dQ):
            raise ValueError("K annihilates the LoRA update of Q (K^T dQ = 0): choose another seed or an invertible K")
        Q_new = Q + dQ * (size / dA_norm)
    return Q_new, K.copy(), V_new


def orthogonal_rank_one_lora(Q, K, v, *, tol: float = 1e-10):
    r"""The rank-one LoRA of Sec. 7: :math:`\tilde Q = Q + vv^\top`, :math:`\tilde K = K + vv^\top`.

    Checks the orthogonality condition (36) for :math:`Q_A = K_A = v^\top`:
    :math:`v \perp \mathrm{Im}(Q)` and :math:`v \perp \mathrm{Im}(K)`.  Then
    :math:`\tilde K^\top\tilde Q = K^\top Q + \|v\|^2 vv^\top`: the LoRA adds one
    attention direction and leaves the pre-trained ones untouched.
    """
    Q, K = as_square_matrix(Q, "Q", allow_batch=False), as_square_matrix(K, "K", allow_batch=False)
    v = as_finite_array(v, "v")
    d = Q.shape[0]
    if v.shape != (d,) or not np.any(v):
        raise ValueError(f"v must be a nonzero vector of length {d}, got shape {v.shape}")
    if K.shape != (d, d):
        raise ValueError(f"K must be ({d}, {d}) like Q, got shape {K.shape}")
    scale = np.linalg.norm(v) * max(op_norm(Q), op_norm(K), 1.0)
    if np.linalg.norm(Q.T @ v) > tol * scale or np.linalg.norm(K.T @ v) > tol * scale:
        raise ValueError("v must be orthogonal to Im(Q) and Im(K) (condition (36)): Q^T v and K^T v must vanish")
    vvT = np.outer(v, v)
    return Q + vvT, K + vvT
