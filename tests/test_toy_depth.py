"""Chapter 6's depth question (lora_clusters.nets.toy_depth): the verdict against scipy
and hand-made data, the controlled experiment's rates, and the recorded relative update
and outlier counts against direct computations."""

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lora_clusters import scale  # noqa: E402
from lora_clusters.nets import runtime, toy, toy_depth, toy_study  # noqa: E402

SMOKE = scale.settings("toy", "smoke")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv(runtime.ENV, "1")
    with runtime.threads(1):
        yield


@pytest.fixture(scope="module")
def study():
    config = replace(SMOKE, depths=(1, 2), seeds=(0, 1), lora_epochs=40, lora_lr=1e-2)
    runs = toy.train_every_depth(config)
    return toy_study.ToyStudy(config, runs["pretrained"], runs["finetuned"], "smoke")


def test_verdict_of_a_clear_decrease_is_faster_and_names_section_8():
    epochs = np.array([[400.0, 420, 390], [300, 310, 290], [200, 190, 210], [100, 90, 110]])
    verdict = toy_depth.DepthVerdict((2, 4, 6, 8), epochs, horizon=600)
    rho, p = verdict.spearman()
    from scipy.stats import spearmanr

    assert rho == pytest.approx(spearmanr(np.repeat([2, 4, 6, 8], 3), epochs.ravel()).statistic)
    assert rho < -0.9 and p < 0.01
    assert verdict.direction() == "faster" and "Sec. 8" in verdict.supports()
    rows = verdict.per_depth()
    assert rows[0]["mean"] == pytest.approx(np.mean([400, 420, 390]))
    assert rows[0]["std"] == pytest.approx(np.std([400, 420, 390], ddof=1))
    # reversed: slower, and the appendix's sentence
    reverse = toy_depth.DepthVerdict((2, 4, 6, 8), epochs[::-1], horizon=600)
    assert reverse.direction() == "slower" and "G.1.2" in reverse.supports()


def test_label_arrangements_are_every_distinct_ordering_once():
    from itertools import permutations

    labels = [0.0, 0.0, 1.0, 2.0, 2.0]
    rows = toy_depth.label_arrangements(labels)
    expected = set(permutations(labels))  # 5! / (2! 1! 2!) = 30 distinct
    assert len(rows) == 30 and {tuple(r) for r in rows} == expected
    assert toy_depth.label_arrangements(np.repeat([1.0, 2, 3, 4], 3)).shape == (369600, 12)
    with pytest.raises(ValueError, match="labels must be one-dimensional"):
        toy_depth.label_arrangements(np.zeros((2, 2)))


def test_exact_pvalue_of_a_perfect_ordering_is_two_arrangements_out_of_all():
    # forgetting epochs sorted by depth with no overlap: only the observed arrangement
    # and its mirror image reach |rho| that large, so p = 2 / (12! / 3!^4)
    epochs = np.array([[400.0, 420, 390], [300, 310, 290], [200, 190, 210], [100, 90, 110]])
    verdict = toy_depth.DepthVerdict((2, 4, 6, 8), epochs, horizon=600)
    assert verdict.arrangements() == 369600
    assert verdict.spearman()[1] == pytest.approx(2 / 369600)
    assert verdict.pvalue_method().startswith("exact, over all 369,600")


def test_exact_pvalue_agrees_with_brute_force_over_every_permutation():
    from itertools import permutations

    from scipy.stats import spearmanr

    epochs = np.array([[30.0, 50], [40, 20], [10, np.inf]])
    verdict = toy_depth.DepthVerdict((1, 2, 3), epochs, horizon=60)
    labels, y = np.repeat([1, 2, 3], 2), verdict._filled().ravel()
    rho = spearmanr(labels, y).statistic
    null = [spearmanr(order, y).statistic for order in permutations(labels)]  # 720, repeats included
    assert verdict.spearman() == pytest.approx((rho, np.mean(np.abs(null) >= abs(rho) - 1e-12)))
    # beyond the limit the test falls back to seeded shufflings, and says so
    many = toy_depth.DepthVerdict(tuple(range(8)), np.arange(40.0).reshape(8, 5), horizon=60)
    assert many.arrangements() > toy_depth.EXACT_LIMIT and "20,000 seeded" in many.pvalue_method()
    assert 0 < many.spearman()[1] <= 1 / 20001 * 2


