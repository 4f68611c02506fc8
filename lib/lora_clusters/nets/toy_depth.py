r"""Chapter 6's question: under LoRA on the value matrix, do deeper toy transformers
forget addition faster or slower?

The paper answers it twice, in opposite directions: Sec. 8 says the deeper the model,
the more unstable its representation; App. G.1.2 says the time to forget grows with the
number of layers.  This module turns the runs of :mod:`lora_clusters.nets.toy_study`
into a verdict with its numbers, and runs the experiments that test the verdict:

- :func:`depth_verdict`: per depth the mean, spread and range of the forgetting epoch
  over seeds, the rank correlation with depth and its permutation p-value, and which of
  the paper's two sentences the runs support.
- :data:`AUTHORS_DIFFERENCES` / :func:`authors_settings`: every setting where the
  book's runs differ from the authors' notebooks, and the configuration with the
  authors' values at the same cpu sizes.
- :func:`regime_search`: settings tried to make the base models generalise (held-out
  accuracy >= 0.95) rather than memorise.
- :func:`lr_sweep`: fine-tuning again at other learning rates, every depth.
- :func:`equal_relative_step`: the learning rate of each model scaled so that its
  LoRA update grows at the same rate *relative to its value map*
  :math:`\|W_O\Delta W_V\|/\|W_O W_V\|`: separates depth from the size of
  :math:`W_O W_V`, which shrinks with depth.
- :func:`spectrum_outliers`: eigenvalues of the fine-tuned :math:`W_V` and
  :math:`W_O W_V` that leave the disc of the pre-trained spectrum (App. G.4's statement
  that the toy model's fine-tuning creates outliers).

Every run goes through the result store, keyed by its configuration and the trainer
code (:data:`lora_clusters.nets.toy_study.TRAINER`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from .. import spectra, store
from . import toy
from .settings import ToyConfig
from .toy_study import EXPERIMENT, TRAINER, ToyStudy

__all__ = [
    "AUTHORS_DIFFERENCES",
    "DepthVerdict",
    "authors_settings",
    "depth_verdict",
    "equal_relative_step",
    "REGIME_CANDIDATES",
    "REGIME_WIDTH_CANDIDATES",
    "GENERALISING",
    "GENERALISING_STRONGER_DECAY",
    "GENERALISING_LARGER_P",
    "GENERALISING_P47",
    "generalising_settings",
    "changes_at_scale",
    "SIZE_CHANGES",
    "regime_glue_values",
    "regime_rows",
    "regime_comparison",
    "study_regime_row",
    "generalising_glue_values",
    "decay_glue_values",
    "generalisation_outcome",
    "reaching_target",
    "generalised_glue_values",
    "control_reading",
    "regime_search",
    "lr_sweep",
    "relative_update_at_forgetting",
    "settings_table",
    "spectrum_outliers",
    "value_map_sizes",
]

#: The paper's two sentences on depth, by where they stand.
PAPER_SENTENCES = {
    "faster": "Sec. 8: 'the deeper the model, the more unstable the representation'",
    "slower": "App. G.1.2: 'the time to forget the previous representations increases with the number of layers'",
}


@dataclass
class DepthVerdict:
    """The forgetting epochs of a set of runs, (depths, seeds), and what they say.

    ``epochs`` has ``inf`` where a run never fell below ``level`` within ``horizon``
    epochs; such runs count as ``horizon + 1`` in the rank correlation and are left out
    of the means (``never`` counts them per depth)."""

    depths: tuple
    epochs: np.ndarray
    horizon: int
    level: float = 0.5
    permutations: int = 20000

    @property
    def n_seeds(self) -> int:
        return self.epochs.shape[1]

    def _filled(self) -> np.ndarray:
        return np.where(np.isfinite(self.epochs), self.epochs, self.horizon + 1.0)

    def per_depth(self) -> list[dict]:
        """One row per depth: mean and standard deviation (ddof 1) over the seeds that
        forgot, the range, and how many never forgot."""
        rows = []
        for depth, row in zip(self.depths, self.epochs):
            done = row[np.isfinite(row)]
            rows.append(
                {
                    "depth": depth,
                    "mean": float(done.mean()) if done.size else float("nan"),
                    "std": float(done.std(ddof=1)) if done.size > 1 else float("nan"),
                    "min": float(done.min()) if done.size else float("nan"),
                    "max": float(done.max()) if done.size else float("nan"),
                    "never": int((~np.isfinite(row)).sum()),
                    "seeds": int(row.size),
                }
            )
        return rows

    def spearman(self) -> tuple[float, float]:
        """Spearman's rank correlation between depth and forgetting epoch (seeds
        pooled, ties at their mean rank) and its two-sided permutation p-value: the share
        of the arrangements of the depth labels over the runs whose correlation is at
        least as large in modulus.  Exact (every distinct arrangement, e.g. 369,600 for 4
        depths x 3 seeds) up to :data:`EXACT_LIMIT` arrangements; beyond, estimated from
        ``permutations`` seeded shufflings, counting the observed one
        (:meth:`pvalue_method` says which)."""
        if getattr(self, "_spearman", None) is None:
            self._spearman = self._permutation_test()
        return self._spearman

    def _permutation_test(self) -> tuple[float, float]:
        from scipy.stats import rankdata

        x = rankdata(np.repeat(np.asarray(self.depths, dtype=float), self.n_seeds))
        y = rankdata(self._filled().ravel())
        x, y = x - x.mean(), y - y.mean()
        scale = np.sqrt((x**2).sum() * (y**2).sum())
        if scale == 0:
            return 0.0, 1.0
        rho = float(x @ y / scale)
        if self.exact:
            null = label_arrangements(x) @ y / scale
            return rho, float(np.mean(np.abs(null) >= abs(rho) - 1e-12))
        rng = np.random.default_rng(0)
        shuffled = rng.permuted(np.tile(x, (self.permutations, 1)), axis=1)
        null = shuffled @ y / scale
        p = float((np.sum(np.abs(null) >= abs(rho) - 1e-12) + 1) / (self.permutations + 1))
        return rho, p

    def arrangements(self) -> int:
        """How many distinct ways the depth labels can be spread over the runs: the
        multinomial (depths x seeds)! / (seeds!)^depths."""
        return math.factorial(self.epochs.size) // math.factorial(self.n_seeds) ** len(self.depths)

    @property
    def exact(self) -> bool:
        """Whether :meth:`spearman` enumerates every arrangement (at most :data:`EXACT_LIMIT`)."""
        return self.arrangements() <= EXACT_LIMIT

    def pvalue_method(self) -> str:
        """How :meth:`spearman` got its p-value, in words."""
        if self.exact:
            return f"exact, over all {self.arrangements():,} arrangements of the depth labels"
        return f"estimated from {self.permutations:,} seeded shufflings of the depth labels"

    def direction(self, alpha: float = 0.05) -> str:
        """ "faster" (deeper forgets sooner), "slower", or "none" (p >= ``alpha``, or no
        run forgot)."""
        if not np.isfinite(self.epochs).any():
            return "none"
        rho, p = self.spearman()
        if p >= alpha:
            return "none"
        return "faster" if rho < 0 else "slower"

    def sentence(self) -> str:
        """The verdict in words, e.g. "deeper models forget faster"."""
        return {
            "faster": "deeper models forget addition faster",
            "slower": "deeper models forget addition more slowly",
            "none": "depth has no clear effect on the time to forget",
        }[self.direction()]

    def supports(self) -> str:
        """Which of the paper's two sentences the runs support."""
        direction = self.direction()
        if direction == "none":
            return "neither of the paper's two sentences"
        return PAPER_SENTENCES[direction]

    def summary(self) -> str:
        """Per depth 'mean ± std' of the forgetting epoch, joined."""
        parts = []
        for row in self.per_depth():
            never = f", {row['never']} never" if row["never"] else ""
            spread = f" ± {row['std']:.0f}" if np.isfinite(row["std"]) else ""
            value = f"{row['mean']:.0f}{spread}" if np.isfinite(row["mean"]) else "none forgot"
            parts.append(f"depth {row['depth']}: {value}{never}")
        return "; ".join(parts)

    def glue_values(self, prefix: str) -> dict:
        rho, p = self.spearman()
        values = {
            f"{prefix}_verdict": self.sentence(),
            f"{prefix}_supports": self.supports(),
            f"{prefix}_rho": rho,
            f"{prefix}_pvalue": p,
            f"{prefix}_pvalue_method": self.pvalue_method(),
            f"{prefix}_seeds": self.n_seeds,
            f"{prefix}_summary": self.summary(),
            f"{prefix}_never": int((~np.isfinite(self.epochs)).sum()),
            f"{prefix}_runs": int(self.epochs.size),
        }
        for row in self.per_depth():
            values[f"{prefix}_mean_{row['depth']}"] = row["mean"]
            values[f"{prefix}_std_{row['depth']}"] = row["std"]
        return values


