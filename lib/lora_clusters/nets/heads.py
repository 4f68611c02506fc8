r"""The attention of every head of a pretrained model, as the particle picture reads it.

A layer with H query heads of dimension :math:`d_h` and G key/value heads
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
(:mod:`lora_clusters.nets.head_spectra`, :mod:`lora_clusters.spectra`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .loading import decoder_layers

__all__ = ["AttentionWeights", "attention_weights"]


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

    def summary(self) -> dict:
        """The model's shape, as Chapter 7's first table shows it."""
        return {
            "model": self.name,
            "family": self.family,
            "layers": self.n_layers,
            "query heads": self.n_heads,
            "key/value heads": self.n_kv_heads,
            "head dim": self.head_dim,
            "d": self.d,
        }

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
            for a in (layer.self_attn for layer in decoder_layers(model))
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
