r"""The attention-only toy transformer of App. G.1, on modular arithmetic.

Architecture (the authors' setting).  Inputs are four tokens ``[x, op, y, =]`` with
``x, y`` in :math:`\{0,\dots,p-1\}`; the vocabulary has :math:`p + 3` ids: the numbers,
then ``=`` (id p), ``+`` (p + 1) and ``-`` (p + 2).  A learned embedding and a learned
positional embedding give the states :math:`h^{(0)} \in \mathbb R^{4\times d}`; one
attention head of width d, *the same at every layer*, is applied ``depth`` times with a
residual connection,

.. math:: h^{(\ell+1)}_i = h^{(\ell)}_i + W_O \sum_j \mathrm{softmax}_j\Big(
          \frac{\langle W_Q h^{(\ell)}_i, W_K h^{(\ell)}_j\rangle}{\sqrt d}\Big) W_V h^{(\ell)}_j + b_O,

with no causal mask, no MLP and no LayerNorm: an Euler step of eq. (2) with value
matrix :math:`W_O W_V`, attention matrix :math:`A = W_K^\top W_Q/\sqrt d` and a bias.
The logits over the p residues are read at the last position by an unembedding
(:math:`d \to p`; the authors' had 116 outputs, three of which are never a target).

Training.  :func:`pretrain` trains several models with shared steps: their parameters
are stacked along a leading model axis (:class:`Stack`) and every epoch is one
full-batch forward over all :math:`p^2` pairs, with the loss restricted to each model's
training split, so that train, held-out and all-pairs accuracy come from the same
forward and nothing leaves the device until the end.  The optimizer is AdamW with a
learning rate per model (:class:`StackedAdamW`), which the optional ReduceLROnPlateau
schedule of the authors lowers model by model.  :func:`finetune` adds a LoRA of rank
r to the value matrix, :math:`W_V \to W_V + (\alpha/r) B A`, and trains only A and B on
``x - y mod p``, recording the accuracy on both tasks.  With one model in the stack this
is the same computation as :class:`AttentionOnlyTransformer` with peft's LoRA on its
``value`` module (the tests compare them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._validation import positive_int
from ..progress import progress_bar
from .runtime import device as default_device
from .runtime import threads
from .settings import ToyConfig  # its values at each scale: lora_clusters.scale.SETTINGS

__all__ = [
    "AttentionOnlyTransformer",
    "FinetuneResult",
    "PretrainResult",
    "Stack",
    "StackedAdamW",
    "arithmetic_data",
    "finetune",
    "finetune_variants",
    "pretrain",
    "train_every_depth",
]

PARAMETER_NAMES = ("embed", "pos", "query", "key", "value", "output", "output_bias", "unembed")


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArithmeticData:
    """All :math:`p^2` inputs ``[x, op, y, =]`` of one operation and their answers."""

    p: int
    op: str
    tokens: torch.Tensor  # (p^2, 4) long
    targets: torch.Tensor  # (p^2,) long
    pairs: torch.Tensor  # (p^2, 2) long: (x, y)

    def split(self, fraction: float, seed: int) -> torch.Tensor:
        """A boolean training mask over the pairs: ``round(fraction p^2)`` of them, drawn
        by a permutation seeded with ``seed`` (the same split for every depth)."""
        n = self.targets.numel()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
        mask = torch.zeros(n, dtype=torch.bool)
        mask[order[: int(round(fraction * n))]] = True
        return mask


def arithmetic_data(p: int, op: str = "+") -> ArithmeticData:
    """Every pair (x, y) of residues mod p as ``[x, op, y, =]`` with target ``x op y mod p``
    (ids: numbers 0..p-1, ``=`` p, ``+`` p + 1, ``-`` p + 2)."""
    p = positive_int(p, "p")
    if op not in ("+", "-"):
        raise ValueError(f"op must be '+' or '-', got {op!r}")
    pairs = torch.cartesian_prod(torch.arange(p), torch.arange(p))
    op_id = p + 1 if op == "+" else p + 2
    n = pairs.shape[0]
    tokens = torch.stack([pairs[:, 0], torch.full((n,), op_id), pairs[:, 1], torch.full((n,), p)], dim=1)
    targets = (pairs[:, 0] + pairs[:, 1]) % p if op == "+" else (pairs[:, 0] - pairs[:, 1]) % p
    return ArithmeticData(p, op, tokens, targets, pairs)


#: seeds of the "independent" subtraction splits start here (the addition splits use the seed itself)
INDEPENDENT_SPLIT_OFFSET = 1_000


def subtraction_masks(config: ToyConfig, seeds) -> torch.Tensor:
    """(M, p^2) boolean masks of the subtraction training pairs of each seed:
    ``sub_train_fraction`` of the pairs, drawn as ``config.sub_split`` says ("nested":
    the same permutation as the addition split of the seed, so a subset of its training
    pairs when the fraction is smaller; "independent": a permutation of its own)."""
    data = arithmetic_data(config.p, "-")
    offset = INDEPENDENT_SPLIT_OFFSET if config.sub_split == "independent" else 0
    return torch.stack([data.split(config.sub_train_fraction, offset + int(s)) for s in seeds])


# --------------------------------------------------------------------------------------
# one model as an nn.Module (what peft wraps)
# --------------------------------------------------------------------------------------
class SharedAttention(nn.Module):
    """One attention head of width d; ``query``, ``key``, ``value`` without bias, ``output`` with."""

    def __init__(self, d: int):
        super().__init__()
        self.query = nn.Linear(d, d, bias=False)
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d, bias=False)
        self.output = nn.Linear(d, d, bias=True)
        self.scale = 1.0 / math.sqrt(d)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.query(h) @ self.key(h).transpose(-1, -2) * self.scale
        return self.output(torch.softmax(logits, dim=-1) @ self.value(h))


class AttentionOnlyTransformer(nn.Module):
    """The toy model: embeddings, one shared head applied ``depth`` times with a residual
    connection, unembedding at the last position (see the module docstring)."""

    def __init__(self, p: int, d: int, depth: int, vocab: int | None = None):
        super().__init__()
        self.p, self.d, self.depth = positive_int(p, "p"), positive_int(d, "d"), positive_int(depth, "depth")
        self.embed = nn.Embedding(p + 3 if vocab is None else vocab, d)
        self.pos = nn.Parameter(torch.randn(4, d) / math.sqrt(d))
        self.attention = SharedAttention(d)
        self.unembed = nn.Linear(d, p, bias=False)

    def residual_stream(self, tokens: torch.Tensor, n_layers: int | None = None) -> torch.Tensor:
        """The states after 0, 1, ..., ``n_layers`` (default ``depth``) applications of the
        head: (n_layers + 1, batch, 4, d).  More layers than trained run the same head on."""
        h = self.embed(tokens) + self.pos
        states = [h]
        for _ in range(self.depth if n_layers is None else n_layers):
            h = h + self.attention(h)
            states.append(h)
        return torch.stack(states)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.pos
        for _ in range(self.depth):
            h = h + self.attention(h)
        return self.unembed(h[:, -1])


def initial_model(p: int, d: int, depth: int, seed: int, init: str = "torch") -> AttentionOnlyTransformer:
    """The model a seed starts from: its parameters do not depend on ``depth`` (the head
    is shared across layers), so the depths of one seed start from the same weights.
    ``init`` "torch": torch's default initialisation of each layer; "authors": then the
    embedding redrawn from :math:`N(0, 1/d)` and the unembedding from :math:`N(0, 1/V)`
    (V its number of outputs), as in the authors' notebooks."""
    if init not in ("torch", "authors"):
        raise ValueError(f"init must be 'torch' or 'authors', got {init!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = AttentionOnlyTransformer(p, d, depth)
        if init == "authors":
            with torch.no_grad():
                model.embed.weight.normal_(0.0, 1.0 / math.sqrt(d))
                model.unembed.weight.normal_(0.0, 1.0 / math.sqrt(model.unembed.weight.shape[0]))
        return model


# --------------------------------------------------------------------------------------
# several models at once
# --------------------------------------------------------------------------------------
class Stack:
    """The parameters of M models of one depth, stacked along a leading axis, in the
    nn.Linear convention (a weight is (out, in)): ``embed`` (M, vocab, d), ``pos``
    (M, 4, d), ``query``/``key``/``value``/``output`` (M, d, d), ``output_bias`` (M, d),
    ``unembed`` (M, p, d)."""

    def __init__(self, params: dict, depth: int, p: int):
        self.params, self.depth, self.p = params, depth, p

    @classmethod
    def from_models(cls, models) -> Stack:
        models = list(models)
        if len({m.depth for m in models}) != 1:
            raise ValueError("a stack holds models of one depth")
        weights = {
            "embed": [m.embed.weight for m in models],
            "pos": [m.pos for m in models],
            "query": [m.attention.query.weight for m in models],
            "key": [m.attention.key.weight for m in models],
            "value": [m.attention.value.weight for m in models],
            "output": [m.attention.output.weight for m in models],
            "output_bias": [m.attention.output.bias for m in models],
            "unembed": [m.unembed.weight for m in models],
        }
        params = {k: torch.stack([w.detach() for w in v]).clone() for k, v in weights.items()}
        return cls(params, models[0].depth, models[0].p)

    @property
    def size(self) -> int:
        return self.params["embed"].shape[0]

    @property
    def d(self) -> int:
        return self.params["embed"].shape[-1]

    def model(self, m: int, depth: int | None = None) -> AttentionOnlyTransformer:
        """Member ``m`` as an :class:`AttentionOnlyTransformer` (a copy)."""
        P = {k: v[m].detach().clone() for k, v in self.params.items()}
        model = AttentionOnlyTransformer(
            self.p, self.d, self.depth if depth is None else depth, vocab=P["embed"].shape[0]
        )
        with torch.no_grad():
            model.embed.weight.copy_(P["embed"])
            model.pos.copy_(P["pos"])
            for name in ("query", "key", "value", "output"):
                getattr(model.attention, name).weight.copy_(P[name])
            model.attention.output.bias.copy_(P["output_bias"])
            model.unembed.weight.copy_(P["unembed"])
        return model

    def residual_stream(self, tokens: torch.Tensor, n_layers: int | None = None, value_update=None) -> torch.Tensor:
        """(n_layers + 1, M, batch, 4, d): every model's states layer by layer;
        ``value_update`` (M, d, d) is added to the value matrices (a merged LoRA)."""
        P = self.params
        value = P["value"] if value_update is None else P["value"] + value_update
        h = P["embed"][:, tokens] + P["pos"][:, None]
        states = [h]
        for _ in range(self.depth if n_layers is None else n_layers):
            h = h + _attention(h, P["query"], P["key"], value, P["output"], P["output_bias"])
            states.append(h)
        return torch.stack(states)

    def logits(self, tokens: torch.Tensor, value_update=None) -> torch.Tensor:
        """(M, batch, p) logits at the last position."""
        last = self.residual_stream(tokens, value_update=value_update)[-1][:, :, -1]
        return torch.bmm(last, self.params["unembed"].transpose(1, 2))


def _attention(h, query, key, value, output, output_bias):
    """One application of the shared head to every model's states h (M, batch, 4, d):
    weights (M, d, d) in the nn.Linear convention, one batched product per matrix."""
    M, shape, d = h.shape[0], h.shape, h.shape[-1]
    flat = h.reshape(M, -1, d)
    q = torch.bmm(flat, query.transpose(1, 2)).view(shape)
    k = torch.bmm(flat, key.transpose(1, 2)).view(shape)
    v = torch.bmm(flat, value.transpose(1, 2)).view(shape)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
    mixed = (weights @ v).reshape(M, -1, d)
    return (torch.bmm(mixed, output.transpose(1, 2)) + output_bias[:, None]).view(shape)


class StackedAdamW:
    r"""AdamW (decoupled weight decay, Loshchilov & Hutter) on stacked parameters, with a
    learning rate per model, ``lr`` of shape (M,):

    .. math:: m \leftarrow \beta_1 m + (1-\beta_1) g,\qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2,

    .. math:: \theta \leftarrow \theta(1 - \eta\lambda)
              - \eta\,\frac{m/(1-\beta_1^k)}{\sqrt{v/(1-\beta_2^k)} + \epsilon}.

    With equal rates it is torch.optim.AdamW applied to each model (the tests compare).
    ``clip`` rescales each model's gradient to norm at most ``clip`` first.
    """

    def __init__(
        self,
        params: list,
        lr: torch.Tensor,
        betas=(0.9, 0.98),
        weight_decay: float = 0.0,
        eps: float = 1e-8,
        clip: float | None = None,
    ):
        self.params, self.lr = params, lr
        self.betas, self.weight_decay, self.eps, self.clip = betas, weight_decay, eps, clip
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self.steps = 0

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1**self.steps, 1 - b2**self.steps
        grads = [p.grad for p in self.params]
        if self.clip is not None:
            norm = torch.sqrt(sum(g.pow(2).flatten(1).sum(1) for g in grads))  # (M,)
            factor = torch.clamp(self.clip / (norm + 1e-6), max=1.0)
            grads = [g * factor.view(-1, *([1] * (g.dim() - 1))) for g in grads]
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
            lr = self.lr.view(-1, *([1] * (p.dim() - 1)))
            p.mul_(1 - lr * self.weight_decay)
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / math.sqrt(correction2)).add_(self.eps)
            p.sub_(lr / correction1 * m / denom)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


