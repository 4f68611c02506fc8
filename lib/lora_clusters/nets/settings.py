"""The settings of the experiments that train or run networks, as checked dataclasses.

One frozen dataclass per experiment: :class:`ToyConfig` (Chapter 6, App. G.1),
:class:`DepthSettings` (Chapter 8, App. G.5), :class:`LoRASettings` (Chapter 9, App.
G.4).  Their values at each scale are in :data:`lora_clusters.scale.SETTINGS`; the code
that trains takes one of these objects and never reads the scale itself, so a stored
result depends on the values it was computed with (its key) and on the code that
computed it, not on the table of the other scales.  No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import positive_int

__all__ = ["DepthSettings", "LoRASettings", "ToyConfig"]


@dataclass(frozen=True)
class ToyConfig:
    """Every setting of the modular-arithmetic study (pre-training, then LoRA).

    Pre-training: ``p``, width ``d``, ``depths``, ``seeds`` (a seed fixes both the
    initial parameters, identical across depths, and the train split),
    ``train_fraction`` of the :math:`p^2` addition pairs, ``epochs`` of full-batch AdamW
    (``lr``, ``betas``, ``weight_decay``), ``clip`` (largest gradient norm per model, or
    None), ``plateau`` (ReduceLROnPlateau on the train loss as (factor, patience), or
    None).  Fine-tuning: LoRA ``lora_rank`` r and ``lora_alpha`` on the value matrix,
    ``lora_lr``, ``lora_epochs``, on ``sub_train_fraction`` of the subtraction pairs.
    ``eval_every``: the pre-training curves are recorded every that many epochs (and at
    the last one); the accuracies need a forward over all pairs, the training step does
    not.
    """

    p: int = 113
    d: int = 128
    depths: tuple = (2, 4, 6, 8)
    seeds: tuple = (0, 1, 2)
    train_fraction: float = 0.6
    epochs: int = 12000
    lr: float = 1e-3
    betas: tuple = (0.9, 0.98)
    weight_decay: float = 1.0
    clip: float | None = None
    plateau: tuple | None = (0.95, 90)
    schedule: str = "constant"
    lora_rank: int = 16
    lora_alpha: float = 16.0
    lora_lr: float = 1e-4
    lora_epochs: int = 3000
    sub_train_fraction: float = 0.6
    lora_betas: tuple = (0.9, 0.999)
    lora_weight_decay: float = 0.0
    sub_split: str = "nested"
    init: str = "torch"
    vocab_size: int | None = None
    max_depth: int = 64
    eval_every: int = 1

    def __post_init__(self):
        positive_int(self.p, "p")
        if self.p < 2:
            raise ValueError(f"p must be at least 2, got {self.p}")
        if self.vocab_size is not None and self.vocab_size < self.p + 3:
            raise ValueError(
                f"p = {self.p} is too large for vocab_size = {self.vocab_size}: the vocabulary needs "
                f"p + 3 = {self.p + 3} ids (the numbers, '=', '+', '-')"
            )
        positive_int(self.d, "d")
        for name in ("epochs", "lora_epochs", "lora_rank", "eval_every"):
            positive_int(getattr(self, name), name)
        if self.lora_rank > self.d:
            raise ValueError(f"lora_rank must be at most d = {self.d}, got {self.lora_rank}")
        if not self.depths or any(
            isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.max_depth
            for k in self.depths
        ):
            raise ValueError(f"depths must be integers in [1, {self.max_depth}], got {self.depths!r}")
        if not self.seeds or any(not isinstance(s, (int, np.integer)) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be integers >= 0, got {self.seeds!r}")
        for name in ("train_fraction", "sub_train_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)!r}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.sub_split not in ("nested", "independent"):
            raise ValueError(f"sub_split must be 'nested' or 'independent', got {self.sub_split!r}")
        if self.init not in ("torch", "authors"):
            raise ValueError(f"init must be 'torch' or 'authors', got {self.init!r}")
        if not self.lora_weight_decay >= 0:
            raise ValueError(f"lora_weight_decay must be >= 0, got {self.lora_weight_decay!r}")
        for name in ("lr", "lora_lr", "lora_alpha"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    @property
    def vocab(self) -> int:
        return self.p + 3 if self.vocab_size is None else self.vocab_size

    @property
    def lora_scaling(self) -> float:
        r""":math:`\alpha / r`, the factor of the LoRA update :math:`(\alpha/r) B A`."""
        return self.lora_alpha / self.lora_rank


@dataclass(frozen=True)
class DepthSettings:
    """What Chapter 8 runs at one scale: ``model`` (a short name of
    :data:`~lora_clusters.nets.pretrained.MODELS`, "tiny" for a small random Llama, or
    a folder), texts per kind, tokens per text, and how many times the stack runs."""

    model: str
    texts_per_kind: int
    max_tokens: int
    times: int


@dataclass(frozen=True)
class LoRASettings:
    """What the LoRA chapter runs at one scale.  The LoRA hyper-parameters (rank,
    alpha, dropout, learning rate) are the paper's at every scale; an optimiser step
    averages the gradients of ``grad_accumulation`` micro-batches of ``batch_size``
    examples, AdamW with ``weight_decay``, the gradient norm clipped at
    ``max_grad_norm`` (None: not clipped), constant learning rate; the held-out accuracy
    curve is read on the first ``curve_examples`` held-out examples."""

    model: str
    steps: int
    batch_size: int
    n_test: int
    checkpoint_every: int
    max_tokens: int = 64
    rank: int = 2
    alpha: float = 32.0
    dropout: float = 0.05
    learning_rate: float = 2e-4
    seed: int = 0
    grad_accumulation: int = 1
    weight_decay: float = 0.01
    max_grad_norm: float | None = None
    curve_examples: int = 200

    def __post_init__(self):
        for name in ("steps", "batch_size", "n_test", "checkpoint_every", "max_tokens", "rank", "grad_accumulation"):
            positive_int(getattr(self, name), name)
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm!r}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")

    @property
    def effective_batch(self) -> int:
        """Examples per optimiser step."""
        return self.batch_size * self.grad_accumulation