def test_verdict_without_a_trend_is_none_and_never_forgotten_runs_rank_last():
    same = np.tile([100.0, 200.0, 300.0], (4, 1))  # every depth alike: rank correlation 0
    verdict = toy_depth.DepthVerdict((2, 4, 6, 8), same, horizon=600)
    rho, p = verdict.spearman()
    assert abs(rho) < 1e-12 and p > 0.9
    assert verdict.direction() == "none" and verdict.supports() == "neither of the paper's two sentences"
    # runs that never forgot are later than any that did
    censored = np.array([[50.0, 60, 55], [80, 90, 85], [np.inf, 120, 130], [np.inf, np.inf, np.inf]])
    v = toy_depth.DepthVerdict((2, 4, 6, 8), censored, horizon=200)
    assert v.direction() == "slower"
    assert v.per_depth()[3]["never"] == 3 and np.isnan(v.per_depth()[3]["mean"])


def test_relative_update_curve_is_the_norm_ratio_of_the_final_factors(study):
    run = study.finetuned[2]
    P = study.pretrained[2].stack.params
    for m in range(2):
        delta = run.value_update()[m].double()
        expected = torch.linalg.matrix_norm(P["output"][m].double() @ delta) / torch.linalg.matrix_norm(
            P["output"][m].double() @ P["value"][m].double()
        )
        assert run.relative_update[-1, m] == pytest.approx(float(expected), rel=1e-4)
    assert np.all(run.relative_update[0] == 0)  # B = 0 at the start


