r"""A language model run deeper than it was trained: do its tokens cluster? (App. G.5)

The paper read Llama-2's 32 layers as 32 time steps of the particle system and ran the
stack twice (64 layers, layer 32 + i reusing the weights of layer i) to see whether the
tokens keep moving towards each other.  :func:`repeated_layers` does this for a Llama-
family model without copying any weight (the same modules appear several times in the
stack), and :func:`layer_similarities` measures, after every layer, the mean cosine
similarity between the states of different tokens of one text.

States are taken from the residual stream *before* the model's final norm: state 0 is
the embedding output, state :math:`\ell` the output of the :math:`\ell`-th layer of the
(repeated) stack.  The first position of a decoder is special (an "attention sink": many
heads put most of their weight on it, and its state has a very large norm), so every
measurement is also given without it.

Chapter 8's run is kept in the result store (:func:`similarity_study`).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .. import store
from ..progress import progress_bar
from .settings import DepthSettings  # its values at each scale: lora_clusters.scale.SETTINGS

__all__ = [
    "EXPERIMENT",
    "LayerSimilarities",
    "chapter_texts",
    "layer_similarities",
    "pairwise_cosines",
    "repeated_layers",
    "similarity_study",
    "token_states",
]


def _decoder(model):
    inner = model.model if hasattr(model, "model") else model
    if not hasattr(inner, "layers"):
        raise ValueError(f"a Llama-family decoder was expected (with .layers), got {type(model).__name__}")
    return inner


@contextmanager
def repeated_layers(model, times: int):
    """Within the block, the decoder stack of ``model`` is its layers ``times`` times
    over (layer k L + i is layer i's module, no new weights); restored on exit.  The key/
    value cache is turned off, since repeated modules would share cache slots."""
    import torch

    if not isinstance(times, int) or times < 1:
        raise ValueError(f"times must be an integer >= 1, got {times!r}")
    inner = _decoder(model)
    original, layers = inner.layers, list(inner.layers)
    # transformers' decoders run `layers[: config.num_hidden_layers]`: raise it too
    depth_setting = model.config.num_hidden_layers
    inner.layers = torch.nn.ModuleList(layers * times)
    model.config.num_hidden_layers = inner.config.num_hidden_layers = len(layers) * times
    try:
        yield model
    finally:
        inner.layers = original
        model.config.num_hidden_layers = inner.config.num_hidden_layers = depth_setting


def token_states(model, input_ids) -> np.ndarray:
    """The residual-stream states of one sequence, (layers + 1, tokens, d), float64:
    the embedding output, then the output of every layer of the current stack (before
    the final norm), captured by forward hooks."""
    import torch

    inner = _decoder(model)
    captured = []

    def keep(_module, _inputs, output):
        captured.append((output[0] if isinstance(output, tuple) else output).detach())

    # one hook per module (a repeated stack holds each module several times): the
    # outputs arrive in the order the layers run
    modules = [inner.embed_tokens, *{id(m): m for m in inner.layers}.values()]
    hooks = [m.register_forward_hook(keep) for m in modules]
    try:
        with torch.no_grad():
            inner(input_ids=input_ids, use_cache=False)
    finally:
        for hook in hooks:
            hook.remove()
    if len(captured) != len(inner.layers) + 1:
        raise RuntimeError(f"captured {len(captured)} states for a stack of {len(inner.layers)} layers")
    return torch.stack([c[0] for c in captured]).double().cpu().numpy()


def pairwise_cosines(states: np.ndarray, skip_first: bool = False) -> np.ndarray:
    """Cosine similarities of all pairs of different tokens, for every layer:
    (layers, n(n-1)/2) from states (layers, n, d); ``skip_first`` leaves out position 0."""
    states = np.asarray(states, dtype=float)
    if states.ndim != 3:
        raise ValueError(f"states must have shape (layers, tokens, d), got {states.shape}")
    if skip_first:
        states = states[:, 1:]
    if states.shape[1] < 2:
        raise ValueError("at least two tokens are needed for a pairwise similarity")
    unit = states / np.linalg.norm(states, axis=-1, keepdims=True)
    gram = unit @ np.swapaxes(unit, 1, 2)
    upper = np.triu_indices(states.shape[1], k=1)
    return gram[:, upper[0], upper[1]]


@dataclass
class LayerSimilarities:
    r"""Mean pairwise cosine similarity of the token states after every layer, per text.

    ``mean[kind]`` and ``mean_no_first[kind]`` are (texts, layers + 1); ``samples[kind]``
    maps a few layer indices to the pooled similarities of all texts of that kind (for
    histograms); ``trained_depth`` is the model's own number of layers, ``times`` how
    many times the stack was run; ``n_tokens[kind]`` the length of every text."""

    model_name: str
    trained_depth: int
    times: int
    kinds: list
    mean: dict
    mean_no_first: dict
    samples: dict
    n_tokens: dict

    @property
    def layers(self) -> np.ndarray:
        return np.arange(self.trained_depth * self.times + 1)

    def rows(self) -> list[dict]:
        """Per kind of text, the mean similarity (first token left out; its spread over
        the texts; and with the first token) after the embeddings, at the trained depth
        and at the end of the repeated stack: Chapter 8's table."""
        marks = (("embeddings", 0), ("trained depth", self.trained_depth), ("end", self.trained_depth * self.times))
        rows = []
        for kind in self.kinds:
            for label, layer in marks:
                mean, spread = self.at(kind, layer)
                rows.append(
                    {
                        "text": kind,
                        "after": f"{label} ({layer})",
                        "mean cosine": mean,
                        "sd over texts": spread,
                        "with first token": self.at(kind, layer, False)[0],
                    }
                )
        return rows

    def at(self, kind: str, layer: int, skip_first: bool = True) -> tuple[float, float]:
        """Mean and standard deviation over the texts of ``kind`` after ``layer``."""
        values = (self.mean_no_first if skip_first else self.mean)[kind][:, layer]
        return float(values.mean()), float(values.std())

    def glue_values(self, prefix: str = "depth") -> dict:
        """The values Chapter 8 glues into its text."""
        out = {f"{prefix}_trained": self.trained_depth, f"{prefix}_total": self.trained_depth * self.times}
        for kind in self.kinds:
            key = kind.replace(" ", "_")
            for label, layer in (("trained", self.trained_depth), ("end", self.trained_depth * self.times)):
                mean, spread = self.at(kind, layer)
                out[f"{prefix}_{key}_{label}"] = mean
                out[f"{prefix}_{key}_{label}_sd"] = spread
                out[f"{prefix}_{key}_{label}_with_first"] = self.at(kind, layer, skip_first=False)[0]
            out[f"{prefix}_{key}_n"] = int(self.mean[kind].shape[0])
            out[f"{prefix}_{key}_rise"] = out[f"{prefix}_{key}_end"] - out[f"{prefix}_{key}_trained"]
        for label, layer in (("trained", self.trained_depth), ("end", self.trained_depth * self.times)):
            ranked = sorted(self.kinds, key=lambda kind: -self.at(kind, layer)[0])
            out[f"{prefix}_order_{label}"] = " > ".join(ranked)
        if {"dummy text", "wikipedia"} <= set(self.kinds):
            end = self.trained_depth * self.times
            if self.at("dummy text", end)[0] > self.at("wikipedia", end)[0]:
                clause = "dummy text ends more similar than Wikipedia, as in the paper"
            else:
                clause = "dummy text ends less similar than Wikipedia, unlike in the paper"
            out[f"{prefix}_paper_order"] = clause
        return out


def layer_similarities(
    model,
    tokenizer,
    texts: dict,
    *,
    times: int = 2,
    max_tokens: int = 128,
    sample_layers=None,
    name: str = "",
    progress: bool = False,
) -> LayerSimilarities:
    """Run every text of ``texts`` (kind -> list of strings) through ``model`` with its
    stack repeated ``times`` times, truncated to ``max_tokens`` tokens, and record the
    pairwise cosine similarities of the states after every layer (see
    :class:`LayerSimilarities`); ``sample_layers`` (default: 0, the trained depth and
    the end) are kept whole for histograms."""
    depth = len(_decoder(model).layers)
    total = depth * times
    sample_layers = sorted({0, depth, total} if sample_layers is None else set(sample_layers))
    if any(not 0 <= layer <= total for layer in sample_layers):
        raise ValueError(f"sample_layers must lie in [0, {total}], got {sample_layers}")
    mean, mean_no_first, samples, n_tokens = {}, {}, {}, {}
    count = sum(len(v) for v in texts.values())
    bar = progress_bar(count, "texts through the repeated stack", unit="text", enabled=progress)
    with repeated_layers(model, times):
        for kind, items in texts.items():
            rows, rows_no_first, pooled, lengths = [], [], {layer: [] for layer in sample_layers}, []
            for text in items:
                ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_tokens)["input_ids"]
                states = token_states(model, ids.to(next(model.parameters()).device))
                if not np.all(np.isfinite(states)):
                    raise FloatingPointError(f"non-finite token states for a {kind!r} text")
                cos, cos_no_first = pairwise_cosines(states), pairwise_cosines(states, skip_first=True)
                rows.append(cos.mean(axis=1))
                rows_no_first.append(cos_no_first.mean(axis=1))
                for layer in sample_layers:
                    pooled[layer].append(cos_no_first[layer])
                lengths.append(ids.shape[1])
                if bar is not None:
                    bar.update(1)
            mean[kind], mean_no_first[kind] = np.array(rows), np.array(rows_no_first)
            samples[kind] = {layer: np.concatenate(v) for layer, v in pooled.items()}
            n_tokens[kind] = lengths
    if bar is not None:
        bar.close()
    return LayerSimilarities(
        name or model.config.name_or_path, depth, times, list(texts), mean, mean_no_first, samples, n_tokens
    )