#: up to this many distinct arrangements of the depth labels, the permutation test
#: enumerates them all (369,600 for the cpu scale's 4 depths x 3 seeds)
EXACT_LIMIT = 2_000_000


def label_arrangements(labels) -> np.ndarray:
    """Every distinct arrangement of the multiset ``labels`` (n,), one per row: the
    multinomial n! / prod(count!) rows, each label value placed in turn on every choice
    of the positions still free."""
    labels = np.asarray(labels, dtype=float)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    values, counts = np.unique(labels, return_counts=True)
    rows = np.full((1, labels.size), np.nan)
    for value, count in zip(values, counts):
        free = np.nonzero(np.isnan(rows))[1].reshape(len(rows), -1)  # (rows, still free)
        choices = np.array(list(itertools.combinations(range(free.shape[1]), count)), dtype=int)
        grown = np.repeat(rows, len(choices), axis=0)
        chosen = free[:, choices].reshape(len(grown), count)
        grown[np.arange(len(grown))[:, None], chosen] = value
        rows = grown
    return rows


def depth_verdict(finetuned: dict, *, level: float = 0.5) -> DepthVerdict:
    """The :class:`DepthVerdict` of fine-tuning runs ``{depth: FinetuneResult}``."""
    depths = tuple(finetuned)
    epochs = np.array([finetuned[k].forgetting_epoch(level) for k in depths])
    horizon = int(finetuned[depths[0]].add_acc.shape[0] - 1)
    return DepthVerdict(depths, epochs, horizon, level)


# --------------------------------------------------------------------------------------
# the authors' settings
# --------------------------------------------------------------------------------------
#: (setting, the authors' notebooks, the reason the book's cpu runs differ); the
#: book's value is read from its configuration by :func:`settings_table`.
AUTHORS_DIFFERENCES = (
    ("p", "113", "p^2 pairs per forward: 24x fewer at p = 23 fit the CPU budget"),
    ("d", "128", "4x fewer flops per product on the CPU"),
    ("epochs", "10,000+ (pre-training)", "CPU budget; train accuracy reaches 1 well before the end"),
    (
        "train_fraction",
        "0.6 (torch random_split, unseeded)",
        "held-out pairs are few at p = 23; 0.85 gives more to learn from",
    ),
    ("schedule", "ReduceLROnPlateau (0.95, patience 90)", "a cosine decay ends a short run at a low rate"),
    ("clip", "none", "a guard against the first, large steps at a short run's high rate"),
    ("init", "embedding N(0, 1/d), unembedding N(0, 1/V)", "torch's layer defaults"),
    ("unembedding outputs", "p + 3 = 116 (three never a target)", "only the p residues can be answers"),
    (
        "lora_alpha",
        "8 at r = 16 (peft's default), alpha/r = 0.5",
        "alpha/r = 1: the update is BA as written in eq. (3)",
    ),
    ("lora_lr", "1e-4 (the text says 1e-5)", "the notebooks' value"),
    ("lora_betas", "(0.9, 0.98)", "torch's AdamW defaults"),
    ("lora_weight_decay", "0.01 (torch's AdamW default)", "no decay: the update is not pulled back to 0"),
    (
        "sub_train_fraction",
        "0.3, drawn independently of the addition split",
        "0.6, drawn from the addition split's permutation (a subset of its training pairs)",
    ),
    ("lora_epochs", "10,000", "CPU budget; addition is forgotten within the run"),
)


