r"""Chapter 2 (Sec. 4): Corollary 4.2 against the measured distance between two flows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import bounds, dynamics, measures
from .._validation import as_tokens, positive_scalar

__all__ = ["StabilityComparison", "stability_comparison"]


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


def stability_comparison(
    x0,
    Q,
    K,
    V,
    Q_tilde,
    K_tilde,
    V_tilde,
    t_max: float,
    n_times: int = 101,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-13,
) -> StabilityComparison:
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