# --------------------------------------------------------------------------------------
# pre-training on addition
# --------------------------------------------------------------------------------------
@dataclass
class PretrainResult:
    """Pre-training of the models of one depth (one per seed).

    Curves are (evaluations, M), one row per epoch of ``epochs_evaluated`` (every
    ``config.eval_every``-th epoch from 0, and the last): ``train_loss``, ``train_acc``,
    ``test_acc`` (held-out pairs), ``all_acc`` (all :math:`p^2` pairs, what the authors
    report), ``lr``, each of the model before that epoch's step; ``train_masks``
    (M, p^2); ``stack`` the trained parameters.
    """

    config: ToyConfig
    depth: int
    seeds: tuple
    stack: Stack
    train_masks: torch.Tensor
    train_loss: np.ndarray
    train_acc: np.ndarray
    test_acc: np.ndarray
    all_acc: np.ndarray
    lr: np.ndarray
    seconds: float = 0.0
    epochs_evaluated: np.ndarray | None = None  # None (results stored before eval_every): every epoch

    def epochs(self) -> np.ndarray:
        """The epoch (from 0) of each row of the curves."""
        if self.epochs_evaluated is None:
            return np.arange(self.train_loss.shape[0])
        return self.epochs_evaluated

    def final(self) -> dict:
        """Final train / held-out / all-pairs accuracy per seed."""
        return {"train": self.train_acc[-1], "test": self.test_acc[-1], "all": self.all_acc[-1]}


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum(-1) / mask.sum(-1)


