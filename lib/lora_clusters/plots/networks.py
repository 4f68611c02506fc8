"""Figures of chapters 6-9: trained networks (pre-training, value spectra,
fine-tuning and forgetting, real models' layers, depth similarity, LoRA learning)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .style import few_ticks

__all__ = [
    "KIND_COLOURS",
    "plot_complex_spectrum",
    "plot_depth_similarity",
    "plot_pass_ends",
    "plot_eigenvalues",
    "plot_finetuning",
    "plot_forgetting",
    "plot_forgetting_verdicts",
    "plot_lr_depth",
    "plot_relative_update",
    "plot_hypotheses_map",
    "plot_layer_comparison",
    "plot_layer_ranks",
    "plot_layer_shares",
    "plot_layer_singular_values",
    "plot_lora_learning",
    "plot_pretraining",
    "plot_similarity_histograms",
    "plot_symmetric_qk_histogram",
    "plot_update_eigenvalues",
    "plot_update_moduli_by_seed",
    "plot_value_singular_values",
    "plot_value_spectra",
    "VERDICT_COLOURS",
    "VERDICT_LABELS",
]


# --------------------------------------------------------------------------------------
# Chapter 6: the trained toy transformer (the study's results are numpy arrays)
# --------------------------------------------------------------------------------------
def _band(ax, x, curves, colour, label, **style):
    """Mean over the columns of ``curves`` (seeds) as a line, min to max as a band."""
    ax.fill_between(x, curves.min(axis=1), curves.max(axis=1), color=colour, alpha=0.2, lw=0)
    ax.plot(x, curves.mean(axis=1), color=colour, label=label, **style)


def _legend_above(axes, *, ncol: int | None = None, fontsize: float = 10) -> None:
    """One legend for a row of panels, centred above them in the figure, from the
    labelled lines of all ``axes`` (each label once): readable when a wide figure is
    scaled down to the page's column."""
    seen, handles, labels = set(), [], []
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in seen:
                seen.add(lab)
                handles.append(h)
                labels.append(lab)
    fig = np.ravel(axes)[0].figure
    fig.legend(
        handles,
        labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=ncol or len(labels),
        fontsize=fontsize,
        frameon=False,
    )


def plot_pretraining(study, *, axes=None):
    """Fig. 7: per depth (columns), the training loss (top, log scale) and the accuracy
    on the training pairs, the held-out pairs and all pairs (bottom), mean over seeds
    with the min-max band."""
    depths = study.depths
    if axes is None:
        _, axes = plt.subplots(2, len(depths), figsize=(2.9 * len(depths), 5.2), sharex=True, squeeze=False)
    for col, depth in enumerate(depths):
        r = study.pretrained[depth]
        epochs = r.epochs() + 1  # the epochs at which the curves were recorded, from 1
        _band(axes[0, col], epochs, r.train_loss, "C0", "train loss")
        axes[0, col].set(yscale="log", title=f"depth {depth}")
        for key, colour, label in (
            ("train_acc", "C0", "train"),
            ("test_acc", "C3", "held-out"),
            ("all_acc", "k", "all pairs"),
        ):
            _band(axes[1, col], epochs, getattr(r, key), colour, label, lw=1.2)
        axes[1, col].set(xlabel="epoch", ylim=(-0.02, 1.02))
    axes[0, 0].set_ylabel("cross-entropy (nats)")
    axes[1, 0].set_ylabel("accuracy on x + y mod p")
    _legend_above(axes[1])
    return axes


def plot_eigenvalues(ax, eigenvalues, *, label, colour="C0", marker="o", size=14, filled=True):
    """Eigenvalues in the complex plane (real part horizontal)."""
    kw = dict(color=colour) if filled else dict(facecolors="none", edgecolors=colour)
    ax.scatter(np.real(eigenvalues), np.imag(eigenvalues), s=size, marker=marker, label=label, linewidths=0.8, **kw)
    ax.axhline(0, color="0.7", lw=0.6)
    ax.axvline(0, color="0.7", lw=0.6)
    ax.set(xlabel="Re λ", ylabel="Im λ")
    return ax


