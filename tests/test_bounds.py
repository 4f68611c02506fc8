"""The bounds of Sec. 4 and 5 against closed forms, independent quadrature and simulations."""

import numpy as np
import pytest
from scipy import integrate

from lora_clusters import bounds, experiments, lora, measures, setups


def test_ingredients_match_their_formulas():
    t = np.array([0.0, 0.5, 1.0, 2.0])
    R, a, v, vt = 0.3, 1.7, 1.2, 1.5
    np.testing.assert_allclose(bounds.support_radius(t, R, v, vt), R * np.exp(1.5 * t))
    np.testing.assert_allclose(bounds.gronwall_exponent(t, R, a, v, vt), 2 * a * v * (R * np.exp(1.5 * t)) ** 2)
    r = np.array([0.1, 0.5, 1.0])
    np.testing.assert_allclose(bounds.kernel_lipschitz_constant(r, a, v), 2 * r**2 * v * a * (1 + np.exp(2 * r**2 * a)))
    assert np.isinf(bounds.kernel_lipschitz_constant(np.array([30.0]), 1.0, 1.0))[0]


def test_cumulative_integral_against_a_fine_trapezoid():
    R, a, v, vt = 0.2, 1.0, 1.0, 1.1
    t = np.linspace(0.0, 2.0, 9)
    ours = bounds.cumulative_lipschitz_integral(t, R, a, v, vt)
    s = np.linspace(0.0, 2.0, 400_001)
    integrand = bounds.kernel_lipschitz_constant(R * np.exp(vt * s), a, v) ** 2
    trapezoid = integrate.cumulative_trapezoid(integrand, s, initial=0.0)[::50_000]
    np.testing.assert_allclose(ours, trapezoid, rtol=1e-8)
    assert ours[0] == 0.0 and np.all(np.diff(ours) > 0)


def test_bound_overflows_to_inf_not_nan():
    I = np.eye(2)
    Qt, Kt, Vt = lora.lora_triple(I, I, I, target="V", size=1e-2)
    b = bounds.stability_bound(np.linspace(0, 5, 51), I, I, I, Qt, Kt, Vt, R=1.0)
    assert not np.isnan(b.w2_bound).any() and np.isinf(b.w2_bound[-1])
    assert np.isclose(b.w2_bound[0], np.sqrt(2) * 1e-2)  # t = 0: sqrt(2 |dV|^2 R^2)
    same = bounds.stability_bound(np.linspace(0, 5, 51), I, I, I, I, I, I, R=1.0)
    assert np.all(same.w2_bound == 0.0)


def _pretrained(d, seed):
    rng = np.random.default_rng(seed)
    V = setups.value_matrix("symmetric", d, seed=seed)
    Q = np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d)
    K = np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d)
    return Q, K, V


@pytest.mark.parametrize("target", lora.LORA_TARGETS)
@pytest.mark.parametrize("size", [1e-4, 1e-2, 1e-1])
def test_corollary_4_2_holds_at_every_sampled_time(target, size):
    d, seed = 3, 11
    Q, K, V = _pretrained(d, seed)
    x0 = setups.initial_tokens(15, d, seed=seed)
    x0 *= 0.15 / np.linalg.norm(x0, axis=1).max()
    triple = lora.lora_triple(Q, K, V, target=target, size=size, rank=2, seed=seed)
    comp = experiments.stability_comparison(x0, Q, K, V, *triple, t_max=2.0, n_times=41)
    informative = np.isfinite(comp.bound.w2_bound) & (comp.bound.w2_bound < comp.bound.diameter)
    assert informative.sum() >= 10  # the check is not vacuous
    assert comp.w2[1:].min() > 0
    assert np.all(comp.w2 <= comp.bound.w2_bound)
    # measured W2 is linear in the perturbation at small sizes: compare with half the size
    half = lora.lora_triple(Q, K, V, target=target, size=size / 2, rank=2, seed=seed)
    comp_half = experiments.stability_comparison(x0, Q, K, V, *half, t_max=2.0, n_times=41)
    np.testing.assert_allclose(comp.w2[-1] / comp_half.w2[-1], 2.0, rtol=0.1)