def authors_settings(config: ToyConfig) -> ToyConfig:
    """``config`` with every setting of the authors' notebooks that does not change the
    cost: 60% train split, ReduceLROnPlateau (0.95, 90) at a constant base rate, no
    clipping, their initialisation, alpha/r = 0.5, LoRA AdamW betas (0.9, 0.98) and
    weight decay 0.01, 30% of the subtraction pairs drawn independently.  The sizes
    (p, d, epochs) stay those of ``config``."""
    return replace(
        config,
        train_fraction=0.6,
        schedule="constant",
        plateau=(0.95, 90),
        clip=None,
        init="authors",
        lora_alpha=config.lora_rank / 2,
        lora_betas=(0.9, 0.98),
        lora_weight_decay=0.01,
        sub_train_fraction=0.3,
        sub_split="independent",
    )


#: the settings tried, at the smallest depth, to make the cpu-scale base models
#: generalise (changes to the scale's configuration): constant rate and longer,
#: more pairs to train on, the authors' initialisation
REGIME_CANDIDATES = (
    {"schedule": "constant", "epochs_factor": 2.0},
    {"schedule": "constant", "epochs_factor": 2.0, "train_fraction": 0.9},
    {"schedule": "constant", "epochs_factor": 1.5, "init": "authors"},
)
#: the same search at the authors' width d = 128 (about 1.5x the time per epoch at
#: depth 2 on this CPU), with the book's and with the authors' initialisation; stored
#: apart from the first three, which stay as they were computed
REGIME_WIDTH_CANDIDATES = (
    {"d": 128, "schedule": "constant", "epochs_factor": 2.0},
    {"d": 128, "schedule": "constant", "epochs_factor": 2.0, "init": "authors"},
    {"d": 128, "schedule": "constant", "epochs_factor": 4.0, "init": "authors"},
)


#: the setting chosen after the two searches above, where every depth-2 base model
#: generalised: the authors' width and initialisation, the book's cosine schedule, 6x the
#: epochs (the depth study is run a third time with it, every depth stored apart; at
#: depths 4-8 only some seeds generalise: Chapter 6)
GENERALISING = {"d": 128, "init": "authors", "schedule": "cosine", "epochs_factor": 6.0}


#: the same with twice the weight decay: the deeper base models of GENERALISING that
#: fall short reach training accuracy >= 0.976 but held-out < 0.95, and a stronger
#: decay, which penalises the large weights memorising needs, might tip them towards
#: generalising; doubling it costs no time, where doubling the epochs doubles it (it
#: made fewer base models generalise: Chapter 6)
GENERALISING_STRONGER_DECAY = {**GENERALISING, "weight_decay": 2.0}


#: more pairs instead of more epochs: p = 31 (817 training pairs at the scale's 85%,
#: against 450 at p = 23), with 2x the scale's epochs.  With more pairs to fit,
#: memorising costs the model more weight while the modular-addition circuit costs the
#: same, so the decay should favour generalising sooner (a hypothesis; Chapter 6 reports
#: what the runs found)
GENERALISING_LARGER_P = {"p": 31, "d": 128, "init": "authors", "schedule": "cosine", "epochs_factor": 2.0}


#: further along the same line at about the same cost: p = 47 (1,878 training pairs, 2.3x
#: those at p = 31) for the scale's epochs, half as many, so that the pairs seen in
#: training (pairs x epochs) stay close to those of p = 31 (3.8 against 3.3 million)
GENERALISING_P47 = {"p": 47, "d": 128, "init": "authors", "schedule": "cosine", "epochs_factor": 1.0}


#: the changes that set a model's size, and so its cost (p, width, length): the smoke scale
#: (the tests) keeps its own tiny values for them, so that every code path of the
#: searches runs in seconds; the cpu and gpu scales take them as written
SIZE_CHANGES = ("p", "d", "epochs_factor")


def changes_at_scale(changes: dict, scale_name: str | None) -> dict:
    """``changes`` as they apply at ``scale_name``: without :data:`SIZE_CHANGES` at the
    smoke scale; as given at every other scale, and when ``scale_name`` is None."""
    if scale_name == "smoke":
        return {k: v for k, v in changes.items() if k not in SIZE_CHANGES}
    return dict(changes)


def generalising_settings(
    config: ToyConfig, changes: dict = GENERALISING, *, scale_name: str | None = None
) -> ToyConfig:
    """``config`` with ``changes`` (:data:`GENERALISING`, :data:`GENERALISING_STRONGER_DECAY`,
    :data:`GENERALISING_LARGER_P` or :data:`GENERALISING_P47`; every depth and seed kept), as they apply at
    ``scale_name`` (:func:`changes_at_scale`)."""
    return _changed(config, changes_at_scale(changes, scale_name))


def _changed(config: ToyConfig, changes: dict, **fixed) -> ToyConfig:
    """``config`` with ``changes``, whose ``epochs_factor`` multiplies the epochs."""
    changes = dict(changes)
    factor = changes.pop("epochs_factor", 1.0)
    return replace(config, epochs=int(round(config.epochs * factor)), **changes, **fixed)


