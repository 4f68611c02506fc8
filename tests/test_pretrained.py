"""Real-model tooling: spectra on the cores against the d x d matrices, grouped-query
attention, repeated stacks, the offline texts, and the set-up of the offline models.

Random tiny models (built from a config) test every code path; the offline models
that ``make setup`` installs are tested against what their architecture forces.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch

from lora_clusters import spectra
from lora_clusters.nets import assets, depth, head_spectra, heads, loading, quantization, texts


# --------------------------------------------------------------------------------------
# the core routes of lora_clusters.spectra
# --------------------------------------------------------------------------------------
def test_core_routes_match_the_d_by_d_matrices():
    rng = np.random.default_rng(0)
    d, r = 90, 7
    left, right = rng.standard_normal((r, d)), rng.standard_normal((r, d))
    full = np.linalg.svd(left.T @ right, compute_uv=False)
    np.testing.assert_allclose(spectra.low_rank_singular_values(left, right), full[:r], rtol=1e-10)
    assert full[r:].max() < 1e-10 * full[0]  # the rest are zero: rank r

    # a value map with a dominant real eigenvalue (10) and others inside the disc of radius 5
    outer = rng.standard_normal((d, r))
    inner = np.diag([10.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5]) @ np.linalg.pinv(outer) + 0.05 * rng.standard_normal((r, d))
    eig_full = np.linalg.eigvals(outer @ inner)
    eig_full = eig_full[np.argsort(-np.abs(eig_full))]
    core = spectra.low_rank_eigenvalues(outer, inner)
    np.testing.assert_allclose(np.sort_complex(core), np.sort_complex(eig_full[:r]), rtol=1e-8)
    assert np.abs(eig_full[r:]).max() < 1e-8 * np.abs(eig_full[0])

    # the top eigenpair from the core: same eigenvalue, eigenvector up to sign, and a
    # dual form that reads phi's coordinate and kills the other eigenvectors
    thin = spectra.low_rank_top_eigenpair(outer, inner)
    dense = spectra.top_eigenpair(outer @ inner)
    assert abs(thin.eigenvalue.imag) < 1e-12 and thin.eigenvalue.real > 9
    assert abs(thin.eigenvalue - dense.eigenvalue) < 1e-9 * abs(dense.eigenvalue)
    assert abs(abs(thin.phi @ dense.phi) - 1) < 1e-9
    assert abs(thin.phi_dual @ thin.phi - 1) < 1e-12
    M = outer @ inner
    assert np.allclose(thin.phi_dual @ M, thin.eigenvalue.real * thin.phi_dual, atol=1e-8 * abs(thin.eigenvalue))
    # the pair carries the whole nonzero spectrum, in the order of low_rank_eigenvalues
    np.testing.assert_allclose(thin.eigenvalues, core, rtol=1e-12)
    np.testing.assert_allclose(dense.eigenvalues[:r], eig_full[:r], rtol=1e-8)


def test_outliers_are_counted_and_measured_against_the_disc():
    angles = np.exp(1j * np.linspace(0, 2 * np.pi, 7))
    # on the rim (to rounding), 3% outside, 10% outside, inside
    eigenvalues = np.concatenate([2 * angles[:3] * (1 + 1e-13), [2.06j, -2.2, 0.5]])
    count, excess = spectra.outside_disc(eigenvalues, 2.0)
    assert count == 2 and excess == pytest.approx(0.1, rel=1e-12)
    assert spectra.outside_disc(eigenvalues[:3], 2.0) == (0, 0.0)
    with pytest.raises(ValueError, match="radius must be a finite number > 0"):
        spectra.outside_disc(eigenvalues, 0.0)
    with pytest.raises(ValueError, match="eigenvalues must be"):
        spectra.outside_disc([np.nan], 1.0)


def test_core_routes_refuse_bad_factors():
    with pytest.raises(ValueError, match="same number of columns"):
        spectra.low_rank_singular_values(np.ones((2, 5)), np.ones((2, 6)))
    with pytest.raises(ValueError, match="outer"):
        spectra.low_rank_eigenvalues(np.ones((5, 2)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        spectra.low_rank_singular_values(np.full((2, 5), np.nan), np.ones((2, 5)))
    with pytest.raises(ValueError, match="rtol"):
        spectra.numerical_rank([3.0, 1.0], rtol=2.0)
    assert spectra.numerical_rank([10.0, 1.0, 0.05], rtol=1e-2) == 2


# --------------------------------------------------------------------------------------
# heads of a model, grouped-query attention
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    return loading.tiny_llama(vocab_size=300, layers=3, d=48, heads=6, kv_heads=2, seed=1)


def test_heads_of_a_grouped_query_model_are_read_from_the_right_rows(tiny):
    w = heads.attention_weights(tiny, "tiny")
    assert (w.n_heads, w.n_kv_heads, w.head_dim, w.d, w.group) == (6, 2, 8, 48, 3)
    attn = tiny.model.layers[1].self_attn
    head = w.head(1, 4)  # query head 4 uses key/value head 4 // 3 = 1
    np.testing.assert_array_equal(head["W_Q"], attn.q_proj.weight.detach().double().numpy()[32:40])
    np.testing.assert_array_equal(head["W_K"], attn.k_proj.weight.detach().double().numpy()[8:16])
    np.testing.assert_array_equal(head["W_O"], attn.o_proj.weight.detach().double().numpy()[:, 32:40])
    # the layer's sum over heads equals the regrouped product, and its rank is capped
    g = w.layer_factors(1)
    total = sum(w.head(1, h)["W_Q"].T @ w.head(1, h)["W_K"] for h in range(6))
    np.testing.assert_allclose(g["Q_grouped"].T @ g["K"], total, atol=1e-12)
    assert np.linalg.matrix_rank(total) == w.n_kv_heads * w.head_dim == 16
    with pytest.raises(IndexError):
        w.head(3, 0)


def test_head_spectra_agree_with_the_naive_route_on_every_head(tiny):
    w = heads.attention_weights(tiny, "tiny")
    spec = head_spectra.head_spectra(w)
    checked = 0
    for layer in range(w.n_layers):
        for h in range(w.n_heads):
            naive = head_spectra.naive_head_spectra(w, layer, h)
            np.testing.assert_allclose(spec.qk_singular[layer, h], naive["qk_singular"][: w.head_dim], rtol=1e-8)
            np.testing.assert_allclose(
                np.sort_complex(spec.ov_eigenvalues[layer, h]),
                np.sort_complex(naive["ov_eigenvalues"][: w.head_dim]),
                rtol=1e-7,
                atol=1e-12,
            )
            # the Thm 5.4 check on the core equals the one on the d x d matrices
            dense = spectra.top_eigenpair(naive["ov"])
            assert spec.holds[layer, h] == dense.satisfies_theorem_5_4(naive["A"])
            if dense.is_real_positive:  # phi (and c11) is defined up to sign only then
                scale = abs(dense.attention_alignment(naive["A"])) + 1e-300
                assert abs(spec.c11[layer, h] - dense.attention_alignment(naive["A"])) < 1e-7 * scale
                checked += 1
    assert checked >= 1  # random heads: most top eigenvalues are complex
    assert (spec.layer_qk_rank(1e-6) == 16).all()
    rows = spec.rows()
    assert len(rows) == 3 and all(
        r["lambda_1 not real > 0"] + r["no gap"] + r["c11 <= 0"] + int(r["Thm 5.4 holds"].split("/")[0]) == 6
        for r in rows
    )


def test_quantization_round_trip_is_small_and_measured(tiny):
    with pytest.raises(ValueError, match="blocks of 32"):
        quantization.quantized(heads.attention_weights(tiny, "tiny"), "Q4_1")  # rows of 48
    model = loading.tiny_llama(vocab_size=50, layers=2, d=64, heads=4, kv_heads=2, seed=3)
    w = heads.attention_weights(model, "tiny64")
    q = quantization.quantized(w, "Q8_0")
    errors = [np.linalg.norm(a - b) / np.linalg.norm(a) for a, b in zip(w.query, q.query)]
    assert 0 < max(errors) < 0.01  # 8-bit rounding: below 1%
    effect = quantization.quantization_effect(head_spectra.head_spectra(w), head_spectra.head_spectra(q))
    assert 0 < effect["quant_weight_error"] < 1 and effect["quant_top_sv_max"] < 1
    coarse = quantization.quantization_effect(
        head_spectra.head_spectra(w), head_spectra.head_spectra(quantization.quantized(w, "Q4_1"))
    )
    assert coarse["quant_weight_error"] > 5 * effect["quant_weight_error"]  # 4 bits are coarser
    exact, rounded = head_spectra.head_spectra(w), head_spectra.head_spectra(quantization.quantized(w, "Q4_1"))
    changes = quantization.verdict_changes(exact, rounded)
    assert len(changes) == coarse["quant_verdict_changed"] == int((exact.holds != rounded.holds).sum())
    assert coarse["quant_verdict_changed_share"] == pytest.approx(len(changes) / exact.holds.size)
    for row in changes:  # exactly one side holds
        assert [row["float32: verdict"], row["rounded: verdict"]].count("holds") == 1
    with pytest.raises(ValueError, match="GGUF quantization type"):
        quantization.quantized(w, "Q3_nonsense")


def _hand_made_heads(cores, attention):
    """One layer of hand-made heads in d = 4 with d_h = 2: head k's value map has the core
    ``cores[k]`` (W_V W_O = core) and attention W_Q = W_K = ``attention`` (2 x 4)."""
    embed = np.eye(4)[:, :2]  # W_O: the first two coordinates
    n = len(cores)
    value = [np.concatenate([np.asarray(c) @ embed.T for c in cores])]
    output = [np.concatenate([embed] * n, axis=1)]
    query = [np.concatenate([attention] * n)]
    return heads.AttentionWeights("hand-made", "llama", 1, n, n, 2, 4, query, list(query), value, output)


def test_the_no_gap_column_counts_exact_and_rounding_level_ties():
    turn = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    near_tie = turn @ np.diag([1.0, -(1 - 1e-13)]) @ turn.T  # |lambda_2| = lambda_1 (1 - 1e-13)
    cores = [np.diag([2.0, 1.0]), near_tie, np.diag([1.0, -1.0])]  # gap, near tie, exact tie
    spec = head_spectra.head_spectra(_hand_made_heads(cores, np.eye(4)[:2]))
    # every top eigenvalue is +1 or 2 (real > 0) and c11 = <e, e> / sqrt(2) > 0 for phi in span(e1, e2)
    assert spec.real_positive.all() and (spec.c11 > 0).all()
    assert spec.gap[0, 1] > 0  # the near tie passed the former test gap > 0
    assert spec.holds.tolist() == [[True, False, False]]
    (row,) = spec.rows()
    assert (row["Thm 5.4 holds"], row["no gap"], row["lambda_1 not real > 0"], row["c11 <= 0"]) == ("1/3", 2, 0, 0)
    rel = spec.relative_gap()
    assert rel[0, 0] == pytest.approx(0.5) and rel[0, 2] == 0 and 0 < rel[0, 1] < 1e-9
    assert spec.extreme_gap_heads() == [(0, 0), (0, 2)]
    values = head_spectra.spectra_glue_values(spec, "hand")
    assert (values["hand_no_gap"], values["hand_c11_fails"], values["hand_holds"]) == (2, 0, 1)


def test_per_layer_shares_and_their_depth_trend_against_a_direct_count(tiny):
    w = heads.attention_weights(tiny, "tiny")
    spec = head_spectra.head_spectra(w)
    real_positive = np.zeros((w.n_layers, w.n_heads))
    re_positive = np.zeros((w.n_layers, w.n_heads))
    for layer in range(w.n_layers):
        for h in range(w.n_heads):
            top = spectra.top_eigenpair(head_spectra.naive_head_spectra(w, layer, h)["ov"])
            real_positive[layer, h], re_positive[layer, h] = top.is_real_positive, top.eigenvalue.real > 0
    shares = spec.layer_shares()
    np.testing.assert_array_equal(shares["real_positive"], real_positive.mean(axis=1))
    np.testing.assert_array_equal(shares["re_positive"], re_positive.mean(axis=1))
    # Spearman on five layers of chosen tops: ranks by hand (ties share the mean rank)
    tops = np.array([[1, 1j, -1, -1], [1, 1, 1j, -1], [1, 1 + 1j, 1 + 1j, 1j], [1, 1, 1, -1], [1, 1, 1, 1]])
    five = replace(spec, top=tops.astype(complex), weights=replace(w, n_layers=5))
    share = np.array([0.25, 0.5, 0.25, 0.75, 1.0])
    np.testing.assert_array_equal(five.layer_shares()["real_positive"], share)
    ranks = np.array([1.5, 3, 1.5, 4, 5])
    rho = np.corrcoef(np.arange(5), ranks)[0, 1]
    assert five.depth_trend()["real_positive"][0] == pytest.approx(rho, rel=1e-12)
    # Re > 0: shares 0.25, 0.5, 0.75, 0.75, 1 (1j has Re = 0)
    re_rho = np.corrcoef(np.arange(5), [1, 2, 3.5, 3.5, 5])[0, 1]
    assert five.depth_trend()["re_positive"][0] == pytest.approx(re_rho, rel=1e-12)


def test_the_papers_quantities_against_numpy_on_the_d_by_d_matrices(tiny):
    w = heads.attention_weights(tiny, "tiny")
    attn = tiny.model.layers[1].self_attn
    q, k, v = (m.weight.detach().numpy() for m in (attn.q_proj, attn.k_proj, attn.v_proj))
    # the layer's K^T Q in float32, summed head by head from the torch weights
    direct = sum(k[(h // 3) * 8 : (h // 3 + 1) * 8].T @ q[h * 8 : (h + 1) * 8] for h in range(6))
    matrix = head_spectra.layer_qk_matrix(w, 1)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, direct, rtol=1e-4, atol=1e-6)
    ranks = head_spectra.layer_sum_ranks(w, rtols=(1e-1, 1e-2))
    assert ranks["numpy default"][1] == np.linalg.matrix_rank(direct) == 16  # the cap G d_h
    assert ranks["default rtol"] == pytest.approx(48 * np.finfo(np.float32).eps)
    spec = head_spectra.head_spectra(w)
    for rtol in (1e-1, 1e-2):  # float32 SVD against the float64 cores
        np.testing.assert_array_equal(ranks[rtol], spec.layer_qk_rank(rtol))
    rows = head_spectra.rank_rows(ranks)
    assert [r["layer 0"] for r in rows] == [ranks[key][0] for key in ("numpy default", 1e-1, 1e-2)]
    glued = head_spectra.rank_glue_values(ranks, "t")
    assert glued["t_rank_1em2_first"] == ranks[1e-2][0] and glued["t_rank_default_rest_max"] == 16
    # symmetrised head: the nonzero eigenvalues are those of the 2 d_h x 2 d_h core
    # [[0, I], [I, 0]] / 2 @ F F^T / sqrt(d_h) with F = [W_Q; W_K] (d_h = 8)
    head = w.head(1, 4)
    F = np.concatenate([head["W_Q"], head["W_K"]])
    swap = np.block([[np.zeros((8, 8)), np.eye(8)], [np.eye(8), np.zeros((8, 8))]]) / 2
    core = np.sort(np.linalg.eigvals(swap @ F @ F.T / np.sqrt(8)).real)
    eigenvalues = head_spectra.symmetric_qk_eigenvalues(w, 1, 4)
    big = np.abs(eigenvalues) > 1e-10 * np.abs(eigenvalues).max()
    assert big.sum() == 16 and eigenvalues.size == 48
    counts = head_spectra.symmetric_qk_counts(eigenvalues, 8, window=0.5)
    assert (counts["nonzero"], counts["zero"], counts["bound"]) == (16, 32, 16)
    assert counts["outside"] == np.sum(np.abs(core) > 0.5)
    np.testing.assert_allclose(eigenvalues[big], core, rtol=1e-8)
    # the singular values of v_proj, and the spread of each layer's
    sv = torch.linalg.svdvals(attn.v_proj.weight).detach().numpy()
    assert head_spectra.value_spread(w)[1] == pytest.approx(sv[0] / np.median(sv), rel=1e-5)
    np.testing.assert_allclose(
        head_spectra.value_singular_values(w, 1), torch.linalg.svdvals(attn.v_proj.weight).detach().numpy(), rtol=1e-5
    )


def test_model_paths_fail_with_clear_messages(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="neither one of the offline models"):
        assets.model_path(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        assets.model_path(tmp_path)
    monkeypatch.setenv(assets.ASSETS_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make setup"):
        assets.model_path("smollm2")


# --------------------------------------------------------------------------------------
# a stack run several times
# --------------------------------------------------------------------------------------
def test_repeated_stack_reuses_the_layers_and_is_restored(tiny):
    ids = torch.arange(1, 13)[None]
    once = depth.token_states(tiny, ids)
    assert once.shape == (4, 12, 48)
    with depth.repeated_layers(tiny, 3):
        assert len(tiny.model.layers) == 9 and tiny.model.layers[5] is tiny.model.layers[2]
        thrice = depth.token_states(tiny, ids)
    assert len(tiny.model.layers) == 3
    assert thrice.shape == (10, 12, 48)
    np.testing.assert_allclose(thrice[:4], once, rtol=1e-6, atol=1e-6)  # the first pass is the model itself
    # the hooks see what transformers reports as hidden states (all but the last, which
    # is taken after the final norm)
    with torch.no_grad():
        hidden = tiny.model(input_ids=ids, output_hidden_states=True).hidden_states
    np.testing.assert_allclose(once[:-1], torch.stack(hidden[:-1])[:, 0].double().numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="times"):
        with depth.repeated_layers(tiny, 0):
            pass


def test_pairwise_cosines_against_a_direct_computation():
    rng = np.random.default_rng(2)
    states = rng.standard_normal((3, 5, 4))
    cos = depth.pairwise_cosines(states)
    direct = [
        [
            states[k, i] @ states[k, j] / np.linalg.norm(states[k, i]) / np.linalg.norm(states[k, j])
            for i, j in [(i, j) for i in range(5) for j in range(i + 1, 5)]
        ]
        for k in range(3)
    ]
    np.testing.assert_allclose(cos, direct)
    assert depth.pairwise_cosines(states, skip_first=True).shape == (3, 6)
    # identical tokens: similarity one
    same = np.repeat(rng.standard_normal((2, 1, 4)), 6, axis=1)
    np.testing.assert_allclose(depth.pairwise_cosines(same), 1.0)


def test_layer_similarities_on_a_tiny_model(tiny):
    class Tokenizer:  # whitespace words to ids, enough for the function's contract
        def __call__(self, text, return_tensors, truncation, max_length):
            # a fixed map (str's hash changes with every interpreter)
            ids = [1 + sum(map(ord, word)) % 299 for word in text.split()][:max_length]
            return {"input_ids": torch.tensor([ids])}

    result = depth.layer_similarities(
        tiny, Tokenizer(), {"a": ["x y z w v u", "p q r s t"], "b": ["one two three four"]}, times=2, max_tokens=5
    )
    assert result.mean["a"].shape == (2, 7) and result.mean["b"].shape == (1, 7)
    assert result.n_tokens == {"a": [5, 5], "b": [4]}
    assert set(result.samples["a"]) == {0, 3, 6}
    assert np.all(np.abs(result.mean_no_first["a"]) <= 1)
    values = result.glue_values()
    assert values["depth_total"] == 6
    rise = values["depth_a_end"] - values["depth_a_trained"]
    assert values["depth_a_rise"] == pytest.approx(rise, rel=1e-12, abs=1e-15)


# --------------------------------------------------------------------------------------
# texts
# --------------------------------------------------------------------------------------
def test_wiki_markup_is_stripped():
    raw = (
        "{{Infobox|name={{nested|x}}}}'''Aardwolf''' is a [[mammal|small mammal]] of [[Africa]]."
        "<ref>a source</ref> See [http://example.org the site].\n== History ==\n[[Category:Mammals]]"
        "{| class=wikitable\n| a || b\n|}&amp; done"
    )
    text = texts.strip_wiki_markup(raw)
    assert text.startswith("Aardwolf is a small mammal of Africa. See the site.")
    assert "History" in text and "Category" not in text and "{" not in text and "ref" not in text
    assert text.endswith("& done")


def test_generated_texts_are_reproducible_and_leave_the_global_random_state_alone():
    import random

    random.seed(123)
    before = random.random()
    random.seed(123)
    a, b = texts.dummy_text(3, seed=4), texts.dummy_text(3, seed=4)
    assert random.random() == before  # the global state was restored
    assert a == b and a != texts.dummy_text(3, seed=5) and len(a.split()) > 10
    # the shared generator writes what a fresh one writes
    texts._generator.cache_clear()
    fresh = texts.dummy_text(3, seed=4)
    assert texts._generator() is texts._generator() and fresh == a == texts.dummy_text(3, seed=4)


# --------------------------------------------------------------------------------------
# the offline models that make setup installs
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm2():
    torch.set_num_threads(1)
    return heads.attention_weights(loading.load("smollm2"), "SmolLM2")


def test_offline_smollm2_has_the_documented_architecture_and_rank_cap(smollm2):
    w = smollm2
    assert (w.n_layers, w.n_heads, w.n_kv_heads, w.head_dim, w.d) == (30, 9, 3, 64, 576)
    g = w.layer_factors(5)
    sv = np.linalg.svd(g["Q_grouped"].T @ g["K"], compute_uv=False)
    assert sv[192] < 1e-9 * sv[0] and sv[191] > 1e-4 * sv[0]  # rank exactly 3 x 64
    # one real head, core route against the 576 x 576 matrices
    naive = head_spectra.naive_head_spectra(w, 12, 7)
    sub = heads.AttentionWeights(
        w.name,
        w.family,
        1,
        w.n_heads,
        w.n_kv_heads,
        w.head_dim,
        w.d,
        [w.query[12]],
        [w.key[12]],
        [w.value[12]],
        [w.output[12]],
    )
    core = head_spectra.head_spectra(sub)
    np.testing.assert_allclose(core.qk_singular[0, 7], naive["qk_singular"][:64], rtol=1e-7)


def test_offline_texts_are_real_prose():
    paragraphs = texts.wikipedia_paragraphs(4, seed=0)
    assert len({title for title, _ in paragraphs}) == 4
    assert all(len(p) >= 600 and "[[" not in p and "{{" not in p for _, p in paragraphs)
    words = texts.random_words(50, seed=0).split()
    assert len(words) == 50 and all(w.isalpha() and w.islower() for w in words)
    assert texts.random_words(50, seed=0) == texts.random_words(50, seed=0)


def test_the_repeated_stack_runs_every_repetition(tiny):
    # what a decoder that runs `layers[: num_hidden_layers]` would do silently: the
    # second pass must continue from the first pass's output, layer by layer
    ids = torch.arange(1, 9)[None]
    with depth.repeated_layers(tiny, 2):
        twice = depth.token_states(tiny, ids)
    layer = tiny.model.layers[0]
    with torch.no_grad():
        hidden = torch.tensor(twice[3], dtype=torch.float32)[None]
        position_ids = torch.arange(8)[None]
        embeddings = tiny.model.rotary_emb(hidden, position_ids)
        mask = torch.full((8, 8), float("-inf")).triu(1)[None, None]
        out = layer(hidden, attention_mask=mask, position_embeddings=embeddings, position_ids=position_ids)
        out = out[0] if isinstance(out, tuple) else out
    np.testing.assert_allclose(twice[4], out[0].double().numpy(), atol=1e-5)
    assert tiny.config.num_hidden_layers == 3


# --------------------------------------------------------------------------------------
# LoRA on the value projections
# --------------------------------------------------------------------------------------
def test_review_snippets_are_the_documented_data():
    from lora_clusters.nets import lm_lora

    pairs = lm_lora.review_snippets()
    # 10,605 snippets, 37 of them rated exactly 0 and left out; about half positive
    assert len(pairs) == 10568 and 5000 < sum(label for _, label in pairs) < 5600
    assert all(text and label in (0, 1) for text, label in pairs)


def _write_acl_imdb(root):
    reviews = {
        ("train", "pos"): ["A <br />delight.", "Loved it"],
        ("train", "neg"): ["Dull."],
        ("test", "pos"): ["Great fun"],
        ("test", "neg"): ["Awful<br/><br/>acting", "Boring"],
    }
    for (split, kind), texts_ in reviews.items():
        folder = root / "aclImdb" / split / kind
        folder.mkdir(parents=True)
        for k, text in enumerate(texts_):
            (folder / f"{k}_7.txt").write_text(text, encoding="utf-8")


def test_imdb_is_read_from_either_usual_copy(tmp_path):
    from lora_clusters.nets import lm_lora

    _write_acl_imdb(tmp_path)
    pairs = lm_lora.imdb_reviews(tmp_path)  # the folder that holds aclImdb
    assert pairs == lm_lora.imdb_reviews(tmp_path / "aclImdb")
    assert sorted(pairs) == sorted(
        [("A delight.", 1), ("Loved it", 1), ("Dull.", 0), ("Great fun", 1), ("Awful acting", 0), ("Boring", 0)]
    )
    csv_file = tmp_path / "IMDB Dataset.csv"
    csv_file.write_text('review,sentiment\n"Good, truly<br />good",positive\nBad,negative\n', encoding="utf-8")
    assert lm_lora.imdb_reviews(csv_file) == [("Good, truly good", 1), ("Bad", 0)]
    numeric = tmp_path / "numeric.csv"
    numeric.write_text("text,label\nfine,1\npoor,0\n", encoding="utf-8")
    assert lm_lora.imdb_reviews(numeric) == [("fine", 1), ("poor", 0)]


def test_imdb_errors_name_what_is_wrong(tmp_path):
    from lora_clusters.nets import lm_lora

    with pytest.raises(FileNotFoundError, match="no IMDb data at .*nowhere"):
        lm_lora.imdb_reviews(tmp_path / "nowhere")
    (tmp_path / "aclImdb" / "train" / "pos").mkdir(parents=True)
    with pytest.raises(ValueError, match="not an aclImdb folder: it lacks train/neg, test/neg, test/pos"):
        lm_lora.imdb_reviews(tmp_path)
    bad_columns = tmp_path / "bad.csv"
    bad_columns.write_text("body,stars\nok,5\n", encoding="utf-8")
    with pytest.raises(ValueError, match="needs a 'review'"):
        lm_lora.imdb_reviews(bad_columns)
    bad_label = tmp_path / "label.csv"
    bad_label.write_text("review,sentiment\nok,maybe\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: unknown label 'maybe'"):
        lm_lora.imdb_reviews(bad_label)
    other = tmp_path / "reviews.txt"
    other.write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="aclImdb folder or a .csv file"):
        lm_lora.imdb_reviews(other)


def test_the_chapter_reads_its_model_and_data_from_the_environment(tmp_path, monkeypatch):
    from lora_clusters import scale
    from lora_clusters.nets import lm_lora

    monkeypatch.delenv(scale.MODEL_ENV, raising=False)
    monkeypatch.delenv(lm_lora.DATA_ENV, raising=False)
    assert scale.settings("lm_lora", "cpu").model == "smollm2" and scale.settings("depth", "smoke").model == "tiny"
    default = lm_lora.chapter_data()
    assert "Hutto" in default.name and len(default.pairs) == 10568
    _write_acl_imdb(tmp_path)
    monkeypatch.setenv(lm_lora.DATA_ENV, str(tmp_path))
    monkeypatch.setenv(scale.MODEL_ENV, "/models/llama")
    data = lm_lora.chapter_data()
    assert data.name.startswith("IMDb") and len(data.pairs) == 6 and data.positive == 3
    # the model override applies to both chapters and every scale, and leaves the rest
    for experiment in ("lm_lora", "depth"):
        table = scale.SETTINGS[experiment]
        for name in ("smoke", "cpu", "gpu"):
            assert scale.settings(experiment, name).model == "/models/llama"
            assert scale.settings(experiment, name) == replace(table[name], model="/models/llama")
    # the toy transformer has no model: the setting leaves it as it is
    assert scale.settings("toy", "cpu") == scale.SETTINGS["toy"]["cpu"]
    with pytest.raises(ValueError, match="scale_name must be one of smoke, cpu, gpu, got 'tpu'"):
        scale.settings("lm_lora", "tpu")
    monkeypatch.setenv(lm_lora.DATA_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="missing"):
        lm_lora.chapter_data()


def test_long_texts_are_cut_so_that_every_prompt_ends_with_the_answer_cue():
    from transformers import AutoTokenizer

    from lora_clusters.nets import lm_lora

    tokenizer = AutoTokenizer.from_pretrained(assets.model_path("smollm2"))
    tokenizer.pad_token = tokenizer.eos_token
    items = [("word " * 300, 1), ("short review", 0), ("a rather long sentence, " * 12, 1)]
    encoded = lm_lora._encode(tokenizer, items, max_tokens=32)
    assert encoded["input_ids"].shape[1] <= 32
    cue = tokenizer(lm_lora.PROMPT.format(text="x").split("x")[1], add_special_tokens=False)["input_ids"]
    for row in encoded["input_ids"].tolist():
        assert row[-len(cue) :] == cue  # the last tokens are "\nSentiment:" in every row
    assert "short review" in tokenizer.decode(encoded["input_ids"][1])
    with pytest.raises(ValueError, match="max_tokens = 4 leaves no room"):
        lm_lora._encode(tokenizer, items, max_tokens=4)


@pytest.mark.parametrize("kv_heads", [2, 4])
def test_value_lora_tracks_the_eigenvalues_of_its_update(kv_heads):
    from transformers import AutoTokenizer

    from lora_clusters.nets import lm_lora, lm_lora_study

    tokenizer = AutoTokenizer.from_pretrained(assets.model_path("smollm2"))
    model = loading.tiny_llama(len(tokenizer), layers=2, d=32, heads=4, kv_heads=kv_heads, seed=4)
    weights = heads.attention_weights(model, "tiny")
    data = [(f"review number {k} was {'good' if k % 2 else 'bad'}", k % 2) for k in range(40)]
    settings = lm_lora.LoRASettings("tiny", steps=4, batch_size=4, n_test=8, checkpoint_every=2, max_tokens=16)
    run = lm_lora.train_value_lora(model, tokenizer, settings, data=data)
    assert run.checkpoints.tolist() == [0, 2, 4] and run.loss.shape == (4,) and np.isfinite(run.loss).all()
    assert run.n_train == 32 and run.n_test == 8 and run.examples_seen == 16
    assert np.all(run.ov_eigenvalues[0] == 0)  # LoRA starts at B = 0
    # the 2 x 2 route against the eigenvalues of the d x d update of the value map
    for layer, delta in enumerate(run.delta_v):
        O = weights.layer_factors(layer)["O_grouped"]
        full = np.linalg.eigvals(O @ delta)
        full = full[np.argsort(-np.abs(full))][:2]
        np.testing.assert_allclose(np.sort_complex(run.ov_eigenvalues[-1, layer]), np.sort_complex(full), atol=1e-10)
    if kv_heads == 4:  # no grouped-query attention: Delta V is square and has eigenvalues
        full = np.linalg.eigvals(run.delta_v[0])
        full = full[np.argsort(-np.abs(full))][:2]
        np.testing.assert_allclose(np.sort_complex(run.v_eigenvalues[-1, 0]), np.sort_complex(full), atol=1e-10)
    else:
        assert run.v_eigenvalues is None
    rows = lm_lora_study.value_map_change(weights, run)
    assert len(rows) == 2 and all(r["largest |eig| before"] > 0 for r in rows)
    # the stored factors give the update: (alpha / r) B A
    A, B = run.factors[1]
    np.testing.assert_allclose(run.delta_v[1], settings.alpha / settings.rank * B @ A)
    assert 0.0 <= run.accuracy_before <= 1.0 and 0.0 <= run.accuracy_after <= 1.0


def test_a_bert_model_is_read_head_by_head():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
    )
    model = BertModel(config).eval()
    w = heads.attention_weights(model, "tiny BERT")
    assert (w.family, w.n_layers, w.n_heads, w.n_kv_heads, w.head_dim, w.d) == ("bert", 2, 4, 4, 8, 32)
    attention = model.encoder.layer[1].attention
    head = w.head(1, 2)
    np.testing.assert_array_equal(head["W_K"], attention.self.key.weight.detach().double().numpy()[16:24])
    np.testing.assert_array_equal(head["W_O"], attention.output.dense.weight.detach().double().numpy()[:, 16:24])
    spec = head_spectra.head_spectra(w)
    naive = head_spectra.naive_head_spectra(w, 1, 2)
    np.testing.assert_allclose(spec.qk_singular[1, 2], naive["qk_singular"][:8], rtol=1e-8)
    assert (spec.layer_qk_rank(1e-8) == 32).all()  # no grouped-query cap: 4 x 8 = d


def _tiny_lora_run(**changes):
    from dataclasses import replace

    from transformers import AutoTokenizer

    from lora_clusters.nets import lm_lora

    tokenizer = AutoTokenizer.from_pretrained(assets.model_path("smollm2"))
    model = loading.tiny_llama(len(tokenizer), layers=2, d=32, heads=4, kv_heads=4, seed=4)
    # texts of one length: no padding, so that micro-batches see what one batch sees
    data = [(f"review {k:02d} {'good' if k % 2 else 'bad '}", k % 2) for k in range(40)]
    base = lm_lora.LoRASettings("tiny", steps=3, batch_size=4, n_test=8, checkpoint_every=3, max_tokens=16, dropout=0.0)
    return lm_lora.train_value_lora(model, tokenizer, replace(base, **changes), data=data)


def test_gradient_accumulation_equals_one_larger_batch():
    """Two micro-batches of 2 accumulated make the step of one batch of 4 (the mean of
    the two halves' mean losses is the mean loss), and differ from a batch of 2."""
    whole = _tiny_lora_run(batch_size=4, grad_accumulation=1)
    halves = _tiny_lora_run(batch_size=2, grad_accumulation=2)
    smaller = _tiny_lora_run(batch_size=2, grad_accumulation=1)
    assert halves.examples_seen == whole.examples_seen == 12
    for (A1, B1), (A2, B2), (A3, _) in zip(whole.factors, halves.factors, smaller.factors):
        np.testing.assert_allclose(A2, A1, atol=1e-6)
        np.testing.assert_allclose(B2, B1, atol=1e-6)
        assert np.abs(A3 - A1).max() > 1e-5  # a different batch moves the factors differently
    np.testing.assert_allclose(halves.loss, whole.loss, rtol=1e-5)


def test_the_gradient_is_clipped_to_max_grad_norm():
    import torch

    from lora_clusters.nets import lm_lora

    clipped = lm_lora.LoRASettings("tiny", steps=1, batch_size=4, n_test=8, checkpoint_every=1, max_grad_norm=1e-4)
    free = lm_lora.LoRASettings("tiny", steps=1, batch_size=4, n_test=8, checkpoint_every=1)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(assets.model_path("smollm2"))
    tokenizer.pad_token = tokenizer.eos_token
    batch = [(f"review {k:02d} good", k % 2) for k in range(4)]
    labels = torch.tensor(lm_lora._label_ids(tokenizer))
    norms = []
    for settings in (clipped, free):
        model = loading.tiny_llama(len(tokenizer), layers=2, d=32, heads=4, kv_heads=4, seed=4)
        tuned = lm_lora._with_value_lora(model, settings)
        with torch.no_grad():  # B != 0, so that A gets a gradient too
            for name, p in tuned.named_parameters():
                if "lora_B" in name:
                    p.fill_(0.1)
        trainable = [p for p in tuned.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(trainable, lr=0.0)
        lm_lora._training_step(tuned, optimizer, tokenizer, [batch], labels, settings, "cpu")
        norms.append(float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in trainable]))))
    assert norms[1] > 1e-3  # unclipped, the gradient is far larger than the cap
    assert norms[0] == pytest.approx(1e-4, rel=1e-3)


