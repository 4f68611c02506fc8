r"""Chapter 5 (Sec. 7): orthogonal LoRA learns new clusters (Props 7.2 and 7.4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dynamics, lora, measures
from ..integrators import PRECISE

__all__ = [
    "OrthogonalLoRACases",
    "OrthogonalLoRARun",
    "OrthogonalLoRASpread",
    "orthogonal_lora_cases",
    "orthogonal_lora_retention",
    "orthogonal_lora_run",
    "orthogonal_lora_spread",
]


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

    def _flow(self, flow: str) -> dynamics.Trajectory:
        if flow not in ("lora", "pretrained"):
            raise ValueError(f"flow must be 'lora' or 'pretrained', got {flow!r}")
        return self.lora if flow == "lora" else self.pretrained

    def along_v(self, flow: str = "lora") -> np.ndarray:
        r""":math:`\langle z_i(t), v\rangle` at every sampled time t and for every
        token i, shape (m, n), for the ``flow`` ``"lora"`` or ``"pretrained"``
        (v is a unit vector)."""
        return self._flow(flow).states @ self.v

    def off_line_distance(self, flow: str = "lora") -> np.ndarray:
        r"""The distance of each token to the line :math:`\mathbb R v` at every sampled
        time, :math:`\|z_i(t) - \langle z_i(t), v\rangle v\|` (v a unit vector), shape
        (m, n), for the ``flow`` ``"lora"`` or ``"pretrained"``.  At t = 0 it is the
        off-line size of eq. (39); the largest value of the last row of the LoRA flow
        is :attr:`distance_to_line`."""
        states = self._flow(flow).states
        return np.linalg.norm(states - np.multiply.outer(states @ self.v, self.v), axis=-1)

    @property
    def pretrained_spread(self) -> float:
        """Largest extent, over the coordinates, of the pre-trained tokens at the end."""
        return float(np.ptp(self.pretrained.final, axis=0).max())

    def glue_values(self) -> dict:
        """The numbers Chapter 5 quotes for its first run."""
        return {
            "ortho_pre_clusters": len(self.clusters_pretrained),
            "ortho_pre_spread": self.pretrained_spread,
            "ortho_lora_clusters": len(self.clusters_lora),
            "ortho_split": self.split_by_sign,
            "ortho_distance": self.distance_to_line,
        }


def orthogonal_lora_run(
    *,
    C: float = 2.0,
    eps: float = 0.01,
    n: int = 20,
    V=None,
    spread: float = 0.5,
    seed: int = 0,
    t_max: float = 60.0,
    tol: float = 1e-4,
) -> OrthogonalLoRARun:
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
    common = dict(t_max=t_max, t_eval=np.linspace(0.0, t_max, 121), options=PRECISE)
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
    common = dict(t_max=t_max, t_eval=np.array([0.0, t_max]), options=PRECISE)
    off_diagonal = ~np.eye(n, dtype=bool)
    exact_gap, kept = [], []
    for seed in seeds:
        z = np.random.default_rng(int(seed)).standard_normal((n, 3))
        z_image = z * [1.0, 1.0, 0.0]
        exact_gap.append(
            float(
                np.abs(
                    dynamics.simulate(z_image, Q, Q, I3, **common).final
                    - dynamics.simulate(z_image, Qt, Kt, I3, **common).final
                ).max()
            )
        )
        labels = []
        for q, k in ((Q, Q), (Qt, Kt)):
            final = dynamics.simulate(z, q, k, I3, **common).final
            labels.append(measures.cluster_centers(final[:, :2], tol=tol, return_labels=True)[1])
        together = (labels[0][:, None] == labels[0][None]) & off_diagonal
        kept.append(float(np.sum(together & (labels[1][:, None] == labels[1][None])) / max(np.sum(together), 1)))
    return np.array(exact_gap), np.array(kept)


@dataclass
class OrthogonalLoRASpread:
    r"""Result of :func:`orthogonal_lora_spread`: ``distance`` (len(C), len(eps),
    seeds), the final largest distance to the line :math:`\mathbb R v`."""

    C_values: list
    eps_values: np.ndarray
    distance: np.ndarray

    @property
    def ratio(self) -> np.ndarray:
        """distance / eps."""
        return self.distance / self.eps_values[None, :, None]

    @property
    def slopes(self) -> list:
        """Per C, the log-log slope of the mean distance against eps."""
        return [
            measures.fit_power_law(self.eps_values, self.distance[k].mean(axis=1))[0] for k in range(len(self.C_values))
        ]

    def summary(self) -> str:
        return "\n".join(
            f"C = {C}: log-log slope {sl:.4f}, distance / eps between {r.min():.3f} and {r.max():.3f}"
            for C, sl, r in zip(self.C_values, self.slopes, self.ratio)
        )

    def glue_values(self) -> dict:
        return {
            "spread_slope_min": float(min(self.slopes)),
            "spread_slope_max": float(max(self.slopes)),
            "spread_ratio_min": float(self.ratio.min()),
            "spread_ratio_max": float(self.ratio.max()),
        }


def orthogonal_lora_spread(C_values, eps_values, seeds) -> OrthogonalLoRASpread:
    """:func:`orthogonal_lora_run` for every C of ``C_values``, eps of ``eps_values``
    and seed of ``seeds``: how far from the line the LoRA flow ends."""
    eps_values = np.asarray(eps_values, dtype=float)
    distance = np.array(
        [
            [[orthogonal_lora_run(C=C, eps=e, seed=s).distance_to_line for s in seeds] for e in eps_values]
            for C in C_values
        ]
    )
    return OrthogonalLoRASpread(list(C_values), eps_values, distance)


@dataclass
class OrthogonalLoRACases:
    """Result of :func:`orthogonal_lora_cases`: per case (name), the LoRA cluster
    counts, whether each run splits by sign, and the largest distance to the line."""

    outcomes: dict
    tags: list

    def summary(self) -> str:
        return "\n".join(
            f"{name}:\n    clusters {counts}, split by sign {sum(split)}/{len(split)}, max distance to R v {dist:.3f}"
            for name, (counts, split, dist) in self.outcomes.items()
        )

    def glue_values(self) -> dict:
        """``break_<tag>_split``: how many runs of each case split by sign."""
        return {f"break_{tag}_split": sum(o[1]) for tag, o in zip(self.tags, self.outcomes.values())}


def orthogonal_lora_cases(cases: dict, seeds, *, tags) -> OrthogonalLoRACases:
    """:func:`orthogonal_lora_run` with the options of each case of ``cases`` (name:
    options) for each seed; ``tags`` name the cases in :meth:`~OrthogonalLoRACases.glue_values`."""
    outcomes = {}
    for name, options in cases.items():
        results = [orthogonal_lora_run(seed=s, **options) for s in seeds]
        outcomes[name] = (
            [len(r.clusters_lora) for r in results],
            [r.split_by_sign for r in results],
            max(r.distance_to_line for r in results),
        )
    return OrthogonalLoRACases(outcomes, list(tags))
