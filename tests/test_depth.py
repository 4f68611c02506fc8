"""Chapter 8's measurements (lora_clusters.nets.depth) against independent computations:
the O(n d) mean cosine, self-pairs, the intervals over texts, the extras behind the
sawtooth, and the authors' recipe on a tiny random Llama."""

import numpy as np
import pytest
import torch
from scipy import stats

from lora_clusters.nets import depth, loading


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    return loading.tiny_llama(vocab_size=300, layers=3, d=48, heads=6, kv_heads=2, seed=1)


class Tokenizer:
    """Whitespace words to ids, with the few attributes the recipe checks read."""

    bos_token, bos_token_id = "<s>", 299

    def __call__(self, text, return_tensors, truncation, max_length):
        ids = [1 + sum(map(ord, word)) % 297 for word in text.split()][:max_length]
        return {"input_ids": torch.tensor([ids])}

    def convert_ids_to_tokens(self, index):
        return f"id{index}"


def _direct_mean(states, skip_first=False, self_pairs=False):
    """Mean cosine over pairs, by a double loop."""
    out = []
    for layer in states:
        x = layer[1:] if skip_first else layer
        n = len(x)
        pairs = [(i, j) for i in range(n) for j in range(n) if self_pairs or i < j]
        out.append(np.mean([x[i] @ x[j] / np.linalg.norm(x[i]) / np.linalg.norm(x[j]) for i, j in pairs]))
    return np.array(out)


def test_mean_cosine_and_self_pairs_against_a_double_loop():
    rng = np.random.default_rng(3)
    states = rng.standard_normal((4, 7, 5)) + 0.5
    np.testing.assert_allclose(depth.mean_cosine(states), _direct_mean(states), rtol=1e-12)
    np.testing.assert_allclose(depth.mean_cosine(states, True), _direct_mean(states, True), rtol=1e-12)
    np.testing.assert_allclose(depth.mean_cosine(states), depth.pairwise_cosines(states).mean(axis=1), rtol=1e-12)
    with_self = depth.with_self_pairs(depth.mean_cosine(states)[None], [7])[0]
    np.testing.assert_allclose(with_self, _direct_mean(states, self_pairs=True), rtol=1e-12)
    with pytest.raises(ValueError, match="two tokens"):
        depth.mean_cosine(states[:, :1])


def test_intervals_against_scipy():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0.6, 0.05, 50), rng.normal(0.55, 0.1, 40)
    mean, lo, hi = depth.t_interval(a)
    expected = stats.ttest_1samp(a, 0).confidence_interval(0.95)
    assert mean == pytest.approx(a.mean()) and (lo, hi) == pytest.approx((expected.low, expected.high))
    diff, lo, hi = depth.welch_interval(a, b, 0.9)
    expected = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.9)
    assert diff == pytest.approx(a.mean() - b.mean()) and (lo, hi) == pytest.approx((expected.low, expected.high))


def _synthetic(a_values, b_values):
    layers = 5
    mean = {"a": np.tile(np.asarray(a_values)[:, None], layers), "b": np.tile(np.asarray(b_values)[:, None], layers)}
    return depth.LayerSimilarities("x", 2, 2, ["a", "b"], mean, mean, {}, {"a": [], "b": []})


def test_verdict_follows_the_interval():
    rng = np.random.default_rng(5)
    apart = _synthetic(rng.normal(0.8, 0.02, 30), rng.normal(0.5, 0.02, 30))
    assert apart.verdict("a", "b", 4).startswith("a is more similar than b")
    assert apart.verdict("b", "a", 4).startswith("b is less similar than a")
    rising = _synthetic(rng.normal(0.8, 0.02, 30), rng.normal(0.5, 0.02, 30))
    rising.mean_no_first["a"][:, 4] += 0.2
    assert rising.verdict("a", "b", "rise").startswith("a rises more than b")
    same = _synthetic(rng.normal(0.5, 0.1, 30), rng.normal(0.5, 0.1, 30) + 1e-3)
    diff, lo, hi = same.difference("a", "b", 2)
    assert lo < 0 < hi and same.verdict("a", "b", 2).startswith("no difference")


