"""Small results for the panels of chapters 6-9 (lora_clusters.panels), shared by their
tests and by the Chromium tests of their website copies (test_static_panels.py): known
arrays or tiny models, never the committed results, so that a stale store cannot start
a model run."""

import numpy as np

from lora_clusters import scale
from lora_clusters.nets import heads, toy
from lora_clusters.nets.depth import LayerSimilarities
from lora_clusters.nets.head_spectra import head_spectra
from lora_clusters.nets.lm_lora import LoRARun
from lora_clusters.nets.settings import LoRASettings

# chapter 8: a stack of DEPTH layers run TIMES times, two kinds with 4 and 2 texts
DEPTH, TIMES = 3, 2
COUNTS = {"a": 4, "b": 2}
ARRAYS = ("mean", "mean_no_first", "normed", "normed_no_first")
# chapter 9: the checkpoints of the hand-made LoRA runs
CHECKPOINTS = np.array([0, 5, 10, 15])


def toy_runs() -> dict:
    """Chapter 6: two depths, two seeds, fine-tuned at two learning rates (smoke scale)."""
    config = scale.settings("toy", "smoke", depths=(1, 2))
    pretrained = {k: toy.pretrain(config, k, seeds=(0, 1)) for k in config.depths}
    return {
        "lr 1e-3": {k: toy.finetune(pretrained[k], lr=1e-3) for k in config.depths},
        "lr 1e-2": {k: toy.finetune(pretrained[k], lr=1e-2) for k in config.depths},
    }


def random_weights(name, n_layers, n_heads, n_kv_heads, head_dim, d, seed):
    rng = np.random.default_rng(seed)

    def stack(rows, cols):
        return [rng.standard_normal((rows, cols)) for _ in range(n_layers)]

    return heads.AttentionWeights(
        name,
        "llama",
        n_layers,
        n_heads,
        n_kv_heads,
        head_dim,
        d,
        stack(n_heads * head_dim, d),
        stack(n_kv_heads * head_dim, d),
        stack(n_kv_heads * head_dim, d),
        stack(d, n_heads * head_dim),
    )


def head_spectra_of_two_models() -> dict:
    """Chapter 7: a "big" model (4 layers of 4 heads, grouped-query attention with 2
    key/value heads) and a "small" one (2 layers of 3 heads); the seeds give heads of
    every verdict."""
    return {
        "big": head_spectra(random_weights("big", 4, 4, 2, 3, 8, seed=2)),
        "small": head_spectra(random_weights("small", 2, 3, 3, 2, 6, seed=102)),
    }


def small_result() -> LayerSimilarities:
    """Arrays of known, distinct entries: every (array, kind, text, layer) differs."""
    rng = np.random.default_rng(7)
    layers = DEPTH * TIMES + 1
    arrays = {name: {k: rng.uniform(0.05, 0.95, size=(n, layers)) for k, n in COUNTS.items()} for name in ARRAYS}
    ratio = {k: np.c_[np.full(n, np.nan), rng.uniform(0.05, 2.0, size=(n, layers - 1))] for k, n in COUNTS.items()}
    return LayerSimilarities(
        model_name="hand-made",
        trained_depth=DEPTH,
        times=TIMES,
        kinds=list(COUNTS),
        samples={},
        n_tokens={"a": [10, 11, 12, 13], "b": [20, 21]},
        update_ratio=ratio,
        **arrays,
    )


def lm_run(seed: int) -> LoRARun:
    """Four layers, rank 2: eigenvalues that grow along known lines, one complex pair."""
    rng = np.random.default_rng(seed)
    growth = CHECKPOINTS / CHECKPOINTS[-1]
    base = rng.normal(size=(4, 2)) + 0j
    base[2] = [0.8 + 0.3j, 0.8 - 0.3j]
    eigenvalues = growth[:, None, None] * base[None]
    settings = LoRASettings(
        model="tiny",
        steps=15,
        batch_size=1,
        n_test=40,
        checkpoint_every=5,
        seed=seed,
        grad_accumulation=3,
        curve_examples=20,
    )
    return LoRARun(
        settings=settings,
        model_name="tiny",
        loss=np.linspace(1.0, 0.2, 15),
        checkpoints=CHECKPOINTS,
        ov_eigenvalues=eigenvalues,
        v_eigenvalues=None,
        accuracy_before=0.6 + 0.01 * seed,
        accuracy_after=0.9,
        test_loss_before=1.0,
        test_loss_after=0.3,
        n_train=100,
        n_test=40,
        seconds=1.0,
        accuracy_curve=[(5, 0.7), (10, 0.8), (15, 0.85 + 0.01 * seed)],
    )
