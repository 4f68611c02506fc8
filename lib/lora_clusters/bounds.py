r"""The paper's quantitative bounds, as functions of their inputs.

Stability (Sec. 4, App. C).  For tokens following eq. (2) from a measure
:math:`\mu_0` supported in :math:`B(0, R)`, Corollary 4.2 bounds the distance
between the pre-trained flow :math:`\mu_t` (matrices Q, K, V) and the LoRA flow
:math:`\nu_t` (matrices :math:`\tilde Q, \tilde K, \tilde V`):

.. math::

    W_2(\mu_t,\nu_t)^2 \le \mathcal K(A-\tilde A, V-\tilde V, t)\, e^{2 C_t e^{3K_t}}
    \qquad (24)

with :math:`A = K^\top Q` and

.. math::

    R_t &= R\, e^{\max(\|V\|_{op}, \|\tilde V\|_{op})\, t} && (19)\\
    K_t &= 2\|A\|_{op}\|V\|_{op} R_t^2 && (18)\\
    C_2(R) &= 2R^2\|V\|_{op}\|A\|_{op}\bigl(1 + e^{2R^2\|A\|_{op}}\bigr) && (59)\\
    C_t &= \int_0^t C_2(R_s)^2\,ds && (17)\\
    \mathcal K &= 2\|V-\tilde V\|_{op}^2 R_t^2 + 4R_t^3\|V\|_{op}\|A-\tilde A\|_{op}. && (24)

The right-hand side grows like :math:`\exp(\exp(\exp(t)))`, so everything is
computed in logarithms and the bound is returned as ``inf`` once it no longer fits
in a float (it is then vacuous anyway).

Phase transition (Sec. 5, App. D.2).  Proposition 5.8 bounds the exit time
:math:`T^*(\delta)` for a value matrix whose top eigenvalues satisfy
:math:`\lambda_1 - |\lambda_2| = \varepsilon > 0`; see
:func:`phase_transition_time_bound`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import integrate

from . import spectra
from ._validation import as_finite_array, as_square_matrix, as_tokens, positive_scalar
from .lora import op_norm

__all__ = [
    "StabilityBound",
    "collapse_time_bound",
    "collapse_time_high_probability_bound",
    "cumulative_lipschitz_integral",
    "gronwall_exponent",
    "kernel_lipschitz_constant",
    "perturbation_prefactor",
    "phase_transition_time_bound",
    "stability_bound",
    "support_radius",
]

# exp() of anything above this overflows float64
_LOG_MAX = 709.0


def support_radius(t, R: float, V_norm: float, V_tilde_norm: float) -> np.ndarray:
    r""":math:`R_t = R\,e^{\max(\|V\|, \|\tilde V\|)\,t}` of eq. (19): both token clouds
    stay in :math:`B(0, R_t)` (Gronwall on :math:`\max_i \|x_i\|^2`, eq. (79))."""
    t = as_finite_array(t, "t")
    return positive_scalar(R, "R") * np.exp(max(V_norm, V_tilde_norm) * t)


def kernel_lipschitz_constant(R, A_norm: float, V_norm: float) -> np.ndarray:
    r""":math:`C_2(R) = 2R^2\|V\|\|A\|(1 + e^{2R^2\|A\|})` of eq. (59): the Lipschitz
    constant of :math:`\mu \mapsto \mathcal X[\mu]` in :math:`W_2` on :math:`B(0, R)`.
    Returns ``inf`` where it overflows."""
    R = as_finite_array(R, "R")
    log_c2 = np.log(2.0 * V_norm * A_norm) + 2.0 * np.log(R) + np.logaddexp(0.0, 2.0 * R**2 * A_norm)
    return np.where(log_c2 < _LOG_MAX, np.exp(np.minimum(log_c2, _LOG_MAX)), np.inf)


def gronwall_exponent(t, R: float, A_norm: float, V_norm: float, V_tilde_norm: float) -> np.ndarray:
    r""":math:`K_t = 2\|A\|\|V\| R_t^2` of eq. (18).

    (App. C.2, eq. (71), writes :math:`2\|A\|\|V\| M_0^2 e^{2\|V\| t}\, t` instead, with
    an extra factor t; the statement of Prop. 4.1 is followed here.)"""
    return 2.0 * A_norm * V_norm * support_radius(t, R, V_norm, V_tilde_norm) ** 2


def cumulative_lipschitz_integral(t, R: float, A_norm: float, V_norm: float, V_tilde_norm: float) -> np.ndarray:
    r""":math:`C_t = \int_0^t C_2(R_s)^2\,ds` of eq. (17) at every time of the sorted array ``t``
    (adaptive quadrature between consecutive times; ``inf`` once the integrand overflows)."""
    t = as_finite_array(t, "t").ravel()
    if np.any(t < 0) or np.any(np.diff(t) < 0):
        raise ValueError("t must be a non-decreasing array of times >= 0")
    rate = max(V_norm, V_tilde_norm)

    def log_integrand(s):
        R_s = R * np.exp(rate * s)
        return 2.0 * (np.log(2.0 * V_norm * A_norm) + 2.0 * np.log(R_s) + np.logaddexp(0.0, 2.0 * R_s**2 * A_norm))

    out = np.empty_like(t)
    total, previous = 0.0, 0.0
    for k, tk in enumerate(t):
        # the integrand increases with s, so its value at the right end decides overflow
        if not np.isfinite(total) or log_integrand(tk) > _LOG_MAX - 10.0:
            total = np.inf
        elif tk > previous:
            piece, _ = integrate.quad(
                lambda s: np.exp(log_integrand(s)), previous, tk, epsabs=0.0, epsrel=1e-10, limit=200
            )
            total += piece
        out[k], previous = total, tk
    return out


def perturbation_prefactor(
    t, R: float, dA_norm: float, dV_norm: float, V_norm: float, V_tilde_norm: float
) -> np.ndarray:
    r""":math:`\mathcal K(A-\tilde A, V-\tilde V, t)
    = 2\|V-\tilde V\|^2 R_t^2 + 4R_t^3\|V\|\|A-\tilde A\|` of eq. (24)."""
    R_t = support_radius(t, R, V_norm, V_tilde_norm)
    return 2.0 * dV_norm**2 * R_t**2 + 4.0 * R_t**3 * V_norm * dA_norm


@dataclass
class StabilityBound:
    r"""The right-hand side of eq. (24) and its ingredients at the times ``t``.

    ``w2_bound`` is the square root of the right-hand side (a bound on
    :math:`W_2(\mu_t,\nu_t)` itself), ``inf`` where it overflows float64.
    ``diameter`` is :math:`2R_t`, the trivial bound (both clouds lie in :math:`B(0,R_t)`).
    """

    t: np.ndarray
    R_t: np.ndarray
    K_t: np.ndarray
    C_t: np.ndarray
    prefactor: np.ndarray
    log_w2_bound: np.ndarray
    w2_bound: np.ndarray
    diameter: np.ndarray

    @property
    def informative_until(self) -> float:
        """The last sampled time before the bound first reaches the trivial bound :math:`2R_t`
        (``t[0]`` if it never is below it)."""
        above = np.flatnonzero(self.log_w2_bound >= np.log(self.diameter))
        if above.size == 0:
            return float(self.t[-1])
        return float(self.t[max(above[0] - 1, 0)])


def stability_bound(t, Q, K, V, Q_tilde, K_tilde, V_tilde, R: float) -> StabilityBound:
    r"""Corollary 4.2: the bound (24) on :math:`W_2(\mu_t,\nu_t)` for the flows (2) of the
    pre-trained (Q, K, V) and the LoRA triple, both started from tokens in :math:`B(0,R)`.

    ``t`` is a non-decreasing array of times.  The exponent :math:`2C_t e^{3K_t}` is
    formed from logarithms, so the result is exact where finite and ``inf`` beyond.
    """
    mats = {}
    for name, M in (("Q", Q), ("K", K), ("V", V), ("Q_tilde", Q_tilde), ("K_tilde", K_tilde), ("V_tilde", V_tilde)):
        mats[name] = as_square_matrix(M, name, allow_batch=False)
    d = mats["Q"].shape[0]
    for name, M in mats.items():
        if M.shape != (d, d):
            raise ValueError(f"{name} must be ({d}, {d}) like Q, got shape {M.shape}")
    R = positive_scalar(R, "R")
    t = as_finite_array(t, "t").ravel()
    A = mats["K"].T @ mats["Q"]
    A_tilde = mats["K_tilde"].T @ mats["Q_tilde"]
    A_norm, V_norm, V_tilde_norm = op_norm(A), op_norm(mats["V"]), op_norm(mats["V_tilde"])
    dA_norm, dV_norm = op_norm(A - A_tilde), op_norm(mats["V"] - mats["V_tilde"])

    R_t = support_radius(t, R, V_norm, V_tilde_norm)
    K_t = gronwall_exponent(t, R, A_norm, V_norm, V_tilde_norm)
    C_t = cumulative_lipschitz_integral(t, R, A_norm, V_norm, V_tilde_norm)
    prefactor = perturbation_prefactor(t, R, dA_norm, dV_norm, V_norm, V_tilde_norm)
    with np.errstate(divide="ignore"):
        log_exponent = np.log(2.0) + np.log(C_t) + 3.0 * K_t  # log of 2 C_t e^{3 K_t}
        log_prefactor = np.log(prefactor)
    exponent = np.where(log_exponent < _LOG_MAX, np.exp(np.minimum(log_exponent, _LOG_MAX)), np.inf)
    # no perturbation at all: the two flows coincide and the bound is exactly 0
    perturbed = prefactor > 0
    log_w2_bound = np.full_like(t, -np.inf)
    log_w2_bound[perturbed] = 0.5 * (log_prefactor[perturbed] + exponent[perturbed])
    w2_bound = np.where(log_w2_bound < _LOG_MAX, np.exp(np.minimum(log_w2_bound, _LOG_MAX)), np.inf)
    return StabilityBound(t, R_t, K_t, C_t, prefactor, log_w2_bound, w2_bound, 2.0 * R_t)


def phase_transition_time_bound(z, centers, delta: float, V_tilde, A) -> float:
    r"""Upper bound of Prop. 5.8 on the exit time :math:`T^*(\delta)`.

    With :math:`\lambda_1 > |\lambda_2|` the two eigenvalues of largest modulus of
    :math:`\tilde V`, :math:`\varepsilon = \lambda_1 - |\lambda_2|` (eq. (29)),
    :math:`\varphi_1` the top eigenvector and :math:`\varphi_1^*` its dual form,
    :math:`c_{1,1} = \langle A\varphi_1, \varphi_1\rangle`, and
    :math:`D = \min_{i\ne j}|\varphi_1^*(c_i) - \varphi_1^*(c_j)|` (eq. (27)),
    the proof in App. D.2 gives

    .. math::

        T^*(\delta) \le \frac{1}{\varepsilon}\log\frac{\|z\|_\infty}{\delta^2 c_{1,1}}
                      + \frac{8 n \delta}{\lambda_1 D},

    the first term of eq. (30) plus the time the drift (118) needs to move a token by
    :math:`2\delta`.  The second term inside the maximum of (30) involves a constant
    :math:`C_0` that the paper does not define; it does not depend on
    :math:`\varepsilon`, and is left out (it can only matter for large
    :math:`\varepsilon`).  :math:`\|z\|_\infty` is taken as the largest token norm of
    ``z``.  Returns ``inf`` when the hypotheses fail (:math:`\varepsilon \le 0`,
    :math:`c_{1,1} \le 0`, or two clusters with the same :math:`\varphi_1^*`).
    """
    z = as_tokens(z, "z", allow_batch=False)
    centers = as_tokens(centers, "centers", allow_batch=False)
    delta = positive_scalar(delta, "delta")
    V_tilde = as_square_matrix(V_tilde, "V_tilde", allow_batch=False)
    A = as_square_matrix(A, "A", allow_batch=False)
    n, d = z.shape
    if V_tilde.shape != (d, d) or A.shape != (d, d) or centers.shape[1] != d:
        raise ValueError(f"V_tilde and A must be ({d}, {d}) and centers (k, {d}) for tokens of dimension {d}")
    top = spectra.top_eigenpair(V_tilde)
    if not top.is_real_positive:
        return float("inf")
    lam1, gap, phi1_dual = top.eigenvalue, top.gap, top.phi_dual
    c11 = top.attention_alignment(A)
    projections = np.sort(centers @ phi1_dual)
    D = float(np.min(np.diff(projections))) if projections.size > 1 else np.inf
    if gap <= 0 or c11 <= 0 or D <= 0:
        return float("inf")
    z_sup = float(np.max(np.linalg.norm(z, axis=1)))
    leading = np.log(z_sup / (delta**2 * c11)) / gap
    drift = 8.0 * n * delta / (lam1.real * D) if np.isfinite(D) else 0.0
    return float(max(leading, 0.0) + drift)


def _restricted_eigenvalues(V, basis) -> np.ndarray:
    """Eigenvalues of V restricted to span(basis) (assumed V-invariant)."""
    return np.linalg.eigvals(basis.T @ V @ basis)


def collapse_time_bound(z0, delta: float, V, A, *, eigenvalue: str = "largest") -> float:
    r"""Bound (33) of Prop. 6.1 on :math:`T_\delta` for tokens in :math:`\mathrm{Im}(A)^\perp`:

    .. math:: T_\delta \le \frac{1}{\lambda}\log\frac{\max_i\|z_i(0)-\bar z(0)\|}{\delta}.

    There the attention is uniform and :math:`z_i(t) = \bar z + e^{-tV}(z_i(0)-\bar z)`
    (App. E.1).  The paper takes :math:`\lambda = \lambda_1`, the eigenvalue of largest
    modulus of V on that space (``eigenvalue="largest"``).  The decay
    :math:`\|e^{-tV}w\|\le e^{-t\lambda}\|w\|` holds for symmetric V with the
    *smallest* eigenvalue (``eigenvalue="smallest"``); both coincide for V = I.
    """
    z0 = as_tokens(z0, "z0", allow_batch=False)
    delta = positive_scalar(delta, "delta")
    V = as_square_matrix(V, "V", z0.shape[1], allow_batch=False)
    if eigenvalue not in ("largest", "smallest"):
        raise ValueError(f"eigenvalue must be 'largest' or 'smallest', got {eigenvalue!r}")
    from .setups import image_and_complement

    _, perp = image_and_complement(A)
    lam = np.real(_restricted_eigenvalues(V, perp))
    rate = lam.max() if eigenvalue == "largest" else lam.min()
    spread = float(np.max(np.linalg.norm(z0 - z0.mean(axis=0), axis=1)))
    return max(np.log(spread / delta), 0.0) / rate


def collapse_time_high_probability_bound(
    n: int, dim: int, radius: float, delta: float, eps: float, rate: float
) -> float:
    r"""Bound (34) of Prop. 6.1: for n tokens uniform in :math:`B(0, C)` of the
    ``dim``-dimensional space :math:`\mathrm{Im}(A)^\perp`, with probability at least
    :math:`1 - 2\varepsilon`,

    .. math:: T_\delta \le \frac{1}{\lambda}\log\frac{\sqrt{2Cd\log(1/\varepsilon)\,n}}{\delta}

    with :math:`\lambda` = ``rate``.  (The concentration step, Lemma E.2, gives a
    radius :math:`\sqrt{2Cd\log(1/\varepsilon)n}` that grows like :math:`\sqrt C`,
    while the spread of the tokens grows like C: the chapter measures the consequence.)
    """
    for name, value in (("n", n), ("dim", dim), ("radius", radius), ("delta", delta), ("rate", rate)):
        positive_scalar(value, name)
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")
    return max(np.log(np.sqrt(2 * radius * dim * np.log(1 / eps) * n) / delta), 0.0) / rate