def regime_search(
    config: ToyConfig,
    scale_name: str,
    candidates=REGIME_CANDIDATES,
    *,
    name: str = "regime-search",
    progress: bool = False,
) -> list:
    """Pre-train the smallest depth of ``config`` (every seed) with each candidate
    change of ``candidates`` (:data:`REGIME_CANDIDATES`, or
    :data:`REGIME_WIDTH_CANDIDATES` stored as ``name`` "regime-search-width"): one row
    per candidate with the settings changed and the final held-out accuracy of each
    seed (min, mean, max) and the smallest training accuracy; from the result store
    when the trainer is unchanged.  At the smoke scale the candidates keep the scale's
    sizes (:func:`changes_at_scale`)."""
    depth = min(config.depths)
    configs = [_changed(config, changes_at_scale(c, scale_name), depths=(depth,)) for c in candidates]

    def compute():
        return [toy.pretrain(c, depth, progress=progress).final() for c in configs]

    finals = store.load_or_compute(
        EXPERIMENT, {"configs": configs}, compute, code=TRAINER, scale_name=scale_name, name=name
    )
    return [
        {"changes": _changes(replace(config, depths=(depth,)), c), "depth": depth, **_accuracy_summary(final)}
        for c, final in zip(configs, finals)
    ]


def _accuracy_summary(final: dict) -> dict:
    """The regime tables' columns for the seeds of one setting and depth (``final``:
    their "train" and "test" accuracies): held-out min, mean, max, and train min."""
    test = np.asarray(final["test"])
    return {
        "held-out min": float(test.min()),
        "held-out mean": float(test.mean()),
        "held-out max": float(test.max()),
        "train min": float(np.min(final["train"])),
    }


def study_regime_row(config: ToyConfig, study: ToyStudy) -> dict:
    """The row of :func:`regime_search`'s table for the base models of ``study`` at its
    smallest depth, so that the setting a depth study was run with stands beside the
    candidates (its changes named against ``config``, the scale's settings)."""
    depth = min(study.depths)
    k = study.depths.index(depth)
    final = {key: values[k] for key, values in study.final_accuracy().items()}
    changes = _changes(replace(config, depths=(depth,)), replace(study.config, depths=(depth,)))
    return {"changes": changes, "depth": depth, **_accuracy_summary(final)}


def reaching_target(study: ToyStudy, *, target: float = 0.95) -> np.ndarray:
    """Booleans, one per depth (rows) and seed (columns) of ``study``: whether the base
    model ends pre-training with held-out accuracy at least ``target``.  The one test
    behind every count of generalising base models (the regime table, the glued counts
    and sentences)."""
    return study.final_accuracy()["test"] >= target


def generalised_glue_values(study: ToyStudy, *, target: float = 0.95, prefix: str = "toy_gen") -> dict:
    """How many of the base models of ``study`` reach held-out ``target``
    (:func:`reaching_target`), and of how many: ``{prefix}_generalised``,
    ``{prefix}_models``."""
    reached = reaching_target(study, target=target)
    return {f"{prefix}_generalised": int(reached.sum()), f"{prefix}_models": int(reached.size)}


def regime_rows(study: ToyStudy, *, target: float = 0.95) -> list[dict]:
    """One row per depth of ``study``: the held-out accuracy of its base models at the
    end of pre-training (min, mean, max over the seeds), the smallest training accuracy,
    and how many seeds reach ``target`` (:func:`reaching_target`)."""
    acc, reached = study.final_accuracy(), reaching_target(study, target=target)
    return [
        {
            "depth": depth,
            **_accuracy_summary({key: values[k] for key, values in acc.items()}),
            f"seeds >= {target:g}": f"{int(reached[k].sum())} of {reached.shape[1]}",
        }
        for k, depth in enumerate(study.depths)
    ]


def regime_comparison(studies: dict, *, target: float = 0.95) -> list[dict]:
    """:func:`regime_rows` of several studies (``{setting: study}``) in one table, depth
    by depth, each row naming its setting."""
    rows = [
        {"depth": row["depth"], "setting": setting, **{k: v for k, v in row.items() if k != "depth"}}
        for setting, study in studies.items()
        for row in regime_rows(study, target=target)
    ]
    return sorted(rows, key=lambda row: row["depth"])  # stable: the settings keep their order


def regime_glue_values(rows: list[dict], *, target: float = 0.95, studied: dict | None = None) -> dict:
    """Whether a candidate made every base model generalise (held-out >= ``target``),
    and the best candidate's numbers; ``studied``: the row of the setting the depth
    study was run again with (:func:`study_regime_row`, one of ``rows``), if any (its
    verdict is :func:`generalising_glue_values`)."""
    best = max(rows, key=lambda r: r["held-out min"])
    widest = max(rows, key=lambda r: r["held-out max"] - r["held-out min"])
    found = [r for r in rows if r["held-out min"] >= target]
    depth = best["depth"]
    settings = f"{len(found)} of the {len(rows)} settings tried made every base model of depth {depth} generalise"
    if studied is not None and studied in found:
        sentence = f"{settings} ({studied['changes']}), and the depth study was run again with it"
        consequence = (
            "Whether the setting also makes the deeper models generalise is a separate question: the depth "
            "study run with it answers it below"
        )
    elif found:
        sentence = f"{settings} ({best['changes']}), but the depth study has not been run on such base models"
        consequence = (
            f"Such base models exist, then, at least at depth {depth}; but the depth study has not been run "
            "on base models trained that way, so the depth verdict of this page is a verdict about base "
            "models that memorised part of their task, and whether it carries over to models that "
            "generalise is still open"
        )
    else:
        sentence = f"none of the {len(rows)} settings tried made every base model generalise"
        consequence = (
            "The depth verdict of this page is therefore a verdict about base models that memorised part "
            "of their task, and whether it carries over to models that generalise is open at cpu scale"
        )
    return {
        "toy_regime_found": "does" if found else "does not",
        "toy_regime_sentence": sentence,
        "toy_regime_consequence": consequence,
        "toy_regime_best": best["changes"],
        "toy_regime_best_min": best["held-out min"],
        "toy_regime_best_max": best["held-out max"],
        "toy_regime_target": target,
        "toy_regime_tried": len(rows),
        "toy_regime_widest": widest["changes"],
        "toy_regime_widest_min": widest["held-out min"],
        "toy_regime_widest_max": widest["held-out max"],
    }


