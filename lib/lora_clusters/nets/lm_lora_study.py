r"""What Chapter 9 reads from its LoRA runs (:mod:`lora_clusters.nets.lm_lora`): the
spread over seeds, and how far the value maps' spectra move.

Kept apart from the trainer so that a change here never invalidates a stored run.

- :func:`seed_summary`: held-out accuracy before and after, and the largest eigenvalue
  modulus of every layer's update at the end, as mean and spread over seeds.
- :func:`value_map_change`: per layer, the spectrum of the value map :math:`O_G V`
  before and :math:`O_G (V + \Delta V)` after fine-tuning, and how many of its
  eigenvalues end beyond the pre-trained spectral radius.
"""

from __future__ import annotations

import numpy as np

from .. import spectra
from .heads import AttentionWeights
from .lm_lora import LoRARun

__all__ = ["growth_glue_values", "seed_glue_values", "seed_summary", "value_map_change", "value_map_glue_values"]

#: what the last column of :func:`value_map_change` counts, as its header says
BEYOND = "eigenvalues beyond the pre-trained radius"


def seed_summary(runs: list[LoRARun]) -> dict:
    """Mean, sample standard deviation (ddof 1) and range over the runs (one per
    seed) of the held-out accuracy before and after and of its gain, and per layer the
    largest eigenvalue modulus of the value-map update at the end (arrays (layers,))."""
    before = np.array([r.accuracy_before for r in runs])
    after = np.array([r.accuracy_after for r in runs])
    final = np.array([np.abs(r.ov_eigenvalues[-1]).max(axis=-1) for r in runs])  # (seeds, layers)

    def spread(x):
        return {
            "mean": float(x.mean()),
            "std": float(x.std(ddof=1)) if x.size > 1 else float("nan"),
            "min": float(x.min()),
            "max": float(x.max()),
        }

    return {
        "seeds": [r.settings.seed for r in runs],
        "before": spread(before),
        "after": spread(after),
        "gain": spread(after - before),
        "eig_mean": final.mean(axis=0),
        "eig_std": final.std(axis=0, ddof=1) if len(runs) > 1 else np.full(final.shape[1], np.nan),
        "eig_cv_median": float(np.median(final.std(axis=0, ddof=1) / final.mean(axis=0)))
        if len(runs) > 1
        else float("nan"),
    }


def seed_glue_values(runs: list[LoRARun]) -> dict:
    """What Chapter 9 quotes of :func:`seed_summary`, by name."""
    s = seed_summary(runs)
    values = {
        "lm_n_seeds": len(runs),
        "lm_eig_cv_median": s["eig_cv_median"],
        "lm_gain_all_positive": bool(all(r.accuracy_after > r.accuracy_before for r in runs)),
    }
    for key in ("before", "after", "gain"):
        for stat in ("mean", "std", "min", "max"):
            values[f"lm_{key}_{stat}"] = s[key][stat]
    return values


def growth_glue_values(runs: list[LoRARun]) -> dict:
    """How the largest eigenvalue modulus of the update (all layers) grows over a run:
    the number of seeds whose largest modulus is reached at the last checkpoint, and
    the smallest ratio, over seeds, of that final modulus to its value at the first
    checkpoint after the start."""
    largest = np.array([np.abs(r.ov_eigenvalues).max(axis=(1, 2)) for r in runs])  # (seeds, checkpoints)
    at_end = int((largest[:, -1] >= largest.max(axis=1)).sum())
    return {
        "lm_growth_at_end": f"{at_end} of {len(runs)}",
        "lm_growth_ratio_min": float((largest[:, -1] / largest[:, 1]).min()),
    }


def value_map_change(weights: AttentionWeights, run: LoRARun) -> list[dict]:
    r"""Per layer, the spectrum of the value map :math:`O_G V` before and
    :math:`O_G (V + \Delta V)` after fine-tuning (nonzero eigenvalues, from the
    :math:`G d_h` cores): the largest modulus before and after, its relative change,
    and how many eigenvalues after fine-tuning lie beyond the largest modulus before
    (:func:`~lora_clusters.spectra.outside_disc`): an eigenvalue of largest modulus
    that grew by a hair counts, so this is not a count of outliers split from the bulk."""
    rows = []
    for layer, delta in enumerate(run.delta_v):
        g = weights.layer_factors(layer)
        before = spectra.low_rank_eigenvalues(g["O_grouped"], g["V"])
        after = spectra.low_rank_eigenvalues(g["O_grouped"], g["V"] + delta)
        radius = float(np.abs(before).max())
        rows.append(
            {
                "layer": layer,
                "largest |eig| before": radius,
                "after": float(np.abs(after).max()),
                "relative change": float(np.abs(after).max() / radius - 1),
                BEYOND: spectra.outside_disc(after, radius)[0],
            }
        )
    return rows