def evaluated_epochs(epochs: int, every: int) -> np.ndarray:
    """The epochs (from 0) at which the curves are recorded: 0, every, 2 every, ... and
    the last one."""
    return np.unique(np.append(np.arange(0, epochs, every), epochs - 1))


def pretrain(
    config: ToyConfig, depth: int, seeds=None, *, progress: bool = False, dtype: torch.dtype = torch.float32
) -> PretrainResult:
    """Train one model per seed at ``depth`` on ``x + y mod p`` (see the module docstring),
    with the torch threads of :func:`~lora_clusters.nets.runtime.threads`."""
    with threads():
        return _pretrain(config, depth, seeds, progress, dtype)


def _pretrain(config, depth, seeds, progress, dtype) -> PretrainResult:
    import time

    if depth not in range(1, config.max_depth + 1):
        raise ValueError(f"depth must be an integer in [1, {config.max_depth}], got {depth!r}")
    seeds = tuple(config.seeds if seeds is None else seeds)
    dev = default_device()
    data = arithmetic_data(config.p, "+")
    stack = _trainable_stack(config, depth, seeds, dev, dtype)
    bool_masks = torch.stack([data.split(config.train_fraction, s) for s in seeds])
    masks = bool_masks.to(dev, dtype)
    M, E = len(seeds), config.epochs
    lr = torch.full((M,), config.lr, dtype=dtype, device=dev)
    opt = StackedAdamW(list(stack.params.values()), lr, config.betas, config.weight_decay, clip=config.clip)
    evaluated = evaluated_epochs(E, config.eval_every)
    # loss, train, test, all accuracy, lr: on the device until the end (no per-epoch sync)
    curves = torch.zeros(5, len(evaluated), M, dtype=dtype, device=dev)
    plateau = _Plateau(config.plateau, M, dtype, dev)
    batch = _TrainingBatch(data, bool_masks, config.vocab, dev, dtype)
    bar = progress_bar(E, f"pre-training depth {depth}", unit="epoch", enabled=progress)
    start = time.perf_counter()
    row = 0
    for epoch in range(E):
        record = row < len(evaluated) and evaluated[row] == epoch
        _pretrain_epoch(config, epoch, stack, opt, batch, masks, curves[:, row] if record else None, plateau)
        row += record
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    for k in stack.params:
        stack.params[k] = stack.params[k].detach().cpu()
    c = curves.cpu().numpy()
    seconds = time.perf_counter() - start
    return PretrainResult(config, depth, seeds, stack, bool_masks, c[0], c[1], c[2], c[3], c[4], seconds, evaluated)