def _kernel(points, cloud, A, V):
    """X[mu](x) of eq. (10) for mu uniform on ``cloud``, written out independently."""
    logits = points @ A.T @ cloud.T
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return w @ cloud @ V.T


def test_lemmas_c2_c3_kernel_differences(rng):
    d, R = 3, 0.8
    for trial in range(5):
        cloud = rng.normal(size=(30, d))
        cloud *= R * rng.uniform(0.2, 1.0, size=(30, 1)) / np.linalg.norm(cloud, axis=1, keepdims=True)
        points = rng.normal(size=(400, d))
        points *= R * rng.uniform(size=(400, 1)) / np.linalg.norm(points, axis=1, keepdims=True)
        Q, K, V = _pretrained(d, trial)
        A = K.T @ Q
        _, _, Vt = lora.lora_triple(Q, K, V, target="V", size=0.3, rank=1, seed=trial)
        Qa, Ka, _ = lora.lora_triple(Q, K, V, target="A", size=0.3, rank=1, seed=trial)
        gap_V = np.linalg.norm(_kernel(points, cloud, A, V) - _kernel(points, cloud, A, Vt), axis=1).max()
        gap_A = np.linalg.norm(_kernel(points, cloud, A, V) - _kernel(points, cloud, Ka.T @ Qa, V), axis=1).max()
        assert gap_V <= lora.op_norm(V - Vt) * R  # (60) with mu = nu
        assert gap_A <= 4 * R**3 * lora.op_norm(V) * lora.op_norm(A - Ka.T @ Qa)  # (61) with mu = nu
        assert gap_V > 0 and gap_A > 0


def test_lora_triple_sizes_ranks_and_errors():
    d = 5
    Q, K, V = _pretrained(d, 0)
    for rank in (1, 3):
        Qt, Kt, Vt = lora.lora_triple(Q, K, V, target="both", size=0.05, rank=rank, seed=4)
        assert np.isclose(lora.op_norm(Vt - V), 0.05) and np.isclose(lora.op_norm(Kt.T @ Qt - K.T @ Q), 0.05)
        # rounding in Q + dQ leaves ~1e-16 noise: count singular values above 1e-10
        assert np.linalg.matrix_rank(Vt - V, tol=1e-10) == rank and np.linalg.matrix_rank(Qt - Q, tol=1e-10) == rank
        assert np.array_equal(Kt, K)
    _, _, Vonly = lora.lora_triple(Q, K, V, target="V", size=0.1)
    Qonly, _, Vsame = lora.lora_triple(Q, K, V, target="A", size=0.1)
    assert np.array_equal(Vsame, V) and not np.array_equal(Qonly, Q) and not np.array_equal(Vonly, V)
    np.testing.assert_allclose(
        lora.lora_update(V, np.ones((1, d)), np.eye(d)[:1]), V + np.outer(np.ones(d), np.eye(d)[0])
    )
    with pytest.raises(ValueError, match="target"):
        lora.lora_triple(Q, K, V, target="K")
    with pytest.raises(ValueError, match="size"):
        lora.lora_triple(Q, K, V, size=-1.0)
    with pytest.raises(ValueError, match="rank"):
        lora.lora_triple(Q, K, V, rank=d + 1)
    with pytest.raises(ValueError, match="W_A"):
        lora.lora_update(V, np.ones((1, d + 1)), np.ones((1, d)))
    with pytest.raises(ValueError, match="R"):
        bounds.stability_bound([0.0, 1.0], Q, K, V, Q, K, V, R=0.0)
    with pytest.raises(ValueError, match="t"):
        bounds.cumulative_lipschitz_integral([1.0, 0.5], 0.1, 1.0, 1.0, 1.0)


