"""The attention-only toy transformer (App. G.1): training, the batched trainer, and LoRA
through peft, each against an independent computation."""

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from lora_clusters import scale  # noqa: E402
from lora_clusters.nets import runtime, toy  # noqa: E402

SMOKE = scale.settings("toy", "smoke")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One torch thread for the library and for the reference computations alike: with
    several, reductions may be summed in another order, and Adam amplifies the rounding."""
    monkeypatch.setenv(runtime.ENV, "1")
    with runtime.threads(1):
        yield


def test_tiny_configuration_learns_addition_well_above_chance():
    result = toy.pretrain(SMOKE, depth=2)
    final = result.final()
    chance = 1.0 / SMOKE.p
    # fits the training pairs: all of them on one CPU, all but one of the 97 on another (the
    # trajectory's last digits follow the CPU's vector instructions, and Adam amplifies them)
    assert final["train"].min() >= 0.98
    assert final["all"].min() >= 0.9  # and most of all p^2 pairs
    assert final["test"].min() >= 4 * chance  # held-out pairs: well above chance
    assert result.train_loss[-1].max() < 0.1 * result.train_loss[0].min()


def test_stack_computes_what_the_module_computes():
    models = [toy.initial_model(SMOKE.p, SMOKE.d, 3, seed) for seed in (0, 1)]
    stack = toy.Stack.from_models(models)
    data = toy.arithmetic_data(SMOKE.p, "-")
    for m, model in enumerate(models):
        torch.testing.assert_close(stack.logits(data.tokens)[m], model(data.tokens), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            stack.residual_stream(data.tokens, 6)[:, m], model.residual_stream(data.tokens, 6), rtol=1e-5, atol=1e-5
        )
        # and back: the member as a module is the same model
        torch.testing.assert_close(stack.model(m)(data.tokens), model(data.tokens))
    # one seed, one start: the parameters do not depend on the depth
    deep = toy.initial_model(SMOKE.p, SMOKE.d, 8, 0)
    assert all(torch.equal(a, b) for a, b in zip(deep.parameters(), models[0].parameters()))


def test_stacked_adamw_is_torch_adamw_model_by_model():
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    targets = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    ours = start.clone().requires_grad_(True)
    opt = toy.StackedAdamW([ours], torch.full((3,), 1e-2, dtype=torch.float64), betas=(0.9, 0.98), weight_decay=1.0)
    theirs = [start[m].clone().requires_grad_(True) for m in range(3)]
    ref = torch.optim.AdamW(theirs, lr=1e-2, betas=(0.9, 0.98), weight_decay=1.0)
    for _ in range(25):
        opt.zero_grad()
        ((ours - targets) ** 3).abs().sum().backward()
        opt.step()
        ref.zero_grad()
        sum(((t - targets[m]) ** 3).abs().sum() for m, t in enumerate(theirs)).backward()
        ref.step()
    torch.testing.assert_close(ours.detach(), torch.stack([t.detach() for t in theirs]), rtol=1e-12, atol=1e-12)


def test_batched_trainer_equals_training_each_model_alone():
    config = scale.settings("toy", "smoke", epochs=30)
    together = toy.pretrain(config, 2, seeds=(0, 1, 2), dtype=torch.float64)
    alone = toy.pretrain(config, 2, seeds=(1,), dtype=torch.float64)
    for name, value in together.stack.params.items():
        torch.testing.assert_close(value[1], alone.stack.params[name][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(together.train_loss[:, 1], alone.train_loss[:, 0], rtol=1e-10)
    tuned_together = toy.finetune(together, epochs=10)
    tuned_alone = toy.finetune(alone, epochs=10)
    torch.testing.assert_close(tuned_together.lora_B[1], tuned_alone.lora_B[0], rtol=1e-10, atol=1e-12)


def _reference_pretrain(config, depth, seed, dtype):
    """One model trained the straightforward way: the module, torch.optim.AdamW (with the
    cosine rate set by hand and the gradient clipped with clip_grad_norm_), the
    cross-entropy of all pairs averaged over the training mask; and per epoch the
    accuracies of that forward before the step."""
    data = toy.arithmetic_data(config.p, "+")
    mask = data.split(config.train_fraction, seed)
    model = toy.initial_model(config.p, config.d, depth, seed).to(dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    curves = []
    for epoch in range(config.epochs):
        lr = config.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * epoch / config.epochs)))
        for group in opt.param_groups:
            group["lr"] = lr
        logits = model(data.tokens)
        loss = torch.nn.functional.cross_entropy(logits[mask], data.targets[mask])
        opt.zero_grad()
        loss.backward()
        # StackedAdamW's clip: factor min(1, clip / (norm + 1e-6)), as clip_grad_norm_
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
        correct = (logits.argmax(-1) == data.targets).to(dtype)
        curves.append(
            [float(loss.detach()), float(correct[mask].mean()), float(correct[~mask].mean()), float(correct.mean())]
        )
    return model, np.array(curves)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_pretrain_is_the_straightforward_training_loop(dtype, atol):
    """The trainer (forward and backward on the training pairs only, products
    re-associated, seeds batched) against the module trained on its own by torch's
    AdamW: the same parameters and curves after 30 epochs of the smoke configuration
    (cosine schedule, clipping, weight decay)."""
    config = scale.settings("toy", "smoke", epochs=30, schedule="cosine")
    ours = toy.pretrain(config, 2, seeds=(0, 1), dtype=dtype)
    for m, seed in enumerate((0, 1)):
        model, curves = _reference_pretrain(config, 2, seed, dtype)
        reference = toy.Stack.from_models([model]).params
        for name, value in ours.stack.params.items():
            torch.testing.assert_close(value[m], reference[name][0], rtol=0, atol=atol)
        np.testing.assert_allclose(ours.train_loss[:, m], curves[:, 0], rtol=0, atol=atol)
        # accuracies: counts of pairs, equal unless a logit ties within rounding
        for k, key in enumerate(("train_acc", "test_acc", "all_acc"), start=1):
            np.testing.assert_allclose(getattr(ours, key)[:, m], curves[:, k], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.epochs(), np.arange(30))


def test_evaluating_every_k_epochs_records_the_same_values_at_those_epochs():
    config = scale.settings("toy", "smoke", epochs=30)
    every = toy.pretrain(config, 2, seeds=(0, 1), dtype=torch.float64)
    sparse = toy.pretrain(replace(config, eval_every=7), 2, seeds=(0, 1), dtype=torch.float64)
    np.testing.assert_array_equal(sparse.epochs(), [0, 7, 14, 21, 28, 29])
    for key in ("train_loss", "train_acc", "test_acc", "all_acc", "lr"):
        np.testing.assert_array_equal(getattr(sparse, key), getattr(every, key)[sparse.epochs()])
    for name, value in sparse.stack.params.items():
        assert torch.equal(value, every.stack.params[name])  # evaluating does not change the training
    with pytest.raises(ValueError, match="eval_every"):
        replace(config, eval_every=0)


def _peft_model(model, config):
    lora = peft.LoraConfig(
        r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules=["value"], bias="none"
    )
    return peft.get_peft_model(model, lora)


def test_peft_lora_touches_only_the_value_matrix():
    config, d = SMOKE, SMOKE.d
    model = toy.initial_model(config.p, d, 2, seed=0).double()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    wrapped = _peft_model(model, config)
    trainable = [p for p in wrapped.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trainable) == 2 * config.lora_rank * d  # A (r, d) and B (d, r)
    data = toy.arithmetic_data(config.p, "-")
    opt = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.0)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(wrapped(data.tokens), data.targets).backward()
        opt.step()
    layer = wrapped.base_model.model.attention.value
    A, B = layer.lora_A["default"].weight.detach(), layer.lora_B["default"].weight.detach()
    assert B.abs().max() > 0  # it trained
    merged = wrapped.merge_and_unload()
    after = merged.state_dict()
    assert set(after) == set(before)
    for name, value in before.items():
        if name == "attention.value.weight":
            torch.testing.assert_close(
                after[name], value + (config.lora_alpha / config.lora_rank) * B @ A, rtol=1e-12, atol=1e-12
            )
        else:
            assert torch.equal(after[name], value), name  # bit-identical


@pytest.mark.parametrize(
    "changes",
    [
        {},  # alpha / r = 1
        {"lora_alpha": 2.0},  # alpha / r = 0.5, the authors' (8 at r = 16)
        {"lora_alpha": 12.0, "lora_betas": (0.9, 0.98), "lora_weight_decay": 0.01, "sub_split": "independent"},
    ],
    ids=["alpha-over-r-1", "alpha-over-r-0.5", "authors-optimiser-3"],
)
def test_batched_lora_is_peft_lora(changes):
    """One model fine-tuned by :func:`toy.finetune` and by peft with torch's AdamW, from
    the same factors and on the same split: the same factors after training, for
    alpha / r = 1 and != 1 (a missing or doubled scaling fails) and for the authors'
    optimiser settings."""
    config = scale.settings("toy", "smoke", epochs=40, lora_epochs=15, lora_lr=3e-3, **changes)
    pre = toy.pretrain(config, 2, seeds=(0,), dtype=torch.float64)
    wrapped = _peft_model(pre.stack.model(0).double(), config)
    layer = wrapped.base_model.model.attention.value
    A0, B0 = layer.lora_A["default"].weight.detach().clone(), layer.lora_B["default"].weight.detach().clone()
    B0 += 0.01  # a nonzero start, so that the first step moves A too
    with torch.no_grad():
        layer.lora_B["default"].weight.copy_(B0)
    ours = toy.finetune(pre, init=(A0[None], B0[None]))
    data = toy.arithmetic_data(config.p, "-")
    mask = toy.subtraction_masks(config, (0,))[0]
    trainable = [layer.lora_A["default"].weight, layer.lora_B["default"].weight]
    opt = torch.optim.AdamW(
        trainable, lr=config.lora_lr, betas=config.lora_betas, weight_decay=config.lora_weight_decay
    )
    for _ in range(config.lora_epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(wrapped(data.tokens[mask]), data.targets[mask]).backward()
        opt.step()
    # Adam divides by sqrt(v): float64 rounding in a near-zero gradient component (the two
    # losses are summed in different orders) moves that component by up to ~1e-7, while the
    # factors moved by ~1e-2: agreement to 1e-5 of the change
    moved = (ours.lora_A[0] - A0).abs().max()
    assert moved > 1e-3
    torch.testing.assert_close(ours.lora_A[0], trainable[0].detach(), rtol=0, atol=1e-5 * float(moved))
    torch.testing.assert_close(ours.lora_B[0], trainable[1].detach(), rtol=0, atol=1e-5 * float(moved))
    with torch.no_grad():
        final_loss = torch.nn.functional.cross_entropy(wrapped(data.tokens[mask]), data.targets[mask])
    # the factors agree to ~1e-7, so the loss to ~1e-9 relative; rounding in vectorised
    # reductions varies between runs, hence a margin of a hundred
    np.testing.assert_allclose(ours.sub_loss[-1, 0], float(final_loss), rtol=1e-7)
    assert math.isclose(ours.scaling, config.lora_alpha / config.lora_rank)
    # peft merges the same update into W_V
    merged = wrapped.merge_and_unload().attention.value.weight.detach()
    value = pre.stack.params["value"][0].double()
    torch.testing.assert_close(merged - value, ours.value_update()[0].double(), rtol=0, atol=1e-5 * float(moved))


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: toy.ToyConfig(p=120, vocab_size=116), "p"),
        (lambda: toy.ToyConfig(d=8, lora_rank=9), "lora_rank"),
        (lambda: toy.ToyConfig(depths=(2, 0)), "depths"),
        (lambda: toy.ToyConfig(depths=(2.5,)), "depths"),
        (lambda: toy.ToyConfig(train_fraction=1.0), "train_fraction"),
        (lambda: toy.pretrain(SMOKE, depth=100), "depth"),
        (lambda: scale.settings("toy", "huge"), "scale_name"),
        (lambda: scale.settings("toys"), "experiment"),
        (lambda: toy.arithmetic_data(7, "*"), "op"),
    ],
)
def test_bad_configurations_raise_clear_errors(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_unknown_scale_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv(scale.ENV, "laptop")
    with pytest.raises(ValueError, match=f"{scale.ENV} must be one of smoke, cpu, gpu, got 'laptop'"):
        scale.current()
    monkeypatch.setenv(scale.ENV, " Smoke ")
    assert scale.settings("toy") == scale.SETTINGS["toy"]["smoke"]
    monkeypatch.delenv(scale.ENV)
    assert scale.current() == "cpu" and scale.requested() is None


def test_outlier_count_and_excess_of_the_study_match_the_dense_spectra():
    """Chapter 6's outlier columns, against eigenvalues computed here from the weights."""
    from lora_clusters.nets import toy_study

    config = scale.settings("toy", "smoke", depths=(2,))
    study = toy_study.ToyStudy(config, {}, {})
    study.pretrained[2] = toy.pretrain(config, 2, seeds=(0, 1))
    study.finetuned[2] = toy.finetune(study.pretrained[2])
    rows = toy_study.hypotheses_rows(study)
    assert len(rows) == 2
    for m, row in enumerate(rows):
        P = {k: v[m].double().numpy() for k, v in study.pretrained[2].stack.params.items()}
        delta = study.finetuned[2].value_update()[m].double().numpy()
        radius = np.abs(np.linalg.eigvals(P["output"] @ P["value"])).max()
        after = np.abs(np.linalg.eigvals(P["output"] @ (P["value"] + delta)))
        outside = after[after > radius * (1 + 1e-9)]
        assert row["outliers after LoRA"] == outside.size
        expected = outside.max() / radius - 1 if outside.size else 0.0
        assert row["outside by"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # this small run creates no outlier: push the top eigenvalue out by 20% and another to the rim

    spectra_ = toy_study.value_spectra(study.pretrained[2], 0, study.finetuned[2])
    ov = spectra_.ov[np.argsort(-np.abs(spectra_.ov))]
    moved = ov.copy()
    moved[0] *= 1.2
    moved[1] *= abs(ov[0]) / abs(ov[1])  # exactly on the rim: not an outlier
    count, excess = replace(spectra_, ov=ov, ov_tuned=moved).outliers()
    assert count == 1 and excess == pytest.approx(0.2, rel=1e-12)


def test_nested_subtraction_pairs_are_addition_training_pairs():
    """ "nested": the subtraction training pairs are a subset of the addition training
    pairs (the first of the same permutation); "independent": they are not."""
    config = scale.settings("toy", "smoke", train_fraction=0.7, sub_train_fraction=0.4)
    addition = toy.arithmetic_data(config.p, "+").split(config.train_fraction, 3)
    nested = toy.subtraction_masks(config, (3,))[0]
    independent = toy.subtraction_masks(replace(config, sub_split="independent"), (3,))[0]
    assert nested.sum() == independent.sum() == round(0.4 * config.p**2)
    assert bool((nested & ~addition).sum() == 0)
    assert int((independent & ~addition).sum()) > 0


def test_authors_initialisation_draws_the_authors_scales():
    """embedding N(0, 1/d), unembedding N(0, 1/p): the sample standard deviations."""
    model = toy.initial_model(113, 128, 2, seed=0, init="authors")
    assert model.embed.weight.std().item() == pytest.approx(1 / math.sqrt(128), rel=0.03)
    assert model.unembed.weight.std().item() == pytest.approx(1 / math.sqrt(113), rel=0.03)
    torch_default = toy.initial_model(113, 128, 2, seed=0)
    assert torch_default.embed.weight.std().item() == pytest.approx(1.0, rel=0.03)
    with pytest.raises(ValueError, match="init"):
        toy.initial_model(11, 8, 2, seed=0, init="xavier")
