r"""The spectra of every head of a pretrained model (App. G.3; Chapter 7).

For every head of :class:`~lora_clusters.nets.heads.AttentionWeights`: the singular
values of its attention matrix :math:`A_h`, the eigenvalues of its value map
:math:`W_O^hW_V^{g(h)}`, and whether the hypotheses of Thm 5.4 hold (a real positive
top eigenvalue :math:`\lambda_1`, a gap to :math:`|\lambda_2|`, and
:math:`c_{1,1} = \langle A_h\varphi_1,\varphi_1\rangle > 0`), computed on the
:math:`d_h\times d_h` cores of the thin factors (:mod:`lora_clusters.spectra`); the
direct route on the d x d matrices, to check it; and the numbers Chapter 7 quotes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import spectra
from ..progress import progress_bar
from .heads import AttentionWeights

__all__ = ["HeadSpectra", "head_spectra", "naive_head_spectra", "spectra_glue_values"]


@dataclass
class HeadSpectra:
    r"""Spectra of every head of a model, arrays of shape (layers, heads, ...).

    - ``qk_singular``: the :math:`d_h` singular values of :math:`A_h` (decreasing);
    - ``ov_eigenvalues``: the :math:`d_h` eigenvalues of :math:`W_O^hW_V^{g(h)}` that can
      be nonzero (decreasing modulus);
    - ``top``, ``second``: :math:`\lambda_1` (complex) and :math:`|\lambda_2|` of the value map;
    - ``c11``: :math:`\langle A_h\varphi_1,\varphi_1\rangle` for its top eigenvector;
    - ``holds``: the hypotheses of Thm 5.4 (real positive :math:`\lambda_1`, a gap,
      :math:`c_{1,1}>0`);
    - ``layer_qk_singular`` (layers, G d_h) and ``layer_ov_eigenvalues``: the same for the
      sums over the heads of a layer (see :meth:`AttentionWeights.layer_factors`)."""

    weights: AttentionWeights
    qk_singular: np.ndarray
    ov_eigenvalues: np.ndarray
    top: np.ndarray
    second: np.ndarray
    c11: np.ndarray
    holds: np.ndarray
    layer_qk_singular: np.ndarray
    layer_ov_eigenvalues: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        return self.top.real - self.second

    def qk_rank(self, rtol: float) -> np.ndarray:
        """Numerical rank of every :math:`A_h` (layers, heads) at relative precision ``rtol``."""
        return np.apply_along_axis(spectra.numerical_rank, -1, self.qk_singular, rtol)

    def layer_qk_rank(self, rtol: float) -> np.ndarray:
        """Numerical rank of every layer's :math:`\\sum_h A_h` (layers,)."""
        return np.array([spectra.numerical_rank(s, rtol) for s in self.layer_qk_singular])

    def rows(self) -> list[dict]:
        """One row per layer: heads for which Thm 5.4's hypotheses hold, and why the
        others fail, for :func:`lora_clusters.report.table`."""
        real_positive = (np.abs(self.top.imag) <= 1e-12) & (self.top.real > 0)
        return [
            {
                "layer": layer,
                "Thm 5.4 holds": f"{int(self.holds[layer].sum())}/{self.weights.n_heads}",
                "lambda_1 not real > 0": int((~real_positive[layer]).sum()),
                "no gap": int((real_positive[layer] & (self.gap[layer] <= 0)).sum()),
                "c11 <= 0": int((real_positive[layer] & (self.gap[layer] > 0) & (self.c11[layer] <= 0)).sum()),
                "largest |lambda_1|": float(np.abs(self.top[layer]).max()),
            }
            for layer in range(self.weights.n_layers)
        ]


