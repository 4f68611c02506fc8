r"""LoRA on a language model's value projections, and the eigenvalues it learns (App. G.4).

The paper fine-tuned Llama-2-7B with LoRA of rank 2 on the value matrices only
(:math:`\alpha = 32`, dropout 0.05, learning rate 2e-4) to answer POSITIVE or NEGATIVE
to IMDb reviews, and followed the two eigenvalues of the update
:math:`\tilde V - V` of every layer during training (its Fig. 15).  Here:

- the data are the 10,605 movie-review snippets of Hutto and Gilbert (2014), labelled
  by the sign of their mean human rating (``make setup`` fetches them;
  :func:`review_snippets`); a reader with IMDb points ``LORA_BOOK_DATA`` at it
  (``make gpu DATA=...``; :func:`chapter_data`, :func:`imdb_reviews`);
- the model answers with one label token after a fixed prompt; the loss is the
  cross-entropy of the next token at the answer position, and accuracy compares the
  logits of the two label tokens;
- the update of layer :math:`\ell` is :math:`\Delta V = (\alpha/r)\,BA`, with
  :math:`A\in\mathbb R^{r\times d}` and :math:`B\in\mathbb R^{G d_h\times r}` (peft's
  ``lora_A``, ``lora_B``).  The paper plots the eigenvalues of :math:`BA` without the
  factor :math:`\alpha/r = 16`; we include it.  When :math:`\Delta V` is square (no
  grouped-query attention, as in Llama-2-7B) its nonzero eigenvalues are those of the
  r x r matrix :math:`(\alpha/r)AB`.  For grouped-query attention :math:`\Delta V` is not
  square; the update of the layer's value map :math:`\sum_h W_O^h W_V^{g(h)}` is
  :math:`O_G\,\Delta V` (see :meth:`~lora_clusters.nets.heads.AttentionWeights.layer_factors`),
  whose nonzero eigenvalues are those of :math:`(\alpha/r)\,A\,O_G\,B`.  Both are
  tracked when they exist.
"""

from __future__ import annotations

import csv
import os
import random
import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import store
from ..progress import progress_bar
from .assets import asset_dir
from .loading import decoder_layers
from .settings import LoRASettings  # its values at each scale: lora_clusters.scale.SETTINGS

__all__ = [
    "DATA_ENV",
    "EXPERIMENT",
    "LabelledTexts",
    "LoRARun",
    "LoRASettings",
    "chapter_data",
    "imdb_reviews",
    "review_snippets",
    "stored_run",
    "stored_runs",
    "train_value_lora",
]

#: an IMDb copy that replaces the review snippets (``make gpu DATA=...``)
DATA_ENV = "LORA_BOOK_DATA"
SNIPPETS_FILE = "texts/movie-review-snippets.tsv"
PROMPT = "Review: {text}\nSentiment:"
LABEL_WORDS = (" negative", " positive")


def review_snippets() -> list[tuple[str, int]]:
    """The movie-review snippets as (text, label) pairs, label 1 for a positive mean
    rating and 0 for a negative one (snippets rated exactly 0 are left out)."""
    path = asset_dir() / SNIPPETS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no review snippets at {path}: run `make setup` (or `python -m lora_book.models`)")
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        rating = float(parts[1])
        if rating != 0:
            pairs.append((parts[2].strip(), int(rating > 0)))
    return pairs


_LABEL_NAMES = {"positive": 1, "pos": 1, "1": 1, "negative": 0, "neg": 0, "0": 0}