def test_exit_time_bound_closed_form_and_hypotheses():
    x0 = setups.initial_tokens(20, 2, seed=5)
    centers = np.array([[-1.0, 0.3], [0.4, -1.0], [1.2, 0.0]])
    delta, eps = 0.1, 1e-2
    expected = np.log(np.linalg.norm(x0, axis=1).max() / delta**2) / eps + 8 * 20 * delta / 0.8
    got = bounds.phase_transition_time_bound(x0, centers, delta, setups.perturbed_value_matrix(eps, 2), np.eye(2))
    assert np.isclose(got, expected)
    # no spectral gap, or c11 <= 0, or two clusters with the same first coordinate: no bound
    assert np.isinf(bounds.phase_transition_time_bound(x0, centers, delta, np.eye(2), np.eye(2)))
    assert np.isinf(
        bounds.phase_transition_time_bound(x0, centers, delta, setups.perturbed_value_matrix(eps, 2), -np.eye(2))
    )
    assert np.isinf(
        bounds.phase_transition_time_bound(x0, centers[[0, 0]], delta, setups.perturbed_value_matrix(eps, 2), np.eye(2))
    )


def test_phase_diagram_scaling_band_and_bound():
    """T*(eps)·eps stays within ±10% of its median over eps in [1e-4, 1e-2] for each
    configuration with a transition, inside the band [0.1, 2]; log-log slope in
    [-1.1, -0.9]; and Prop. 5.8's bound is above every measured T*."""
    eps = np.logspace(-4, -2, 5)
    diagram = experiments.phase_diagram([1, 5], eps)
    assert diagram.has_transition.all() and np.isfinite(diagram.T_star).all()
    scaled = diagram.T_star * eps
    assert np.all(np.abs(scaled / np.median(scaled, axis=1, keepdims=True) - 1) < 0.1)
    assert np.all((scaled > 0.1) & (scaled < 2.0))
    for row in diagram.T_star:
        assert -1.1 < experiments.fit_power_law(eps, row)[0] < -0.9
    assert np.all(diagram.bound >= diagram.T_star)
    assert np.all(diagram.T_delta < diagram.T_star.min(axis=1))


def test_theorem_5_4_limit_has_at_most_three_values():
    """phi_1^*(z_i) -> {-a, 0, c}: on fresh random configurations (Gaussian and uniform),
    the first coordinates at t = 200 and t = 300 agree and take at most three values,
    at most one negative and at most one positive."""
    rng = np.random.default_rng(2024)
    configs = np.concatenate([rng.standard_normal((8, 16, 2)), rng.uniform(-2, 2, size=(8, 16, 2))])
    V_tilde = setups.perturbed_value_matrix(0.1, 2)
    early = experiments.limit_projections(configs, V_tilde, 200.0)
    late = experiments.limit_projections(configs, V_tilde, 300.0)
    assert np.abs(late - early).max() < 1e-6
    for values in late:
        limits = measures.cluster_centers(values[:, None], tol=1e-4).ravel()
        assert len(limits) <= 3
        assert (limits < -1e-6).sum() <= 1 and (limits > 1e-6).sum() <= 1


def test_top_eigenpair_dual_form_reads_the_top_coordinate(rng):
    from lora_clusters import spectra

    P = np.eye(4) + 0.4 * rng.standard_normal((4, 4))
    V = P @ np.diag([2.0, -1.5, 0.7, 0.1]) @ np.linalg.inv(P)
    top = spectra.top_eigenpair(V)
    assert np.isclose(top.eigenvalue, 2.0) and np.isclose(top.second, 1.5) and np.isclose(top.gap, 0.5)
    assert np.isclose(np.linalg.norm(top.phi), 1.0) and np.isclose(top.phi_dual @ top.phi, 1.0)
    np.testing.assert_allclose(V @ top.phi, 2.0 * top.phi, atol=1e-12)
    # phi_1^* vanishes on the other eigenvectors (the columns of P): it reads the coordinate along phi_1
    np.testing.assert_allclose(top.phi_dual @ P[:, 1:], 0.0, atol=1e-12)
    assert top.satisfies_theorem_5_4(np.eye(4)) and not top.satisfies_theorem_5_4(-np.eye(4))
    rotation = spectra.top_eigenpair(np.array([[0.5, -1.0], [1.0, 0.5]]))
    assert not rotation.is_real_positive and not rotation.satisfies_theorem_5_4(np.eye(2))
