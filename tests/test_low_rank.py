"""Sec. 6 and 7: collapse in Im(A)^perp, rank-one two-point limits, orthogonal LoRA."""

import numpy as np
import pytest
from scipy.linalg import expm

from lora_clusters import bounds, dynamics, experiments, lora, measures, setups


def test_collapse_matches_closed_form_and_bound_33_is_sharp_for_identity():
    study = experiments.collapse_study(30, d=4, rank=2, radius=1.5, delta=0.05, seed=3)
    # V = I: every token moves straight to the mean at rate 1, so T_delta = log(max|z - mean| / delta)
    np.testing.assert_allclose(study.T_delta, study.bound_33, atol=1e-6)


def test_collapse_trajectory_is_eq_126_solution():
    A = setups.low_rank_attention(4, 2, seed=5)  # a random rank-2 projector
    image, perp = setups.image_and_complement(A)
    assert image.shape[1] == 2 and perp.shape[1] == 2
    np.testing.assert_allclose(A @ perp, 0.0, atol=1e-12)
    # V symmetric with Im(A)^perp invariant: V = perp diag perp^T + image diag image^T
    V = perp @ np.diag([0.4, 1.3]) @ perp.T + image @ np.diag([0.7, 2.0]) @ image.T
    z0 = setups.uniform_in_subspace_ball(15, perp, 2.0, seed=1)
    run = dynamics.simulate(
        z0, A, A, V, t_max=3.0, method="dopri5", t_eval=np.array([0.0, 3.0]), rtol=1e-11, atol=1e-13
    )
    mean = z0.mean(axis=0)
    np.testing.assert_allclose(run.final, mean + (z0 - mean) @ expm(-3.0 * V).T, atol=1e-9)


def test_bound_33_with_top_eigenvalue_fails_and_smallest_holds_for_anisotropic_V():
    V = np.diag([1.0, 0.3, 0.6])
    study = experiments.collapse_study(40, d=3, rank=1, radius=1.0, V=V, seed=4)
    assert np.all(study.T_delta <= study.bound_33_smallest + 1e-6)
    assert np.all(study.T_delta > study.bound_33)


def test_probability_of_bound_34():
    """(34) holds with probability >= 1 - 2 eps for moderate radii (here always), and
    fails for large radii, where sqrt(C) growth of its radius loses to the C growth of the cloud."""
    small = experiments.collapse_study(100, d=3, rank=1, radius=5.0, eps=0.1, seed=11)
    assert small.fraction_under_34 >= 1 - 2 * small.eps
    large = experiments.collapse_study(100, d=3, rank=1, radius=2000.0, eps=0.1, seed=11)
    assert large.fraction_under_34 < 1 - 2 * large.eps
    # independent check of the failure: the cloud spread exceeds the radius of (34)
    radius_34 = np.sqrt(2 * 2000.0 * 2 * np.log(1 / 0.1) * 20)
    assert np.median(np.exp(large.T_delta) * 0.1) > radius_34


def test_perturbed_collapse_stays_within_two_delta():
    study = experiments.collapse_study(10, d=3, rank=1, radius=1.0, delta=0.1, image_component=0.05, t_max=30.0, seed=9)
    for worst, T in zip(study.worst, study.T_delta):
        assert np.isfinite(T) and worst[study.t >= T].max() <= 2 * study.delta


@pytest.mark.parametrize("d", [2, 3, 10])
def test_rank_one_gives_two_points_and_P_star(d):
    rng = np.random.default_rng(100 + d)
    v = rng.normal(size=d)
    v /= np.linalg.norm(v)
    z0 = rng.uniform(-5, 5, size=(25, d))
    Q = np.outer(v, v)
    run = dynamics.simulate(
        z0, Q, Q, np.eye(d), t_max=30.0, method="dopri5", t_eval=np.array([0.0, 30.0]), rtol=1e-9, atol=1e-12
    )
    centers = measures.cluster_centers(run.final, tol=1e-6)
    assert len(centers) == 2
    P = dynamics.attention_matrix(run.final, Q, Q, t=30.0, V=np.eye(d))
    assert measures.distance_to_P_star(P) < 1e-12
    # the leaders are the extreme tokens along v, and they barely move
    coord = z0 @ v
    for leader in (np.argmax(coord), np.argmin(coord)):
        assert np.min(np.linalg.norm(centers - run.final[leader], axis=1)) < 1e-9


def test_distance_to_P_star_on_known_matrices():
    P = np.zeros((4, 4))
    P[[0, 1], 2] = 1.0
    P[[2, 3], 0] = 1.0
    assert measures.distance_to_P_star(P) == 0.0
    assert np.isclose(measures.distance_to_P_star(np.full((4, 4), 0.25)), 0.5)


