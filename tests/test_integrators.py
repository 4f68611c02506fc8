"""The integrators on ODEs with known solutions, independent of the attention dynamics."""

import numpy as np
import pytest
import scipy.linalg

from lora_clusters import integrators


def _decay(t, y):
    return -y


# a damped rotation: y' = M y, y(t) = expm(t M) y0
M = np.array([[-0.3, 2.0], [-2.0, -0.3]])


def _linear(t, y):
    return y @ M.T


def _rk4_final(f, y0, t_max, n):
    return integrators.rk4(f, y0, t_max, t_max / n).states[-1]


def test_rk4_is_fourth_order_on_scalar_and_linear_odes():
    y0 = np.array([[1.0]])
    exact = np.exp(-2.0)
    errors = [abs(_rk4_final(_decay, y0, 2.0, n)[0, 0] - exact) for n in (10, 20, 40)]
    orders = np.log2(np.array(errors[:-1]) / errors[1:])
    np.testing.assert_allclose(orders, 4.0, atol=0.15)

    z0 = np.array([[1.0, 0.5]])
    exact = z0 @ scipy.linalg.expm(3.0 * M).T
    errors = [np.abs(_rk4_final(_linear, z0, 3.0, n) - exact).max() for n in (40, 80, 160)]
    orders = np.log2(np.array(errors[:-1]) / errors[1:])
    np.testing.assert_allclose(orders, 4.0, atol=0.15)


def test_rk4_grid_saving_and_stop():
    sol = integrators.rk4(_decay, np.ones((1, 1)), 1.0, 0.1, save_every=3)
    np.testing.assert_allclose(sol.t, [0.0, 0.3, 0.6, 0.9, 1.0])  # every third step and the last
    assert sol.n_steps == 10 and not sol.stopped
    stopped = integrators.rk4(_decay, np.ones((1, 1)), 1.0, 0.1, stop_when=lambda t, y: y[0, 0] < 0.5)
    assert stopped.stopped and np.isclose(stopped.t[-1], 0.7)  # e^-0.7 = 0.497: first step below 1/2


@pytest.mark.parametrize("rtol", [1e-4, 1e-7, 1e-10])
def test_dopri5_error_is_controlled_by_the_tolerance(rtol):
    t_eval = np.linspace(0.0, 5.0, 26)
    z0 = np.array([[1.0, 0.5], [-2.0, 0.3]])  # a batch of two initial conditions
    sol = integrators.dopri5(_linear, z0, 5.0, t_eval, h0=0.1, rtol=rtol, atol=rtol * 1e-3, max_step=5.0)
    np.testing.assert_allclose(sol.t, t_eval)
    exact = np.stack([z0 @ scipy.linalg.expm(t * M).T for t in t_eval])
    error = np.abs(np.stack(sol.states) - exact).max()
    # the global error follows the local tolerance (a small multiple of it), including at
    # the interpolated output times, and tighter tolerances take more steps
    assert error < 50 * rtol, error
    assert error > 1e-3 * rtol or rtol < 1e-9  # not accidentally exact: the tolerance is what limits it
    if rtol == 1e-4:
        assert sol.n_steps < 40


def test_dopri5_steps_grow_where_the_solution_is_smooth():
    sol = integrators.dopri5(
        _decay, np.ones((1, 1)), 50.0, np.array([0.0, 50.0]), h0=0.01, rtol=1e-8, atol=1e-12, max_step=50.0
    )
    np.testing.assert_allclose(sol.states[-1], np.exp(-50.0), rtol=1e-6, atol=1e-12)
    # absolute tolerance takes over once y is tiny: far fewer steps than a fixed step of 0.01
    assert sol.n_steps < 300


def test_refuses_step_counts_that_cannot_finish():
    with pytest.raises(ValueError, match="dt"):
        integrators.rk4(_decay, np.ones((1, 1)), 1.0, 1e-300)
    with pytest.raises(ValueError, match="max_step"):
        integrators.dopri5(_decay, np.ones((1, 1)), 1.0, np.array([1.0]), h0=0.1, rtol=1e-6, atol=1e-9, max_step=1e-300)
    with pytest.raises(ValueError, match="method"):
        integrators.IntegratorOptions("euler")
    with pytest.raises(ValueError, match="rtol"):
        integrators.IntegratorOptions("dopri5", rtol=0.0)
