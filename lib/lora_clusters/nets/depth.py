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
measurement is also given without it.  The authors' code (App. G.5) differs in three
ways that :meth:`LayerSimilarities.authors_recipe` reproduces from the stored means: it
took transformers' ``hidden_states``, whose last entry is after the final norm; it kept
the beginning-of-text token; and it averaged over all n^2 pairs, self-pairs included.

Chapter 8's run is kept in the result store (:func:`similarity_study`).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .. import store
from ..progress import progress_bar
from .settings import DepthSettings  # its values at each scale: lora_clusters.scale.SETTINGS

__all__ = [
    "EXPERIMENT",
    "LayerSimilarities",
    "chapter_texts",
    "copied_layers",
    "layer_similarities",
    "mean_cosine",
    "pairwise_cosines",
    "recipe_checks",
    "repeated_layers",
    "similarity_study",
    "t_interval",
    "token_states",
    "welch_interval",
    "with_self_pairs",
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


def _capture(model, input_ids):
    """The residual-stream states of a batch, as a list over the states (embedding
    output, then every layer of the current stack, before the final norm) of float32
    tensors (batch, tokens, d), captured by forward hooks."""
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
    return captured


def token_states(model, input_ids) -> np.ndarray:
    """The residual-stream states of one sequence, (layers + 1, tokens, d), float64:
    the embedding output, then the output of every layer of the current stack (before
    the final norm), captured by forward hooks."""
    import torch

    return torch.stack([c[0] for c in _capture(model, input_ids)]).double().cpu().numpy()


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


def mean_cosine(states: np.ndarray, skip_first: bool = False) -> np.ndarray:
    r"""The mean of :func:`pairwise_cosines` over the pairs, for every layer, from the
    sum of the unit vectors (:math:`(\|\sum_i u_i\|^2 - n) / (n(n-1))`) in O(n d)."""
    states = np.asarray(states, dtype=float)
    if skip_first:
        states = states[:, 1:]
    n = states.shape[1]
    if n < 2:
        raise ValueError("at least two tokens are needed for a pairwise similarity")
    total = (states / np.linalg.norm(states, axis=-1, keepdims=True)).sum(axis=1)
    return ((total * total).sum(axis=-1) - n) / (n * (n - 1))


def with_self_pairs(mean: np.ndarray, n_tokens) -> np.ndarray:
    """A mean over the n(n-1)/2 pairs of different tokens turned into the mean over all
    n^2 ordered pairs, the n self-pairs (cosine one) included, as the authors averaged:
    ((n - 1) m + 1) / n, with ``n_tokens`` per row of ``mean``."""
    n = np.asarray(n_tokens, dtype=float).reshape(-1, *([1] * (np.ndim(mean) - 1)))
    return ((n - 1) * np.asarray(mean) + 1) / n


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and its Student-t interval (over independent texts)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean, n = float(values.mean()), values.size
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / np.sqrt(n)) if n > 1 else np.inf
    return mean, mean - half, mean + half