def _trainable_stack(config, depth: int, seeds: tuple, dev, dtype) -> Stack:
    """The initial models of ``seeds`` (:func:`initial_model`) stacked, on ``dev`` in
    ``dtype``, every parameter requiring its gradient."""
    models = [initial_model(config.p, config.d, depth, s, config.init) for s in seeds]
    stack = Stack.from_models(models)
    for k in stack.params:
        stack.params[k] = stack.params[k].to(dev, dtype).requires_grad_(True)
    return stack


def _correct(logits: torch.Tensor, targets: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """1 where the arg-max of the logits (M, p^2, p) is the target, else 0: (M, p^2)."""
    return (logits.argmax(-1) == targets).to(dtype)


class _Plateau:
    """ReduceLROnPlateau on the train loss, model by model (torch's rule: an improvement
    is a relative decrease by 1e-4; after ``patience`` epochs without one the rate is
    multiplied by ``factor``).  ``setting`` is (factor, patience), or None: no schedule."""

    def __init__(self, setting, M: int, dtype: torch.dtype, dev):
        self.setting = setting
        self.best = torch.full((M,), math.inf, dtype=dtype, device=dev)
        self.bad = torch.zeros(M, dtype=dtype, device=dev)

    def step(self, train_loss: torch.Tensor, lr: torch.Tensor) -> None:
        """Update the per-model rates ``lr`` (M,) in place after an epoch with ``train_loss``."""
        if self.setting is None:
            return
        factor, patience = self.setting
        improved = train_loss < self.best * (1 - 1e-4)
        self.best = torch.where(improved, train_loss, self.best)
        self.bad = torch.where(improved, torch.zeros_like(self.bad), self.bad + 1)
        cut = self.bad > patience
        lr.copy_(torch.where(cut, lr * factor, lr))
        self.bad = torch.where(cut, torch.zeros_like(self.bad), self.bad)


class _TrainingBatch:
    """What the training forward of every epoch reads, built once: per model its
    training pairs as one-hot tokens (M, n_train * 4, vocab) (the embedding is then a
    batched product, whose gradient is one too), their targets (M * n_train,); and every
    pair's tokens and targets for the evaluations."""

    def __init__(self, data: ArithmeticData, masks: torch.Tensor, vocab: int, dev, dtype):
        index = torch.stack([torch.nonzero(m).flatten() for m in masks])  # (M, n_train): same count per model
        tokens = data.tokens[index]  # (M, n_train, 4)
        self.n_train = index.shape[1]
        self.onehot = nn.functional.one_hot(tokens.reshape(masks.shape[0], -1), vocab).to(dev, dtype)
        self.targets = data.targets[index].reshape(-1).to(dev)
        self.all_tokens, self.all_targets = data.tokens.to(dev), data.targets.to(dev)


class _Mixing(torch.autograd.Function):
    r"""The attention of one head within each pair: ``softmax(g h^T) u`` for g (N, n, d)
    (the queries already multiplied by :math:`W_K^\top W_Q/\sqrt d`), h (N, 4, d) and
    u (N, 4, d), with a hand-written backward on contiguous batched products (autograd's
    own backward of these tiny 4 x 4 products falls back to a loop over the batch)."""

    @staticmethod
    def forward(ctx, g, h, u):
        weights = torch.softmax(torch.bmm(g, h.transpose(1, 2)), dim=-1)
        ctx.save_for_backward(g, h, u, weights)
        return torch.bmm(weights, u)

    @staticmethod
    def backward(ctx, grad):
        g, h, u, weights = ctx.saved_tensors
        grad = grad.contiguous()
        grad_weights = torch.bmm(grad, u.transpose(1, 2))
        grad_u = torch.bmm(weights.transpose(1, 2), grad)
        grad_scores = weights * (grad_weights - (grad_weights * weights).sum(-1, keepdim=True))
        return torch.bmm(grad_scores, h), torch.bmm(grad_scores.transpose(1, 2), g), grad_u


def _training_logits(stack: Stack, onehot: torch.Tensor, value_update=None) -> torch.Tensor:
    """(M, n, p) logits of the pairs given as one-hot tokens (M, n * 4, vocab), the
    embedding a batched product (whose gradient is one too): :func:`_fast_logits`."""
    P = stack.params
    M, d = P["embed"].shape[0], P["embed"].shape[-1]
    h = (torch.bmm(onehot, P["embed"]).view(M, -1, 4, d) + P["pos"][:, None]).view(M, -1, d)
    return _fast_logits(stack, h, value_update)


def _evaluation_logits(stack: Stack, tokens: torch.Tensor, value_update=None) -> torch.Tensor:
    """(M, n, p) logits of every model for the pairs ``tokens`` (n, 4), the embedding a
    look-up (no gradient needed): :func:`_fast_logits`."""
    P = stack.params
    M, d = P["embed"].shape[0], P["embed"].shape[-1]
    h = (P["embed"][:, tokens] + P["pos"][:, None]).view(M, -1, d)
    return _fast_logits(stack, h, value_update)


def _fast_logits(stack: Stack, h: torch.Tensor, value_update=None) -> torch.Tensor:
    r"""(M, n, p) logits from the initial states h (M, n * 4, d): the forward of
    :meth:`Stack.logits` with the products re-associated, which changes rounding only.
    The head is applied through :math:`A = W_Q^\top W_K/\sqrt d` (one product per layer
    for queries and keys) and :math:`W_O W_V` (the value and output maps commute with the
    mixing over positions, whose weights sum to 1), and the last layer computes only the
    last position, the one the unembedding reads.  ``value_update`` (M, d, d) is added to
    the value matrices (a merged LoRA)."""
    P = stack.params
    M, d = P["embed"].shape[0], P["embed"].shape[-1]
    value = P["value"] if value_update is None else P["value"] + value_update
    attention = torch.bmm(P["query"].transpose(1, 2), P["key"]) / math.sqrt(d)  # s_ij = h_i A h_j
    value_output = torch.bmm(P["output"], value).transpose(1, 2)  # h W_V^T W_O^T
    n = h.shape[1] // 4
    bias = P["output_bias"][:, None]
    for layer in range(stack.depth):
        last = layer == stack.depth - 1
        u = torch.bmm(h, value_output).view(M * n, 4, d)
        rows = h.view(M, n, 4, d)[:, :, 3] if last else h  # the queries needed
        g = torch.bmm(rows, attention).view(M * n, -1, d)
        mixed = _Mixing.apply(g, h.view(M * n, 4, d), u).view(M, -1, d)
        h = rows + mixed + bias
    return torch.bmm(h, P["unembed"].transpose(1, 2))


def _pretrain_epoch(config, epoch, stack, opt, batch: _TrainingBatch, masks, curves, plateau: _Plateau) -> None:
    """One full-batch AdamW step of every model on its training pairs of addition (the
    forward and backward on them only); when ``curves`` (5, M) is given, it gets the
    train loss, train / held-out / all-pairs accuracy (an evaluation of every pair
    before the step) and the learning rate; then the cosine or plateau schedule."""
    lr = opt.lr
    if config.schedule == "cosine":
        lr.fill_(config.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * epoch / config.epochs))))
    if curves is not None:
        with torch.no_grad():
            correct = _correct(_evaluation_logits(stack, batch.all_tokens), batch.all_targets, masks.dtype)
            accuracy = [_masked_mean(correct, masks), _masked_mean(correct, 1 - masks), correct.mean(-1)]
    logits = _training_logits(stack, batch.onehot)
    M = logits.shape[0]
    losses = nn.functional.cross_entropy(logits.reshape(-1, config.p), batch.targets, reduction="none")
    train_loss = losses.view(M, -1).mean(-1)
    opt.zero_grad()
    train_loss.sum().backward()
    opt.step()
    with torch.no_grad():
        if curves is not None:
            curves.copy_(torch.stack([train_loss, *accuracy, lr]))
        plateau.step(train_loss, lr)


