"""Unit tests of the token dynamics: each compares with a closed form, a theorem or an
independent computation."""

import warnings

import numpy as np
import pytest
import scipy.linalg

from lora_clusters import dynamics, measures, setups

I2 = np.eye(2)


def _random_params(rng, d, scale=0.5):
    Q = np.eye(d) + scale * rng.standard_normal((d, d)) / np.sqrt(d)
    K = np.eye(d) + scale * rng.standard_normal((d, d)) / np.sqrt(d)
    V = setups.value_matrix("symmetric", d, seed=int(rng.integers(1000)))
    return Q, K, V


def _reference_softmax_average(q, k, v, beta):
    logits = beta * q @ k.T
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (w / w.sum(axis=1, keepdims=True)) @ v


def test_attention_average_matches_plain_softmax(rng):
    q, k, v = rng.standard_normal((3, 7, 4))
    for beta in (0.3, 1.0, 5.0):
        np.testing.assert_allclose(
            dynamics.attention_average(q, k, v, np.log(beta)), _reference_softmax_average(q, k, v, beta), rtol=1e-12
        )


def test_attention_average_hardmax_limit_without_warnings(rng):
    q, k, v = rng.standard_normal((3, 9, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = dynamics.attention_average(q, k, v, log_beta=1e5)  # beta = e^100000
    expected = v[np.argmax(q @ k.T, axis=1)]
    np.testing.assert_allclose(out, expected, rtol=0, atol=0)
    # and the limit is approached continuously: beta = 1e4 is already within 1e-6
    np.testing.assert_allclose(dynamics.attention_average(q, k, v, np.log(1e4)), expected, atol=1e-6)


def test_attention_average_batched_temperatures_match_one_by_one(rng):
    # a batch of inverse temperatures (cold, moderate, hard-max, and beta = e^-800 = 0
    # in float64: uniform weights), equal ones, and a batch of one take different
    # code paths; each member must equal the plain softmax computed on its own
    q, k, v = rng.standard_normal((3, 4, 6, 2))
    log_beta = np.array([-800.0, 0.5, 1e5, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = dynamics.attention_average(q, k, v, log_beta)
        same = dynamics.attention_average(q, k, v, np.full(4, 0.5))
    np.testing.assert_allclose(out[0], np.broadcast_to(v[0].mean(axis=0), (6, 2)), rtol=1e-12)
    np.testing.assert_allclose(out[1], _reference_softmax_average(q[1], k[1], v[1], np.exp(0.5)), rtol=1e-12)
    np.testing.assert_allclose(out[2], v[2][np.argmax(q[2] @ k[2].T, axis=1)], rtol=0, atol=0)
    np.testing.assert_allclose(out[3], _reference_softmax_average(q[3], k[3], v[3], np.exp(2.0)), rtol=1e-12)
    for b in range(4):
        np.testing.assert_allclose(same[b], _reference_softmax_average(q[b], k[b], v[b], np.exp(0.5)), rtol=1e-12)
    np.testing.assert_allclose(
        dynamics.attention_average(q[1:2], k[1:2], v[1:2], np.array([0.5])), out[1:2], rtol=1e-12
    )


def test_velocity_matches_direct_formula_of_eq2(rng):
    x = rng.standard_normal((6, 3))
    Q, K, V = _random_params(rng, 3)
    logits = (x @ Q.T) @ (x @ K.T).T
    P = np.exp(logits - logits.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    np.testing.assert_allclose(dynamics.velocity(x, Q, K, V), P @ x @ V.T, rtol=1e-12)


def test_rescaled_velocity_is_pushforward_of_eq2(rng):
    # z' = -V z + e^{-tV} x'(e^{tV} z): eq. (8) from eq. (2) by the chain rule
    z = rng.standard_normal((5, 2))
    Q, K, V = _random_params(rng, 2)
    t = 0.7
    E = scipy.linalg.expm(t * V)
    expected = -z @ V.T + dynamics.velocity(z @ E.T, Q, K, V) @ np.linalg.inv(E).T
    np.testing.assert_allclose(dynamics.rescaled_velocity(z, t, Q, K, V), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["symmetric", "rotation", "negative eigenvalue", "jordan"])
def test_scaled_exponential_matches_expm(kind):
    V = np.array([[0.8, 1.0], [0.0, 0.8]]) if kind == "jordan" else setups.value_matrix(kind, 2, seed=3)
    prop = dynamics.ScaledExponential(V)
    assert prop.uses_eigendecomposition == (kind != "jordan")
    for t in (0.0, 0.5, 3.0, 20.0):
        E, log_scale = prop(t)
        np.testing.assert_allclose(np.exp(log_scale) * E, scipy.linalg.expm(t * V), rtol=1e-9, atol=1e-12)
    assert np.isclose(prop.growth_rate[0], np.linalg.eigvals(V).real.max())


def test_rk4_converges_at_order_four(rng):
    x0 = rng.standard_normal((6, 2))
    Q, K, V = _random_params(rng, 2)
    reference = dynamics.simulate(x0, Q, K, V, t_max=2.0, dt=2.0 / 1024).final
    errors = [
        np.abs(dynamics.simulate(x0, Q, K, V, t_max=2.0, dt=2.0 / m).final - reference).max() for m in (16, 32, 64)
    ]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 12) & (ratios < 20)), (errors, ratios)


def test_dopri5_agrees_with_fine_rk4(rng):
    x0 = setups.initial_tokens(12, 2, seed=4)
    V = setups.value_matrix("symmetric", 2, seed=4)
    rk4 = dynamics.simulate(x0, I2, I2, V, t_max=10.0, dt=0.01, save_every=100)
    dp = dynamics.simulate(x0, I2, I2, V, t_max=10.0, dt=0.1, method="dopri5", t_eval=rk4.t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dp.t, rk4.t)
    assert np.abs(dp.states - rk4.states).max() < 1e-7
    assert dp.n_steps < 1000 / 2  # and it needed far fewer steps than RK4's 1000


def test_rescaled_and_raw_agree_through_matrix_exponential(rng):
    x0 = rng.standard_normal((8, 3))
    Q, K, V = _random_params(rng, 3)
    z = dynamics.simulate(x0, Q, K, V, t_max=3.0, dt=0.01, rescaled=True, save_every=50)
    x = dynamics.simulate(x0, Q, K, V, t_max=3.0, dt=0.01, rescaled=False, save_every=50)
    np.testing.assert_allclose(z.t, x.t)
    mapped = np.stack([zk @ scipy.linalg.expm(t * V).T for t, zk in zip(z.t, z.states)])
    assert np.abs(mapped - x.states).max() / np.abs(x.states).max() < 1e-8


def test_contract_shapes_and_batching(rng):
    x0 = rng.standard_normal((5, 2))
    Vs = setups.perturbed_value_matrix([0.0, 0.1, 0.3])
    single = dynamics.simulate(x0, I2, I2, I2, t_max=1.0, dt=0.1)
    assert single.t.shape == (11,) and single.states.shape == (11, 5, 2)
    assert single.t[0] == 0 and abs(single.t[-1] - 1.0) <= 0.05
    batch = dynamics.simulate(x0, I2, I2, Vs, t_max=1.0, dt=0.1)
    assert batch.states.shape == (3, 11, 5, 2)
    for b, V in enumerate(Vs):
        np.testing.assert_allclose(
            batch.states[b], dynamics.simulate(x0, I2, I2, V, t_max=1.0, dt=0.1).states, rtol=1e-13
        )
    x_batch = np.stack([x0, 2 * x0])
    both = dynamics.simulate(x_batch, I2, I2, Vs[:2], t_max=1.0)
    np.testing.assert_allclose(both.states[1], dynamics.simulate(2 * x0, I2, I2, Vs[1], t_max=1.0).states, rtol=1e-13)


def test_monotone_eigen_coordinates_lemma_B7(rng):
    # V with real positive spectrum, not symmetric: coordinates in the dual basis phi*
    P = np.array([[1.0, 0.6, 0.1], [0.0, 1.0, -0.4], [0.2, 0.0, 1.0]])
    V = P @ np.diag([1.0, 0.6, 0.2]) @ np.linalg.inv(P)
    Q, K, _ = _random_params(rng, 3)
    x0 = rng.standard_normal((15, 3))
    traj = dynamics.simulate(x0, Q, K, V, t_max=8.0, dt=0.05)
    coords = traj.states @ np.linalg.inv(P).T  # phi_k^*(z_i) for every k
    tol = 1e-10
    assert np.all(np.diff(coords.max(axis=1), axis=0) <= tol)
    assert np.all(np.diff(coords.min(axis=1), axis=0) >= -tol)
    # with a negative eigenvalue the maximum along that eigenvector does increase
    Vneg = setups.value_matrix("negative eigenvalue", 2)
    neg = dynamics.simulate(rng.standard_normal((10, 2)), I2, I2, Vneg, t_max=3.0)
    assert np.any(np.diff(neg.states[:, :, 1].max(axis=1)) > 1e-3)


def test_tokens_in_kernel_of_A_collapse_to_their_mean(rng):
    # A = K^T Q = e1 e1^T; tokens in ker(A) = span(e2, e3): attention is uniform, so the
    # closed form is z_i(t) - mean = e^{-tV}(z_i(0) - mean) (Prop. 6.1, first claim)
    e1 = np.eye(3)[:, :1]
    Q = K = e1 @ e1.T
    V = np.diag([1.0, 0.7, 0.4])
    z0 = rng.standard_normal((10, 3))
    z0[:, 0] = 0.0
    traj = dynamics.simulate(z0, Q, K, V, t_max=30.0, dt=0.1, save_every=50)
    mean = z0.mean(axis=0)
    closed = np.stack([mean + (z0 - mean) @ scipy.linalg.expm(-t * V).T for t in traj.t])
    np.testing.assert_allclose(traj.states, closed, atol=1e-7)  # RK4 error at dt = 0.1
    assert np.abs(traj.final - mean).max() < 1e-4


def test_long_horizon_stays_finite_and_clustered():
    x0 = setups.initial_tokens(20, 2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        long = dynamics.simulate(x0, I2, I2, I2, t_max=1e4, method="dopri5", save_every=10_000)
    assert np.all(np.isfinite(long.states)) and long.t[-1] == 1e4
    short = dynamics.simulate(x0, I2, I2, I2, t_max=60.0, dt=0.1)
    c_long = measures.cluster_centers(long.final, tol=1e-3)
    c_short = measures.cluster_centers(short.final, tol=1e-3)
    assert 2 <= len(c_long) < 20 and len(c_long) == len(c_short)
    np.testing.assert_allclose(c_long, c_short, atol=1e-3)
    # every token sits on a cluster, and the attention matrix is a hard-max at t = 1e4
    assert measures.distance_to_clusters(long.final, c_long).max() < 1e-6
    P = dynamics.attention_matrix(long.final, I2, I2, t=1e4, V=I2)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert np.all(np.isfinite(P))


def test_stop_when_ends_the_run():
    x0 = setups.initial_tokens(6, 2, seed=1)
    for method in ("rk4", "dopri5"):
        traj = dynamics.simulate(x0, I2, I2, I2, t_max=50.0, method=method, stop_when=lambda t, s: t >= 2.0)
        assert traj.stopped_early and 2.0 <= traj.t[-1] < 3.0


BAD_CALLS = [
    (dict(x0=np.zeros(5)), "x0"),
    (dict(x0=np.full((4, 2), np.nan)), "x0"),
    (dict(x0=np.ones((4, 2)) + 1j), "x0"),  # complex: refused, not silently made real
    (dict(x0=np.full((4, 2), 1e160)), "x0"),  # logits overflow: refused, rescaled=True is no help
    (dict(Q=np.eye(3)), "Q"),
    (dict(K=np.ones((2, 3))), "K"),
    (dict(V=np.array([[1.0, np.inf], [0.0, 1.0]])), "V"),
    (dict(t_max=0.0), "t_max"),
    (dict(t_max=-1.0), "t_max"),
    (dict(dt=0.0), "dt"),
    (dict(dt=-0.1), "dt"),
    (dict(dt=5e-324), "dt"),  # was an OverflowError
    (dict(dt=1e-300), "dt"),  # RK4 used to hang
    (dict(dt=1e-12, method="dopri5"), "dt"),  # a 7 TiB output grid
    (dict(dt=1.0, t_max=0.01), "dt"),  # used to integrate to t = 1
    (dict(method="dopri5", max_step=1e-300), "max_step"),
    (dict(save_every=0), "save_every"),
    (dict(method="euler"), "method"),
    (dict(options="precise"), "options"),
    (dict(stop_when=3), "stop_when"),  # was a TypeError from deep inside
    (dict(V=np.stack([np.eye(2)] * 3), x0=np.zeros((2, 4, 2))), "batch"),
]


@pytest.mark.parametrize("override, name", BAD_CALLS)
def test_bad_input_raises_clear_error(override, name):
    args = dict(x0=np.ones((4, 2)), Q=I2, K=I2, V=I2, t_max=1.0, dt=0.1, save_every=1, method="rk4")
    args.update(override)
    with pytest.raises(ValueError, match=name):
        dynamics.simulate(**args)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: dynamics.attention_matrix(np.ones((3, 2)), I2, I2, t=np.nan, V=I2), "t"),
        (lambda: dynamics.attention_matrix(np.ones((3, 2)), I2, I2, t=np.inf, V=I2), "t"),
        (lambda: dynamics.rescaled_velocity(np.ones((3, 2)), "a", I2, I2, I2), "t"),
        (lambda: dynamics.velocity(np.ones((3, 2)), I2 + 0j, I2, I2), "Q"),
    ],
)
def test_bad_input_of_the_velocity_fields(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


def test_options_object_and_presets_agree_with_keywords(rng):
    x0 = rng.standard_normal((6, 2))
    by_keywords = dynamics.simulate(x0, I2, I2, I2, t_max=3.0, method="dopri5", rtol=1e-9, atol=1e-12)
    by_preset = dynamics.simulate(x0, I2, I2, I2, t_max=3.0, options=dynamics.PRECISE)
    np.testing.assert_array_equal(by_keywords.states, by_preset.states)
    # a keyword overrides the field of the object
    loose = dynamics.simulate(x0, I2, I2, I2, t_max=3.0, options=dynamics.PRECISE, rtol=1e-4)
    assert loose.n_steps < by_preset.n_steps and loose.method == "dopri5"


def test_select_picks_one_member_of_a_batched_trajectory():
    x0 = setups.initial_tokens(6, 2, seed=0)
    Vs = np.stack([I2, 0.5 * I2])
    batch = dynamics.simulate(x0, I2, I2, Vs, t_max=2.0, dt=0.1)
    alone = dynamics.simulate(x0, I2, I2, 0.5 * I2, t_max=2.0, dt=0.1)
    assert batch.select(1).states.shape == alone.states.shape
    assert abs(batch.select(1).states - alone.states).max() < 1e-12
    with pytest.raises(ValueError, match="batched"):
        alone.select(0)
    with pytest.raises(IndexError, match="out of range"):
        batch.select(2)