def value_map_glue_values(change: list[dict]) -> dict:
    """What Chapter 9 quotes of :func:`value_map_change`: the largest and median
    relative change of a layer's largest eigenvalue modulus, the count of eigenvalues
    that end outside the pre-trained disc, how far outside the farthest ends, and the
    sentence that compares this with the paper's observation on Llama-2."""
    relative = np.array([row["relative change"] for row in change])
    excess = float(max(relative.max(), 0.0))
    if excess < 0.01:
        clause = (
            "as the paper observed for Llama-2, LoRA on the value matrices creates no outlier "
            "eigenvalues: what ends outside the pre-trained disc is outside by less than one percent"
        )
    else:
        clause = (
            "unlike what the paper observed for Llama-2, LoRA on the value matrices pushes "
            "eigenvalues well out of the pre-trained disc"
        )
    return {
        "lm_map_change_max": float(np.abs(relative).max()),
        "lm_map_change_median": float(np.median(np.abs(relative))),
        "lm_beyond_radius": sum(row[BEYOND] for row in change),
        # how far outside the pre-trained disc the largest eigenvalue ends
        "lm_outside_by": excess,
        "lm_outlier_clause": clause,
    }


#: (setting, the authors' fine-tuning script, how the book gets its value, why)
AUTHORS_FINETUNING = (
    ("base model", "Llama-2-7b-hf", "model", "no model hub here; `make gpu MODEL=...` runs Llama-2-7B"),
    ("weights", "4-bit NF4, double quantisation, float16 compute", "float32", "bitsandbytes' 4-bit kernels need a GPU"),
    ("data", "IMDb train split, shuffled with seed 42", "data", "no dataset hub here; `make gpu DATA=...` reads IMDb"),
    ("loss", "on the completion only", "cross-entropy of the one label token", "the same loss for a one-token answer"),
    ("LoRA", "r = 2, alpha = 32, dropout 0.05, v_proj", "lora", "adopted"),
    ("learning rate", "2e-4, constant", "learning_rate", "adopted"),
    ("warm-up", "ratio 0.03 (a constant schedule ignores it)", "none", "the same schedule"),
    ("batch", "1 per step, 3 steps accumulated", "batch", "3 examples per step, adopted; one batch is faster on a CPU"),
    ("weight decay", "0.001", "weight_decay", "adopted"),
    ("gradient clipping", "norm 0.3", "max_grad_norm", "adopted"),
    ("optimiser", "AdamW (torch)", "AdamW (torch)", "adopted"),
    ("optimiser steps", "3,400 (136 checkpoints, every 25)", "steps", "CPU budget"),
    ("seeds", "one run", "seeds", "a spread needs more than one"),
)


def settings_table(settings, data_name: str, seeds) -> list[dict]:
    """:data:`AUTHORS_FINETUNING` with the book's value of each setting read from
    ``settings`` (a :class:`~lora_clusters.nets.settings.LoRASettings`)."""
    s = settings
    book = {
        "model": s.model,
        "data": data_name,
        "lora": f"r = {s.rank}, alpha = {s.alpha:g}, dropout {s.dropout:g}, v_proj",
        "learning_rate": f"{s.learning_rate:g}, constant",
        "batch": f"{s.batch_size} per step, {s.grad_accumulation} steps accumulated"
        if s.grad_accumulation > 1
        else f"{s.batch_size} per step (for a one-token answer, the same gradient)",
        "weight_decay": f"{s.weight_decay:g}",
        "max_grad_norm": "none" if s.max_grad_norm is None else f"norm {s.max_grad_norm:g}",
        "steps": f"{s.steps:,} (checkpoints every {s.checkpoint_every})",
        "seeds": ", ".join(str(k) for k in seeds),
    }
    return [
        {"setting": name, "authors": theirs, "book": book.get(ours, ours), "why": why}
        for name, theirs, ours, why in AUTHORS_FINETUNING
    ]


def learning_glue_values(run: LoRARun) -> dict:
    """When the held-out accuracy of ``run`` moved, in words: whether the first
    checkpoint already holds most of the gain (at least half of it) or the accuracy kept
    climbing, read on the accuracy curve (its first checkpoint, its best, its last)."""
    curve = np.array([acc for _, acc in run.accuracy_curve])
    if curve.size == 0:
        return {"lm_learning_reading": "no checkpoint was read"}
    gain = curve[-1] - run.accuracy_before
    if gain <= 0:
        reading = "the accuracy on that subset ends no higher than before fine-tuning"
    elif curve[0] - run.accuracy_before >= 0.5 * gain:
        reading = (
            "most of the gain is there at the first checkpoint: the first steps teach the answer's format "
            "(the probability on the two label tokens), and afterwards the accuracy on that subset moves "
            f"between {curve.min():.0%} and {curve.max():.0%}"
        )
    else:
        reading = (
            "the first steps teach the answer's format (the probability on the two label tokens), and "
            f"the accuracy climbs afterwards, to {curve[-1]:.0%} at the last checkpoint"
        )
    return {"lm_learning_reading": reading}