def test_equal_relative_step_rates_follow_the_value_map_sizes(study, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_BOOK_RESULTS", str(tmp_path))
    runs, rates = toy_depth.equal_relative_step(study)
    # the rates, and so the stored result's key, do not depend on the CPU's last digit
    assert all(float(f"{r:.{toy_depth.RATE_DIGITS}g}") == r for r in rates.flat)
    sizes = toy_depth.value_map_sizes(study)
    np.testing.assert_allclose(rates / sizes, (rates / sizes).flat[0])  # proportional
    assert np.exp(np.log(rates).mean()) == pytest.approx(study.config.lora_lr)  # geometric mean kept
    for i, depth in enumerate(study.depths):
        np.testing.assert_allclose(runs[depth].lr, rates[i])


def test_the_controls_stored_runs_are_found_again_when_the_sizes_differ_in_the_last_digits(
    study, tmp_path, monkeypatch
):
    # another CPU's log and exp can differ in the last digit: the key must not
    monkeypatch.setenv("LORA_BOOK_RESULTS", str(tmp_path))
    _, rates = toy_depth.equal_relative_step(study)
    sizes = toy_depth.value_map_sizes(study)
    ulps = np.arange(1, sizes.size + 1).reshape(sizes.shape)
    nudged = sizes * (1 + 4e-16 * ulps)
    assert (nudged != sizes).all()
    monkeypatch.setattr(toy_depth, "value_map_sizes", lambda _: nudged)
    monkeypatch.setattr(toy, "finetune", lambda *a, **k: pytest.fail("computed again"))
    _, again = toy_depth.equal_relative_step(study)
    np.testing.assert_array_equal(again, rates)


def test_outliers_count_eigenvalues_beyond_the_pretrained_radius(study):
    run, pre = study.finetuned[1], study.pretrained[1]
    counts = toy_depth.spectrum_outliers(pre, run)
    P = {k: v[0].double().numpy() for k, v in pre.stack.params.items()}
    tuned = P["value"] + run.value_update()[0].double().numpy()
    radius = np.abs(np.linalg.eigvals(P["value"])).max()
    assert counts["W_V"][0] == int((np.abs(np.linalg.eigvals(tuned)) > radius * (1 + 1e-9)).sum())


def test_authors_settings_change_only_what_costs_nothing():
    authors = toy_depth.authors_settings(SMOKE)
    assert (authors.p, authors.d, authors.epochs, authors.depths) == (SMOKE.p, SMOKE.d, SMOKE.epochs, SMOKE.depths)
    assert authors.lora_scaling == 0.5 and authors.lora_betas == (0.9, 0.98) and authors.lora_weight_decay == 0.01
    assert (authors.sub_split, authors.sub_train_fraction, authors.init) == ("independent", 0.3, "authors")
    rows = toy_depth.settings_table(SMOKE, authors)
    by_name = {r["setting"]: r for r in rows}
    assert by_name["lora_alpha"]["book, authors' settings"].endswith("alpha/r = 0.5")
    assert by_name["sub_train_fraction"]["book"] == f"{SMOKE.sub_train_fraction:g}, nested"
    assert len(rows) == len(toy_depth.AUTHORS_DIFFERENCES)


def test_bad_learning_rates_name_the_argument(study):
    with pytest.raises(ValueError, match="lr must be"):
        toy.finetune(study.pretrained[1], lr=[1e-3], epochs=1)  # one rate for two models
    with pytest.raises(ValueError, match="lr must be"):
        toy.finetune(study.pretrained[1], lr=float("nan"), epochs=1)


def test_regime_sentences_follow_whether_some_setting_made_every_seed_generalise():
    def row(changes, low, high):
        return {
            "changes": changes,
            "depth": 2,
            "held-out min": low,
            "held-out mean": (low + high) / 2,
            "held-out max": high,
            "train min": 1.0,
        }

    missed = toy_depth.regime_glue_values([row("a", 0.80, 0.86), row("b", 0.65, 0.97)])
    assert missed["toy_regime_found"] == "does not" and missed["toy_regime_best"] == "a"
    assert missed["toy_regime_sentence"].startswith("none of the 2 settings")
    assert "open at cpu scale" in missed["toy_regime_consequence"] and missed["toy_regime_widest"] == "b"
    found = toy_depth.regime_glue_values([row("a", 0.80, 0.86), row("d 64 → 128", 0.95, 1.0)])
    assert found["toy_regime_found"] == "does" and found["toy_regime_best"] == "d 64 → 128"
    assert found["toy_regime_sentence"].startswith("1 of the 2 settings tried made every base model of depth 2")
    assert "d 64 → 128" in found["toy_regime_sentence"] and "still open" in found["toy_regime_consequence"]
    rows = [row("a", 0.80, 0.86), row("d 64 → 128", 0.95, 1.0)]
    studied = toy_depth.regime_glue_values(rows, studied=rows[1])
    assert studied["toy_regime_sentence"].endswith("and the depth study was run again with it")
    assert "deeper models generalise" in studied["toy_regime_consequence"]
    # a studied setting that missed the target is not the one the sentence names
    rows = [row("a", 0.80, 0.86), row("d 64 → 128", 0.95, 1.0), row("c", 0.5, 0.9)]
    assert "not been run" in toy_depth.regime_glue_values(rows, studied=rows[2])["toy_regime_sentence"]


def test_generalising_settings_change_width_initialisation_and_length_only():
    general = toy_depth.generalising_settings(SMOKE)
    assert (general.d, general.init, general.schedule) == (128, "authors", "cosine")
    assert general.epochs == 6 * SMOKE.epochs
    same = replace(general, d=SMOKE.d, init=SMOKE.init, schedule=SMOKE.schedule, epochs=SMOKE.epochs)
    assert same == SMOKE  # seeds, depths, split and every LoRA setting kept
    # the stronger-decay setting differs from it in the weight decay alone
    decay = toy_depth.generalising_settings(SMOKE, toy_depth.GENERALISING_STRONGER_DECAY)
    assert decay == replace(general, weight_decay=2.0)


def test_the_larger_p_settings_differ_from_the_first_only_in_p_and_length_and_see_as_many_pairs():
    cpu = scale.SETTINGS["toy"]["cpu"]
    general = toy_depth.generalising_settings(cpu, scale_name="cpu")
    p31 = toy_depth.generalising_settings(cpu, toy_depth.GENERALISING_LARGER_P, scale_name="cpu")
    p47 = toy_depth.generalising_settings(cpu, toy_depth.GENERALISING_P47, scale_name="cpu")
    for larger in (p31, p47):
        assert replace(larger, p=general.p, epochs=general.epochs) == general
    assert (p31.p, p31.epochs, p47.p, p47.epochs) == (31, 2 * cpu.epochs, 47, cpu.epochs)

    def pairs_seen(c):  # training pairs times epochs
        return round(c.train_fraction * c.p**2) * c.epochs

    assert pairs_seen(p31) == 817 * 4000 and pairs_seen(p47) == 1878 * 2000
    assert 1.0 < pairs_seen(p47) / pairs_seen(p31) < 1.2  # "about the same cost"


def test_the_smoke_scale_keeps_its_sizes_and_every_other_scale_takes_the_changes():
    smoke = toy_depth.generalising_settings(SMOKE, scale_name="smoke")
    # width and length stay the smoke scale's; initialisation and schedule still change
    assert (smoke.d, smoke.epochs, smoke.init, smoke.schedule) == (SMOKE.d, SMOKE.epochs, "authors", "cosine")
    decay = toy_depth.generalising_settings(SMOKE, toy_depth.GENERALISING_STRONGER_DECAY, scale_name="smoke")
    assert decay == replace(smoke, weight_decay=2.0)
    for name in ("cpu", "gpu", None):
        assert toy_depth.generalising_settings(SMOKE, scale_name=name) == toy_depth.generalising_settings(SMOKE)
    assert toy_depth.changes_at_scale({"d": 128, "epochs_factor": 4.0, "init": "authors"}, "smoke") == {
        "init": "authors"
    }


def test_a_study_stored_per_depth_equals_the_study_trained_at_once(study, tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_BOOK_RESULTS", str(tmp_path))
    parts = toy_study.run_study_per_depth(study.config, "smoke", name="study-x", progress=False)
    stored = sorted(path.name for path in (tmp_path / "toy").glob("*.json"))
    assert len(stored) == 2
    assert stored[0].startswith("smoke-study-x-depth-1-") and stored[1].startswith("smoke-study-x-depth-2-")
    for key in ("train", "test", "all"):
        np.testing.assert_array_equal(parts.final_accuracy()[key], study.final_accuracy()[key])
    np.testing.assert_array_equal(parts.forgetting_epochs(), study.forgetting_epochs())
    # a second caller (another process, say) finds every depth stored and trains nothing
    monkeypatch.setattr(toy, "train_every_depth", lambda *a, **k: pytest.fail("trained again"))
    again = toy_study.run_study_per_depth(study.config, "smoke", name="study-x", progress=False)
    np.testing.assert_array_equal(again.forgetting_epochs(), study.forgetting_epochs())


def test_regime_rows_count_the_seeds_that_reach_the_target(study):
    acc = study.final_accuracy()
    target = float(np.median(acc["test"]))
    rows = toy_depth.regime_rows(study, target=target)
    for k, row in enumerate(rows):
        assert row["held-out min"] == pytest.approx(acc["test"][k].min())
        assert row["train min"] == pytest.approx(acc["train"][k].min())
        assert row[f"seeds >= {target:g}"] == f"{int((acc['test'][k] >= target).sum())} of 2"
    both = toy_depth.regime_comparison({"one": study, "other": study}, target=target)
    assert [(r["depth"], r["setting"]) for r in both] == [(1, "one"), (1, "other"), (2, "one"), (2, "other")]
    assert [{k: v for k, v in r.items() if k != "setting"} for r in both[::2]] == rows
    first = toy_depth.study_regime_row(SMOKE, replace(study, config=replace(study.config, d=128)))
    assert first["depth"] == 1 and first["held-out max"] == pytest.approx(acc["test"][0].max())
    assert "d" in first["changes"] and "128" in first["changes"]


def with_accuracy(study, test, train=None):
    """``study`` whose base models end pre-training with the given held-out (and
    training, default all 1) accuracies, per depth (rows) and seed (columns)."""
    test = np.array(test)
    train = np.ones_like(test) if train is None else np.array(train)

    class Fixed(toy_study.ToyStudy):
        def final_accuracy(self):
            return {"train": train, "test": test, "all": np.ones_like(test)}

    return Fixed(study.config, study.pretrained, study.finetuned, "smoke")


def test_generalising_reading_says_how_many_generalise_and_whether_the_verdict_agrees(study):
    falling = np.array([[400.0, 420, 390], [300, 310, 290], [200, 190, 210], [100, 90, 110]])
    memorised = toy_depth.DepthVerdict((2, 4, 6, 8), falling, horizon=600)
    held_out = study.final_accuracy()["test"]
    values = toy_depth.generalising_glue_values(study, memorised, memorised, memorised, target=0.0)
    assert values["toy_gen_generalised"] == values["toy_gen_models"] == held_out.size
    assert values["toy_gen_reading"].startswith(f"all {held_out.size} of its base models generalise")
    assert "the same verdict as" in values["toy_gen_reading"] and values["toy_gen_agrees"] == "holds"
    assert values["toy_gen_conclusion"] == "The depth verdict therefore holds in both regimes."
    renamed = toy_depth.generalising_glue_values(study, memorised, memorised, memorised, target=0.0, prefix="toy_dec")
    assert renamed == {k.replace("toy_gen", "toy_dec"): v for k, v in values.items()}
    sizes = [
        torch.linalg.matrix_norm(torch.bmm(r.stack.params["output"], r.stack.params["value"]).double()).mean()
        for r in study.pretrained.values()
    ]
    assert values["toy_gen_size_ratio"] == pytest.approx(float(sizes[0] / sizes[-1]), rel=1e-5)
    rising = toy_depth.DepthVerdict((2, 4, 6, 8), falling[::-1], horizon=600)
    above = 1.5  # no accuracy reaches it
    values = toy_depth.generalising_glue_values(study, rising, memorised, memorised, target=above)
    assert values["toy_gen_generalised"] == 0 and values["toy_gen_agrees"] == "does not hold"
    assert values["toy_gen_reading"].startswith(
        f"0 of its {held_out.size} base models generalise (0 of 2 seeds at depths 1 and 2)"
    )
    assert "not the verdict of" in values["toy_gen_reading"]
    assert values["toy_gen_conclusion"].startswith("This set mixes the two regimes (0 of")

    # every seed generalises at depth 1, one of two at depth 2
    mixed = with_accuracy(study, [[0.97, 0.99], [0.96, 0.80]])
    values = toy_depth.generalising_glue_values(mixed, memorised, memorised, memorised)
    assert values["toy_gen_reading"].startswith("3 of its 4 base models generalise (2 of 2 seeds at depth 1; 1 of 2")
    assert "0.80 to 0.99" in values["toy_gen_reading"] and "holds for base models" in values["toy_gen_conclusion"]


def test_decay_reading_compares_the_counts_and_names_the_depths_that_do_not_fit(study):
    general = with_accuracy(study, [[0.97, 0.99], [0.96, 0.80]], [[1.0, 1.0], [0.98, 1.0]])  # 3 of 4 reach 0.95
    fewer = with_accuracy(study, [[0.97, 0.99], [0.78, 0.94]], [[1.0, 1.0], [0.87, 0.95]])  # 2 of 4
    values = toy_depth.decay_glue_values(general, fewer)
    assert values["toy_dec_versus"] == "fewer"
    assert values["toy_dec_fitting"] == (
        "at depth 2 some base models end below training accuracy 0.99 (down to 0.870, "
        "against at least 0.980 with the weaker decay)"
    )
    more = with_accuracy(study, [[0.97, 0.99], [0.96, 0.95]], [[1.0, 1.0], [1.0, 0.995]])  # 4 of 4, every one fits
    values = toy_depth.decay_glue_values(general, more, prefix="x")
    fits = "every base model reaches training accuracy 0.99"
    assert values == {"x_versus": "more", "x_fitting": fits}
    assert toy_depth.decay_glue_values(general, general)["toy_dec_versus"] == "as many"
    unfit_both = with_accuracy(study, [[0.97, 0.99], [0.96, 0.80]], [[0.9, 1.0], [0.9, 1.0]])
    assert toy_depth.decay_glue_values(general, unfit_both)["toy_dec_fitting"].startswith("at depths 1 and 2 some")
    # another changed setting names its own baseline
    larger_p = toy_depth.decay_glue_values(general, fewer, prefix="p", baseline="at p = 23")
    assert larger_p["p_fitting"].endswith("against at least 0.980 at p = 23)")


def test_generalisation_outcome_names_a_complete_setting_or_the_depths_every_setting_leaves_short(study):
    short_at_2 = with_accuracy(study, [[0.97, 0.99], [0.96, 0.80]])
    short_at_both = with_accuracy(study, [[0.90, 0.99], [0.96, 0.94]])
    short_at_1 = with_accuracy(study, [[0.90, 0.99], [0.96, 0.97]])
    complete = with_accuracy(study, [[0.95, 0.99], [0.96, 1.0]])  # 0.95 itself reaches the target
    assert toy_depth.generalisation_outcome({"a": short_at_2, "b": short_at_both}) == (
        "none of the 2 settings gives base models that all generalise at every depth: in every one of "
        "them some seeds at depth 2 end below held-out accuracy 0.95"
    )
    assert toy_depth.generalisation_outcome({"a": short_at_2, "b": short_at_1}).endswith(
        "though no depth falls short in all of them"
    )
    assert toy_depth.generalisation_outcome({"a": short_at_2, "wide": complete}) == (
        "wide gives base models that all generalise at every depth"
    )
    assert toy_depth.generalisation_outcome({"a": short_at_2}, target=0.8).startswith("a gives")


def test_the_table_the_counts_and_the_sentences_share_one_test_of_generalising(study):
    edge = with_accuracy(study, [[0.95, 0.99], [0.9499, 1.0]])  # 0.95 reaches the target; 0.9499 does not
    reached = toy_depth.reaching_target(edge)
    np.testing.assert_array_equal(reached, [[True, True], [False, True]])
    assert [row["seeds >= 0.95"] for row in toy_depth.regime_rows(edge)] == ["2 of 2", "1 of 2"]
    verdict = toy_depth.DepthVerdict((1, 2), np.array([[10.0, 12], [8, 9]]), horizon=20)
    assert toy_depth.generalising_glue_values(edge, verdict, verdict, verdict)["toy_gen_generalised"] == 3
    assert toy_depth.generalised_glue_values(edge, prefix="x") == {"x_generalised": 3, "x_models": 4}
    assert toy_depth.generalisation_outcome({"edge": edge}).endswith(
        "some seeds at depth 2 end below held-out accuracy 0.95"
    )
    two = with_accuracy(study, [[0.94, 0.99], [0.9, 1.0]])
    assert toy_depth.decay_glue_values(two, edge)["toy_dec_versus"] == "more"  # 3 against 2
    assert toy_depth.decay_glue_values(edge, two)["toy_dec_versus"] == "fewer"


def test_train_pairs_is_the_split_share_of_the_p_squared_pairs_and_refuses_unequal_splits(study):
    c = study.config
    assert study.train_pairs() == round(c.train_fraction * c.p**2) == 97  # 80% of 121
    assert study.glue_values("x")["x_train_pairs"] == 97
    first = study.depths[0]
    masks = study.pretrained[first].train_masks.clone()
    masks[0, masks[0].nonzero()[0]] = False  # one seed drops a pair
    uneven = replace(study.pretrained[first], train_masks=masks)
    broken = toy_study.ToyStudy(c, {**study.pretrained, first: uneven}, study.finetuned, "smoke")
    with pytest.raises(ValueError, match=r"different numbers of pairs: \[96, 97\]"):
        broken.train_pairs()


def test_control_reading_tells_a_surviving_a_fading_a_reversed_and_a_brought_out_trend():
    falling = np.array([[400.0, 420, 390], [300, 310, 290], [200, 190, 210], [100, 90, 110]])
    faster = toy_depth.DepthVerdict((2, 4, 6, 8), falling, horizon=600)
    slower = toy_depth.DepthVerdict((2, 4, 6, 8), falling[::-1], horizon=600)
    noisy = np.array([[300.0, 100, 500], [280, 120, 480], [260, 140, 460], [240, 160, 440]])  # means fall, p large
    none = toy_depth.DepthVerdict((2, 4, 6, 8), noisy, horizon=600)
    assert none.direction() == "none"
    assert "depth itself matters" in toy_depth.control_reading(faster, faster)
    fading = toy_depth.control_reading(faster, none)
    assert fading.startswith(
        "With equal relative steps the trend is no longer significant (the means per depth still fall"
    )
    reversed_ = toy_depth.control_reading(faster, slower)
    assert reversed_.startswith("Equal relative steps reverse the trend") and "G.1.2" in reversed_
    assert toy_depth.control_reading(none, none) == "Neither set of runs shows a clear effect of depth."
    # no trend at one learning rate, a significant one at equal relative steps
    brought_out = toy_depth.control_reading(none, slower)
    assert brought_out.startswith("Equal relative steps bring out a trend")
    assert "deeper models forget addition more slowly" in brought_out and "G.1.2" in brought_out
    assert "forget addition faster" in toy_depth.control_reading(none, faster)


def test_final_accuracy_is_that_of_the_stored_weights_the_lora_run_starts_from(study, monkeypatch):
    acc = study.final_accuracy()
    data = toy.arithmetic_data(study.config.p, "+")
    for k, depth in enumerate(study.depths):
        run = study.pretrained[depth]
        for m in range(len(study.config.seeds)):
            model = run.stack.model(m)  # the nn.Module, not the stacked forward
            with torch.no_grad():
                correct = (model(data.tokens).argmax(-1) == data.targets).numpy()
            held_out = ~run.train_masks[m].numpy()
            assert acc["test"][k, m] == pytest.approx(correct[held_out].mean())
            assert acc["train"][k, m] == pytest.approx(correct[~held_out].mean())
        # fine-tuning records the all-pairs accuracy of its start (B = 0) as its first entry
        np.testing.assert_allclose(acc["all"][k], study.finetuned[depth].add_acc[0], atol=1e-6)
    # evaluated once: a caller that edits the arrays it got does not change what the next sees
    expected = {key: values.copy() for key, values in acc.items()}
    acc["test"][:] = -1.0
    monkeypatch.setattr(study, "_evaluate_final_accuracy", lambda: pytest.fail("evaluated again"))
    again = study.final_accuracy()
    for key in expected:
        np.testing.assert_array_equal(again[key], expected[key])
