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

__all__ = [
    "GAP_RTOL",
    "HeadSpectra",
    "head_spectra",
    "layer_qk_matrix",
    "layer_sum_ranks",
    "naive_head_spectra",
    "rank_glue_values",
    "rank_rows",
    "spectra_glue_values",
    "symmetric_qk_counts",
    "symmetric_qk_eigenvalues",
    "value_spread",
    "value_singular_values",
]

#: a gap :math:`\lambda_1 - |\lambda_2|` at or below this fraction of :math:`|\lambda_1|` is
#: a tie to rounding (eigenvalues are computed to about 1e-15 relative): "no gap"
GAP_RTOL = 1e-9


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

    @property
    def real_positive(self) -> np.ndarray:
        r"""Heads whose :math:`\lambda_1` is real (imaginary part <= 1e-12) and > 0."""
        return (np.abs(self.top.imag) <= 1e-12) & (self.top.real > 0)

    @property
    def has_gap(self) -> np.ndarray:
        r"""Heads with :math:`\mathrm{Re}\,\lambda_1 - |\lambda_2| > ` ``GAP_RTOL``
        :math:`\cdot|\lambda_1|` (a tie to rounding is no gap)."""
        return self.gap > GAP_RTOL * np.abs(self.top)

    def layer_shares(self) -> dict:
        r"""Per layer, the share of heads whose value map :math:`W_O^hW_V^{g(h)}` has a
        real positive :math:`\lambda_1` (``real_positive``), and the share with
        :math:`\mathrm{Re}\,\lambda_1 > 0` (``re_positive``, complex tops included)."""
        return {
            "real_positive": self.real_positive.mean(axis=1),
            "re_positive": (self.top.real > 0).mean(axis=1),
        }

    def relative_gap(self) -> np.ndarray:
        r""":math:`(\mathrm{Re}\,\lambda_1 - |\lambda_2|)/|\lambda_1|` where
        :math:`\lambda_1` is real and positive, NaN elsewhere (layers, heads)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.real_positive, self.gap / np.abs(self.top), np.nan)

    def extreme_gap_heads(self) -> list[tuple[int, int]]:
        """(layer, head) of the heads with a real positive top eigenvalue whose
        :meth:`relative_gap` is largest, then smallest (the contrast of the paper's
        Fig. 1: one head with a gap, one with a small one)."""
        rel = self.relative_gap()
        if not self.real_positive.any():
            raise ValueError(f"no head of {self.weights.name} has a real positive top eigenvalue")
        return [tuple(int(i) for i in np.unravel_index(pick(rel), rel.shape)) for pick in (np.nanargmax, np.nanargmin)]

    def depth_trend(self) -> dict:
        r"""Spearman's rank correlation between the layer index and each share of
        :meth:`layer_shares` (:func:`scipy.stats.spearmanr`): ``{name: (rho, p)}``."""
        from scipy.stats import spearmanr

        layers = np.arange(self.weights.n_layers)
        out = {}
        for name, share in self.layer_shares().items():
            result = spearmanr(layers, share)
            out[name] = (float(result.statistic), float(result.pvalue))
        return out

    def qk_rank(self, rtol: float) -> np.ndarray:
        """Numerical rank of every :math:`A_h` (layers, heads) at relative precision ``rtol``."""
        return np.apply_along_axis(spectra.numerical_rank, -1, self.qk_singular, rtol)

    def layer_qk_rank(self, rtol: float) -> np.ndarray:
        """Numerical rank of every layer's :math:`\\sum_h A_h` (layers,)."""
        return np.array([spectra.numerical_rank(s, rtol) for s in self.layer_qk_singular])

    def rows(self) -> list[dict]:
        """One row per layer: heads for which Thm 5.4's hypotheses hold, and why the
        others fail, for :func:`lora_clusters.report.table`."""
        real_positive, has_gap = self.real_positive, self.has_gap
        return [
            {
                "layer": layer,
                "Thm 5.4 holds": f"{int(self.holds[layer].sum())}/{self.weights.n_heads}",
                "lambda_1 not real > 0": int((~real_positive[layer]).sum()),
                "no gap": int((real_positive[layer] & ~has_gap[layer]).sum()),
                "c11 <= 0": int((real_positive[layer] & has_gap[layer] & (self.c11[layer] <= 0)).sum()),
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
    holds = real_positive & (top.real - second > GAP_RTOL * np.abs(top)) & (c11 > 0)
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
    real_positive = spec.real_positive
    shares, trend = spec.layer_shares(), spec.depth_trend()
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
        f"{prefix}_no_gap": int((real_positive & ~spec.has_gap).sum()),
        f"{prefix}_c11_fails": int((real_positive & spec.has_gap & ~spec.holds).sum()),
        f"{prefix}_real_positive_share": float(real_positive.mean()),
        f"{prefix}_re_positive_share": float((spec.top.real > 0).mean()),
        f"{prefix}_real_positive_layer_min": float(shares["real_positive"].min()),
        f"{prefix}_real_positive_layer_max": float(shares["real_positive"].max()),
        f"{prefix}_re_positive_layer_min": float(shares["re_positive"].min()),
        f"{prefix}_re_positive_layer_max": float(shares["re_positive"].max()),
        f"{prefix}_real_positive_rho": trend["real_positive"][0],
        f"{prefix}_real_positive_p": trend["real_positive"][1],
        f"{prefix}_re_positive_rho": trend["re_positive"][0],
        f"{prefix}_re_positive_p": trend["re_positive"][1],
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
        f"{prefix}_relative_gap_min": float(np.nanmin(spec.relative_gap())) if real_positive.any() else float("nan"),
        f"{prefix}_relative_gap_max": float(np.nanmax(spec.relative_gap())) if real_positive.any() else float("nan"),
    }


# --------------------------------------------------------------------------------------
# the paper's own quantities (App. G.3, and the authors' scripts)
# --------------------------------------------------------------------------------------
def symmetric_qk_eigenvalues(weights: AttentionWeights, layer: int, h: int) -> np.ndarray:
    r"""The eigenvalues (increasing) of the symmetrised attention matrix of one head,

    .. math:: S_h = \tfrac12\big(B_h + B_h^\top\big)/\sqrt{d_h},
              \qquad B_h = W_Q^{h\top}W_K^{g(h)} \in \mathbb R^{d\times d},

    the quantity whose histogram the paper's Figs 6 and 11 show for ALBERT (the
    authors' script symmetrises :math:`B_h` and divides by :math:`\sqrt{d_h}`, then
    calls ``eigvalsh``).  :math:`S_h` has rank at most :math:`2d_h`: the other
    :math:`d - 2d_h` eigenvalues are zero to rounding.  Computed on the d x d matrix
    in float64."""
    f = weights.head(layer, h)
    B = f["W_Q"].T @ f["W_K"]
    return np.linalg.eigvalsh(0.5 * (B + B.T) / np.sqrt(weights.head_dim))


def symmetric_qk_counts(eigenvalues, d_h: int, window: float = 0.5) -> dict:
    """What a histogram of :func:`symmetric_qk_eigenvalues` on [-``window``, ``window``]
    shows and hides: ``nonzero`` eigenvalues (above 1e-10 of the largest modulus; at
    most 2 ``d_h``), ``zero`` ones (the rest) and ``outside`` the window."""
    ev = np.abs(np.asarray(eigenvalues))
    nonzero = int(np.count_nonzero(ev > 1e-10 * ev.max()))
    return {
        "nonzero": nonzero,
        "zero": int(ev.size - nonzero),
        "bound": 2 * d_h,
        "outside": int(np.count_nonzero(ev > window)),
    }


def value_spread(weights: AttentionWeights) -> np.ndarray:
    r"""Per layer, :math:`\sigma_1/\mathrm{median}_k\,\sigma_k` of the value
    projection :math:`W_V` (:func:`value_singular_values`): how far the top singular
    value stands out of the bulk."""
    return np.array(
        [(lambda s: s[0] / np.median(s))(value_singular_values(weights, layer)) for layer in range(weights.n_layers)]
    )


def value_singular_values(weights: AttentionWeights, layer: int) -> np.ndarray:
    r"""The singular values (decreasing) of a layer's whole value projection
    :math:`W_V` (``v_proj``: :math:`Gd_h\times d`, all key/value heads stacked), as
    the authors compute them for Llama-2 (the paper's Fig. 12)."""
    return np.linalg.svd(weights.value[layer], compute_uv=False)


def layer_qk_matrix(weights: AttentionWeights, layer: int, dtype=np.float32) -> np.ndarray:
    r"""A layer's full d x d :math:`K^\top Q_G = \sum_h W_K^{g(h)\top}W_Q^h` in
    ``dtype``, unscaled: the authors' ``k.T @ q`` of the ``k_proj`` and ``q_proj``
    weights (float32), with the query rows of the heads that share a key/value head
    added up (:meth:`AttentionWeights.layer_factors`), since under grouped-query
    attention ``k.T @ q`` does not have matching shapes.  It is the transpose of
    :math:`\sqrt{d_h}\sum_h A_h`: same singular values and rank."""
    g = weights.layer_factors(layer)
    return g["K"].T.astype(dtype) @ g["Q_grouped"].astype(dtype)


def layer_sum_ranks(weights: AttentionWeights, rtols=(1e-1, 1e-2, 1e-3, 1e-4)) -> dict:
    r"""Ranks of every layer's :func:`layer_qk_matrix` (float32): numpy's
    ``matrix_rank`` with its default tolerance, :math:`\sigma_1\cdot d\cdot
    \varepsilon_{\mathrm{float32}}` (the authors' routine; key ``"numpy default"``),
    and the number of singular values above ``rtol`` :math:`\cdot\sigma_1` for each
    ``rtol`` (keys ``rtol``): ``{key: array of one rank per layer}``, with the default
    tolerance as a fraction of :math:`\sigma_1` under ``"default rtol"``."""
    out = {"numpy default": [], **{rtol: [] for rtol in rtols}}
    for layer in range(weights.n_layers):
        M = layer_qk_matrix(weights, layer)
        out["numpy default"].append(int(np.linalg.matrix_rank(M)))
        sv = np.linalg.svd(M, compute_uv=False)
        for rtol in rtols:
            out[rtol].append(int(np.count_nonzero(sv > rtol * sv[0])))
    ranks = {key: np.array(value) for key, value in out.items()}
    ranks["default rtol"] = float(weights.d * np.finfo(np.float32).eps)
    return ranks


def _rank_keys(ranks: dict) -> list:
    return [key for key in ranks if key != "default rtol"]


def _tolerance_tag(rtol: float) -> str:
    mantissa, exponent = f"{rtol:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}".replace("-", "m")


def rank_rows(ranks: dict) -> list[dict]:
    """:func:`layer_sum_ranks` as table rows: one per tolerance, the first layer's rank
    beside the smallest and largest of the other layers'."""
    rows = []
    for key in _rank_keys(ranks):
        r = ranks[key]
        tol = f"numpy default ({ranks['default rtol']:.1e})" if key == "numpy default" else f"{key:.2g}"
        rows.append({"tolerance / sigma_1": tol, "layer 0": int(r[0]), "other layers": f"{r[1:].min()}-{r[1:].max()}"})
    return rows


def rank_glue_values(ranks: dict, prefix: str) -> dict:
    """The numbers of :func:`rank_rows` by name: ``{prefix}_rank_{tag}_first``,
    ``_rest_min``, ``_rest_max`` with tag ``default`` or the tolerance to one digit
    with "m" for the minus sign (``1e-2`` gives ``1em2``, ``4.9e-4`` gives ``5em4``), and
    ``{prefix}_default_rtol``."""
    out = {f"{prefix}_default_rtol": ranks["default rtol"]}
    for key in _rank_keys(ranks):
        tag = "default" if key == "numpy default" else _tolerance_tag(key)
        r = ranks[key]
        out[f"{prefix}_rank_{tag}_first"] = int(r[0])
        out[f"{prefix}_rank_{tag}_rest_min"] = int(r[1:].min())
        out[f"{prefix}_rank_{tag}_rest_max"] = int(r[1:].max())
    return out
