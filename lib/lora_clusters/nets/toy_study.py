r"""Chapter 6's study of the toy transformer: every depth pre-trained and fine-tuned, and
what the particle picture says about the result.

- :func:`run_study`: pre-training on addition and LoRA fine-tuning on subtraction for
  every depth of the configuration (:func:`lora_clusters.nets.toy.train_every_depth`),
  kept in the result store (:mod:`lora_clusters.store`): computed once per
  configuration and trainer code, loaded afterwards.
- :func:`value_spectra`: the spectra of :math:`W_V` (what the authors plotted) and of
  :math:`W_O W_V` (the value matrix of the particle picture, since the layer adds
  :math:`W_O \sum_j P_{ij} W_V h_j`), and the hypotheses of Thm 5.4 for the latter with
  :math:`A = W_K^\top W_Q/\sqrt d`.
- :func:`layer_comparison`: the token states layer by layer, before and after
  fine-tuning, for the head run up to several times its trained depth: W2 between the
  two clouds of every input sequence, mean cosine similarity, number of clusters.
- :func:`finetune_check`: fine-tuning at other learning rates and LoRA scales, and with a
  full-rank update of :math:`W_V`, to tell "LoRA on V cannot learn it" from "this run
  did not".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .. import measures, spectra, store
from . import toy
from .settings import ToyConfig

#: the result store's folder of this chapter's runs, and the code that computes them
EXPERIMENT = "toy"
TRAINER = ("lora_clusters.nets.toy",)

__all__ = [
    "EXPERIMENT",
    "FinetuneCheck",
    "HypothesesTable",
    "hypotheses_rows",
    "hypotheses_table",
    "layer_glue_values",
    "spectra_of_study",
    "LayerComparison",
    "ToyStudy",
    "ValueSpectra",
    "finetune_check",
    "layer_comparison",
    "run_study",
    "run_study_per_depth",
    "value_spectra",
]


@dataclass
class ToyStudy:
    """Pre-training and fine-tuning results per depth, and the wall time of each."""

    config: ToyConfig
    pretrained: dict
    finetuned: dict
    scale: str = ""
    _final: dict | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def depths(self) -> tuple:
        return tuple(self.pretrained)

    def accuracy_rows(self) -> list[dict]:
        """One row per trained model: its final train, held-out and all-pairs accuracy."""
        acc = self.final_accuracy()
        return [
            {
                "depth": depth,
                "seed": seed,
                "train": acc["train"][k, m],
                "held-out": acc["test"][k, m],
                "all p^2 pairs": acc["all"][k, m],
            }
            for k, depth in enumerate(self.depths)
            for m, seed in enumerate(self.config.seeds)
        ]

    def final_accuracy(self) -> dict:
        """(depths, seeds) arrays of the accuracies of the pre-trained weights as stored,
        the models LoRA starts from: train, held-out, all pairs.  They are evaluated
        here: the curves' last row (:meth:`PretrainResult.final`) is taken one step
        before the end, and a last step can still move a model (a loss spike it undoes).
        Evaluated once per study; each call returns copies."""
        if self._final is None:
            self._final = self._evaluate_final_accuracy()
        return {key: rows.copy() for key, rows in self._final.items()}

    def _evaluate_final_accuracy(self) -> dict:
        data = toy.arithmetic_data(self.config.p, "+")
        values = {"train": [], "test": [], "all": []}
        for k in self.depths:
            run = self.pretrained[k]
            with torch.no_grad():
                correct = (run.stack.logits(data.tokens).argmax(-1) == data.targets).double().numpy()
            train = run.train_masks.numpy()
            values["train"].append((correct * train).sum(-1) / train.sum(-1))
            values["test"].append((correct * ~train).sum(-1) / (~train).sum(-1))
            values["all"].append(correct.mean(-1))
        return {key: np.array(rows) for key, rows in values.items()}

    def forgetting_epochs(self, level: float = 0.5) -> np.ndarray:
        """(depths, seeds): fine-tuning epochs until addition accuracy drops below ``level``
        (the verdict on depth is :func:`lora_clusters.nets.toy_depth.depth_verdict`)."""
        return np.array([self.finetuned[k].forgetting_epoch(level) for k in self.depths])

    def subtraction_accuracy(self) -> dict:
        """(depths, seeds) arrays of the best and final held-out subtraction accuracy."""
        return {
            "best": np.array([self.finetuned[k].sub_test_acc.max(axis=0) for k in self.depths]),
            "final": np.array([self.finetuned[k].sub_test_acc[-1] for k in self.depths]),
            "train_final": np.array([self.finetuned[k].sub_train_acc[-1] for k in self.depths]),
        }

    def seconds(self) -> float:
        return float(sum(r.seconds for r in self.pretrained.values()) + sum(r.seconds for r in self.finetuned.values()))

    def embedding_norms(self) -> dict:
        """Mean norm, over all models, of the embeddings of '+' and '-' after pre-training:
        '-' never occurs in pre-training, so only weight decay acts on it."""
        p = self.config.p
        embed = [r.stack.params["embed"] for r in self.pretrained.values()]
        return {
            op: float(np.mean([e[:, p + k].norm(dim=-1).mean().item() for e in embed]))
            for op, k in (("+", 1), ("-", 2))
        }

    def glue_values(self, prefix: str = "toy") -> dict:
        """The numbers Chapter 6 quotes, by name (``prefix`` replaces "toy" in each name,
        for the studies with other settings)."""
        values = self._glue_values()
        return {prefix + name[len("toy") :]: value for name, value in values.items()}

    def train_pairs(self) -> int:
        """The number of addition pairs each base model trains on (the same for every
        seed and depth: a split takes a fixed share of the :math:`p^2` pairs)."""
        counts = {int(m.sum()) for k in self.depths for m in self.pretrained[k].train_masks}
        if len(counts) != 1:
            raise ValueError(f"the base models train on different numbers of pairs: {sorted(counts)}")
        return counts.pop()

    def _glue_values(self) -> dict:
        c = self.config
        acc = self.final_accuracy()
        sub = self.subtraction_accuracy()
        norms = self.embedding_norms()
        first_loss = np.array([self.finetuned[k].sub_loss[0] for k in self.depths])
        values = {
            "toy_scale": self.scale,
            "toy_p": c.p,
            "toy_d": c.d,
            "toy_train_percent": round(100 * c.train_fraction),
            "toy_train_pairs": self.train_pairs(),
            "toy_epochs": c.epochs,
            "toy_n_seeds": len(c.seeds),
            "toy_rank": c.lora_rank,
            "toy_alpha": c.lora_alpha,
            "toy_scaling": c.lora_scaling,
            "toy_lora_lr": c.lora_lr,
            "toy_lora_epochs": c.lora_epochs,
            "toy_sub_percent": round(100 * c.sub_train_fraction),
            "toy_all_min": float(acc["all"].min()),
            "toy_all_max": float(acc["all"].max()),
            "toy_train_min": float(acc["train"].min()),
            "toy_test_min": float(acc["test"].min()),
            "toy_test_max": float(acc["test"].max()),
            "toy_sub_best_max": float(sub["best"].max()),
            "toy_sub_final_mean": float(sub["final"].mean()),
            "toy_sub_train_final_mean": float(sub["train_final"].mean()),
            "toy_first_loss_min": float(first_loss.min()),
            "toy_first_loss_max": float(first_loss.max()),
            "toy_norm_plus": norms["+"],
            "toy_norm_minus": norms["-"],
            "toy_minutes": self.seconds() / 60,
        }
        return values


def run_study(config: ToyConfig, scale_name: str, *, progress: bool = True, name: str = "study") -> ToyStudy:
    """Pre-train (addition) and fine-tune (subtraction, LoRA on V) every depth of
    ``config``: from the result store when the trainer is unchanged, else trained now
    and stored (``scale_name`` is the scale ``config`` belongs to; ``name`` the stored
    file's name, e.g. "study-authors" for a variant of the scale's settings)."""
    runs = store.load_or_compute(
        EXPERIMENT,
        config,
        lambda: toy.train_every_depth(config, progress=progress),
        code=TRAINER,
        scale_name=scale_name,
        name=name,
    )
    return ToyStudy(config, runs["pretrained"], runs["finetuned"], scale_name)


def run_study_per_depth(config: ToyConfig, scale_name: str, *, name: str, progress: bool = True) -> ToyStudy:
    """:func:`run_study` with each depth of ``config`` stored apart, as ``{name}-depth-{k}``:
    a long study can then be computed one depth per core, in separate processes, and
    every process finds the depths the others stored."""
    pretrained, finetuned = {}, {}
    for depth in config.depths:
        part = run_study(replace(config, depths=(depth,)), scale_name, progress=progress, name=f"{name}-depth-{depth}")
        pretrained[depth] = part.pretrained[depth]
        finetuned[depth] = part.finetuned[depth]
    return ToyStudy(config, pretrained, finetuned, scale_name)


@dataclass
class ValueSpectra:
    r"""Eigenvalues of :math:`W_V` and :math:`W_O W_V` of one model, before and after LoRA
    (``None`` before fine-tuning), and the top eigenpair of :math:`W_O W_V`."""

    value: np.ndarray
    ov: np.ndarray
    value_tuned: np.ndarray | None
    ov_tuned: np.ndarray | None
    top: spectra.TopEigenpair
    attention: np.ndarray
    value_matrix: np.ndarray
    top_tuned: spectra.TopEigenpair | None = None

    @property
    def hypotheses(self) -> dict:
        """Thm 5.4 for :math:`W_O W_V`: real positive top eigenvalue, gap, :math:`c_{1,1} > 0`."""
        return {
            "lambda1": self.top.eigenvalue,
            "real_positive": self.top.is_real_positive,
            "gap": self.top.gap,
            "c11": self.top.attention_alignment(self.attention),
            "holds": self.top.satisfies_theorem_5_4(self.attention),
        }

    def outliers(self) -> tuple[int, float]:
        """How many eigenvalues of the fine-tuned :math:`W_O \\tilde W_V` lie outside the
        disc that holds the spectrum of :math:`W_O W_V`, and how far beyond its radius the
        farthest lies, relative to it (:func:`~lora_clusters.spectra.outside_disc`;
        (0, 0.0) before fine-tuning)."""
        if self.ov_tuned is None:
            return 0, 0.0
        return spectra.outside_disc(self.ov_tuned, float(np.abs(self.ov).max()))


def value_spectra(pretrained: toy.PretrainResult, m: int, finetuned: toy.FinetuneResult | None = None) -> ValueSpectra:
    """The spectra of model ``m`` of a stack (see :class:`ValueSpectra`)."""
    P = {k: v[m].double().numpy() for k, v in pretrained.stack.params.items()}
    d = P["value"].shape[0]
    attention = P["key"].T @ P["query"] / np.sqrt(d)
    ov = P["output"] @ P["value"]
    tuned = None if finetuned is None else P["value"] + finetuned.value_update()[m].double().numpy()
    ov_tuned = None if tuned is None else P["output"] @ tuned
    return ValueSpectra(
        value=np.linalg.eigvals(P["value"]),
        ov=np.linalg.eigvals(ov),
        value_tuned=None if tuned is None else np.linalg.eigvals(tuned),
        ov_tuned=None if tuned is None else np.linalg.eigvals(ov_tuned),
        top=spectra.top_eigenpair(ov),
        attention=attention,
        value_matrix=P["value"],
        top_tuned=None if tuned is None else spectra.top_eigenpair(ov_tuned),
    )


@dataclass
class LayerComparison:
    """Token states of the pre-trained and fine-tuned model, layer 0 to ``n_layers``.

    ``w2`` (layers,): mean over input sequences of W2 between the 4-token clouds of
    the two models; ``cosine_pre``/``cosine_tuned`` (layers,): mean pairwise cosine
    similarity of the 4 tokens; ``clusters_pre``/``clusters_tuned`` (layers,): mean
    number of clusters of the normalised tokens (merged within ``tol``).  At the last
    layer, for the pre-trained model: ``one_cluster_share``, the share of inputs whose
    four tokens form one cluster, and ``two_cluster_cosine``, the mean cosine between the
    two cluster centres of the inputs that end with exactly two (nan if none does).
    """

    depth: int
    layers: np.ndarray
    w2: np.ndarray
    relative_w2: np.ndarray
    cosine_pre: np.ndarray
    cosine_tuned: np.ndarray
    clusters_pre: np.ndarray
    clusters_tuned: np.ndarray
    one_cluster_share: float = float("nan")
    two_cluster_cosine: float = float("nan")


def _cosine_and_clusters(states: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """states (layers, sequences, n, d): mean pairwise cosine and mean cluster count."""
    unit = states / np.linalg.norm(states, axis=-1, keepdims=True)
    gram = unit @ np.swapaxes(unit, -1, -2)
    n = states.shape[-2]
    off = ~np.eye(n, dtype=bool)
    cosine = gram[..., off].mean(axis=(-1, -2))
    counts = np.array([[len(measures.cluster_centers(z, tol=tol)) for z in layer] for layer in unit])
    return cosine, counts.mean(axis=1)


def layer_comparison(
    finetuned: toy.FinetuneResult, m: int, *, multiple: int = 4, n_sequences: int = 64, tol: float = 0.05, seed: int = 0
) -> LayerComparison:
    """Run member ``m``'s head ``multiple`` times its trained depth on ``n_sequences``
    addition inputs (a seeded sample), before and after LoRA, and compare layer by layer."""
    pre = finetuned.pretrained
    data = toy.arithmetic_data(pre.config.p, "+")
    pick = torch.randperm(data.tokens.shape[0], generator=torch.Generator().manual_seed(seed))[:n_sequences]
    tokens = data.tokens[pick]
    n_layers = multiple * pre.depth
    # in float64: nothing normalises the residual stream, whose norm grows geometrically
    # with the layers (float32 overflowed after 40 layers of a depth-2 model)
    stack = toy.Stack({k: v.double() for k, v in pre.stack.params.items()}, pre.depth, pre.stack.p)
    with torch.no_grad():
        before = stack.residual_stream(tokens, n_layers)[:, m].numpy()
        after = stack.residual_stream(tokens, n_layers, value_update=finetuned.value_update().double())[:, m].numpy()
    for name, states in (("pre-trained", before), ("fine-tuned", after)):
        bad = np.flatnonzero(~np.isfinite(states).all(axis=(1, 2, 3)))
        if bad.size:
            raise ValueError(
                f"the {name} token states leave float64 at layer {bad[0]} of n_layers = {n_layers} "
                f"(multiple = {multiple}): the unnormalised residual stream grows geometrically; "
                "use a smaller multiple"
            )
    w2 = np.array([[measures.wasserstein2(a, b) for a, b in zip(la, lb)] for la, lb in zip(before, after)])
    size = np.linalg.norm(before, axis=-1).mean(axis=-1)  # typical token norm per layer and sequence
    cos_pre, cl_pre = _cosine_and_clusters(before, tol)
    cos_tuned, cl_tuned = _cosine_and_clusters(after, tol)
    share, opposite = _last_layer_clusters(before[-1], tol)
    return LayerComparison(
        pre.depth,
        np.arange(n_layers + 1),
        w2.mean(axis=1),
        (w2 / size).mean(axis=1),
        cos_pre,
        cos_tuned,
        cl_pre,
        cl_tuned,
        share,
        opposite,
    )


def _last_layer_clusters(states: np.ndarray, tol: float) -> tuple[float, float]:
    """states (sequences, n, d): the share of sequences whose normalised tokens form one
    cluster, and the mean cosine between the two centres of those that form two."""
    unit = states / np.linalg.norm(states, axis=-1, keepdims=True)
    counts, cosines = [], []
    for z in unit:
        centres = measures.cluster_centers(z, tol=tol)
        counts.append(len(centres))
        if len(centres) == 2:
            a, b = centres / np.linalg.norm(centres, axis=1, keepdims=True)
            cosines.append(float(a @ b))
    return float(np.mean(np.array(counts) == 1)), float(np.mean(cosines)) if cosines else float("nan")


@dataclass
class FinetuneCheck:
    """Fine-tuning of one depth again at other learning rates and LoRA scales, and with a
    full-rank update of :math:`W_V`: :attr:`rows` has one row per run (means over seeds)."""

    depth: int
    p: int
    n_seeds: int
    rows: list

    @property
    def chance(self) -> float:
        return 1 / self.p

    def glue_values(self) -> dict:
        """The numbers Chapter 6 quotes about the check, by name."""
        best = max(self.rows, key=lambda r: r["sub held-out"])
        full = self.rows[-1]
        return {
            "toy_chance": self.chance,
            "toy_log_p": float(np.log(self.p)),
            "toy_check_min_loss": min(r["final loss"] for r in self.rows),
            "toy_check_max_train": max(r["sub train"] for r in self.rows),
            "toy_check_verdict": "stays at the level of chance"
            if best["sub held-out"] < 2 * self.chance
            else "rises above chance",
            "toy_check_depth": self.depth,
            "toy_check_best_sub": best["sub held-out"],
            "toy_check_best_update": best["update"],
            "toy_check_best_lr": best["lr"],
            "toy_check_full_sub": full["sub held-out"],
            "toy_check_full_train": full["sub train"],
        }


def finetune_check(
    study: ToyStudy,
    depth: int,
    *,
    lrs=(1e-4, 1e-3, 1e-2),
    scalings=(1.0, 4.0),
    epochs: int | None = None,
    progress: bool = False,
) -> FinetuneCheck:
    """Fine-tune the models of ``depth`` again at each (learning rate, alpha / r), and
    once with a full-rank update of :math:`W_V` (rank d: every entry of the update is
    free), from the result store when the trainer is unchanged."""
    pretrained = study.pretrained[depth]
    variants = [{"lr": lr, "scaling": scaling} for lr in lrs for scaling in scalings]
    variants.append({"lr": max(lrs[len(lrs) // 2], 1e-4), "scaling": 1.0, "full_rank": True})
    key = {"config": study.config, "depth": depth, "epochs": epochs, "variants": variants}
    runs = store.load_or_compute(
        EXPERIMENT,
        key,
        lambda: toy.finetune_variants(pretrained, variants, epochs=epochs, progress=progress),
        code=TRAINER,
        scale_name=study.scale,
        name=f"check-depth-{depth}",
    )
    config = study.config
    rows = [
        _row(f"full-rank update of W_V (r = {config.d})" if v.get("full_rank") else f"LoRA r = {config.lora_rank}", run)
        for v, run in zip(variants, runs)
    ]
    return FinetuneCheck(depth, config.p, len(config.seeds), rows)


def _row(kind, run) -> dict:
    return {
        "update": kind,
        "lr": float(np.mean(run.lr)),
        "alpha/r": run.scaling,
        "sub train": float(run.sub_train_acc[-1].mean()),
        "sub held-out": float(run.sub_test_acc[-1].mean()),
        "sub held-out (best)": float(run.sub_test_acc.max(axis=0).mean()),
        "add (all pairs)": float(run.add_acc[-1].mean()),
        "first loss": float(run.sub_loss[0].mean()),
        "final loss": float(run.sub_loss[-1].mean()),
    }


def spectra_of_study(study: ToyStudy, m: int = 0) -> dict:
    """:func:`value_spectra` of member ``m`` at every depth, before and after LoRA."""
    return {k: value_spectra(study.pretrained[k], m, study.finetuned[k]) for k in study.depths}


@dataclass
class HypothesesTable:
    """The hypotheses of Thm 5.4 for every trained model (:func:`hypotheses_rows`) and
    what Chapter 6 says about them."""

    depths: tuple
    rows: list

    def _holds_at(self, depth, column: str = "Thm 5.4 holds") -> list[bool]:
        return [r[column] for r in self.rows if r["depth"] == depth]

    def trend(self, column: str = "Thm 5.4 holds") -> str:
        """Whether the hypotheses (``column``: for :math:`W_O W_V`, or "Thm 5.4 holds for
        W_V") hold more often in the shallowest or the deepest models."""
        first, last = np.mean(self._holds_at(self.depths[0], column)), np.mean(self._holds_at(self.depths[-1], column))
        if first > last:
            return "more often in the shallowest models than in the deepest"
        if last > first:
            return "more often in the deepest models than in the shallowest"
        return "as often in the shallowest models as in the deepest"

    def glue_values(self) -> dict:
        """The counts Chapter 6 quotes, by name."""
        failing = [r for r in self.rows if not r["Thm 5.4 holds"]]
        not_real = [r for r in failing if not _real_positive(complex(r["top eig W_O W_V"]))]
        everywhere = [str(d) for d in self.depths if all(self._holds_at(d))]
        return {
            "toy_hyp_holds": sum(r["Thm 5.4 holds"] for r in self.rows),
            "toy_hyp_fail": len(failing),
            "toy_hyp_fail_not_real": len(not_real),
            "toy_hyp_trend": self.trend(),
            "toy_hyp_depths": ", ".join(everywhere) or "none",
            "toy_hyp_after": sum(r["holds after LoRA"] for r in self.rows),
            "toy_hyp_v_holds": sum(r["Thm 5.4 holds for W_V"] for r in self.rows),
            "toy_hyp_v_trend": self.trend("Thm 5.4 holds for W_V"),
            "toy_hyp_v_deepest": sum(self._holds_at(self.depths[-1], "Thm 5.4 holds for W_V")),
            "toy_hyp_v_shallowest": sum(self._holds_at(self.depths[0], "Thm 5.4 holds for W_V")),
            "toy_hyp_per_depth": len(self._holds_at(self.depths[0])),
            "toy_hyp_majority": _majority(
                sum(r["Thm 5.4 holds"] for r in self.rows),
                sum(r["Thm 5.4 holds for W_V"] for r in self.rows),
                len(self.rows),
            ),
            "toy_hyp_total": len(self.rows),
            "toy_outliers_total": sum(r["outliers after LoRA"] for r in self.rows),
            # how far beyond the pre-trained radius the farthest one ends
            "toy_outside_by": max(r["outside by"] for r in self.rows),
        }


def _majority(ov: int, v: int, total: int) -> str:
    """What most models do, in words, from the counts that satisfy the hypotheses for
    :math:`W_O W_V` (``ov``) and :math:`W_V` (``v``) out of ``total``."""
    if 2 * ov < total and 2 * v < total:
        return "most trained models, shallow or deep, fail the hypotheses for both matrices"
    if 2 * ov > total and 2 * v > total:
        return "most trained models satisfy the hypotheses for both matrices"
    return "the two matrices differ: most models satisfy the hypotheses for one of them only"


def _real_positive(eigenvalue: complex) -> bool:
    return abs(eigenvalue.imag) < 1e-12 and eigenvalue.real > 0


def layer_glue_values(comparisons: list[LayerComparison]) -> dict:
    """The layer-by-layer numbers Chapter 6 quotes (means over the depths, seed 0), and
    what they say: the tokens "merge" only when at most 1.5 clusters remain on average
    and their mean cosine similarity is at least 0.95."""
    clusters = float(np.mean([c.clusters_pre[-1] for c in comparisons]))
    cosine = float(np.mean([c.cosine_pre[-1] for c in comparisons]))
    start = float(np.mean([c.cosine_pre[0] for c in comparisons]))
    share = float(np.mean([c.one_cluster_share for c in comparisons]))
    opposite = np.array([c.two_cluster_cosine for c in comparisons])
    opposite = float(np.nanmean(opposite)) if np.isfinite(opposite).any() else float("nan")
    if clusters <= 1.5 and cosine >= 0.95:
        reading = "merges the tokens of an input into one cluster"
    elif clusters <= 1.5 and opposite < -0.5:
        reading = (
            f"collapses the tokens of most inputs ({share:.0%}) into one cluster, and those of the others "
            f"into two nearly opposite clusters (mean cosine {opposite:.2f} between their centres), which "
            "is why the mean cosine between tokens stays well below 1"
        )
    elif cosine > start + 0.05:
        reading = f"draws the tokens of an input closer (mean cosine {start:.2f} at layer 0) without merging them"
    else:
        reading = f"does not draw the tokens of an input together (mean cosine {start:.2f} at layer 0)"
    return {
        "toy_layers_reading": reading,
        "toy_layers_w2_end": float(np.mean([c.relative_w2[c.depth] for c in comparisons])),
        "toy_layers_w2_first": float(np.mean([c.relative_w2[1] for c in comparisons])),
        "toy_layers_clusters_end": float(np.mean([c.clusters_pre[-1] for c in comparisons])),
        "toy_layers_cosine_end": float(np.mean([c.cosine_pre[-1] for c in comparisons])),
    }


def hypotheses_table(study: ToyStudy) -> HypothesesTable:
    """:func:`hypotheses_rows` of ``study`` with the summary Chapter 6 quotes."""
    return HypothesesTable(study.depths, hypotheses_rows(study))


def hypotheses_rows(study: ToyStudy) -> list[dict]:
    """One row per trained model: the top eigenvalue of :math:`W_V` and of
    :math:`W_O W_V`, and whether the latter satisfies the hypotheses of Thm 5.4 (real
    positive top eigenvalue, gap to the second, :math:`c_{1,1} > 0`) before and after LoRA."""
    rows = []
    for depth in study.depths:
        for m, seed in enumerate(study.pretrained[depth].seeds):
            s = value_spectra(study.pretrained[depth], m, study.finetuned[depth])
            h = s.hypotheses
            outliers, excess = s.outliers()
            top_v = spectra.top_eigenpair(s.value_matrix)
            rows.append(
                {
                    "depth": depth,
                    "seed": seed,
                    "Thm 5.4 holds for W_V": top_v.satisfies_theorem_5_4(s.attention),
                    "top eig W_O W_V": h["lambda1"],
                    "gap": h["gap"],
                    "c11": h["c11"],
                    "Thm 5.4 holds": h["holds"],
                    "holds after LoRA": s.top_tuned.satisfies_theorem_5_4(s.attention),
                    "outliers after LoRA": outliers,
                    "outside by": excess,
                }
            )
    return rows