def plot_value_spectra(spectra_by_depth: dict, *, tuned: bool = False, axes=None):
    """Fig. 8 (``tuned=False``): per depth, the eigenvalues of :math:`W_V` (what the
    authors plotted, top) and of :math:`W_O W_V` (the particle picture's value matrix,
    bottom).  Fig. 9 (``tuned=True``): the same before (open) and after LoRA (filled),
    with the update scaled by alpha / r."""
    depths = list(spectra_by_depth)
    if axes is None:
        _, axes = plt.subplots(2, len(depths), figsize=(2.9 * len(depths), 5.6), squeeze=False)
    for col, depth in enumerate(depths):
        s = spectra_by_depth[depth]
        for row, (before, after, name) in enumerate(
            ((s.value, s.value_tuned, "$W_V$"), (s.ov, s.ov_tuned, "$W_O W_V$"))
        ):
            ax = axes[row, col]
            if tuned:
                plot_eigenvalues(ax, before, label="pre-trained", colour="0.45", filled=False, size=18)
                plot_eigenvalues(ax, after, label="after LoRA", colour="C3", size=8)
            else:
                plot_eigenvalues(ax, before, label=name, colour="C0" if row == 0 else "C2", size=10)
            ax.set_title(f"depth {depth}: {name}", fontsize=9)
            ax.set_aspect("equal", adjustable="datalim")
    if tuned:
        _legend_above(axes[0])
    return axes


def plot_finetuning(study, *, axes=None):
    """Figs 5 and 10: accuracy on addition (all pairs) and on held-out subtraction pairs
    during LoRA fine-tuning, per depth, mean over seeds with the min-max band."""
    depths = study.depths
    if axes is None:
        _, axes = plt.subplots(1, len(depths), figsize=(2.9 * len(depths), 3.0), sharey=True, squeeze=False)
        axes = axes[0]
    for ax, depth in zip(axes, depths):
        r = study.finetuned[depth]
        epochs = np.arange(r.add_acc.shape[0])
        _band(ax, epochs, r.add_acc, "C0", "addition (all pairs)")
        _band(ax, epochs, r.sub_test_acc, "C3", "subtraction (held-out)")
        _band(ax, epochs, r.sub_train_acc, "C1", "subtraction (train)", lw=0.8, ls="--")
        ax.axhline(0.5, color="k", ls=":", lw=0.8)
        ax.set(title=f"depth {depth}", xlabel="fine-tuning epoch", ylim=(-0.02, 1.02))
    axes[0].set_ylabel("accuracy")
    _legend_above(axes)
    return axes


