r"""The spectral quantities the clustering theorems are stated in.

For a value matrix :math:`V` with eigenvalues ordered by modulus,
:math:`|\lambda_1|\ge|\lambda_2|\ge\dots`, Theorem 5.4 (after Geshkovski et al.,
Thm 4.2) needs a real, positive, dominant top eigenvalue,

.. math:: \lambda_1 > |\lambda_2| \qquad (\text{gap } \varepsilon = \lambda_1 - |\lambda_2| > 0, \text{ eq. (29)}),

its eigenvector :math:`\varphi_1` and the dual form :math:`\varphi_1^*` (the row of
:math:`P^{-1}` for the eigenvector matrix P, so that :math:`\varphi_1^*(\varphi_k)
= \delta_{1k}`), which reads the coordinate of a token along :math:`\varphi_1`, and
:math:`c_{1,1} = \langle A\varphi_1, \varphi_1\rangle > 0` for the attention matrix
:math:`A = K^\top Q`.  :func:`top_eigenpair` computes them once for everyone
(:mod:`bounds`, the phase-transition studies, the spectra of trained networks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import as_square_matrix

__all__ = [
    "TopEigenpair",
    "low_rank_eigenvalues",
    "low_rank_singular_values",
    "low_rank_top_eigenpair",
    "numerical_rank",
    "outside_disc",
    "top_eigenpair",
]


@dataclass(frozen=True)
class TopEigenpair:
    r"""The eigenvalue of largest modulus of V and what Theorem 5.4 asks of it.

    ``phi`` is the top eigenvector normalised to unit length (real part: for a real
    top eigenvalue of a real matrix it can be chosen real) and ``phi_dual`` the dual
    form scaled so that ``phi_dual @ phi == 1``.  ``second`` is :math:`|\lambda_2|`
    (0 in dimension one).  ``eigenvalues`` holds every eigenvalue found on the way, by
    decreasing modulus (for :func:`low_rank_top_eigenpair`, those of the core).
    """

    eigenvalue: complex
    second: float
    phi: np.ndarray
    phi_dual: np.ndarray
    eigenvalues: np.ndarray | None = None

    @property
    def is_real_positive(self) -> bool:
        """Whether :math:`\\lambda_1` is real (to 1e-12) and > 0."""
        return abs(self.eigenvalue.imag) <= 1e-12 and self.eigenvalue.real > 0

    @property
    def gap(self) -> float:
        r""":math:`\varepsilon = \mathrm{Re}\,\lambda_1 - |\lambda_2|` (eq. (29))."""
        return float(self.eigenvalue.real - self.second)

    def attention_alignment(self, A) -> float:
        r""":math:`c_{1,1} = \langle A\varphi_1, \varphi_1\rangle` for the attention matrix A."""
        A = as_square_matrix(A, "A", self.phi.size, allow_batch=False)
        return float(self.phi @ A @ self.phi)

    def satisfies_theorem_5_4(self, A) -> bool:
        """Real positive top eigenvalue, a gap to the second, and :math:`c_{1,1} > 0`."""
        return self.is_real_positive and self.gap > 0 and self.attention_alignment(A) > 0


def top_eigenpair(V) -> TopEigenpair:
    r"""The top eigenvalue of V (largest modulus; the first one on ties), its unit
    eigenvector :math:`\varphi_1` and dual form :math:`\varphi_1^*` with
    :math:`\varphi_1^*(\varphi_1) = 1`."""
    V = as_square_matrix(V, "V", allow_batch=False)
    eigvals, eigvecs = np.linalg.eig(V)
    order = np.argsort(-np.abs(eigvals), kind="stable")
    top = order[0]
    phi = np.real(eigvecs[:, top])
    phi_dual = np.real(np.linalg.inv(eigvecs)[top])
    # normalise phi to unit length and rescale the dual form so that phi*(phi) = 1
    scale = np.linalg.norm(phi)
    second = float(abs(eigvals[order[1]])) if V.shape[0] > 1 else 0.0
    return TopEigenpair(complex(eigvals[top]), second, phi / scale, phi_dual * scale, eigvals[order])


# --------------------------------------------------------------------------------------
# products of thin factors: the d x d matrices of a trained head, computed on their cores
# --------------------------------------------------------------------------------------
def _thin(M, name: str) -> np.ndarray:
    M = np.asarray(M)
    if M.ndim != 2 or not np.issubdtype(M.dtype, np.number) or np.iscomplexobj(M):
        raise ValueError(f"{name} must be a real 2-d array, got shape {M.shape} and dtype {M.dtype}")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} contains NaN or inf")
    return M.astype(float)


def low_rank_singular_values(left, right) -> np.ndarray:
    r"""Singular values of :math:`L^\top R` for thin factors L (r x d) and R (r' x d),
    in decreasing order, r values at most (the others are zero).

    This is how the attention matrix of a head, :math:`A_h = W_Q^{h\top} W_K^h/\sqrt{d_h}`,
    is analysed without forming the d x d product: with QR factorisations
    :math:`L^\top = U_1 R_1`, :math:`R^\top = U_2 R_2` (orthonormal columns), the product
    is :math:`U_1 (R_1 R_2^\top) U_2^\top` and has the singular values of the small core
    :math:`R_1 R_2^\top`."""
    left, right = _thin(left, "left"), _thin(right, "right")
    if left.shape[1] != right.shape[1]:
        raise ValueError(f"left and right must have the same number of columns, got {left.shape} and {right.shape}")
    _, r1 = np.linalg.qr(left.T)
    _, r2 = np.linalg.qr(right.T)
    return np.linalg.svd(r1 @ r2.T, compute_uv=False)


def low_rank_eigenvalues(outer, inner) -> np.ndarray:
    r"""The eigenvalues of :math:`\mathrm{outer}\cdot\mathrm{inner}` (d x r times r x d)
    that can be nonzero: those of the r x r product :math:`\mathrm{inner}\cdot\mathrm{outer}`
    (the two products share their nonzero eigenvalues), ordered by decreasing modulus.

    For a head, outer = :math:`W_O^h` and inner = :math:`W_V^h` give the spectrum of the
    value map :math:`W_O^h W_V^h` of the particle picture."""
    outer, inner = _thin(outer, "outer"), _thin(inner, "inner")
    if outer.shape[1] != inner.shape[0] or outer.shape[0] != inner.shape[1]:
        raise ValueError(f"outer (d x r) and inner (r x d) do not match: {outer.shape} and {inner.shape}")
    eigenvalues = np.linalg.eigvals(inner @ outer)
    return eigenvalues[np.argsort(-np.abs(eigenvalues), kind="stable")]


def low_rank_top_eigenpair(outer, inner) -> TopEigenpair:
    r""":func:`top_eigenpair` of :math:`M = \mathrm{outer}\cdot\mathrm{inner}` from the
    r x r core :math:`C = \mathrm{inner}\cdot\mathrm{outer}`: if :math:`Cu = \lambda u` then
    :math:`M(\mathrm{outer}\,u) = \lambda\,\mathrm{outer}\,u`, and if :math:`w^\top C =
    \lambda w^\top` then :math:`(w^\top\mathrm{inner})M = \lambda\, w^\top\mathrm{inner}`.
    The d - r zero eigenvalues of M are counted in :math:`|\lambda_2|` only if the core
    has a single eigenvalue."""
    outer, inner = _thin(outer, "outer"), _thin(inner, "inner")
    core = inner @ outer
    eigvals, right = np.linalg.eig(core)
    order = np.argsort(-np.abs(eigvals), kind="stable")
    top = order[0]
    phi = np.real(outer @ right[:, top])
    dual = np.real(np.linalg.inv(right)[top] @ inner)
    scale = np.linalg.norm(phi)
    if scale == 0:
        raise ValueError("the top eigenvector of the core is in the kernel of outer: M has no nonzero eigenvalue")
    phi, dual = phi / scale, dual * scale
    dual = dual / (dual @ phi)
    second = float(abs(eigvals[order[1]])) if core.shape[0] > 1 else 0.0
    return TopEigenpair(complex(eigvals[top]), second, phi, dual, eigvals[order])


def outside_disc(eigenvalues, radius: float) -> tuple[int, float]:
    r"""How many of ``eigenvalues`` lie outside the closed disc of ``radius`` (beyond a
    relative 1e-9, so that a rounding-level tie is not counted), and how far the farthest
    one lies beyond it, relative to the radius: :math:`\max_i |\lambda_i|/\rho - 1`,
    or 0 when none is outside.

    An "outlier" of a fine-tuned spectrum is an eigenvalue outside the disc that held the
    pre-trained one; the excess tells a real outlier from one that crossed the rim by a
    fraction of a percent."""
    moduli = np.abs(np.asarray(eigenvalues))
    if moduli.size == 0 or not np.all(np.isfinite(moduli)):
        raise ValueError("eigenvalues must be a non-empty array of finite numbers")
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a finite number > 0, got {radius!r}")
    count = int(np.count_nonzero(moduli > radius * (1 + 1e-9)))
    return count, (float(moduli.max() / radius - 1) if count else 0.0)


def numerical_rank(singular_values, rtol: float) -> int:
    r"""The number of singular values above ``rtol`` times the largest: the rank that is
    meaningful at a relative precision ``rtol`` (for weights stored in 4 bits, about
    the quantization noise; see Chapter 7)."""
    sv = np.asarray(singular_values, dtype=float)
    if sv.ndim != 1 or sv.size == 0 or np.any(sv < 0) or not np.all(np.isfinite(sv)):
        raise ValueError("singular_values must be a non-empty 1-d array of finite values >= 0")
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must lie in (0, 1), got {rtol!r}")
    return int(np.count_nonzero(sv > rtol * sv.max()))
