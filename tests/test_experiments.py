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
    entered = rk4.t[np.flatnonzero((rk4.t >= sweep.T_delta)
                                   & (measures.distance_to_clusters(rk4.states, sweep.centers).max(1) <= 0.1))[0]]
    T_star_rk4 = measures.exit_time(rk4.t, rk4.states, sweep.centers, 0.1, after=entered)
    assert abs(sweep.T_star[-1] - T_star_rk4) < 0.06  # the sweep samples every 0.05 below t = 20
    # the exit time scales like 1/eps (Prop. 5.8: T* = O(log(delta)/eps))
    products = sweep.T_star * eps
    assert products.max() / products.min() < 1.2, products