def plot_forgetting(depths, epochs, *, ax=None, level: float = 0.5):
    """Fine-tuning epochs until addition accuracy falls below ``level``, per depth: one
    dot per seed, and their mean."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 3.3))
    epochs = np.asarray(epochs, dtype=float)
    for k, depth in enumerate(depths):
        finite = epochs[k][np.isfinite(epochs[k])]
        ax.scatter(
            np.full(finite.size, depth), finite, color="C0", s=22, zorder=3, label="one seed" if k == 0 else None
        )
    means = [np.mean(row[np.isfinite(row)]) if np.isfinite(row).any() else np.nan for row in epochs]
    ax.plot(depths, means, color="C3", marker="_", ms=16, lw=1.2, label="mean over seeds")
    ax.set(xlabel="depth (layers)", ylabel=f"epochs until addition accuracy < {level}", xticks=list(depths))
    ax.legend(fontsize=8)
    return ax


def plot_forgetting_verdicts(verdicts: dict, *, ax=None, level: float = 0.5):
    """Forgetting epoch against depth for several sets of runs (``{label: DepthVerdict}``):
    per set, the mean over the seeds that forgot with one standard deviation as an error
    bar, and every seed as a small dot; a run that never forgot is drawn at the top of
    the axis as an open triangle."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.6, 3.6))
    shift = np.linspace(-0.25, 0.25, len(verdicts)) if len(verdicts) > 1 else [0.0]
    top = max(v.horizon for v in verdicts.values())
    for k, (label, verdict) in enumerate(verdicts.items()):
        colour = f"C{k}"
        depths = np.asarray(verdict.depths, dtype=float) + shift[k]
        rows = verdict.per_depth()
        ax.errorbar(
            depths,
            [r["mean"] for r in rows],
            yerr=[np.nan_to_num(r["std"]) for r in rows],
            color=colour,
            marker="o",
            ms=5,
            capsize=3,
            lw=1.3,
            label=label,
        )
        for x, row in zip(depths, verdict.epochs):
            done = row[np.isfinite(row)]
            ax.scatter(np.full(done.size, x), done, color=colour, s=9, alpha=0.55, lw=0)
            never = int((~np.isfinite(row)).sum())
            if never:
                ax.scatter([x], [top], marker="^", facecolors="none", edgecolors=colour, s=28)
    ax.set(
        xlabel="depth (layers)",
        ylabel=f"epochs until addition\naccuracy < {level}",
        xticks=list(next(iter(verdicts.values())).depths),
    )
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_relative_update(finetuned: dict, *, ax=None, level: float = 0.5):
    r"""Per depth (one colour each), :math:`\|W_O\Delta W_V\|_F/\|W_O W_V\|_F` along the
    fine-tuning, mean over seeds (log scale), with a dot where each seed's addition
    accuracy first falls below ``level``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.4))
    for k, (depth, run) in enumerate(finetuned.items()):
        colour = plt.cm.viridis(k / max(len(finetuned) - 1, 1))
        epochs = np.arange(run.relative_update.shape[0])
        ax.plot(epochs[1:], run.relative_update[1:].mean(axis=1), color=colour, label=f"depth {depth}")
        for m, e in enumerate(run.forgetting_epoch(level)):
            if np.isfinite(e):
                ax.scatter([e], [run.relative_update[int(e), m]], color=colour, s=18, zorder=3, edgecolors="k", lw=0.4)
    ax.set(
        yscale="log",
        xlabel="fine-tuning epoch",
        ylabel="$\\|W_O\\Delta W_V\\|_F\\,/\\,\\|W_O W_V\\|_F$",
    )
    ax.legend(fontsize=8, title=f"dots: accuracy < {level}", title_fontsize=8)
    return ax


def plot_lr_depth(verdicts_by_lr: dict, final_addition: dict, *, axes=None, level: float = 0.5):
    """Left: forgetting epoch against depth, one line per learning rate (mean over the
    seeds that forgot, one standard deviation as error bar; a hollow triangle at the top
    marks runs that never forgot).  Right: addition accuracy at the end of the run
    against depth, per learning rate (mean, min-max as error bar)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10.5, 3.6))
    plot_forgetting_verdicts({f"lr {lr:g}": v for lr, v in verdicts_by_lr.items()}, ax=axes[0], level=level)
    for k, (lr, acc) in enumerate(final_addition.items()):
        depths = list(verdicts_by_lr[lr].depths)
        mean = acc.mean(axis=1)
        axes[1].errorbar(
            depths,
            mean,
            yerr=[mean - acc.min(axis=1), acc.max(axis=1) - mean],
            color=f"C{k}",
            marker="o",
            ms=5,
            capsize=3,
            label=f"lr {lr:g}",
        )
    axes[1].axhline(level, color="k", ls=":", lw=0.8)
    axes[1].set(xlabel="depth (layers)", ylabel="addition accuracy at the end", xticks=depths, ylim=(-0.02, 1.02))
    axes[1].legend(fontsize=8)
    return axes