# --------------------------------------------------------------------------------------
# the chapter's run, kept in the result store
# --------------------------------------------------------------------------------------
#: the result store's folder of Chapter 8's runs, and the code that computes them
EXPERIMENT = "depth"
CODE = ("lora_clusters.nets.depth",)


def similarity_study(settings: DepthSettings, scale_name: str, *, progress: bool = False) -> LayerSimilarities:
    """:func:`layer_similarities` of ``settings.model`` on :func:`chapter_texts`, run
    ``settings.times`` times over: from the result store when this module (and what it
    imports) is unchanged, else computed now (model loaded, torch threads of
    :func:`~lora_clusters.nets.runtime.threads`) and stored."""

    def compute():
        from .loading import load_with_tokenizer
        from .runtime import threads

        model, tokenizer, name = load_with_tokenizer(settings.model)
        with threads():
            return layer_similarities(
                model,
                tokenizer,
                chapter_texts(settings),
                times=settings.times,
                max_tokens=settings.max_tokens,
                name=name,
                progress=progress,
            )

    return store.load_or_compute(EXPERIMENT, settings, compute, code=CODE, scale_name=scale_name, name="similarities")


def chapter_texts(settings: DepthSettings, seed: int = 0) -> dict:
    """The three kinds of text of App. G.5, ``settings.texts_per_kind`` of each, long
    enough for ``settings.max_tokens`` tokens: random English words, generated dummy
    sentences, and paragraphs of different Wikipedia articles."""
    from . import texts

    k, n = settings.texts_per_kind, settings.max_tokens
    return {
        "random words": [texts.random_words(n, seed=seed + i) for i in range(k)],
        "dummy text": [texts.dummy_text(max(4, n // 10), seed=seed + i) for i in range(k)],
        "wikipedia": [p for _, p in texts.wikipedia_paragraphs(k, min_chars=5 * n, seed=seed)],
    }
