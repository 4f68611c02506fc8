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