def welch_interval(a, b, level: float = 0.95) -> tuple[float, float, float]:
    """Difference of the means of ``a`` and ``b`` (independent texts) and its Welch-t
    interval (unequal variances, Welch-Satterthwaite degrees of freedom)."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    diff, half = float(a.mean() - b.mean()), float(stats.t.ppf(0.5 + level / 2, dof) * np.sqrt(va + vb))
    return diff, diff - half, diff + half


@dataclass
class LayerSimilarities:
    r"""Mean pairwise cosine similarity of the token states after every layer, per text.

    ``mean[kind]`` and ``mean_no_first[kind]`` are (texts, layers + 1); ``samples[kind]``
    maps a few layer indices to the pooled similarities of all texts of that kind (for
    histograms); ``trained_depth`` is the model's own number of layers, ``times`` how
    many times the stack was run; ``n_tokens[kind]`` the length of every text.

    What explains the drop at the end of each pass (all (texts, layers + 1), index 0
    of the update arrays unused, NaN): ``normed`` and ``normed_no_first``, the same
    means after the model's final norm is applied to every state; ``state_norm``, the
    mean norm of the token states (first token left out) and ``first_norm``, the norm
    of the first token's state; ``update_cosine``, the mean pairwise cosine of what
    layer l adds to the tokens (x_l - x_{l-1}, first token left out) and
    ``update_ratio``, the mean of ||x_l - x_{l-1}|| / ||x_{l-1}||.  ``checks`` holds a
    few facts measured with the run (the tokenizer's beginning-of-text token, the
    largest difference between the states of a stack of copied layers and of the same
    modules repeated)."""

    model_name: str
    trained_depth: int
    times: int
    kinds: list
    mean: dict
    mean_no_first: dict
    samples: dict
    n_tokens: dict
    normed: dict = field(default_factory=dict)
    normed_no_first: dict = field(default_factory=dict)
    state_norm: dict = field(default_factory=dict)
    first_norm: dict = field(default_factory=dict)
    update_cosine: dict = field(default_factory=dict)
    update_ratio: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)

    @property
    def layers(self) -> np.ndarray:
        return np.arange(self.trained_depth * self.times + 1)

    @property
    def total(self) -> int:
        return self.trained_depth * self.times

    def rows(self) -> list[dict]:
        """Per kind of text, the mean similarity (first token left out) after the
        embeddings, at the trained depth and at the end of the repeated stack, with its
        95% t-interval over the texts, and the mean with the first token: Chapter 8's
        table."""
        marks = (("embeddings", 0), ("trained depth", self.trained_depth), ("end", self.total))
        rows = []
        for kind in self.kinds:
            for label, layer in marks:
                mean, lo, hi = t_interval(self.mean_no_first[kind][:, layer])
                rows.append(
                    {
                        "text": f"{kind} ({self.mean[kind].shape[0]})",
                        "after": f"{label} ({layer})",
                        "mean cosine": mean,
                        "95% interval": f"{lo:.3f} to {hi:.3f}",
                        "sd over texts": self.at(kind, layer)[1],
                        "with first token": self.at(kind, layer, False)[0],
                    }
                )
        return rows

    def at(self, kind: str, layer: int, skip_first: bool = True) -> tuple[float, float]:
        """Mean and standard deviation over the texts of ``kind`` after ``layer``."""
        values = (self.mean_no_first if skip_first else self.mean)[kind][:, layer]
        return float(values.mean()), float(values.std())

    def per_text(self, kind: str, what) -> np.ndarray:
        """One value per text of ``kind``: the mean similarity (first token left out)
        after layer ``what`` (an int), its change from the trained depth to the end
        (``"rise"``), or the authors' recipe at the end (``"authors end"``)."""
        if what == "rise":
            return self.mean_no_first[kind][:, self.total] - self.mean_no_first[kind][:, self.trained_depth]
        if what == "authors end":
            return self.authors_recipe(kind)[:, self.total]
        return self.mean_no_first[kind][:, int(what)]

    def difference(self, kind_a: str, kind_b: str, what, level: float = 0.95) -> tuple[float, float, float]:
        """:meth:`per_text` of ``kind_a`` minus that of ``kind_b``, mean over the texts
        and its Welch-t interval."""
        return welch_interval(self.per_text(kind_a, what), self.per_text(kind_b, what), level)

    def verdict(self, kind_a: str, kind_b: str, what, level: float = 0.95) -> str:
        """Which kind is higher in :meth:`per_text`, in words, with the difference and its
        interval; "no difference ... is resolved" when the interval contains zero."""
        diff, lo, hi = self.difference(kind_a, kind_b, what, level)
        verb = "rises {} than" if what == "rise" else "is {} similar than"
        if lo > 0:
            word = f"{kind_a} {verb.format('more')} {kind_b}"
        elif hi < 0:
            word = f"{kind_a} {verb.format('less')} {kind_b}"
        else:
            word = f"no difference between {kind_a} and {kind_b} is resolved"
        return f"{word} (difference {diff:+.3f}, {level:.0%} interval {lo:+.3f} to {hi:+.3f})"

    def authors_recipe(self, kind: str) -> np.ndarray:
        """(texts, layers + 1): the mean similarity as the authors' code computed it, all
        tokens, self-pairs included, the last state taken after the final norm."""
        values = self.mean[kind].copy()
        values[:, -1] = self.normed[kind][:, -1]
        return with_self_pairs(values, self.n_tokens[kind])

    def pass_ends(self) -> list[dict]:
        """For the last layer of every pass (layer k L), pooled over all texts: the
        change of the mean similarity across it (first token left out; and with the
        final norm applied to both states), the mean relative size and mean pairwise
        cosine of its update, and the same two for a typical layer (median over the
        other layers): the measurement behind the sawtooth."""
        pooled = {
            name: np.concatenate([getattr(self, name)[k] for k in self.kinds])
            for name in ("mean_no_first", "normed_no_first", "update_ratio", "update_cosine", "state_norm")
        }
        others = [layer for layer in range(2, self.total + 1) if layer % self.trained_depth]
        rows = []
        for k in range(1, self.times + 1):
            end = k * self.trained_depth
            rows.append(
                {
                    "layer": end,
                    "before": float(pooled["mean_no_first"][:, end - 1].mean()),
                    "after": float(pooled["mean_no_first"][:, end].mean()),
                    "change": float((pooled["mean_no_first"][:, end] - pooled["mean_no_first"][:, end - 1]).mean()),
                    "change after final norm": float(
                        (pooled["normed_no_first"][:, end] - pooled["normed_no_first"][:, end - 1]).mean()
                    ),
                    "update / state": float(pooled["update_ratio"][:, end].mean()),
                    "typical update / state": float(np.median(pooled["update_ratio"][:, others].mean(axis=0))),
                    "update cosine": float(pooled["update_cosine"][:, end].mean()),
                    "typical update cosine": float(np.median(pooled["update_cosine"][:, others].mean(axis=0))),
                }
            )
        return rows

    def _pooled(self, name: str, layer: int) -> np.ndarray:
        return np.concatenate([getattr(self, name)[kind][:, layer] for kind in self.kinds])

    def recipe_rows(self) -> list[dict]:
        """The book's recipe against the authors' (App. G.5 and their notebook), step by
        step, with what each difference does to the mean similarity at the end of the
        stack (pooled over all texts)."""
        end, checks = self.total, self.checks
        lengths = np.concatenate([self.n_tokens[kind] for kind in self.kinds])
        every, no_first = self._pooled("mean", end), self._pooled("mean_no_first", end)
        authors = np.concatenate([self.authors_recipe(kind)[:, end] for kind in self.kinds])
        return [
            {
                "step": "stack beyond the trained depth",
                "authors": "new layers, weights copied from 0 to L-1",
                "book": "the same modules run again",
                "why": "no weight copied",
                f"effect at layer {end}": f"{checks.get('copy_difference', np.nan):.0e} (states)",
            },
            {
                "step": "last state",
                "authors": "after the final norm (hidden_states[-1])",
                "book": "before the final norm, like all others",
                "why": "every layer measured alike",
                f"effect at layer {end}": f"{(self._pooled('normed', end) - every).mean():+.3f}",
            },
            {
                "step": "first token",
                "authors": "beginning-of-text token, kept",
                "book": f"no such token ({checks.get('first_token', '?')!r} first); left out",
                "why": "its state is an outlier",
                f"effect at layer {end}": f"{(every - no_first).mean():+.3f}",
            },
            {
                "step": "pairs averaged",
                "authors": "all n^2, self-pairs (cosine 1) included",
                "book": "the n(n-1)/2 pairs of different tokens",
                "why": "self-pairs add (1 - m)/n",
                f"effect at layer {end}": f"{(with_self_pairs(every, lengths) - every).mean():+.3f}",
            },
            {
                "step": "all together",
                "authors": "",
                "book": "",
                "why": "",
                f"effect at layer {end}": f"{(authors - no_first).mean():+.3f}",
            },
        ]

    def paper_rows(self, level: float = 0.95) -> list[dict]:
        """The paper's statements on Fig. 16 (App. G.5) next to this run's numbers: per
        kind, the change from the trained depth to the end and the mean at the end, in
        the book's recipe and in the authors', with t-intervals over the texts."""
        rise = {
            kind: t_interval(
                self.mean_no_first[kind][:, self.total] - self.mean_no_first[kind][:, self.trained_depth], level
            )
            for kind in self.kinds
        }
        end = {kind: t_interval(self.mean_no_first[kind][:, self.total], level) for kind in self.kinds}
        authors = {kind: t_interval(self.authors_recipe(kind)[:, self.total], level) for kind in self.kinds}

        def show(values, sign=""):
            return {kind: f"{m:{sign}.3f} ({lo:{sign}.3f} to {hi:{sign}.3f})" for kind, (m, lo, hi) in values.items()}

        return [
            {
                "paper (App. G.5, Fig. 16)": "the mean rises through the added layers",
                "measured": f"change, layer {self.trained_depth} to {self.total}",
                **show(rise, "+"),
            },
            {"paper (App. G.5, Fig. 16)": "approaching unity", "measured": f"mean at layer {self.total}", **show(end)},
            {
                "paper (App. G.5, Fig. 16)": "(the authors' recipe)",
                "measured": f"mean at layer {self.total}",
                **show(authors),
            },
        ]

    def glue_values(self, prefix: str = "depth") -> dict:
        """The values Chapter 8 glues into its text."""
        out = {f"{prefix}_trained": self.trained_depth, f"{prefix}_total": self.total}
        marks = (("trained", self.trained_depth), ("end", self.total))
        for kind in self.kinds:
            key = kind.replace(" ", "_")
            for label, layer in marks:
                mean, lo, hi = t_interval(self.mean_no_first[kind][:, layer])
                out[f"{prefix}_{key}_{label}"] = mean
                out[f"{prefix}_{key}_{label}_lo"], out[f"{prefix}_{key}_{label}_hi"] = lo, hi
                out[f"{prefix}_{key}_{label}_sd"] = self.at(kind, layer)[1]
                with_first = self.at(kind, layer, skip_first=False)[0]
                out[f"{prefix}_{key}_{label}_with_first"] = with_first
                out[f"{prefix}_{key}_{label}_first_effect"] = with_first - mean
                if self.normed:
                    recipe = float(self.authors_recipe(kind)[:, layer].mean())
                    out[f"{prefix}_{key}_{label}_authors"] = recipe
            out[f"{prefix}_{key}_n"] = int(self.mean[kind].shape[0])
            out[f"{prefix}_{key}_tokens"] = int(np.min(self.n_tokens[kind]))
            rise = self.mean_no_first[kind][:, self.total] - self.mean_no_first[kind][:, self.trained_depth]
            out[f"{prefix}_{key}_rise"], out[f"{prefix}_{key}_rise_lo"], out[f"{prefix}_{key}_rise_hi"] = t_interval(
                rise
            )
        effects = [
            abs(out[f"{prefix}_{k.replace(' ', '_')}_{label}_first_effect"]) for k in self.kinds for label, _ in marks
        ]
        out[f"{prefix}_first_effect_max"] = max(effects)
        for label, layer in marks:
            ranked = sorted(self.kinds, key=lambda kind: -self.at(kind, layer)[0])
            out[f"{prefix}_order_{label}"] = " > ".join(ranked)
        if {"dummy text", "wikipedia"} <= set(self.kinds):
            compared = [*marks, ("rise", "rise")] + ([("end_authors", "authors end")] if self.normed else [])
            for label, layer in compared:
                diff, lo, hi = self.difference("dummy text", "wikipedia", layer)
                out[f"{prefix}_dummy_minus_wiki_{label}"] = diff
                out[f"{prefix}_dummy_minus_wiki_{label}_lo"], out[f"{prefix}_dummy_minus_wiki_{label}_hi"] = lo, hi
                out[f"{prefix}_verdict_{label}"] = self.verdict("dummy text", "wikipedia", layer)
        if self.update_ratio:
            for row in self.pass_ends():
                for name, value in row.items():
                    if name != "layer":
                        key = name.replace(" / ", "_per_").replace(" ", "_")
                        out[f"{prefix}_end{row['layer']}_{key}"] = value
        if self.first_norm:
            for label, layer in marks:
                ratio = self._pooled("first_norm", layer) / self._pooled("state_norm", layer)
                out[f"{prefix}_first_norm_ratio_{label}"] = float(ratio.mean())
        for name, value in self.checks.items():
            out[f"{prefix}_check_{name}"] = value
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
    batch_size: int = 8,
    progress: bool = False,
) -> LayerSimilarities:
    """Run every text of ``texts`` (kind -> list of strings) through ``model`` with its
    stack repeated ``times`` times, truncated to ``max_tokens`` tokens, and record the
    pairwise cosine similarities of the states after every layer (see
    :class:`LayerSimilarities`); ``sample_layers`` (default: 0, the trained depth and
    the end) are kept whole for histograms.  Texts run ``batch_size`` at a time, padded
    on the right (a causal model's states of a text do not see what follows it)."""
    import torch

    inner = _decoder(model)
    depth = len(inner.layers)
    total = depth * times
    sample_layers = sorted({0, depth, total} if sample_layers is None else set(sample_layers))
    if any(not 0 <= layer <= total for layer in sample_layers):
        raise ValueError(f"sample_layers must lie in [0, {total}], got {sample_layers}")
    names = (
        "mean",
        "mean_no_first",
        "normed",
        "normed_no_first",
        "state_norm",
        "first_norm",
        "update_cosine",
        "update_ratio",
    )
    out = {key: {} for key in (*names, "samples", "n_tokens")}
    count = sum(len(v) for v in texts.values())
    bar = progress_bar(count, "texts through the repeated stack", unit="text", enabled=progress)
    device = next(model.parameters()).device
    with repeated_layers(model, times):
        for kind, items in texts.items():
            rows = {key: [] for key in names}
            pooled, lengths = {layer: [] for layer in sample_layers}, []
            for start in range(0, len(items), batch_size):
                ids = [
                    tokenizer(text, return_tensors="pt", truncation=True, max_length=max_tokens)["input_ids"][0]
                    for text in items[start : start + batch_size]
                ]
                batch = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=int(ids[0][0]))
                captured = torch.stack(_capture(model, batch.to(device)), dim=1)  # (batch, layers + 1, tokens, d)
                for b, row in enumerate(ids):
                    raw = captured[b, :, : len(row)]
                    with torch.no_grad():
                        normed = inner.norm(raw).double().cpu().numpy()
                    states = raw.double().cpu().numpy()
                    if not np.all(np.isfinite(states)):
                        raise FloatingPointError(f"non-finite token states for a {kind!r} text")
                    _measure(states, normed, rows)
                    cos_no_first = pairwise_cosines(states[sample_layers], skip_first=True)
                    for k, layer in enumerate(sample_layers):
                        pooled[layer].append(cos_no_first[k])
                    lengths.append(len(row))
                    if bar is not None:
                        bar.update(1)
                del captured
            for key in names:
                out[key][kind] = np.array(rows[key])
            out["samples"][kind] = {layer: np.concatenate(v) for layer, v in pooled.items()}
            out["n_tokens"][kind] = lengths
    if bar is not None:
        bar.close()
    return LayerSimilarities(name or model.config.name_or_path, depth, times, list(texts), **out)


