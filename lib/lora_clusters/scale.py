"""The scale of the chapters that train or run networks: the one place that owns it.

Three scales, chosen by ``LORA_BOOK_SCALE`` in the environment and never by a code cell:

- ``smoke``: the smallest runs that still exercise every code path (the tests);
- ``cpu``: the default, sized for a laptop CPU;
- ``gpu``: the paper's sizes (``make gpu``), :data:`PAPER`.

This module holds the names, the one check of a scale name (:func:`check`), and the
settings of every experiment at every scale (:data:`SETTINGS`, read through
:func:`settings`); the settings classes themselves, with their own checks, are in
:mod:`lora_clusters.nets.settings`.  Which scale a chapter *shows* is decided with the
stored results (:func:`lora_clusters.store.scale_for`): with no scale asked for, a
stored paper-scale result wins over computing one at the default scale.

Two more settings let a reader with the paper's model and data run the same chapters on
them (``make gpu MODEL=... DATA=...``): ``LORA_BOOK_MODEL`` names a model folder that
replaces every scale's model (:func:`settings`), and ``LORA_BOOK_DATA`` an IMDb copy
for the LoRA chapter (:func:`lora_clusters.nets.lm_lora.chapter_data`).
"""

from __future__ import annotations

import os
from dataclasses import fields, replace

from .nets.settings import DepthSettings, LoRASettings, ToyConfig

__all__ = [
    "DATA_ENV",
    "DEFAULT",
    "ENV",
    "MODEL_ENV",
    "PAPER",
    "SCALES",
    "SETTINGS",
    "check",
    "current",
    "requested",
    "settings",
]

ENV = "LORA_BOOK_SCALE"
#: a model folder (for instance Llama-2-7B) that replaces every scale's model
MODEL_ENV = "LORA_BOOK_MODEL"
#: an IMDb copy that replaces the LoRA chapter's review snippets
DATA_ENV = "LORA_BOOK_DATA"
SCALES = ("smoke", "cpu", "gpu")
DEFAULT = "cpu"
#: the paper's sizes: results at this scale need a GPU, and a laptop never replaces them
PAPER = "gpu"


def check(name, argument: str = "scale") -> str:
    """``name`` as a scale name (case and spaces ignored); a clear error naming
    ``argument`` and the accepted values otherwise."""
    cleaned = str(name).strip().lower() if isinstance(name, str) else name
    if cleaned not in SCALES:
        raise ValueError(f"{argument} must be one of {', '.join(SCALES)}, got {name!r}")
    return cleaned


def requested() -> str | None:
    """The scale ``LORA_BOOK_SCALE`` asks for, or None when it is unset or empty."""
    raw = os.environ.get(ENV, "").strip()
    return check(raw, ENV) if raw else None


def current() -> str:
    """The scale asked for, else :data:`DEFAULT`."""
    return requested() or DEFAULT


# --------------------------------------------------------------------------------------
# every experiment's settings at every scale
# --------------------------------------------------------------------------------------
SETTINGS = {
    # Chapter 6: the toy transformer of App. G.1 (pre-training on addition, LoRA on V)
    "toy": {
        # seconds: every code path, tiny models
        "smoke": ToyConfig(
            p=11,
            d=32,
            depths=(1, 2),
            seeds=(0,),
            train_fraction=0.8,
            epochs=600,
            lr=3e-3,
            weight_decay=1.0,
            clip=1.0,
            plateau=None,
            lora_rank=4,
            lora_alpha=4.0,
            lora_lr=3e-3,
            lora_epochs=60,
            sub_train_fraction=0.6,
        ),
        # this CPU, within the chapter's budget
        "cpu": ToyConfig(
            p=23,
            d=64,
            depths=(2, 4, 6, 8),
            seeds=(0, 1, 2),
            train_fraction=0.85,
            epochs=2000,
            lr=1e-3,
            weight_decay=1.0,
            clip=1.0,
            plateau=None,
            schedule="cosine",
            lora_rank=8,
            lora_alpha=8.0,
            lora_lr=1e-4,
            lora_epochs=600,
            sub_train_fraction=0.6,
            eval_every=10,
        ),
        # the paper's sizes (App. G.1)
        "gpu": ToyConfig(eval_every=10),
    },
    # Chapter 8: a language model's layer stack run several times (App. G.5)
    "depth": {
        "smoke": DepthSettings("tiny", 2, 24, 2),
        "cpu": DepthSettings("smollm2", 50, 64, 2),
        "gpu": DepthSettings("smollm2", 50, 256, 4),
    },
    # Chapter 9: LoRA on a language model's value projections (App. G.4)
    "lm_lora": {
        "smoke": LoRASettings("tiny", steps=4, batch_size=4, n_test=16, checkpoint_every=2, max_tokens=32),
        # the authors' step of 3 examples (they accumulate 3 micro-batches of one; for a
        # one-token answer one batch of 3 is the same gradient, and 3x faster on a CPU),
        # weight decay 0.001, gradient norm clipped at 0.3, constant rate; fewer steps
        # than their 3,400
        "cpu": LoRASettings(
            "smollm2",
            steps=300,
            batch_size=3,
            n_test=400,
            checkpoint_every=30,
            grad_accumulation=1,
            weight_decay=0.001,
            max_grad_norm=0.3,
            curve_examples=100,
        ),
        # max_tokens is a cap (a batch is padded to its longest prompt): room for IMDb's reviews
        "gpu": LoRASettings(
            "smollm2",
            steps=3400,
            batch_size=1,
            n_test=2000,
            checkpoint_every=25,
            max_tokens=256,
            grad_accumulation=3,
            weight_decay=0.001,
            max_grad_norm=0.3,
        ),
    },
}


def settings(experiment: str, scale_name: str | None = None, **changes):
    """The settings of ``experiment`` (a key of :data:`SETTINGS`) at ``scale_name``
    (default :func:`current`), with ``changes`` applied; a model folder in
    ``$LORA_BOOK_MODEL`` replaces the model of experiments that have one."""
    if experiment not in SETTINGS:
        raise ValueError(f"experiment must be one of {', '.join(SETTINGS)}, got {experiment!r}")
    chosen = SETTINGS[experiment][current() if scale_name is None else check(scale_name, "scale_name")]
    override = os.environ.get(MODEL_ENV, "").strip()
    if override and "model" in {f.name for f in fields(chosen)}:
        changes = {"model": override, **changes}
    return replace(chosen, **changes) if changes else chosen