def plot_layer_comparison(comparisons, *, axes=None):
    """The particle picture in the trained network, per depth (one colour each), against
    the layer index (the time of the dynamics; dotted: the trained depth): W2 between the
    pre-trained and fine-tuned token clouds relative to the token norm, the mean cosine
    similarity between tokens, and the mean number of clusters of a 4-token sequence."""
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(11.5, 3.3))
    for k, c in enumerate(comparisons):
        colour = f"C{k}"
        axes[0].plot(c.layers, c.relative_w2, color=colour, label=f"depth {c.depth}")
        axes[1].plot(c.layers, c.cosine_pre, color=colour, ls="--", lw=1)
        axes[1].plot(c.layers, c.cosine_tuned, color=colour)
        axes[2].plot(c.layers, c.clusters_pre, color=colour, ls="--", lw=1)
        axes[2].plot(c.layers, c.clusters_tuned, color=colour)
        for ax in axes:
            ax.axvline(c.depth, color=colour, ls=":", lw=0.8)
    axes[0].set(xlabel="layer", ylabel="W2(pre-trained, LoRA) / token norm")
    axes[1].set(xlabel="layer", ylabel="mean cosine between tokens")
    axes[2].set(xlabel="layer", ylabel="clusters per 4-token input")
    axes[1].plot([], [], color="k", ls="--", lw=1, label="pre-trained")
    axes[1].plot([], [], color="k", label="after LoRA")
    _legend_above(axes)
    return axes


# --------------------------------------------------------------------------------------
# Chapter 7: attention of real models
# --------------------------------------------------------------------------------------
def plot_layer_singular_values(spec, *, ax=None, cap: int | None = None):
    r"""Figs 6, 11-12: the singular values of every layer's :math:`\sum_h A_h`, divided by
    the largest, one line per layer coloured from first (light) to last (dark), on a
    log scale; ``cap`` marks the rank bound of grouped-query attention."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.4))
    sv = spec.layer_qk_singular
    colours = plt.cm.viridis(np.linspace(0.9, 0.1, sv.shape[0]))
    for values, colour in zip(sv, colours):
        ax.plot(np.arange(1, values.size + 1), values / values[0], color=colour, lw=0.9, label=None)
    if cap is not None:
        ax.axvline(cap, color="k", ls=":", lw=1, label=f"rank cap {cap}")
        ax.legend(fontsize=8, loc="lower left")
    ax.set(yscale="log", xlabel="index k", ylabel=r"$\sigma_k / \sigma_1$", title=spec.weights.name)
    return ax


def plot_layer_ranks(spec_by_name: dict, rtols=(1e-2, 1e-3), *, ax=None):
    r"""Fig. 14: the numerical rank of every layer's :math:`\sum_h A_h`, as a fraction of
    d, at the relative precisions ``rtols``, for each model of ``spec_by_name``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.4))
    markers = ["o", "s", "^", "D"]
    for k, (name, spec) in enumerate(spec_by_name.items()):
        d = spec.weights.d
        for rtol, ls in zip(rtols, ["-", "--", ":"]):
            ranks = spec.layer_qk_rank(rtol)
            ax.plot(
                np.arange(ranks.size),
                ranks / d,
                ls=ls,
                marker=markers[k],
                ms=3,
                color=f"C{k}",
                label=f"{name}, rtol {rtol:g}",
            )
        cap = spec.weights.n_kv_heads * spec.weights.head_dim
        if cap < d:
            ax.axhline(cap / d, color=f"C{k}", lw=0.8, ls=":")
    ax.set(xlabel="layer", ylabel="numerical rank / d", ylim=(0, 1.05))
    ax.legend(fontsize=9, loc="lower right")
    return ax