def imdb_reviews(path) -> list[tuple[str, int]]:
    """The IMDb reviews of Maas et al. (2011) as (text, label) pairs, label 1 for
    positive, from either of the two usual copies:

    - the Stanford ``aclImdb`` folder (or a folder that contains it), whose
      ``train/pos``, ``train/neg``, ``test/pos`` and ``test/neg`` hold one review per
      ``.txt`` file (both official splits are read: the chapter draws its own);
    - a CSV file with a text column (``review`` or ``text``) and a label column
      (``sentiment`` or ``label``: positive/negative, pos/neg or 1/0).

    The HTML line breaks of the reviews (``<br />``) become spaces."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no IMDb data at {path} (LORA_BOOK_DATA / DATA=): no such file or folder")
    if path.is_dir():
        pairs = _imdb_folder(path / "aclImdb" if (path / "aclImdb").is_dir() else path)
    elif path.suffix.lower() == ".csv":
        pairs = _imdb_csv(path)
    else:
        raise ValueError(f"IMDb data must be an aclImdb folder or a .csv file, got {path}")
    if not pairs:
        raise ValueError(f"no reviews found in {path}")
    return pairs


def _clean_review(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<br\s*/?>", " ", text)).strip()


def _imdb_folder(root: Path) -> list[tuple[str, int]]:
    folders = [root / split / kind for split in ("train", "test") for kind in ("neg", "pos")]
    missing = [str(f.relative_to(root)) for f in folders if not f.is_dir()]
    if missing:
        raise ValueError(f"{root} is not an aclImdb folder: it lacks {', '.join(missing)}")
    return [
        (_clean_review(file.read_text(encoding="utf-8")), int(folder.name == "pos"))
        for folder in folders
        for file in sorted(folder.glob("*.txt"))
    ]


def _imdb_csv(path: Path) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = {name.strip().lower(): name for name in reader.fieldnames or []}
        text_key = columns.get("review") or columns.get("text")
        label_key = columns.get("sentiment") or columns.get("label")
        if text_key is None or label_key is None:
            raise ValueError(
                f"{path} needs a 'review' (or 'text') and a 'sentiment' (or 'label') column, got {reader.fieldnames}"
            )
        pairs = []
        for line, row in enumerate(reader, start=2):
            label = _LABEL_NAMES.get(str(row[label_key]).strip().lower())
            if label is None:
                raise ValueError(f"{path}, line {line}: unknown label {row[label_key]!r} (positive/negative or 1/0)")
            pairs.append((_clean_review(row[text_key]), label))
    return pairs


@dataclass(frozen=True)
class LabelledTexts:
    """(text, label) pairs and where they come from."""

    name: str
    pairs: list

    @property
    def positive(self) -> int:
        return sum(label for _, label in self.pairs)


def chapter_data() -> LabelledTexts:
    """The data of the LoRA chapter: IMDb from ``$LORA_BOOK_DATA`` when that is set
    (:func:`imdb_reviews`), else the movie-review snippets (:func:`review_snippets`)."""
    path = os.environ.get(DATA_ENV, "").strip()
    if path:
        return LabelledTexts("IMDb reviews (Maas et al. 2011)", imdb_reviews(path))
    return LabelledTexts("movie-review snippets (Hutto and Gilbert 2014)", review_snippets())


@dataclass
class LoRARun:
    r"""Result of :func:`train_value_lora`.

    ``loss`` (steps,) is the training loss of every step; ``checkpoints`` the steps at
    which the updates were read; ``ov_eigenvalues`` (checkpoints, layers, r) the nonzero
    eigenvalues of the value-map update :math:`(\alpha/r)\,O_G B A` of every layer;
    ``v_eigenvalues`` the same for :math:`\Delta V` itself when it is square (else None);
    ``accuracy_before``/``accuracy_after`` the held-out accuracy; ``n_train``,
    ``n_test`` the sizes of the two splits; ``examples_seen`` = steps x effective batch;
    ``factors`` the final LoRA factors (A, B) of every layer (:attr:`delta_v`)."""

    settings: LoRASettings
    model_name: str
    loss: np.ndarray
    checkpoints: np.ndarray
    ov_eigenvalues: np.ndarray
    v_eigenvalues: np.ndarray | None
    accuracy_before: float
    accuracy_after: float
    test_loss_before: float
    test_loss_after: float
    n_train: int
    n_test: int
    seconds: float
    accuracy_curve: list = field(default_factory=list)
    factors: list = field(default_factory=list)

    @property
    def delta_v(self) -> list[np.ndarray]:
        r"""The final update :math:`\Delta V = (\alpha/r)\,BA` of every layer's value
        projection, from the stored factors (A (r, d), B (G d_h, r)) of each layer."""
        scaling = self.settings.alpha / self.settings.rank
        return [scaling * B @ A for A, B in self.factors]

    @property
    def examples_seen(self) -> int:
        return self.settings.steps * self.settings.effective_batch

    def glue_values(self) -> dict:
        """The numbers the chapter quotes, by name."""
        s = self.settings
        final = self.ov_eigenvalues[-1]
        return {
            "lm_model": self.model_name,
            "lm_steps": s.steps,
            "lm_batch": s.batch_size,
            "lm_accumulation": s.grad_accumulation,
            "lm_effective_batch": s.effective_batch,
            "lm_seed": s.seed,
            "lm_examples": self.examples_seen,
            "lm_train_size": self.n_train,
            "lm_test_size": self.n_test,
            "lm_acc_before": self.accuracy_before,
            "lm_acc_after": self.accuracy_after,
            "lm_test_loss_before": self.test_loss_before,
            "lm_test_loss_after": self.test_loss_after,
            "lm_loss_start": float(self.loss[0]),
            "lm_loss_first": float(self.loss[: max(1, s.checkpoint_every)].mean()),
            "lm_loss_first_interval_end": float(
                self.loss[max(0, s.checkpoint_every // 2) : max(1, s.checkpoint_every)].mean()
            ),
            "lm_acc_first_checkpoint": float(self.accuracy_curve[0][1]) if self.accuracy_curve else float("nan"),
            "lm_first_checkpoint": int(self.checkpoints[1]) if self.checkpoints.size > 1 else 0,
            "lm_loss_last": float(self.loss[-max(1, s.checkpoint_every) :].mean()),
            "lm_minutes": self.seconds / 60,
            "lm_eig_max": float(np.abs(final).max()),
            "lm_eig_complex": int((np.abs(final.imag) > 1e-9 * (np.abs(final) + 1e-300)).sum()),
            "lm_eig_total": int(final.size),
        }


def _label_ids(tokenizer) -> list[int]:
    ids = [tokenizer(word, add_special_tokens=False)["input_ids"] for word in LABEL_WORDS]
    if any(len(i) != 1 for i in ids):
        raise ValueError(f"the label words {LABEL_WORDS} must be single tokens for this tokenizer, got {ids}")
    return [i[0] for i in ids]


def _prompts(tokenizer, items, max_tokens: int) -> list[str]:
    """The prompt of every (text, label) pair, its text cut at a token boundary so that
    the prompt fits in ``max_tokens`` and still ends with the answer cue."""
    budget = max_tokens - len(tokenizer(PROMPT.format(text=""))["input_ids"]) - 1
    if budget < 1:
        raise ValueError(f"max_tokens = {max_tokens} leaves no room for a text in the prompt {PROMPT!r}")
    prompts = []
    for text, _ in items:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        prompts.append(PROMPT.format(text=tokenizer.decode(ids[:budget]).strip() if len(ids) > budget else text))
    return prompts


def _encode(tokenizer, items, max_tokens: int):
    # left padding and left truncation: the answer position is the last one of every row
    tokenizer.truncation_side = "left"
    return tokenizer(
        _prompts(tokenizer, items, max_tokens),
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=max_tokens,
        padding_side="left",
    )


def _evaluate(model, tokenizer, items, label_ids, max_tokens: int, batch: int = 50) -> tuple[float, float]:
    """Held-out accuracy (the larger of the two label logits) and mean loss."""
    import torch

    model.eval()
    correct, total_loss = 0, 0.0
    labels = torch.tensor(label_ids)
    with torch.no_grad():
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            encoded = _encode(tokenizer, chunk, max_tokens).to(next(model.parameters()).device)
            logits = model(**encoded).logits[:, -1, :].float().cpu()
            y = torch.tensor([label for _, label in chunk])
            correct += int((logits[:, labels].argmax(dim=1) == y).sum())
            total_loss += float(torch.nn.functional.cross_entropy(logits, labels[y], reduction="sum"))
    return correct / len(items), total_loss / len(items)


def _update_eigenvalues(model, weights, scaling: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Nonzero eigenvalues of every layer's value-map update and, if square, of Delta V."""
    ov, square = [], []
    for layer_index, layer in enumerate(decoder_layers(model)):
        v_proj = layer.self_attn.v_proj
        A = v_proj.lora_A["default"].weight.detach().double().cpu().numpy()  # (r, d)
        B = v_proj.lora_B["default"].weight.detach().double().cpu().numpy()  # (G d_h, r)
        O_grouped = weights.layer_factors(layer_index)["O_grouped"]  # (d, G d_h)
        ov.append(np.sort_complex(np.linalg.eigvals(scaling * A @ O_grouped @ B)))
        if B.shape[0] == A.shape[1]:
            square.append(np.sort_complex(np.linalg.eigvals(scaling * A @ B)))
    return np.array(ov), (np.array(square) if square else None)