# --------------------------------------------------------------------------------------
# LoRA on the value matrix, on subtraction
# --------------------------------------------------------------------------------------
@dataclass
class FinetuneResult:
    r"""LoRA fine-tuning of a pre-trained stack on ``x - y mod p``.

    Curves are (epochs + 1, M), entry 0 before the first step: ``sub_loss`` (train),
    ``sub_train_acc``, ``sub_test_acc``, ``add_acc`` (addition, all pairs), and
    ``relative_update``, :math:`\|W_O \Delta W_V\|_F / \|W_O W_V\|_F` with
    :math:`\Delta W_V = (\alpha/r) B A`: how far the value map of the particle picture
    has moved, relative to its size.  ``lr`` is the learning rate of each model (M,).
    ``lora_A`` (M, r, d) and ``lora_B`` (M, d, r) are the final factors; the value
    matrices after fine-tuning are :math:`W_V + (\alpha/r) B A` (:meth:`value_update`).
    """

    config: ToyConfig
    pretrained: PretrainResult
    lora_A: torch.Tensor
    lora_B: torch.Tensor
    sub_masks: torch.Tensor
    sub_loss: np.ndarray
    sub_train_acc: np.ndarray
    sub_test_acc: np.ndarray
    add_acc: np.ndarray
    lr: np.ndarray
    scaling: float
    seconds: float = 0.0
    relative_update: np.ndarray | None = None

    def value_update(self) -> torch.Tensor:
        r""":math:`(\alpha/r) B A`, (M, d, d)."""
        return self.scaling * torch.bmm(self.lora_B, self.lora_A)

    def forgetting_epoch(self, level: float = 0.5) -> np.ndarray:
        """Per model, the first epoch at which addition accuracy is below ``level``
        (inf: never within the run)."""
        below = self.add_acc < level
        return np.where(below.any(axis=0), below.argmax(axis=0).astype(float), np.inf)


