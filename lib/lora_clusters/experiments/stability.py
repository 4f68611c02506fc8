r"""Chapter 2 (Sec. 4): Corollary 4.2 against the measured distance between two flows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import bounds, dynamics, lora, measures
from .._validation import as_tokens, positive_scalar

__all__ = ["StabilityComparison", "StabilityGrid", "stability_comparison", "stability_grid"]


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


@dataclass
class StabilityGrid:
    """Result of :func:`stability_grid`: one :class:`StabilityComparison` per
    ``(target, size)`` of a rank-``rank`` LoRA on the identity triple."""

    targets: list
    sizes: list
    comparisons: dict

    @property
    def all_hold(self) -> bool:
        """Whether the bound holds at every sampled time, in every case."""
        return all(c.holds for c in self.comparisons.values())

    @property
    def n_checks(self) -> int:
        """How many (case, time) pairs were compared."""
        return sum(c.t.size for c in self.comparisons.values())

    def rows(self) -> list[tuple]:
        """Per case ``(target, size, min bound/measured after t = 0, informative until)``."""
        return [
            (target, size, np.nanmin(c.ratio[1:]), c.bound.informative_until)
            for (target, size), c in self.comparisons.items()
        ]

    def table(self) -> str:
        """:meth:`rows` as the text table the chapter prints."""
        lines = [f"{'perturbed':>9} {'size':>8} {'min bound/measured':>19} {'informative until t =':>22}"]
        lines += [f"{target:>9} {size:8.0e} {ratio:19.3g} {until:22.2f}" for target, size, ratio, until in self.rows()]
        return "\n".join(lines)

    def power_laws(self, t_probe: float) -> dict:
        """Per target, the exponents ``(measured, bound)`` of the power laws in the
        perturbation size fitted to :math:`W_2` and to the bound at the sampled time
        closest to ``t_probe``."""
        k = int(np.argmin(np.abs(self.comparisons[self.targets[0], self.sizes[0]].t - t_probe)))
        slopes = {}
        for target in self.targets:
            measured = [self.comparisons[target, s].w2[k] for s in self.sizes]
            bound = [self.comparisons[target, s].bound.w2_bound[k] for s in self.sizes]
            slopes[target] = (
                measures.fit_power_law(self.sizes, measured)[0],
                measures.fit_power_law(self.sizes, bound)[0],
            )
        return slopes

    def glue_values(self, t_probe: float = 1.0) -> dict:
        """The numbers Chapter 2 quotes (the power laws at ``t_probe``)."""
        rows = self.rows()
        ratios = {target: [r for t_, _s, r, _u in rows if t_ == target] for target in self.targets}
        slopes = self.power_laws(t_probe)
        return {
            "stab_all_hold": self.all_hold,
            "stab_n_checks": self.n_checks,
            "stab_ratio_V_min": float(min(ratios["V"])),
            "stab_ratio_V_max": float(max(ratios["V"])),
            "stab_ratio_A_small": float(max(ratios["A"])),
            "stab_ratio_A_large": float(min(ratios["A"])),
            "stab_until": float(np.median([u for *_, u in rows])),
            "slope_A_measured": slopes["A"][0],
            "slope_A_bound": slopes["A"][1],
            "slope_V_measured": slopes["V"][0],
        }


def stability_grid(
    x0, targets, sizes, *, rank: int = 1, seed: int = 0, t_max: float, n_times: int = 101
) -> StabilityGrid:
    r"""Corollary 4.2 for a LoRA of rank ``rank`` (:func:`lora.lora_triple`, seeded by
    ``seed``) on :math:`Q = K = V = I`, on each of ``targets`` ("V", "A" or "both") at
    each of ``sizes``: one :func:`stability_comparison` per case, from ``x0``."""
    x0 = as_tokens(x0, "x0", allow_batch=False)
    identity = np.eye(x0.shape[1])
    triple = (identity, identity, identity)
    comparisons = {
        (target, size): stability_comparison(
            x0,
            *triple,
            *lora.lora_triple(*triple, target=target, size=size, rank=rank, seed=seed),
            t_max=t_max,
            n_times=n_times,
        )
        for target in targets
        for size in sizes
    }
    return StabilityGrid(list(targets), list(sizes), comparisons)