def _listed(items) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def generalising_glue_values(
    study: ToyStudy,
    verdict: DepthVerdict,
    memorised: DepthVerdict,
    controlled: DepthVerdict,
    *,
    target: float = 0.95,
    prefix: str = "toy_gen",
) -> dict:
    """The depth study run on base models meant to generalise (``study``, its
    ``verdict``, and ``controlled``, the verdict of the same models at equal relative
    steps), read against the ``memorised`` verdict of the book's main runs: how many
    base models reach held-out ``target`` (per depth), the reading in one sentence, what
    it allows to conclude, and how the control reads (:func:`control_reading`); the
    names start with ``prefix``."""
    held_out = study.final_accuracy()["test"]
    reached = reaching_target(study, target=target)
    count = generalised_glue_values(study, target=target, prefix=prefix)
    generalised, total = count[f"{prefix}_generalised"], count[f"{prefix}_models"]
    counts = {}  # seeds that generalise -> the depths with that many
    for depth, row in zip(study.depths, reached):
        counts.setdefault(int(row.sum()), []).append(depth)
    per_depth = "; ".join(
        f"{n} of {reached.shape[1]} seeds at depth{'s' if len(depths) > 1 else ''} {_listed(depths)}"
        for n, depths in sorted(counts.items(), reverse=True)
    )
    rho, p = verdict.spearman()
    same = verdict.direction() == memorised.direction()
    holds = "holds" if same else "does not hold"
    if generalised == total:
        models = f"all {total} of its base models generalise"
        conclusion = f"The depth verdict therefore {holds} in both regimes."
    else:
        models = f"{generalised} of its {total} base models generalise ({per_depth})"
        conclusion = (
            f"This set mixes the two regimes ({generalised} of {total} base models generalise), so it does not "
            "settle the question for base models that all generalise; what it shows is that the verdict "
            f"{holds} for base models trained this other way."
        )
    comparison = "the same verdict as" if same else "not the verdict of"
    reading = (
        f"{models}, with held-out accuracy {held_out.min():.2f} to {held_out.max():.2f} before LoRA starts; "
        f"under LoRA {verdict.sentence()} (Spearman {rho:.2f}, p = {p:.4f}): {comparison} the base models "
        "that memorised"
    )
    sizes = [row["||W_O W_V||"] for row in size_rows(study)]
    return {
        f"{prefix}_size_ratio": sizes[0] / sizes[-1],
        **count,
        f"{prefix}_agrees": holds,
        f"{prefix}_reading": reading,
        f"{prefix}_conclusion": conclusion,
        f"{prefix}_ctrl_reading": control_reading(verdict, controlled),
    }


def decay_glue_values(
    general: ToyStudy,
    decay: ToyStudy,
    *,
    target: float = 0.95,
    fit: float = 0.99,
    prefix: str = "toy_dec",
    baseline: str = "with the weaker decay",
) -> dict:
    """A study run again with one setting changed (``decay``: a stronger weight decay,
    or a larger p) against the one it repeats (``general``, described as ``baseline``):
    whether ``more``, ``as many`` or ``fewer`` base models reach held-out ``target``, and
    whether every base model reaches training accuracy ``fit`` or at which depths some
    do not."""
    before, acc = general.final_accuracy(), decay.final_accuracy()
    unfit = [depth for depth, row in zip(decay.depths, acc["train"]) if row.min() < fit]
    if unfit:
        depths = f"depth{'s' if len(unfit) > 1 else ''} {_listed(unfit)}"
        fitting = (
            f"at {depths} some base models end below training accuracy {fit:g} (down to "
            f"{acc['train'].min():.3f}, against at least {before['train'].min():.3f} {baseline})"
        )
    else:
        fitting = f"every base model reaches training accuracy {fit:g}"
    n_before = int(reaching_target(general, target=target).sum())
    n_after = int(reaching_target(decay, target=target).sum())
    return {
        f"{prefix}_versus": "more" if n_after > n_before else "fewer" if n_after < n_before else "as many",
        f"{prefix}_fitting": fitting,
    }


def generalisation_outcome(studies: dict, *, target: float = 0.95) -> str:
    """One sentence: which of ``studies`` (``{setting: study}``) has base models that all
    reach held-out accuracy ``target`` at every depth; if none has, the depths at which
    every setting leaves some seed short.  Read from the rows of the regime table
    (:func:`regime_rows`), so that the sentence and the table cannot disagree."""
    short_depths = {
        name: {row["depth"] for row in regime_rows(study, target=target) if row["held-out min"] < target}
        for name, study in studies.items()
    }
    complete = [name for name, short in short_depths.items() if not short]
    if complete:
        verb = "gives" if len(complete) == 1 else "give"
        return f"{_listed(complete)} {verb} base models that all generalise at every depth"
    short = list(short_depths.values())
    common = sorted(set.intersection(*short))
    sentence = f"none of the {len(studies)} settings gives base models that all generalise at every depth"
    if common:
        depths = f"depth{'s' if len(common) > 1 else ''} {_listed(common)}"
        return f"{sentence}: in every one of them some seeds at {depths} end below held-out accuracy {target:g}"
    return f"{sentence}, though no depth falls short in all of them"