def lora_init(d: int, rank: int, seeds, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """peft's default LoRA start: A (r, d) Kaiming-uniform with a = sqrt(5) (as
    nn.Linear), B = 0, so that the update is 0 at the start; one seeded A per model."""
    A = []
    for s in seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(10_000 + int(s))
            layer = nn.Linear(d, rank, bias=False)
        A.append(layer.weight.detach().to(dtype))
    A = torch.stack(A)
    return A, torch.zeros(A.shape[0], d, rank, dtype=dtype)


def finetune(
    pretrained: PretrainResult,
    *,
    lr=None,
    scaling: float | None = None,
    epochs: int | None = None,
    init=None,
    full_rank: bool = False,
    progress: bool = False,
) -> FinetuneResult:
    """Train a rank-r LoRA of the value matrix of every model of ``pretrained`` on
    subtraction (AdamW with the configuration's ``lora_betas`` and ``lora_weight_decay``
    on the factors, as peft with torch's AdamW), everything else frozen.  ``lr`` (one
    rate, or one per model), ``scaling`` (alpha / r) and ``epochs`` default to the
    configuration; ``init`` = (A, B) overrides the start.  ``full_rank``: train the
    whole update of :math:`W_V` instead (B = the identity, A the d x d update, started
    at 0): what "V only" can do without the rank limit."""
    with threads():
        return _finetune(pretrained, lr, scaling, epochs, init, full_rank, progress)


def _learning_rates(lr, config: ToyConfig, M: int) -> np.ndarray:
    """The per-model learning rates (M,) of a fine-tuning: the configuration's, one
    rate for all, or one per model, each finite and > 0."""
    rates = np.asarray(config.lora_lr if lr is None else lr, dtype=float)
    if rates.ndim == 0:
        rates = np.full(M, float(rates))
    if rates.shape != (M,) or not np.all(np.isfinite(rates) & (rates > 0)):
        raise ValueError(f"lr must be a rate > 0 or one per model ({M}), got {lr!r}")
    return rates


def _finetune(pretrained, lr, scaling, epochs, init, full_rank, progress) -> FinetuneResult:
    import time

    config = pretrained.config
    seeds, dev = pretrained.seeds, default_device()
    M = len(seeds)
    rates = _learning_rates(lr, config, M)
    scaling = config.lora_scaling if scaling is None else float(scaling)
    epochs = config.lora_epochs if epochs is None else positive_int(epochs, "epochs")
    stack = Stack({k: v.to(dev) for k, v in pretrained.stack.params.items()}, pretrained.depth, pretrained.stack.p)
    dtype = stack.params["value"].dtype
    A, B = _lora_start(config, stack, seeds, init, full_rank, dev)
    sub_masks = subtraction_masks(config, seeds)
    batch = _TrainingBatch(arithmetic_data(config.p, "-"), sub_masks, config.vocab, dev, dtype)
    add = arithmetic_data(config.p, "+")
    masks = sub_masks.to(dev, dtype)
    trained = [A] if full_rank else [A, B]
    lrs = torch.as_tensor(rates, dtype=dtype, device=dev)
    opt = StackedAdamW(trained, lrs, betas=config.lora_betas, weight_decay=config.lora_weight_decay)
    curves = torch.zeros(5, epochs + 1, M, dtype=dtype, device=dev)
    evaluation = _LoRAEvaluation(stack, batch, add.tokens.to(dev), add.targets.to(dev), masks)
    bar = progress_bar(epochs, f"LoRA depth {pretrained.depth}", unit="epoch", enabled=progress)
    start = time.perf_counter()
    for epoch in range(epochs + 1):
        update = scaling * torch.bmm(B, A)
        logits = _training_logits(stack, batch.onehot, update)
        train_loss = (
            nn.functional.cross_entropy(logits.reshape(-1, config.p), batch.targets, reduction="none")
            .view(M, -1)
            .mean(-1)
        )
        with torch.no_grad():
            curves[:, epoch] = evaluation(train_loss, update)
        if epoch == epochs:
            break
        opt.zero_grad()
        train_loss.sum().backward()
        opt.step()
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    c = curves.cpu().numpy()
    seconds = time.perf_counter() - start
    A, B = A.detach().cpu(), B.detach().cpu()
    return FinetuneResult(
        config, pretrained, A, B, sub_masks, c[0], c[1], c[2], c[3], rates, scaling, seconds, relative_update=c[4]
    )


class _LoRAEvaluation:
    r"""What one fine-tuning epoch records, without gradients: the subtraction train loss
    (given), train and held-out accuracy on subtraction, addition accuracy on all pairs,
    and :math:`\|W_O \Delta W_V\|_F / \|W_O W_V\|_F`."""

    def __init__(self, stack: Stack, batch: _TrainingBatch, add_tokens, add_targets, masks):
        self.stack, self.masks, self.p = stack, masks, stack.p
        self.tokens = torch.cat([batch.all_tokens, add_tokens])  # subtraction, then addition
        self.targets = torch.cat([batch.all_targets, add_targets])
        self.n_sub = batch.all_tokens.shape[0]
        P = stack.params
        self.base_size = torch.linalg.matrix_norm(torch.bmm(P["output"], P["value"]))  # (M,)

    def __call__(self, train_loss: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        correct = _correct(_evaluation_logits(self.stack, self.tokens, update), self.targets, self.masks.dtype)
        sub, add = correct[:, : self.n_sub], correct[:, self.n_sub :]
        relative = torch.linalg.matrix_norm(torch.bmm(self.stack.params["output"], update)) / self.base_size
        return torch.stack(
            [train_loss, _masked_mean(sub, self.masks), _masked_mean(sub, 1 - self.masks), add.mean(-1), relative]
        )


def _lora_start(config, stack: Stack, seeds: tuple, init, full_rank: bool, dev) -> tuple[torch.Tensor, torch.Tensor]:
    """The factors A, B the fine-tuning starts from, on ``dev``, A trained and B trained
    unless ``full_rank``: peft's start (:func:`lora_init`), ``init``, or for
    ``full_rank`` A = 0 (d, d) and B = the identity."""
    dtype = stack.params["value"].dtype
    if full_rank:
        A = torch.zeros(len(seeds), stack.d, stack.d, dtype=dtype)
        B = torch.eye(stack.d, dtype=dtype).repeat(len(seeds), 1, 1)
    elif init is None:
        A, B = lora_init(stack.d, config.lora_rank, seeds, dtype)
    else:
        A, B = (t.clone() for t in init)
    return A.to(dev).requires_grad_(True), B.to(dev).requires_grad_(not full_rank)


# --------------------------------------------------------------------------------------
# the runs Chapter 6 stores (lora_clusters.nets.toy_study keeps them in the result store)
# --------------------------------------------------------------------------------------
def train_every_depth(config: ToyConfig, *, progress: bool = False) -> dict:
    """Pre-train every depth of ``config`` on addition and fine-tune each with LoRA on
    subtraction: ``{"pretrained": {depth: PretrainResult}, "finetuned": {depth: FinetuneResult}}``."""
    pretrained, finetuned = {}, {}
    for depth in config.depths:
        pretrained[depth] = pretrain(config, depth, progress=progress)
        finetuned[depth] = finetune(pretrained[depth], progress=progress)
    return {"pretrained": pretrained, "finetuned": finetuned}


def finetune_variants(pretrained: PretrainResult, variants, *, epochs=None, progress: bool = False) -> list:
    """:func:`finetune` of ``pretrained`` once per variant (a dict of its keyword
    arguments: ``lr``, ``scaling``, ``full_rank``), each from the same start."""
    return [finetune(pretrained, epochs=epochs, progress=progress, **variant) for variant in variants]
