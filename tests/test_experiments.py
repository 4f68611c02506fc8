import numpy as np

from lora_clusters import dynamics, experiments, measures, setups

I2 = np.eye(2)


def test_phase_sweep_matches_independent_rk4_and_scales_like_one_over_eps():
    x0 = setups.initial_tokens(20, 2, seed=5)
    eps = np.array([0.01, 0.03, 0.1])
    sweep = experiments.phase_transition_sweep(x0, eps, delta=0.1, t_max=400.0)
    assert np.isfinite(sweep.T_delta) and len(sweep.centers) >= 3
    assert np.all(np.isfinite(sweep.T_star)) and np.all(sweep.T_star > sweep.T_enter)
    # independent check with fine fixed-step RK4 for the largest eps
    rk4 = dynamics.simulate(x0, I2, I2, setups.perturbed_value_matrix(0.1), t_max=10.0, dt=0.01)
    entered = rk4.t[
        np.flatnonzero(
            (rk4.t >= sweep.T_delta) & (measures.distance_to_clusters(rk4.states, sweep.centers).max(1) <= 0.1)
        )[0]
    ]
    T_star_rk4 = measures.exit_time(rk4.t, rk4.states, sweep.centers, 0.1, after=entered)
    assert abs(sweep.T_star[-1] - T_star_rk4) < 0.06  # the sweep samples every 0.05 below t = 20
    # the exit time scales like 1/eps (Prop. 5.8: T* = O(log(delta)/eps))
    products = sweep.T_star * eps
    assert products.max() / products.min() < 1.2, products


def test_shared_reference_gives_the_same_sweep_and_refuses_other_tokens():
    import pytest

    x0 = setups.initial_tokens(12, 2, seed=3)
    reference = experiments.reference_clusters(x0, delta=0.1)
    # T_delta by its definition: all tokens within delta of the final clusters from then on
    worst = measures.distance_to_clusters(reference.trajectory.states, reference.centers).max(axis=1)
    assert np.all(worst[reference.trajectory.t >= reference.T_delta] <= 0.1)
    assert worst[reference.trajectory.t < reference.T_delta].max() > 0.1
    alone = experiments.phase_transition_sweep(x0, [0.03, 0.1], t_max=300.0)
    shared = experiments.phase_transition_sweep(x0, [0.03, 0.1], t_max=300.0, reference=reference)
    np.testing.assert_array_equal(shared.T_star, alone.T_star)
    np.testing.assert_array_equal(shared.centers, alone.centers)
    assert shared.T_delta == alone.T_delta
    pair = experiments.transition_pair(x0, 0.1, n_times=50, reference=reference)
    assert pair.T_star == alone.T_star[1] and pair.T_delta == reference.T_delta
    with pytest.raises(ValueError, match="other initial tokens or another delta"):
        experiments.phase_transition_sweep(x0 + 1e-9, [0.1], reference=reference)
    with pytest.raises(ValueError, match="other initial tokens or another delta"):
        experiments.phase_transition_sweep(x0, [0.1], delta=0.2, reference=reference)
    with pytest.raises(TypeError, match="reference must be a ReferenceClusters"):
        experiments.phase_transition_sweep(x0, [0.1], reference=reference.centers)


def test_frozen_attention_scheme_is_exact_rk4_when_attention_is_constant_and_first_order_otherwise():
    z0 = setups.initial_tokens(12, 2, seed=3)
    I, Z = np.eye(2), np.zeros((2, 2))
    # Q = K = 0: uniform attention, nothing is lost by freezing it; the flow is linear,
    # z_i(t) = m + e^{-t}(z_i(0) - m) for V = I, and RK4's error is O(dt^4)
    mean = z0.mean(axis=0)
    errors = []
    for dt in (0.2, 0.1):
        run = dynamics.simulate_frozen_attention(z0, Z, Z, I, t_max=4.0, dt=dt)
        errors.append(np.abs(run.final - (mean + np.exp(-4.0) * (z0 - mean))).max())
    assert errors[1] < 1e-6 and 12 < errors[0] / errors[1] < 20
    # Q = K = V = I: the attention changes within a step; against an accurate reference
    # the error halves with the step (first order), where the book's RK4 gains 16x
    reference = dynamics.simulate(z0, I, I, I, t_max=3.0, method="dopri5", t_eval=[0.0, 3.0], rtol=1e-12, atol=1e-14)
    frozen = [
        np.abs(dynamics.simulate_frozen_attention(z0, I, I, I, t_max=3.0, dt=dt).final - reference.final).max()
        for dt in (0.1, 0.05)
    ]
    assert 1.7 < frozen[0] / frozen[1] < 2.3, frozen
    rk4 = dynamics.simulate(z0, I, I, I, t_max=3.0, dt=0.1, method="rk4")
    assert np.abs(rk4.final - reference.final).max() < frozen[0] / 100


def test_exit_time_spread_repeats_the_sweep_of_each_configuration():
    spread = experiments.exit_time_spread([8, 9, 12], eps=0.03, t_max=400.0)
    for seed, T in zip(spread.seeds, spread.T_star):
        sweep = experiments.phase_transition_sweep(setups.initial_tokens(20, 2, seed=int(seed)), [0.03], t_max=400.0)
        assert T == sweep.T_star[0]
    assert np.array_equal(spread.scaled, spread.T_star[np.isfinite(spread.T_star)] * 0.03)
    assert spread.fraction_without_exit == np.mean(np.isinf(spread.T_star))
    # seed 9 has no exit by t = 400
    assert np.isinf(spread.T_star[1]) and np.isfinite(spread.T_star[[0, 2]]).all()


def test_frozen_attention_exit_times_approach_the_accurate_ones_as_the_step_shrinks():
    coarse = experiments.frozen_attention_comparison([5], eps=0.01, dt=0.1)
    fine = experiments.frozen_attention_comparison([5], eps=0.01, dt=0.01)
    assert coarse.T_star[0] == fine.T_star[0]  # the same accurate measurement
    assert abs(fine.relative_difference[0]) < 0.01
    assert abs(fine.relative_difference[0]) < abs(coarse.relative_difference[0])
