"""What rounding the weights to few bits does to the spectra of the heads.

SmolLM2's offline weights come rounded to 4 bits (GGUF Q4_1); its exact weights are not
available, so the effect is measured on a model whose float32 weights are known: round
them the same way (:func:`quantized`, with the ``gguf`` package) and compare the spectra
(:func:`quantization_effect`).
"""

from __future__ import annotations

import numpy as np

from .head_spectra import HeadSpectra
from .heads import AttentionWeights

__all__ = ["EFFECT_LABELS", "effect_rows", "quantization_effect", "quantized", "verdict_changes"]


def quantized(weights: AttentionWeights, kind: str = "Q4_1") -> AttentionWeights:
    """A copy of ``weights`` with every matrix rounded through the GGUF quantization
    ``kind`` and back (blocks of 32 consecutive weights of a row share a scale and an
    offset in Q4_1): the rounding SmolLM2's offline weights went through, applied to a
    model whose float32 weights are known, to measure what it does to the spectra."""
    import gguf
    from gguf import quants

    try:
        qtype = gguf.GGMLQuantizationType[kind]
    except KeyError:
        raise ValueError(f"kind must name a GGUF quantization type such as 'Q4_1' or 'Q8_0', got {kind!r}") from None

    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if weights.d % block or weights.head_dim * weights.n_heads % block:
        raise ValueError(f"{kind} rounds rows in blocks of {block} weights: the rows of {weights.name} do not divide")

    def round_trip(matrix):
        data = np.ascontiguousarray(matrix, dtype=np.float32)
        return quants.dequantize(quants.quantize(data, qtype), qtype).astype(float)

    parts = [[round_trip(m) for m in group] for group in (weights.query, weights.key, weights.value, weights.output)]
    return AttentionWeights(
        f"{weights.name} ({kind})",
        weights.family,
        weights.n_layers,
        weights.n_heads,
        weights.n_kv_heads,
        weights.head_dim,
        weights.d,
        *parts,
    )


def quantization_effect(exact: HeadSpectra, rounded: HeadSpectra, rtol: float = 1e-2) -> dict:
    """How much rounding the weights moved the spectra: relative changes of the top
    singular value of every :math:`A_h` and of every top eigenvalue, the heads whose
    rank at ``rtol`` or whose Thm 5.4 verdict changed (count and share of all heads)."""
    top_sv = np.abs(rounded.qk_singular[..., 0] / exact.qk_singular[..., 0] - 1)
    top_eig = np.abs(rounded.top - exact.top) / np.abs(exact.top)
    sv_all = np.abs(rounded.layer_qk_singular - exact.layer_qk_singular) / exact.layer_qk_singular[:, :1]
    pairs = zip(
        exact.weights.query + exact.weights.key + exact.weights.value + exact.weights.output,
        rounded.weights.query + rounded.weights.key + rounded.weights.value + rounded.weights.output,
    )
    weight_error = [np.linalg.norm(r - e) / np.linalg.norm(e) for e, r in pairs]
    return {
        "quant_weight_error": float(np.median(weight_error) * 100),
        "quant_top_sv_median": float(np.median(top_sv) * 100),
        "quant_top_sv_max": float(top_sv.max() * 100),
        "quant_top_eig_median": float(np.median(top_eig) * 100),
        "quant_top_eig_max": float(top_eig.max() * 100),
        "quant_sv_noise": float(np.median(sv_all) * 100),
        "quant_rank_changed": int((exact.qk_rank(rtol) != rounded.qk_rank(rtol)).sum()),
        "quant_layer_rank_changed": int((exact.layer_qk_rank(rtol) != rounded.layer_qk_rank(rtol)).sum()),
        "quant_layer_rank_max_change": int(np.abs(exact.layer_qk_rank(rtol) - rounded.layer_qk_rank(rtol)).max()),
        "quant_layers": int(exact.weights.n_layers),
        "quant_verdict_changed": int((exact.holds != rounded.holds).sum()),
        "quant_heads": int(exact.holds.size),
        "quant_verdict_changed_share": float((exact.holds != rounded.holds).mean()),
    }


#: what each number of :func:`quantization_effect` measures, as Chapter 7's table says it
EFFECT_LABELS = {
    "quant_weight_error": "median change of a weight matrix (% of its Frobenius norm)",
    "quant_top_sv_median": "median change of a head's top singular value (%)",
    "quant_top_sv_max": "largest change of a head's top singular value (%)",
    "quant_top_eig_median": "median change of a value map's top eigenvalue (%)",
    "quant_top_eig_max": "largest change of a value map's top eigenvalue (%)",
    "quant_sv_noise": "median change of a layer singular value (% of the largest)",
    "quant_rank_changed": "heads whose rank at 1e-2 changed",
    "quant_layer_rank_changed": "layers whose rank at 1e-2 changed",
    "quant_layer_rank_max_change": "largest change of a layer's rank",
    "quant_layers": "layers",
    "quant_verdict_changed": "heads whose Thm 5.4 verdict changed",
    "quant_heads": "heads",
    "quant_verdict_changed_share": "share of heads whose Thm 5.4 verdict changed",
}


def effect_rows(effect: dict) -> list[dict]:
    """:func:`quantization_effect` as table rows with readable names."""
    return [{"measure": EFFECT_LABELS.get(key, key), "value": value} for key, value in effect.items()]


def _verdict(spec: HeadSpectra, layer: int, h: int) -> str:
    if spec.holds[layer, h]:
        return "holds"
    if abs(spec.top[layer, h].imag) > 1e-12:
        return "complex lambda_1"
    if spec.top[layer, h].real <= 0:
        return "lambda_1 <= 0"
    return "no gap" if not spec.has_gap[layer, h] else "c11 <= 0"


def verdict_changes(exact: HeadSpectra, rounded: HeadSpectra) -> list[dict]:
    r"""One row per head whose Thm 5.4 verdict differs between ``exact`` and
    ``rounded``: the verdict, :math:`\lambda_1` and :math:`c_{1,1}/\sigma_1(A_h)` (the
    alignment relative to the largest it can be) on both sides."""
    rows = []
    for layer, h in zip(*np.nonzero(exact.holds != rounded.holds)):
        row = {"layer": int(layer), "head": int(h)}
        for label, spec in (("float32", exact), ("rounded", rounded)):
            row[f"{label}: verdict"] = _verdict(spec, layer, h)
            row[f"{label}: lambda_1"] = f"{complex(spec.top[layer, h]):.3g}"
            row[f"{label}: c11/sigma_1"] = float(spec.c11[layer, h] / spec.qk_singular[layer, h, 0])
        rows.append(row)
    return rows