def head_spectra(weights: AttentionWeights, *, progress: bool = False) -> HeadSpectra:
    """The spectra of every head and layer of ``weights`` (see :class:`HeadSpectra`),
    on the :math:`d_h\\times d_h` cores: seconds for SmolLM2's 270 heads."""
    L, H, dh = weights.n_layers, weights.n_heads, weights.head_dim
    qk = np.zeros((L, H, dh))
    ov = np.zeros((L, H, dh), dtype=complex)
    top = np.zeros((L, H), dtype=complex)
    second, c11 = np.zeros((L, H)), np.zeros((L, H))
    layer_qk, layer_ov = [], []
    scale = 1.0 / np.sqrt(dh)
    bar = progress_bar(L, f"spectra of {weights.name}", unit="layer", enabled=progress)
    for layer in range(L):
        for h in range(H):
            f = weights.head(layer, h)
            qk[layer, h] = scale * spectra.low_rank_singular_values(f["W_Q"], f["W_K"])
            pair = spectra.low_rank_top_eigenpair(f["W_O"], f["W_V"])
            ov[layer, h] = pair.eigenvalues
            top[layer, h], second[layer, h] = pair.eigenvalue, pair.second
            # <A phi, phi> with A = W_Q^T W_K / sqrt(d_h): (W_Q phi) . (W_K phi) / sqrt(d_h)
            c11[layer, h] = scale * float((f["W_Q"] @ pair.phi) @ (f["W_K"] @ pair.phi))
        g = weights.layer_factors(layer)
        layer_qk.append(scale * spectra.low_rank_singular_values(g["Q_grouped"], g["K"]))
        layer_ov.append(spectra.low_rank_eigenvalues(g["O_grouped"], g["V"]))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    real_positive = (np.abs(top.imag) <= 1e-12) & (top.real > 0)
    holds = real_positive & (top.real - second > 0) & (c11 > 0)
    return HeadSpectra(weights, qk, ov, top, second, c11, holds, np.array(layer_qk), np.array(layer_ov))


def naive_head_spectra(weights: AttentionWeights, layer: int, h: int) -> dict:
    r"""The spectra of one head computed the direct way, on the d x d matrices
    :math:`A_h` (full SVD) and :math:`W_O^hW_V^{g(h)}` (full eigendecomposition): the
    reference the core route of :func:`head_spectra` is checked against."""
    f = weights.head(layer, h)
    A = f["W_Q"].T @ f["W_K"] / np.sqrt(weights.head_dim)
    ov = f["W_O"] @ f["W_V"]
    eigenvalues = np.linalg.eigvals(ov)
    return {
        "qk_singular": np.linalg.svd(A, compute_uv=False),
        "ov_eigenvalues": eigenvalues[np.argsort(-np.abs(eigenvalues), kind="stable")],
        "A": A,
        "ov": ov,
    }


def spectra_glue_values(spec: HeadSpectra, prefix: str, rtol: float = 1e-2) -> dict:
    """The numbers Chapter 7 quotes about one model, by name (``prefix`` + "_" + ...)."""
    w = spec.weights
    real_positive = (np.abs(spec.top.imag) <= 1e-12) & (spec.top.real > 0)
    layer_rank = spec.layer_qk_rank(rtol)
    head_rank = spec.qk_rank(rtol)
    return {
        f"{prefix}_layers": w.n_layers,
        f"{prefix}_heads": w.n_heads,
        f"{prefix}_kv_heads": w.n_kv_heads,
        f"{prefix}_head_dim": w.head_dim,
        f"{prefix}_d": w.d,
        f"{prefix}_cap": w.n_kv_heads * w.head_dim,
        f"{prefix}_total_heads": int(spec.holds.size),
        f"{prefix}_holds": int(spec.holds.sum()),
        f"{prefix}_holds_fraction": float(spec.holds.mean()),
        f"{prefix}_not_real_positive": int((~real_positive).sum()),
        f"{prefix}_complex_top": int((np.abs(spec.top.imag) > 1e-12).sum()),
        f"{prefix}_negative_top": int(((np.abs(spec.top.imag) <= 1e-12) & (spec.top.real <= 0)).sum()),
        f"{prefix}_c11_fails": int((real_positive & ~spec.holds).sum()),
        f"{prefix}_layer_rank_min": int(layer_rank.min()),
        f"{prefix}_layer_rank_max": int(layer_rank.max()),
        f"{prefix}_layer_rank_first": int(layer_rank[0]),
        f"{prefix}_layer_rank_rest_min": int(layer_rank[1:].min()) if layer_rank.size > 1 else int(layer_rank[0]),
        f"{prefix}_layer_rank_fine_rest_min": int(spec.layer_qk_rank(rtol / 10)[1:].min())
        if layer_rank.size > 1
        else int(spec.layer_qk_rank(rtol / 10)[0]),
        f"{prefix}_head_rank_min": int(head_rank.min()),
        f"{prefix}_head_full_rank_fraction": float(np.mean(head_rank == w.head_dim)),
        f"{prefix}_relative_gap_median": float(np.median((spec.gap / np.abs(spec.top))[real_positive]))
        if real_positive.any()
        else float("nan"),
    }