def test_extras_and_authors_recipe_on_a_tiny_model(tiny):
    texts = {"a": ["x y z w v u t", "p q r s t"], "b": ["one two three four five six"]}
    one = depth.layer_similarities(tiny, Tokenizer(), texts, times=2, max_tokens=6, batch_size=1)
    many = depth.layer_similarities(tiny, Tokenizer(), texts, times=2, max_tokens=6, batch_size=8)
    # right padding does not change a causal model's states of the shorter text
    for name in ("mean", "normed_no_first", "update_cosine", "update_ratio", "first_norm"):
        np.testing.assert_allclose(getattr(many, name)["a"], getattr(one, name)["a"], rtol=1e-5, atol=1e-6)
    ids = Tokenizer()("p q r s t", "pt", True, 6)["input_ids"]
    with depth.repeated_layers(tiny, 2):
        states = depth.token_states(tiny, ids)
    with torch.no_grad():
        normed = tiny.model.norm(torch.tensor(states, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(one.normed_no_first["a"][1], _direct_mean(normed, True), rtol=1e-5)
    norms = np.linalg.norm(states, axis=-1)
    np.testing.assert_allclose(one.state_norm["a"][1], norms[:, 1:].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(one.first_norm["a"][1], norms[:, 0], rtol=1e-6)
    update = states[1:, 1:] - states[:-1, 1:]
    np.testing.assert_allclose(one.update_cosine["a"][1, 1:], _direct_mean(update), rtol=1e-5)
    ratio = (np.linalg.norm(update, axis=-1) / norms[:-1, 1:]).mean(axis=1)
    np.testing.assert_allclose(one.update_ratio["a"][1, 1:], ratio, rtol=1e-5)
    # the authors' recipe: a 6-layer model of copied layers, transformers' hidden states
    # (the last after the final norm), all n^2 pairs, first token included
    with depth.copied_layers(tiny, 2), torch.no_grad():
        assert tiny.model.layers[3] is not tiny.model.layers[0]
        hidden = torch.stack(tiny(input_ids=ids, output_hidden_states=True).hidden_states)[:, 0].double().numpy()
    np.testing.assert_allclose(one.authors_recipe("a")[1], _direct_mean(hidden, self_pairs=True), rtol=1e-5)
    assert len(tiny.model.layers) == 3
    rows = one.pass_ends()
    assert [row["layer"] for row in rows] == [3, 6]
    pooled = np.concatenate([one.mean_no_first[k] for k in one.kinds])
    assert rows[1]["change"] == pytest.approx((pooled[:, 6] - pooled[:, 5]).mean())
    # the recipe table: each step's effect from the pooled means, the sum from the recipe
    one.checks = {"copy_difference": 0.0, "first_token": "id1"}
    recipe = {row["step"]: row["effect at layer 6"] for row in one.recipe_rows()}
    every = np.concatenate([one.mean[k][:, 6] for k in one.kinds])
    normed = np.concatenate([one.normed[k][:, 6] for k in one.kinds])
    assert float(recipe["last state"]) == pytest.approx((normed - every).mean(), abs=1e-3)
    n = np.array([6, 5, 6])
    assert float(recipe["pairs averaged"]) == pytest.approx(((1 - every) / n).mean(), abs=1e-3)
    together = np.concatenate([one.authors_recipe(k)[:, 6] - one.mean_no_first[k][:, 6] for k in one.kinds])
    assert float(recipe["all together"]) == pytest.approx(together.mean(), abs=1e-3)
    paper = one.paper_rows()
    assert len(paper) == 3 and {"a", "b"} <= set(paper[0])
    values = one.glue_values()
    assert values["depth_a_end_first_effect"] == pytest.approx(values["depth_a_end_with_first"] - values["depth_a_end"])
    assert values["depth_end6_change"] == pytest.approx(rows[1]["change"])


def test_recipe_checks_on_a_tiny_model(tiny):
    checks = depth.recipe_checks(tiny, Tokenizer(), "a b c d e f", times=3)
    assert checks["adds_bos"] is False and checks["bos_token"] == "<s>" and checks["first_token"].startswith("id")
    assert checks["copy_difference"] < 1e-6