def _describe(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "(" + ", ".join(_describe(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings_table(book: ToyConfig, authors: ToyConfig) -> list[dict]:
    """One row per setting where the authors' notebooks and the book differ: the
    authors' value, the book's main runs, the book's rerun with the authors' settings,
    and the reason for the book's choice."""
    rows = []
    for name, theirs, reason in AUTHORS_DIFFERENCES:
        # every row is named after its ToyConfig field, but for the unembedding's width
        is_field = hasattr(book, name)
        ours = _describe(getattr(book, name)) if is_field else f"p = {book.p}"
        rerun = _describe(getattr(authors, name)) if is_field else f"p = {authors.p}"
        if name == "schedule":
            ours = f"{book.schedule}" + (f", plateau {_describe(book.plateau)}" if book.plateau else "")
            rerun = f"{authors.schedule}" + (f", plateau {_describe(authors.plateau)}" if authors.plateau else "")
        if name == "lora_alpha":
            ours = f"{_describe(book.lora_alpha)} at r = {book.lora_rank}, alpha/r = {book.lora_scaling:g}"
            rerun = f"{_describe(authors.lora_alpha)} at r = {authors.lora_rank}, alpha/r = {authors.lora_scaling:g}"
        if name == "sub_train_fraction":
            ours = f"{book.sub_train_fraction:g}, {book.sub_split}"
            rerun = f"{authors.sub_train_fraction:g}, {authors.sub_split}"
        rows.append(
            {
                "setting": name,
                "authors": theirs,
                "book": ours,
                "book, authors' settings": rerun,
                "why the book differs": reason,
            }
        )
    return rows


# --------------------------------------------------------------------------------------
# fine-tuning again: other learning rates, equal relative steps
# --------------------------------------------------------------------------------------
def lr_sweep(study: ToyStudy, lrs=(1e-5, 1e-3), *, progress: bool = False) -> dict:
    """Fine-tune every depth of ``study`` again at each learning rate of ``lrs`` (same
    start, same epochs): ``{lr: {depth: FinetuneResult}}``, from the result store when
    the trainer is unchanged."""
    lrs = tuple(float(lr) for lr in lrs)

    def compute():
        return {
            lr: {k: toy.finetune(study.pretrained[k], lr=lr, progress=progress) for k in study.depths} for lr in lrs
        }

    return store.load_or_compute(
        EXPERIMENT, {"config": study.config, "lrs": lrs}, compute, code=TRAINER, scale_name=study.scale, name="lr-sweep"
    )


def value_map_sizes(study: ToyStudy) -> np.ndarray:
    r"""(depths, seeds): :math:`\|W_O W_V\|_F / \|W_O\|_F` of each pre-trained model, the
    size of the value map per unit of output map (what a LoRA step of a given size
    perturbs, relatively)."""
    sizes = []
    for k in study.depths:
        P = study.pretrained[k].stack.params
        ov = torch.linalg.matrix_norm(torch.bmm(P["output"].double(), P["value"].double()))
        sizes.append((ov / torch.linalg.matrix_norm(P["output"].double())).numpy())
    return np.array(sizes)


#: significant digits of the learning rates of :func:`equal_relative_step`
RATE_DIGITS = 10


def equal_relative_step(
    study: ToyStudy, *, name: str = "equal-relative-step", progress: bool = False
) -> tuple[dict, np.ndarray]:
    r"""Fine-tune every model at a learning rate proportional to the size of its value
    map, :math:`\eta_m = \eta\,s_m/\bar s` with :math:`s_m = \|W_O W_V\|_F/\|W_O\|_F`
    and :math:`\bar s` their geometric mean over all models: Adam moves the factors by
    about :math:`\eta` per step whatever the gradient's scale, so the relative update
    :math:`\|W_O\Delta W_V\|/\|W_O W_V\|` then grows at about the same rate in every
    model.  Returns ``({depth: FinetuneResult}, rates (depths, seeds))``, stored as
    ``name``; the rates are rounded to :data:`RATE_DIGITS` significant digits."""
    sizes = value_map_sizes(study)
    rates = study.config.lora_lr * sizes / np.exp(np.log(sizes).mean())
    # the last digit of log and exp depends on the CPU's vector instructions; the rates
    # are the key of the stored runs, so they are rounded to be the same on every machine
    rates = np.array([[float(f"{r:.{RATE_DIGITS}g}") for r in row] for row in rates])

    def compute():
        return {
            k: toy.finetune(study.pretrained[k], lr=rates[i], progress=progress) for i, k in enumerate(study.depths)
        }

    key = {"config": study.config, "rates": [[float(r) for r in row] for row in rates]}
    runs = store.load_or_compute(EXPERIMENT, key, compute, code=TRAINER, scale_name=study.scale, name=name)
    return runs, rates


def relative_update_at_forgetting(finetuned: dict, *, level: float = 0.5) -> np.ndarray:
    r"""(depths, seeds): :math:`\|W_O\Delta W_V\|_F/\|W_O W_V\|_F` at the epoch where
    addition accuracy first falls below ``level`` (nan where it never does)."""
    out = []
    for run in finetuned.values():
        epochs = run.forgetting_epoch(level)
        row = [float(run.relative_update[int(e), m]) if np.isfinite(e) else float("nan") for m, e in enumerate(epochs)]
        out.append(row)
    return np.array(out)


def spectrum_outliers(pretrained: toy.PretrainResult, finetuned: toy.FinetuneResult) -> dict:
    r"""Per model, how many eigenvalues of the fine-tuned :math:`W_V + \Delta W_V` lie
    outside the disc holding the spectrum of :math:`W_V` (``"W_V"``), and the same for
    :math:`W_O(W_V + \Delta W_V)` against :math:`W_O W_V` (``"W_O W_V"``): arrays (M,);
    and how far the farthest of them lies beyond the radius, relative to it
    (``"W_V excess"``, ``"W_O W_V excess"``; 0 when none is outside)."""
    counts = {"W_V": [], "W_O W_V": [], "W_V excess": [], "W_O W_V excess": []}
    update = finetuned.value_update().double().numpy()
    for m in range(update.shape[0]):
        P = {k: v[m].double().numpy() for k, v in pretrained.stack.params.items()}
        for name, before, after in (
            ("W_V", P["value"], P["value"] + update[m]),
            ("W_O W_V", P["output"] @ P["value"], P["output"] @ (P["value"] + update[m])),
        ):
            radius = float(np.abs(np.linalg.eigvals(before)).max())
            count, excess = spectra.outside_disc(np.linalg.eigvals(after), radius)
            counts[name].append(count)
            counts[f"{name} excess"].append(excess)
    return {name: np.array(v) for name, v in counts.items()}


# --------------------------------------------------------------------------------------
# tables and numbers of Chapter 6
# --------------------------------------------------------------------------------------
def verdict_rows(verdicts: dict) -> list[dict]:
    """One row per set of runs (``{label: DepthVerdict}``): the forgetting epoch per
    depth as 'mean ± std', the correlation and its p-value, and the verdict."""
    rows = []
    for label, verdict in verdicts.items():
        rho, p = verdict.spearman()
        row = {"runs": label}
        for r in verdict.per_depth():
            never = f" ({r['never']} never)" if r["never"] else ""
            spread = f" ± {r['std']:.0f}" if np.isfinite(r["std"]) else ""
            row[f"depth {r['depth']}"] = (
                f"{r['mean']:.0f}{spread}{never}" if np.isfinite(r["mean"]) else f"never ({r['never']})"
            )
        row.update({"Spearman": round(rho, 2), "p": round(p, 4), "verdict": verdict.sentence()})
        rows.append(row)
    return rows


def size_rows(study: ToyStudy, *, level: float = 0.5) -> list[dict]:
    r"""Per depth, means over seeds: :math:`\|W_O W_V\|_F`, the value map's size per unit
    of output map :math:`\|W_O W_V\|_F/\|W_O\|_F`, and the relative update
    :math:`\|W_O\Delta W_V\|_F/\|W_O W_V\|_F` when addition accuracy first falls below
    ``level`` and at the end of the fine-tuning."""
    sizes = value_map_sizes(study)
    at_forgetting = relative_update_at_forgetting(study.finetuned, level=level)
    rows = []
    for k, depth in enumerate(study.depths):
        P = study.pretrained[depth].stack.params
        ov = torch.linalg.matrix_norm(torch.bmm(P["output"].double(), P["value"].double())).numpy()
        end = study.finetuned[depth].relative_update[-1]
        rows.append(
            {
                "depth": depth,
                "||W_O W_V||": float(ov.mean()),
                "||W_O W_V|| / ||W_O||": float(sizes[k].mean()),
                "relative update when forgotten": float(np.nanmean(at_forgetting[k]))
                if np.isfinite(at_forgetting[k]).any()
                else float("nan"),
                "relative update at the end": float(end.mean()),
            }
        )
    return rows


def size_glue_values(rows: list[dict]) -> dict:
    """What Chapter 6 quotes about depth and size (the rows of :func:`size_rows`): the
    ratio of the value-map sizes of the shallowest and the deepest models, and the range
    and trend over depth of the relative update at the moment of forgetting."""
    ov = [r["||W_O W_V||"] for r in rows]
    when = np.array([r["relative update when forgotten"] for r in rows])
    values = {
        "toy_size_ratio": ov[0] / ov[-1],
        "toy_size_shallow": ov[0],
        "toy_size_deep": ov[-1],
        "toy_rel_forgot_min": float(np.nanmin(when)),
        "toy_rel_forgot_max": float(np.nanmax(when)),
        "toy_rel_trend": (
            "smaller the deeper the model: measured against its own value map, a deeper model has "
            "moved less when it loses addition"
        )
        if np.all(np.diff(when) < 0)
        else (
            "larger the deeper the model: relative to its value map, a deeper model moves further "
            "before it loses addition"
            if np.all(np.diff(when) > 0)
            else "not monotone in depth"
        ),
    }
    return values


def lr_rows(study: ToyStudy, sweep: dict, *, level: float = 0.5) -> list[dict]:
    """Per learning rate and depth (the study's own rate included): the forgetting
    epoch, the addition accuracy at the end, and how many eigenvalues of the fine-tuned
    :math:`W_V` and :math:`W_O W_V` lie outside the pre-trained disc (summed over seeds)."""
    runs = {study.config.lora_lr: study.finetuned, **sweep}
    rows = []
    for lr in sorted(runs):
        verdict = depth_verdict(runs[lr], level=level)
        for k, depth in enumerate(study.depths):
            run = runs[lr][depth]
            out = spectrum_outliers(study.pretrained[depth], run)
            r = verdict.per_depth()[k]
            rows.append(
                {
                    "lr": lr,
                    "depth": depth,
                    "forgetting epoch": f"{r['mean']:.0f} ± {r['std']:.0f}"
                    if r["never"] == 0
                    else (
                        f"never within {verdict.horizon}"
                        if r["never"] == r["seeds"]
                        else f"{r['mean']:.0f} ({r['never']} never)"
                    ),
                    "addition at the end": float(run.add_acc[-1].mean()),
                    "outside the disc, W_V": int(out["W_V"].sum()),
                    "outside the disc, W_O W_V": int(out["W_O W_V"].sum()),
                    "farthest beyond the radius": float(max(out["W_V excess"].max(), out["W_O W_V excess"].max())),
                }
            )
    return rows


def lr_verdicts(study: ToyStudy, sweep: dict, *, level: float = 0.5) -> dict:
    """``{lr: DepthVerdict}`` for the study's rate and every rate of the sweep."""
    runs = {study.config.lora_lr: study.finetuned, **sweep}
    return {lr: depth_verdict(runs[lr], level=level) for lr in sorted(runs)}


def lr_glue_values(study: ToyStudy, sweep: dict, rows: list[dict]) -> dict:
    """What Chapter 6 quotes about the learning rates: each rate's verdict, and the
    outlier counts per rate."""
    values = {}
    for k, (lr, verdict) in enumerate(lr_verdicts(study, sweep).items()):
        tag = f"toy_lr{k}"
        values[f"{tag}"] = lr
        values[f"{tag}_verdict"] = verdict.sentence()
        values[f"{tag}_never"] = int((~np.isfinite(verdict.epochs)).sum())
        values[f"{tag}_runs"] = int(verdict.epochs.size)
        values[f"{tag}_out_v"] = sum(r["outside the disc, W_V"] for r in rows if r["lr"] == lr)
        values[f"{tag}_out_ov"] = sum(r["outside the disc, W_O W_V"] for r in rows if r["lr"] == lr)
        values[f"{tag}_add_end"] = float(np.mean([r["addition at the end"] for r in rows if r["lr"] == lr]))
    finals = final_addition(study, sweep)
    parts = []
    for k, lr in enumerate(lr_verdicts(study, sweep)):
        never, runs = values[f"toy_lr{k}_never"], values[f"toy_lr{k}_runs"]
        if never == runs:
            kept = finals[lr].mean(axis=1)
            trend = "falls" if np.all(np.diff(kept) < 0) else ("rises" if np.all(np.diff(kept) > 0) else "varies")
            parts.append(
                f"at learning rate {lr:g} no run forgets within the run, and the addition accuracy at its end "
                f"{trend} with depth ({kept[0]:.2f} at depth {study.depths[0]}, {kept[-1]:.2f} at depth "
                f"{study.depths[-1]})"
            )
        else:
            note = f" ({never} of {runs} runs never forgot)" if never else ""
            parts.append(f"at learning rate {lr:g}, {values[f'toy_lr{k}_verdict']}{note}")
        values[f"toy_lr{k}_excess"] = max(r["farthest beyond the radius"] for r in rows if r["lr"] == lr)
    outliers = ", ".join(
        f"{values[f'toy_lr{k}_out_ov']} (W_O W_V) and {values[f'toy_lr{k}_out_v']} (W_V) at {values[f'toy_lr{k}']:g}, "
        f"the farthest {values[f'toy_lr{k}_excess']:.1%} beyond the radius"
        for k in range(len(parts))
    )
    clear = [values[f"toy_lr{k}"] for k in range(len(parts)) if values[f"toy_lr{k}_excess"] > 0.02]
    values["toy_lr_outliers"] = (
        "at no rate does an eigenvalue end more than 2% beyond the pre-trained radius: these runs show "
        "no clear outliers, only eigenvalues that cross the rim"
        if not clear
        else "eigenvalues end more than 2% beyond the pre-trained radius only at learning rate "
        + " and ".join(f"{lr:g}" for lr in clear)
        + ": the outliers of App. G.4 appear at the rates that also erase addition fastest"
        if clear == [max(values[f"toy_lr{k}"] for k in range(len(parts)))]
        else "eigenvalues end more than 2% beyond the pre-trained radius at learning rates "
        + ", ".join(f"{lr:g}" for lr in clear)
    )
    values["toy_lr_reading"] = (
        "; ".join(parts)[0].upper()
        + "; ".join(parts)[1:]
        + f". Eigenvalues outside the pre-trained disc, summed over depths and seeds: {outliers}."
    )
    return values


def final_addition(study: ToyStudy, sweep: dict) -> dict:
    """``{lr: (depths, seeds)}`` addition accuracy (all pairs) at the end of each run."""
    runs = {study.config.lora_lr: study.finetuned, **sweep}
    return {lr: np.array([runs[lr][k].add_acc[-1] for k in study.depths]) for lr in sorted(runs)}


def _changes(base: ToyConfig, other: ToyConfig) -> str:
    """The settings in which ``other`` differs from ``base``, as 'name base -> other'."""
    from dataclasses import fields

    parts = [
        f"{f.name} {_describe(getattr(base, f.name))} → {_describe(getattr(other, f.name))}"
        for f in fields(base)
        if getattr(base, f.name) != getattr(other, f.name)
    ]
    return ", ".join(parts) or "none"


def control_reading(verdict: DepthVerdict, controlled: DepthVerdict) -> str:
    """How a set of runs (``verdict``) reads once every model's learning rate is scaled
    to equal relative steps (``controlled``): whether its trend survives, fades (and
    whether the means per depth still move monotonically), or reverses; or, for runs
    with no clear trend, whether the control brings one out."""
    means = np.array([r["mean"] for r in controlled.per_depth()])
    monotone = "fall" if np.all(np.diff(means) < 0) else ("rise" if np.all(np.diff(means) > 0) else "")
    if controlled.direction() == verdict.direction() != "none":
        return (
            "The trend survives equal relative steps, so in these runs it is not only the size "
            "of the value map: depth itself matters."
        )
    if controlled.direction() == "none" and verdict.direction() != "none":
        return (
            "With equal relative steps the trend is no longer significant"
            + (f" (the means per depth still {monotone} with depth, within a wide spread)" if monotone else "")
            + f": the size of the value map accounts for much of it, and {controlled.n_seeds} seeds per depth "
            "cannot tell whether depth itself accounts for the rest."
        )
    if verdict.direction() == "none":
        if controlled.direction() == "none":
            return "Neither set of runs shows a clear effect of depth."
        return (
            "Equal relative steps bring out a trend that the runs at one learning rate do not show: once the "
            f"size of the value map is taken out, {controlled.sentence()}, which supports {controlled.supports()}."
        )
    return (
        f"Equal relative steps reverse the trend: the size of the value map dominates depth here, and once it "
        f"is taken out the runs support {controlled.supports()}."
    )


def comparison_glue_values(verdicts: dict) -> dict:
    """The sentences Chapter 6 builds from the verdicts (book, authors', equal relative
    step, in this order; any further sets are left out here): whether the authors'
    settings agree with the book's, and how the controlled experiment reads
    (:func:`control_reading`)."""
    book, authors, controlled = list(verdicts.values())[:3]
    return {
        "toy_auth_agrees": "holds" if authors.direction() == book.direction() else "does not hold",
        "toy_ctrl_reading": control_reading(book, controlled),
    }


def fit_glue_values(study: ToyStudy, prefix: str) -> dict:
    """Whether every base model of ``study`` fits its training pairs (training accuracy
    at least 0.99 at the end of pre-training), in words, under ``{prefix}_fit``."""
    fits = float(study.final_accuracy()["train"].min()) >= 0.99
    return {
        f"{prefix}_fit": "every base model fits its training pairs"
        if fits
        else "not every base model has finished fitting its training pairs within the run (nor had the "
        "authors' own depth-2 model)"
    }