def plot_complex_spectrum(ax, eigenvalues, *, title: str, colour="C0"):
    """Eigenvalues in the complex plane, the unit circle for scale, the top one ringed."""
    eigenvalues = np.asarray(eigenvalues)
    ax.scatter(eigenvalues.real, eigenvalues.imag, s=7, color=colour, alpha=0.7, lw=0)
    top = eigenvalues[np.argmax(np.abs(eigenvalues))]
    ax.scatter([top.real], [top.imag], s=60, facecolor="none", edgecolor="C3", lw=1.2)
    theta = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(theta), np.sin(theta), color="0.6", lw=0.6, ls=":")
    ax.axhline(0, color="0.8", lw=0.5)
    ax.axvline(0, color="0.8", lw=0.5)
    ax.set(xlabel="Re", ylabel="Im", title=title)
    ax.set_aspect("equal", adjustable="datalim")
    few_ticks(ax, nbins=4)
    return ax


def plot_symmetric_qk_histogram(ax, eigenvalues, *, title: str, colour="C3", window=0.5):
    r"""Figs 6 and 11: histogram of the eigenvalues of a head's symmetrised
    :math:`\tfrac12(B_h+B_h^\top)/\sqrt{d_h}`, as the authors draw it: 100 bins on
    [-``window``, ``window``], logarithmic counts (eigenvalues outside the window are
    not drawn; the title says how many)."""
    eigenvalues = np.asarray(eigenvalues)
    outside = int(np.count_nonzero(np.abs(eigenvalues) > window))
    ax.hist(eigenvalues, bins=np.linspace(-window, window, 100), color=colour)
    ax.set(yscale="log", xlabel="eigenvalue", ylabel="count", title=f"{title}\n({outside} outside the window)")
    ax.title.set_fontsize(9)
    return ax


def plot_value_singular_values(weights, layers, *, ax=None):
    r"""Fig. 12: histograms (100 bins, shared range) of the singular values of the
    value projection :math:`W_V` of the given ``layers``, divided by their median."""
    from ..nets.head_spectra import value_singular_values

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.4))
    values = {layer: value_singular_values(weights, layer) for layer in layers}
    values = {layer: sv / np.median(sv) for layer, sv in values.items()}
    top = max(sv.max() for sv in values.values())
    colours = plt.cm.viridis(np.linspace(0.9, 0.1, len(layers)))
    for (layer, sv), colour in zip(values.items(), colours):
        ax.hist(sv, bins=np.linspace(0, top, 100), histtype="step", color=colour, label=f"layer {layer}")
    ax.set(xlabel=r"$\sigma_k$ / median", ylabel="count", title=f"{weights.name}: $W_V$")
    ax.legend(fontsize=9)
    return ax


def plot_layer_shares(spec_by_name: dict, *, ax=None):
    r"""Per layer (as a fraction of the depth), the share of heads whose value map has
    a real positive :math:`\lambda_1` (solid) and with :math:`\mathrm{Re}\,\lambda_1 > 0`
    (dashed), one colour per model of ``spec_by_name``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.4))
    for k, (name, spec) in enumerate(spec_by_name.items()):
        shares = spec.layer_shares()
        depth = np.arange(spec.weights.n_layers) / max(spec.weights.n_layers - 1, 1)
        ax.plot(depth, shares["real_positive"], "o-", ms=3, color=f"C{k}", label=f"{name}: real > 0")
        ax.plot(depth, shares["re_positive"], "s--", ms=3, color=f"C{k}", lw=1, label=f"{name}: Re > 0")
    ax.set(xlabel="layer / (layers - 1)", ylabel=r"share of heads, $\lambda_1$", ylim=(-0.02, 1.02))
    ax.legend(fontsize=9)
    return ax


#: colours of the Thm 5.4 verdict of a head
VERDICT_COLOURS = ["#bfe3b4", "#f4b6b6", "#f9d9a6"]
VERDICT_LABELS = ["hypotheses hold", r"$\lambda_1$ not real and > 0", r"$c_{1,1} \leq 0$ (or no gap)"]


def plot_hypotheses_map(spec, *, ax=None):
    """Every head of a model, layer by layer: whether the hypotheses of Thm 5.4 hold for
    its value map, and if not, the first one that fails."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 5))
    real_positive = (np.abs(spec.top.imag) <= 1e-12) & (spec.top.real > 0)
    verdict = np.where(spec.holds, 0, np.where(~real_positive, 1, 2))
    ax.imshow(verdict, cmap=ListedColormap(VERDICT_COLOURS), vmin=0, vmax=2, aspect="auto", interpolation="nearest")
    ax.set(xlabel="head", ylabel="layer", title=spec.weights.name)
    ax.legend(
        handles=[Patch(color=c, label=lab) for c, lab in zip(VERDICT_COLOURS, VERDICT_LABELS)],
        fontsize=9,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=1,
        frameon=False,
    )
    return ax