@pytest.mark.parametrize(
    "changes, name",
    [
        ({"grad_accumulation": 0}, "grad_accumulation"),
        ({"max_grad_norm": -1.0}, "max_grad_norm"),
        ({"weight_decay": -0.1}, "weight_decay"),
    ],
)
def test_bad_lora_settings_name_the_setting(changes, name):
    from lora_clusters.nets import lm_lora

    args = {"model": "tiny", "steps": 1, "batch_size": 1, "n_test": 1, "checkpoint_every": 1, **changes}
    with pytest.raises(ValueError, match=name):
        lm_lora.LoRASettings(**args)


def _fake_run(seed, before, after, moduli):
    from lora_clusters.nets import lm_lora

    settings = lm_lora.LoRASettings("tiny", steps=2, batch_size=3, n_test=4, checkpoint_every=1, seed=seed)
    ov = np.zeros((2, len(moduli), 2), dtype=complex)
    ov[-1, :, 0] = moduli  # the largest eigenvalue of each layer at the end
    ov[-1, :, 1] = 0.1 * np.asarray(moduli) * 1j
    return lm_lora.LoRARun(settings, "tiny", np.ones(2), np.arange(2), ov, None, before, after, 1.0, 0.5, 10, 4, 1.0)


def test_seed_summary_is_the_mean_and_sample_spread_over_runs():
    from lora_clusters.nets import lm_lora_study

    runs = [_fake_run(0, 0.7, 0.8, [1.0, 2.0]), _fake_run(1, 0.6, 0.9, [3.0, 2.0]), _fake_run(2, 0.8, 0.85, [2.0, 2.0])]
    s = lm_lora_study.seed_summary(runs)
    assert s["seeds"] == [0, 1, 2]
    assert s["after"]["mean"] == pytest.approx(0.85) and s["after"]["std"] == pytest.approx(0.05)
    assert s["gain"]["min"] == pytest.approx(0.05) and s["gain"]["max"] == pytest.approx(0.3)
    np.testing.assert_allclose(s["eig_mean"], [2.0, 2.0])
    np.testing.assert_allclose(s["eig_std"], [1.0, 0.0])
    assert s["eig_cv_median"] == pytest.approx(0.25)  # median of 1/2 and 0/2
    glued = lm_lora_study.seed_glue_values(runs)
    assert glued["lm_n_seeds"] == 3 and glued["lm_gain_all_positive"] is True


def test_settings_table_reads_the_books_values_from_the_settings():
    from lora_clusters.nets import lm_lora, lm_lora_study

    settings = lm_lora.LoRASettings(
        "smollm2",
        steps=300,
        batch_size=1,
        n_test=4,
        checkpoint_every=30,
        grad_accumulation=3,
        weight_decay=0.001,
        max_grad_norm=0.3,
    )
    rows = {r["setting"]: r for r in lm_lora_study.settings_table(settings, "snippets", (0, 1, 2))}
    assert rows["batch"]["book"] == "1 per step, 3 steps accumulated"
    assert rows["gradient clipping"]["book"] == "norm 0.3" and rows["weight decay"]["book"] == "0.001"
    assert rows["optimiser steps"]["book"].startswith("300") and rows["seeds"]["book"] == "0, 1, 2"
    assert rows["data"]["book"] == "snippets"