def _shuffled_split(data, settings: LoRASettings) -> tuple[list, list]:
    """(train, test): ``data`` (default :func:`chapter_data`) shuffled with
    ``settings.seed``, its first ``settings.n_test`` pairs held out."""
    if data is None:
        data = chapter_data()
    data = list(data.pairs if isinstance(data, LabelledTexts) else data)
    if len(data) < settings.n_test + 2 * settings.effective_batch:
        raise ValueError(f"data has {len(data)} pairs, fewer than n_test + two steps' examples")
    rng = random.Random(settings.seed)
    data = data[:]
    rng.shuffle(data)
    return data[settings.n_test :], data[: settings.n_test]


def _with_value_lora(model, settings: LoRASettings):
    """``model`` wrapped by peft with a LoRA of every value projection (seeded)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(settings.seed)
    config = LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout, target_modules=["v_proj"]
    )
    with warnings.catch_warnings():
        # peft asks transformers a deprecated question; nothing for the reader to act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)


def _training_step(tuned, optimizer, tokenizer, batches, labels, settings: LoRASettings, device) -> float:
    """One AdamW step on the cross-entropy of the label token, its gradient the mean
    over the micro-batches ``batches`` (gradient accumulation), clipped to norm
    ``settings.max_grad_norm``; returns the mean loss."""
    import torch

    tuned.train()
    optimizer.zero_grad()
    total = 0.0
    for batch in batches:
        encoded = _encode(tokenizer, batch, settings.max_tokens).to(device)
        logits = tuned(**encoded).logits[:, -1, :].float()
        target = labels[torch.tensor([label for _, label in batch])].to(device)
        loss = torch.nn.functional.cross_entropy(logits, target) / len(batches)
        loss.backward()
        total += float(loss.detach())
    if settings.max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_([p for p in tuned.parameters() if p.requires_grad], settings.max_grad_norm)
    optimizer.step()
    return total


def _lora_factors(tuned) -> list[tuple[np.ndarray, np.ndarray]]:
    """The LoRA factors (A (r, d), B (G d_h, r)) of every layer's value projection."""
    factors = []
    for layer in decoder_layers(tuned):
        v_proj = layer.self_attn.v_proj
        A = v_proj.lora_A["default"].weight.detach().double().cpu().numpy()
        B = v_proj.lora_B["default"].weight.detach().double().cpu().numpy()
        factors.append((A, B))
    return factors