# --------------------------------------------------------------------------------------
# Chapter 8: tokens through a repeated stack
# --------------------------------------------------------------------------------------
KIND_COLOURS = {"random words": "C0", "dummy text": "C1", "wikipedia": "C2"}


def plot_depth_similarity(result, *, ax=None, skip_first: bool = True):
    """Fig. 16: mean pairwise cosine similarity of the token states after every layer,
    mean over the texts of each kind with their range as a band; dashed lines where the
    trained stack ends and where each repetition ends."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.4))
    values = result.mean_no_first if skip_first else result.mean
    for kind in result.kinds:
        colour = KIND_COLOURS.get(kind, None)
        _band(ax, result.layers, values[kind].T, colour, f"{kind} ({values[kind].shape[0]} texts)")
    for k in range(1, result.times):
        ax.axvline(k * result.trained_depth, color="k", ls="--" if k == 1 else ":", lw=0.9)
    ax.set(
        xlabel="layer (state after it; 0 = embeddings)",
        ylabel="mean cosine similarity",
        title="without the first token" if skip_first else "all tokens",
        ylim=(min(0, float(np.min([v.min() for v in values.values()]))), 1.0),
    )
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_pass_ends(result, *, axes=None):
    """What happens at the last layer of each pass: the mean similarity (first token left
    out, mean over the texts of each kind) of the states as they are and with the
    model's final norm applied; the relative size of each layer's update and the mean
    cosine between the tokens' updates (all texts pooled)."""
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for kind in result.kinds:
        colour = KIND_COLOURS.get(kind, None)
        axes[0].plot(result.layers, result.mean_no_first[kind].mean(axis=0), color=colour, label=kind)
        axes[0].plot(result.layers, result.normed_no_first[kind].mean(axis=0), color=colour, ls="--", lw=1)
    axes[0].plot([], [], color="k", ls="--", lw=1, label="final norm applied")
    pooled = {
        name: np.concatenate([getattr(result, name)[k] for k in result.kinds])
        for name in ("update_ratio", "update_cosine")
    }
    axes[1].plot(result.layers[1:], pooled["update_ratio"][:, 1:].mean(axis=0), "o-", ms=2.5, color="C4")
    axes[2].plot(result.layers[1:], pooled["update_cosine"][:, 1:].mean(axis=0), "o-", ms=2.5, color="C5")
    labels = ("mean cosine similarity", "||update|| / ||state before||", "mean cosine between updates")
    for ax, label in zip(axes, labels):
        for k in range(1, result.times + 1):
            ax.axvline(k * result.trained_depth, color="k", ls="--" if k == 1 else ":", lw=0.9)
        ax.set(xlabel="layer", ylabel=label)
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=8, loc="lower right")
    return axes


