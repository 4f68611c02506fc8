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

__all__ = ["TopEigenpair", "top_eigenpair"]


@dataclass(frozen=True)
class TopEigenpair:
    r"""The eigenvalue of largest modulus of V and what Theorem 5.4 asks of it.

    ``phi`` is the top eigenvector normalised to unit length (real part: for a real
    top eigenvalue of a real matrix it can be chosen real) and ``phi_dual`` the dual
    form scaled so that ``phi_dual @ phi == 1``.  ``second`` is :math:`|\lambda_2|`
    (0 in dimension one).
    """

    eigenvalue: complex
    second: float
    phi: np.ndarray
    phi_dual: np.ndarray

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
    return TopEigenpair(complex(eigvals[top]), second, phi / scale, phi_dual * scale)
