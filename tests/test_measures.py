import numpy as np
import pytest

from lora_clusters import measures


def test_w2_one_dimension_is_sorted_pairs(rng):
    for n in (1, 7, 40):
        a, b = rng.normal(size=(n, 1)), rng.standard_exponential(size=(n, 1)) - 0.5
        expected = np.sqrt(np.mean((np.sort(a[:, 0]) - np.sort(b[:, 0])) ** 2))
        assert np.isclose(measures.wasserstein2(a, b), expected, rtol=1e-10)


def test_w2_equal_size_clouds_assignment_matches_the_linear_program(rng):
    # uniform clouds of one size go through the assignment solver; the same measures
    # with explicit weights, and POT's network simplex called directly, solve the LP
    import ot

    for n, d in ((1, 2), (30, 2), (30, 5), (64, 3)):
        X, Y = rng.normal(size=(n, d)), rng.normal(loc=0.5, size=(n, d))
        cost = ((X[:, None] - Y[None]) ** 2).sum(-1)
        uniform = np.full(n, 1.0 / n)
        lp = np.sqrt(ot.emd2(uniform, uniform, cost))
        assert np.isclose(measures.wasserstein2(X, Y), lp, rtol=1e-10)
        assert np.isclose(measures.wasserstein2(X, Y, a=uniform, b=uniform), lp, rtol=1e-10)
    states_a, states_b = rng.normal(size=(4, 12, 2)), rng.normal(size=(4, 12, 2))
    expected = [
        np.sqrt(ot.emd2(np.full(12, 1 / 12), np.full(12, 1 / 12), ((x[:, None] - y[None]) ** 2).sum(-1)))
        for x, y in zip(states_a, states_b)
    ]
    np.testing.assert_allclose(measures.wasserstein2_path(states_a, states_b), expected, rtol=1e-10)


def test_w2_translation_permutation_and_unequal_sizes(rng):
    X = rng.normal(size=(25, 3))
    shift = np.array([0.3, -0.4, 1.2])
    assert np.isclose(measures.wasserstein2(X, X + shift), np.linalg.norm(shift))
    assert measures.wasserstein2(X, X[rng.permutation(25)]) < 1e-12
    # a single point against a cloud: W2^2 = mean squared distance to that point
    assert np.isclose(measures.wasserstein2(X, np.zeros((1, 3))), np.sqrt((X**2).sum(1).mean()))
    path = measures.wasserstein2_path(np.stack([X, X]), np.stack([X, X + shift]))
    np.testing.assert_allclose(path, [0.0, np.linalg.norm(shift)], atol=1e-12)


def test_clusters_s_delta_and_times():
    centers = np.array([[0.0, 0.0], [3.0, 0.0]])
    pts = np.array([[0.0, 0.0005], [0.0004, 0.0], [3.0, 0.0], [3.0002, 0.0]])
    found, labels = measures.cluster_centers(pts, tol=1e-2, return_labels=True)
    np.testing.assert_allclose(found, [[0.0002, 0.00025], [3.0001, 0.0]])
    assert list(labels) == [0, 0, 1, 1]
    far = np.array([[0.0, 0.05], [1.5, 0.0], [3.2, 0.0]])
    np.testing.assert_array_equal(measures.delta_clustered_set(far, centers, 0.1), [0])
    np.testing.assert_array_equal(measures.delta_clustered_set(far, centers, 0.25), [0, 2])
    # a path that clusters at t = 2, stays until t = 5, leaves at t = 6
    t = np.arange(8.0)
    offsets = np.array([1.0, 0.5, 0.05, 0.04, 0.03, 0.02, 0.5, 0.9])
    states = centers[None] + offsets[:, None, None] * np.array([0.0, 1.0])
    assert measures.clustering_time(t[:6], states[:6], centers, 0.1) == 2.0
    assert measures.clustering_time(t, states, centers, 0.1) == np.inf
    assert measures.exit_time(t, states, centers, 0.1, after=2.0) == 6.0
    assert measures.exit_time(t[:6], states[:6], centers, 0.1, after=2.0) == np.inf


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: measures.wasserstein2(np.ones((3, 2)), np.ones((3, 3))), "dimension"),
        (lambda: measures.wasserstein2(np.ones(3), np.ones((3, 1))), "X"),
        (lambda: measures.wasserstein2(np.ones((3, 2)), np.full((3, 2), np.nan)), "Y"),
        (lambda: measures.wasserstein2(np.ones((3, 2)), np.ones((3, 2)), a=[0.5, 0.5]), "a"),
        (lambda: measures.cluster_centers(np.ones((3, 2)), tol=0), "tol"),
        (lambda: measures.delta_clustered_set(np.ones((3, 2)), np.ones((1, 2)), -1), "delta"),
        (lambda: measures.distance_to_clusters(np.ones((3, 2)), np.ones((1, 3))), "states"),
        (lambda: measures.wasserstein2(np.ones((3, 2)) + 1j, np.ones((3, 2))), "X"),
        (lambda: measures.clustering_time([2.0, 1.0, 0.0], np.zeros((3, 2, 2)), np.zeros((1, 2)), 0.1), "t"),
        (lambda: measures.exit_time([0.0, 1.0], np.zeros((2, 2, 2)), np.zeros((1, 2)), 0.1, after=np.nan), "after"),
        (lambda: measures.first_crossing_time([0.0, 1.0], [1.0, 0.5], 0.0), "level"),
        (lambda: measures.first_crossing_time([0.0, 1.0], [1.0, 0.5], -1.0), "level"),
        (lambda: measures.first_crossing_time([0.0, 1.0], [1.0, -0.5], 0.1), "values"),
        (lambda: measures.distance_to_P_star(np.ones((3, 3))), "P"),
        (lambda: measures.distance_to_P_star(np.eye(3) * 2 - 1 / 3), "P"),
    ],
)
def test_bad_input_raises_clear_error(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1.0])
def test_w2_is_homogeneous_even_near_the_float64_limits(rng, scale):
    # unequal sizes go through the linear program, equal ones through the assignment:
    # both must give scale * W2(unit clouds), not 0 or inf, for clouds at 1e200 or 1e-200
    X, Y, Z = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)), rng.normal(size=(7, 3))
    np.testing.assert_allclose(
        measures.wasserstein2(scale * X, scale * Y), scale * measures.wasserstein2(X, Y), rtol=1e-12
    )
    np.testing.assert_allclose(
        measures.wasserstein2(scale * X, scale * Z), scale * measures.wasserstein2(X, Z), rtol=1e-12
    )
    assert measures.wasserstein2(scale * X, scale * X[rng.permutation(7)]) == 0.0


def test_distance_to_clusters_matches_the_direct_formula(rng):
    states, centers = rng.normal(size=(4, 6, 9, 3)), rng.normal(size=(5, 3))
    direct = np.sqrt(((states[..., :, None, :] - centers) ** 2).sum(-1)).min(-1)
    np.testing.assert_allclose(measures.distance_to_clusters(states, centers), direct, rtol=1e-14)