def plot_similarity_histograms(result, kind: str, *, axes=None):
    """Figs 17-18: the distribution of pairwise cosine similarities (first token left
    out, all texts of ``kind`` pooled) at each layer kept in ``result.samples``."""
    layers = sorted(result.samples[kind])
    if axes is None:
        _, axes = plt.subplots(1, len(layers), figsize=(2.6 * len(layers), 2.6), sharex=True)
    bins = np.linspace(-0.5, 1.0, 46)
    for ax, layer in zip(np.ravel(axes), layers):
        values = result.samples[kind][layer]
        ax.hist(values, bins=bins, color=KIND_COLOURS.get(kind, "C0"), density=True)
        ax.axvline(values.mean(), color="k", lw=1, ls="--")
        ax.set(title=f"{kind}, after layer {layer}", xlabel="cosine similarity")
        ax.title.set_fontsize(9)
    np.ravel(axes)[0].set_ylabel("density")
    return axes


# --------------------------------------------------------------------------------------
# Chapter 9: LoRA on a language model
# --------------------------------------------------------------------------------------
def plot_lora_learning(run, *, axes=None, window: int = 20):
    """Training loss per step with its running mean, and held-out accuracy at every
    checkpoint against the accuracy before fine-tuning and chance."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    steps = np.arange(1, run.loss.size + 1)
    axes[0].plot(steps, run.loss, color="0.75", lw=0.7, label="each step")
    if run.loss.size >= window:
        running = np.convolve(run.loss, np.ones(window) / window, mode="valid")
        axes[0].plot(steps[window - 1 :], running, color="C0", lw=1.6, label=f"mean of {window} steps")
    axes[0].set(xlabel="step", ylabel="loss at the answer (nats)", yscale="log")
    axes[0].legend(fontsize=8)
    if run.accuracy_curve:
        at, accuracy = zip(*run.accuracy_curve)
        axes[1].plot(at, accuracy, "o-", color="C2", ms=3, label="held-out accuracy")
    axes[1].axhline(run.accuracy_before, color="k", ls="--", lw=1, label="before fine-tuning")
    axes[1].axhline(0.5, color="0.5", ls=":", lw=1, label="chance")
    axes[1].set(xlabel="step", ylabel="accuracy", ylim=(0.3, 1.0))
    axes[1].legend(fontsize=8, loc="lower right")
    return axes


def plot_update_eigenvalues(run, *, ax=None):
    """The paper's Fig. 15: for every layer, the paths of the nonzero eigenvalues of the
    value-map update over the checkpoints (from 0 at the start), the final ones dotted."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5))
    eig = run.ov_eigenvalues  # (checkpoints, layers, r)
    colours = plt.cm.viridis(np.linspace(0.9, 0.1, eig.shape[1]))
    for layer in range(eig.shape[1]):
        for k in range(eig.shape[2]):
            path = eig[:, layer, k]
            ax.plot(path.real, path.imag, color=colours[layer], lw=0.8, alpha=0.8)
            ax.scatter(path[-1].real, path[-1].imag, color=colours[layer], s=14, zorder=3)
    ax.axhline(0, color="0.8", lw=0.5)
    ax.axvline(0, color="0.8", lw=0.5)
    ax.set(xlabel="Re", ylabel="Im", title="eigenvalues of the value-map update, per layer")
    mappable = plt.cm.ScalarMappable(cmap="viridis_r", norm=plt.Normalize(0, eig.shape[1] - 1))
    ax.figure.colorbar(mappable, ax=ax, label="layer")
    return ax


def plot_update_moduli_by_seed(runs, *, ax=None):
    """Per layer, the largest eigenvalue modulus of the value-map update at the end of
    each run (one line per seed)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.4))
    for k, run in enumerate(runs):
        moduli = np.abs(run.ov_eigenvalues[-1]).max(axis=-1)
        ax.plot(np.arange(moduli.size), moduli, marker="o", ms=3, color=f"C{k}", label=f"seed {run.settings.seed}")
    ax.set(xlabel="layer", ylabel="largest |eigenvalue| of the update")
    ax.legend(fontsize=8)
    return ax