def _measure(states: np.ndarray, normed: np.ndarray, rows: dict) -> None:
    """One text's per-layer measurements (see :class:`LayerSimilarities`) into ``rows``."""
    rows["mean"].append(mean_cosine(states))
    rows["mean_no_first"].append(mean_cosine(states, skip_first=True))
    rows["normed"].append(mean_cosine(normed))
    rows["normed_no_first"].append(mean_cosine(normed, skip_first=True))
    norms = np.linalg.norm(states, axis=-1)
    rows["state_norm"].append(norms[:, 1:].mean(axis=1))
    rows["first_norm"].append(norms[:, 0])
    update = np.diff(states[:, 1:], axis=0)
    nan = np.full(1, np.nan)
    rows["update_cosine"].append(np.concatenate([nan, mean_cosine(update)]))
    ratio = np.linalg.norm(update, axis=-1) / norms[:-1, 1:]
    rows["update_ratio"].append(np.concatenate([nan, ratio.mean(axis=1)]))


@contextmanager
def copied_layers(model, times: int):
    """Like :func:`repeated_layers`, but repetitions 2 to ``times`` are copies of the
    layers (new modules with the same weights, each with its own cache index), as the
    authors built their 64-layer Llama-2; restored on exit."""
    import copy

    import torch

    inner = _decoder(model)
    original, layers = inner.layers, list(inner.layers)
    depth_setting = model.config.num_hidden_layers
    copies = [copy.deepcopy(m) for _ in range(times - 1) for m in layers]
    for index, module in enumerate(copies, start=len(layers)):
        # each copy its own slot in a key/value cache, as in a model built this deep
        for part in (module, getattr(module, "self_attn", None)):
            if hasattr(part, "layer_idx"):
                part.layer_idx = index
    inner.layers = torch.nn.ModuleList(layers + copies)
    model.config.num_hidden_layers = inner.config.num_hidden_layers = len(layers) * times
    try:
        yield model
    finally:
        inner.layers = original
        model.config.num_hidden_layers = inner.config.num_hidden_layers = depth_setting


def recipe_checks(model, tokenizer, text: str, *, times: int = 2, max_tokens: int = 32) -> dict:
    """Facts about the recipe, measured: whether the tokenizer puts a beginning-of-text
    token first (and which token comes first in ``text``), and the largest relative
    difference between the states of a stack of copied layers and of the same modules
    repeated."""
    ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_tokens)["input_ids"]
    bos = getattr(tokenizer, "bos_token_id", None)
    with repeated_layers(model, times):
        same = token_states(model, ids)
    with copied_layers(model, times):
        copies = token_states(model, ids)
    return {
        "bos_token": str(getattr(tokenizer, "bos_token", None)),
        "adds_bos": bool(bos is not None and int(ids[0, 0]) == bos),
        "first_token": str(tokenizer.convert_ids_to_tokens(int(ids[0, 0]))),
        "copy_difference": float(np.max(np.abs(copies - same)) / np.max(np.abs(same))),
    }


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
            chosen = chapter_texts(settings)
            result = layer_similarities(
                model,
                tokenizer,
                chosen,
                times=settings.times,
                max_tokens=settings.max_tokens,
                name=name,
                progress=progress,
            )
            result.checks = recipe_checks(model, tokenizer, chosen["wikipedia"][0], times=settings.times)
            return result

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