def test_cluster_count_grows_with_dimension_only_for_full_rank():
    counts = experiments.cluster_counts([2, 20], [1, "full"], seeds=[0, 1, 2], n=12)
    assert np.all(counts[0] == 2)
    assert counts[1, 1].mean() > counts[1, 0].mean() and counts[1, 1].min() >= 10


def test_orthogonal_lora_attention_and_condition_36():
    Q = np.diag([1.0, 1.0, 0.0])
    Qt, Kt = lora.orthogonal_rank_one_lora(Q, Q, [0.0, 0.0, 2.0])
    np.testing.assert_allclose(Kt.T @ Qt, Q.T @ Q + 4.0 * np.diag([0.0, 0.0, 4.0]))
    with pytest.raises(ValueError, match="orthogonal"):
        lora.orthogonal_rank_one_lora(Q, Q, [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="v must be"):
        lora.orthogonal_rank_one_lora(Q, Q, [0.0, 0.0])


def test_orthogonal_lora_collapse_then_split_on_fresh_tokens():
    for seed in range(20, 24):
        run = experiments.orthogonal_lora_run(C=2.0, eps=0.01, seed=seed)
        assert len(run.clusters_pretrained) == 1
        # the off-line parts (norm eps, in Im(A)) make the attention slightly non-uniform:
        # the collapse point is the initial mean up to O(eps)
        assert np.linalg.norm(run.clusters_pretrained[0] - run.z0.mean(axis=0)) < 0.01
        assert run.split_by_sign and run.distance_to_line <= 0.01


def test_orthogonal_lora_run_coordinates_along_and_off_the_line():
    # v = e3: the coordinate along v is z_3 and the distance to R v is |(z_1, z_2)|
    run = experiments.orthogonal_lora_run(C=1.0, eps=0.05, n=6, seed=3, t_max=5.0)
    for flow, traj in (("lora", run.lora), ("pretrained", run.pretrained)):
        np.testing.assert_array_equal(run.along_v(flow), traj.states[..., 2])
        np.testing.assert_allclose(run.off_line_distance(flow), np.hypot(traj.states[..., 0], traj.states[..., 1]))
    # the tokens start at distance exactly eps (eq. (39)), on both sides of the origin
    np.testing.assert_allclose(run.off_line_distance()[0], 0.05)
    assert np.all(np.abs(run.along_v()[0]) >= 1.0)
    assert np.isclose(run.off_line_distance()[-1].max(), run.distance_to_line)
    with pytest.raises(ValueError, match="flow must be"):
        run.along_v("both")


def test_orthogonal_lora_spread_proportional_to_eps():
    eps = np.array([1e-4, 1e-3, 1e-2])
    dist = np.array([experiments.orthogonal_lora_run(C=2.0, eps=e, seed=31).distance_to_line for e in eps])
    np.testing.assert_allclose(dist / eps, (dist / eps)[0], rtol=0.02)
    assert np.all(dist <= eps)


def test_tokens_in_image_of_A_are_untouched_by_orthogonal_lora(rng):
    Q = np.diag([1.0, 1.0, 0.0])
    Qt, Kt = lora.orthogonal_rank_one_lora(Q, Q, [0.0, 0.0, 1.0])
    z = rng.normal(size=(12, 3)) * [1.0, 1.0, 0.0]
    a = dynamics.simulate(z, Q, Q, np.eye(3), t_max=10.0)
    b = dynamics.simulate(z, Qt, Kt, np.eye(3), t_max=10.0)
    np.testing.assert_array_equal(a.states, b.states)


def test_low_rank_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="rank"):
        setups.low_rank_attention(3, 4)
    with pytest.raises(ValueError, match="symmetric"):
        setups.image_and_complement(np.array([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="basis"):
        setups.uniform_in_subspace_ball(5, np.zeros((3, 0)), 1.0)
    with pytest.raises(ValueError, match="eps"):
        bounds.collapse_time_high_probability_bound(10, 2, 1.0, 0.1, 1.5, 1.0)
    with pytest.raises(ValueError, match="eigenvalue"):
        bounds.collapse_time_bound(np.ones((3, 3)), 0.1, np.eye(3), np.eye(3), eigenvalue="median")
    with pytest.raises(ValueError, match="level"):
        measures.first_crossing_time([0.0, 1.0], [1.0, 0.5], -1.0)


def test_retention_exact_in_image_and_partial_for_generic_tokens():
    exact_gap, kept = experiments.orthogonal_lora_retention(range(4), n=12)
    assert np.all(exact_gap == 0.0)
    assert np.all((kept >= 0) & (kept <= 1)) and kept.min() < 1.0  # the LoRA reorganises some pairs