@dataclass
class _Trace:
    """What the training loop records: losses, checkpoints, eigenvalues, accuracy."""

    losses: list = field(default_factory=list)
    checkpoints: list = field(default_factory=lambda: [0])
    ov: list = field(default_factory=list)
    square: list = field(default_factory=list)
    curve: list = field(default_factory=list)
    seconds: float = 0.0

    def read_eigenvalues(self, tuned, weights, scaling: float) -> None:
        eig = _update_eigenvalues(tuned, weights, scaling)
        self.ov.append(eig[0])
        self.square.append(eig[1])


def _train(tuned, tokenizer, train, test, label_ids, weights, settings: LoRASettings, progress: bool) -> _Trace:
    """The training loop of :func:`train_value_lora`: batches walk through ``train``;
    every ``checkpoint_every`` steps (and at the end) the updates' eigenvalues and the
    accuracy on the first ``curve_examples`` held-out pairs are read."""
    import time

    import torch

    trainable = [p for p in tuned.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    labels = torch.tensor(label_ids)
    scaling = settings.alpha / settings.rank
    trace = _Trace()
    trace.read_eigenvalues(tuned, weights, scaling)
    device = next(tuned.parameters()).device
    bar = progress_bar(settings.steps, "LoRA steps", unit="step", enabled=progress)
    start = time.perf_counter()
    size, per_step = settings.batch_size, settings.effective_batch
    for step in range(1, settings.steps + 1):
        begin = ((step - 1) * per_step) % (len(train) - per_step)
        batches = [train[begin + k * size : begin + (k + 1) * size] for k in range(settings.grad_accumulation)]
        trace.losses.append(_training_step(tuned, optimizer, tokenizer, batches, labels, settings, device))
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            trace.checkpoints.append(step)
            trace.read_eigenvalues(tuned, weights, scaling)
            subset = test[: min(settings.curve_examples, len(test))]
            trace.curve.append((step, _evaluate(tuned, tokenizer, subset, label_ids, settings.max_tokens)[0]))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    trace.seconds = time.perf_counter() - start
    return trace


def train_value_lora(model, tokenizer, settings: LoRASettings, *, data=None, name: str = "", progress: bool = False):
    """Fine-tune ``model`` with peft LoRA on its value projections (``settings``), on
    ``data`` (default :func:`chapter_data`) split into ``settings.n_test`` held-out
    pairs and the rest; returns a :class:`LoRARun`.  The batches walk through a shuffled
    training split (seeded), and every ``checkpoint_every`` steps the updates'
    eigenvalues are read (and the held-out accuracy on a 200-example subset)."""
    from .heads import attention_weights

    if model.config.model_type != "llama":
        raise ValueError(f"a Llama-family decoder was expected, got a {model.config.model_type!r} model")
    train, test = _shuffled_split(data, settings)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    label_ids = _label_ids(tokenizer)
    weights = attention_weights(model, name)  # W_O is frozen: read it once
    accuracy_before, loss_before = _evaluate(model, tokenizer, test, label_ids, settings.max_tokens)
    tuned = _with_value_lora(model, settings)
    trace = _train(tuned, tokenizer, train, test, label_ids, weights, settings, progress)
    factors = _lora_factors(tuned)
    accuracy_after, loss_after = _evaluate(tuned, tokenizer, test, label_ids, settings.max_tokens)
    return LoRARun(
        settings=settings,
        model_name=name or model.config.name_or_path,
        loss=np.array(trace.losses),
        checkpoints=np.array(trace.checkpoints),
        ov_eigenvalues=np.array(trace.ov),
        v_eigenvalues=None if trace.square[0] is None else np.array(trace.square),
        accuracy_before=accuracy_before,
        accuracy_after=accuracy_after,
        test_loss_before=loss_before,
        test_loss_after=loss_after,
        n_train=len(train),
        n_test=len(test),
        seconds=trace.seconds,
        accuracy_curve=trace.curve,
        factors=factors,
    )


#: the result store's folder of Chapter 9's runs, and the code that computes them
EXPERIMENT = "lm_lora"
CODE = ("lora_clusters.nets.lm_lora",)


def stored_run(
    settings: LoRASettings, data: LabelledTexts, scale_name: str, *, progress: bool = False, name: str = "run"
) -> LoRARun:
    """:func:`train_value_lora` of ``settings.model`` on ``data``: from the result store
    when this module (and what it imports) is unchanged, else trained now (model loaded,
    torch threads of :func:`~lora_clusters.nets.runtime.threads`) and stored.  The key
    holds the settings and the data's name, size and number of positive labels."""

    def compute():
        from .loading import load_with_tokenizer
        from .runtime import threads

        model, tokenizer, name = load_with_tokenizer(settings.model)
        with threads():
            return train_value_lora(model, tokenizer, settings, data=data, name=name, progress=progress)

    key = {"settings": settings, "data": data.name, "examples": len(data.pairs), "positive": data.positive}
    return store.load_or_compute(EXPERIMENT, key, compute, code=CODE, scale_name=scale_name, name=name)


def stored_runs(
    settings: LoRASettings, data: LabelledTexts, scale_name: str, seeds=(0, 1, 2), *, progress: bool = False
) -> list[LoRARun]:
    """:func:`stored_run` once per seed (the seed draws the held-out split, the order
    of the training examples and LoRA's initial A): one stored result per seed."""
    return [
        stored_run(replace(settings, seed=int(s)), data, scale_name, progress=progress, name=f"run-seed-{int(s)}")
        for s in seeds
    ]
