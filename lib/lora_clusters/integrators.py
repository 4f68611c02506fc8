r"""One-step integrators for :math:`\dot y = f(t, y)`, independent of the attention dynamics.

The state ``y`` is an array whose first axis is a batch (several systems integrated
with shared steps); :mod:`lora_clusters.dynamics` passes tokens of shape (B, n, d).

- :func:`rk4`: the classical fourth-order Runge-Kutta scheme on the fixed grid
  :math:`t_k = k\,h`, with :math:`f` evaluated at all four stages,

  .. math:: y_{k+1} = y_k + \tfrac h6(k_1 + 2k_2 + 2k_3 + k_4).

- :func:`dopri5`: the adaptive Dormand-Prince 5(4) pair (Dormand & Prince 1980),
  propagating the fifth-order solution (FSAL), with the local error estimated by the
  embedded fourth-order one and controlled in the norm

  .. math:: \mathrm{err} = \max_b \Big(\operatorname{mean}_{j}
            \big(e_{bj} / (\text{atol} + \text{rtol}\,\max(|y_{bj}|, |y'_{bj}|))\big)^2\Big)^{1/2} \le 1,

  (RMS over each batch member, worst member), and dense output at requested times
  by cubic Hermite interpolation between accepted steps.

Both refuse step counts that could never finish (:data:`MAX_STEPS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._validation import positive_scalar
from .progress import progress_bar

__all__ = ["ADAPTIVE", "MAX_STEPS", "PRECISE", "IntegratorOptions", "Solution", "dopri5", "rk4"]

#: the most steps a fixed-step run, or the most output times of any run, may ask for
MAX_STEPS = 10_000_000

METHODS = ("rk4", "dopri5")


@dataclass(frozen=True)
class IntegratorOptions:
    """How :func:`lora_clusters.dynamics.simulate` integrates.

    ``method`` is ``"rk4"`` (fixed step ``dt``) or ``"dopri5"`` (adaptive, with the
    tolerances ``rtol``/``atol`` and an optional largest step ``max_step``).
    """

    method: str = "rk4"
    rtol: float = 1e-7
    atol: float = 1e-10
    max_step: float | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be 'rk4' or 'dopri5', got {self.method!r}")
        positive_scalar(self.rtol, "rtol")
        positive_scalar(self.atol, "atol")
        if self.max_step is not None:
            positive_scalar(self.max_step, "max_step")


#: adaptive integration at the default tolerances
ADAPTIVE = IntegratorOptions("dopri5")
#: adaptive integration at tight tolerances, for measurements that must not see the
#: integration error (relative 1e-9, absolute 1e-12)
PRECISE = IntegratorOptions("dopri5", rtol=1e-9, atol=1e-12)


@dataclass
class Solution:
    """What an integrator returns: the output times, the states there (a list of
    arrays shaped like ``y0``), accepted and rejected step counts, and whether
    ``stop_when`` ended the run early."""

    t: np.ndarray
    states: list
    n_steps: int
    n_rejected: int
    stopped: bool


def fixed_step_count(t_max: float, dt: float) -> int:
    """The number of RK4 steps, round(t_max / dt), refusing counts that cannot finish."""
    steps = t_max / dt
    if not steps <= MAX_STEPS:
        raise ValueError(
            f"dt = {dt!r} gives {steps:.3g} steps to reach t_max = {t_max!r}; at most {MAX_STEPS:.0e} "
            "are allowed: increase dt"
        )
    return max(1, int(round(steps)))


def rk4(
    f: Callable,
    y0: np.ndarray,
    t_max: float,
    dt: float,
    *,
    save_every: int = 1,
    stop_when: Callable | None = None,
    progress: bool = False,
) -> Solution:
    """Classical RK4 with step ``dt`` on t_k = k dt, k = 0..round(t_max/dt).

    Every ``save_every``-th state is kept (and always the last one).  ``stop_when(t,
    y)`` is checked after every step; returning True ends the run there.
    """
    n_steps = fixed_step_count(t_max, dt)
    y = y0
    times, states = [0.0], [y.copy()]
    bar = progress_bar(n_steps * dt, "simulate", unit="t", enabled=progress)
    stopped = False
    half = 0.5 * dt
    for k in range(n_steps):
        t = k * dt
        k1 = f(t, y)
        k2 = f(t + half, y + half * k1)
        k3 = f(t + half, y + half * k2)
        k4 = f(t + dt, y + dt * k3)
        y = y + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        t_new = (k + 1) * dt
        if bar is not None and (k % 100 == 99 or k + 1 == n_steps):
            bar.update(t_new - bar.n)
        last = k + 1 == n_steps
        stopped = stop_when is not None and bool(stop_when(t_new, y))
        if (k + 1) % save_every == 0 or last or stopped:
            times.append(t_new)
            states.append(y.copy())
        if stopped:
            break
    if bar is not None:
        bar.close()
    return Solution(np.array(times), states, k + 1, 0, stopped)


# Dormand-Prince 5(4) tableau (Dormand & Prince 1980); the 5th-order solution is propagated.
_DP_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
_DP_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
# difference between the 5th- and 4th-order weights: the local error estimate
_DP_E = np.array([71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40])
# the tableau as a lower-triangular matrix: stage i combines the previous slopes with
# one small product instead of a Python sum over arrays
_DP_A_MATRIX = np.zeros((7, 7))
for _i, _row in enumerate(_DP_A):
    _DP_A_MATRIX[_i, : len(_row)] = _row


def _hermite(t0, y0, f0, t1, y1, f1, tau):
    """Cubic Hermite interpolant through (t0, y0, f0) and (t1, y1, f1), evaluated at tau."""
    h = t1 - t0
    s = (tau - t0) / h
    s2, s3 = s * s, s * s * s
    return (2 * s3 - 3 * s2 + 1) * y0 + (s3 - 2 * s2 + s) * h * f0 + (3 * s2 - 2 * s3) * y1 + (s3 - s2) * h * f1


def _check_max_step(t_max: float, max_step: float) -> None:
    """Refuse a largest step that needs more than :data:`MAX_STEPS` steps to reach ``t_max``."""
    if not t_max / max_step <= MAX_STEPS:
        raise ValueError(
            f"max_step = {max_step!r} needs at least {t_max / max_step:.3g} steps to reach t_max = "
            f"{t_max!r}; at most {MAX_STEPS:.0e} are allowed"
        )


def _dp_stages(f: Callable, t: float, y: np.ndarray, fy: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    r"""The seven stage slopes of one Dormand-Prince step of size ``h`` from ``(t, y)``.

    Stage i is evaluated at :math:`y + h\sum_{j<i} a_{ij} k_j`, with :math:`k_1 = f(t, y)`
    given as ``fy`` (Dormand & Prince 1980, Table 2).  Returns the slopes ``k``,
    shape (7,) + y.shape, and the last stage point, which is the fifth-order solution
    (first same as last: ``k[6]`` is its slope).
    """
    k = np.empty((7,) + y.shape)  # the stage slopes, flattened below as (7, N)
    k[0] = fy
    slopes = k.reshape(7, -1)
    for i in range(1, 7):
        yi = y + h * (_DP_A_MATRIX[i, :i] @ slopes[:i]).reshape(y.shape)
        k[i] = f(t + _DP_C[i] * h, yi)
    return k, yi


def _error_norm(k: np.ndarray, h: float, y: np.ndarray, y_new: np.ndarray, rtol: float, atol: float) -> float:
    r"""The scaled local error of a step (the norm in the module docstring).

    The error estimate :math:`e = h\sum_i (b_i - \hat b_i) k_i` is divided by
    :math:`\text{atol} + \text{rtol}\max(|y|, |y'|)`, averaged in square over each batch
    member and the worst member's root is returned; a step is accepted when it is <= 1.
    """
    err_vec = h * (_DP_E @ k.reshape(7, -1)).reshape(y.shape)
    scale = atol + rtol * np.maximum(np.abs(y), np.abs(y_new))
    ratio = err_vec / scale
    # RMS over each batch member, worst member of the batch
    return float(np.sqrt(np.mean(ratio * ratio, axis=tuple(range(1, y.ndim)))).max())


def _step_factor(err: float) -> float:
    r"""The standard step-size controller: :math:`h \to h \cdot 0.9\,\mathrm{err}^{-1/5}`,
    the factor kept in [0.2, 5] (5 when the error is 0)."""
    return 5.0 if err == 0.0 else min(5.0, max(0.2, 0.9 * err**-0.2))


def _step_end(t: float, h: float, t_max: float) -> float:
    """t + h, snapped to ``t_max`` when within rounding of it."""
    t_new = t + h
    if t_max - t_new < 1e-12 * max(1.0, t_max):
        t_new = t_max
    return t_new


class _DenseOutput:
    """The output times of :func:`dopri5` reached so far and the states there: the
    accepted states themselves, or between two accepted steps the cubic Hermite
    interpolant (:func:`_hermite`)."""

    def __init__(self, t_eval):
        self.t_eval = t_eval
        self.next = 0
        self.times, self.states = [], []

    def _due(self, t_end: float) -> list:
        """The requested times up to ``t_end`` not yet produced, in order."""
        first = self.next
        while self.next < len(self.t_eval) and self.t_eval[self.next] <= t_end:
            self.next += 1
        return [float(self.t_eval[i]) for i in range(first, self.next)]

    def start(self, y: np.ndarray) -> None:
        """The requested times <= 0 all get the initial state."""
        for tau in self._due(0.0):
            self.times.append(tau)
            self.states.append(y.copy())

    def step(self, t, y, fy, t_new, y_new, f_new) -> None:
        """The requested times in (t, t_new] after the accepted step from t to t_new."""
        for tau in self._due(t_new):
            self.states.append(y_new.copy() if tau == t_new else _hermite(t, y, fy, t_new, y_new, f_new, tau))
            self.times.append(tau)

    def stop(self, t: float, y: np.ndarray) -> None:
        """A run stopped early ends with its state at ``t`` (unless already saved there)."""
        if not self.times or self.times[-1] < t:
            self.times.append(t)
            self.states.append(y.copy())


def dopri5(
    f: Callable,
    y0: np.ndarray,
    t_max: float,
    t_eval: np.ndarray,
    *,
    h0: float,
    rtol: float,
    atol: float,
    max_step: float,
    stop_when: Callable | None = None,
    progress: bool = False,
) -> Solution:
    """Adaptive Dormand-Prince 5(4) from t = 0 to ``t_max``, first trial step ``h0``,
    output at the increasing times ``t_eval`` (within [0, t_max]) by cubic Hermite
    interpolation.  ``stop_when(t, y)`` is checked after every accepted step."""
    _check_max_step(t_max, max_step)
    t = 0.0
    y = y0
    fy = f(t, y)
    h = min(h0, max_step, t_max)
    out = _DenseOutput(t_eval)
    out.start(y)
    n_steps = n_rejected = 0
    bar = progress_bar(t_max, "simulate", unit="t", enabled=progress)
    stopped = False
    while t < t_max and not stopped:
        h = min(h, max_step, t_max - t)
        k, y_new = _dp_stages(f, t, y, fy, h)
        err = _error_norm(k, h, y, y_new, rtol, atol)
        if not math.isfinite(err):
            raise FloatingPointError(f"non-finite state at t = {t:.6g}; the dynamics blew up")
        if err <= 1.0:
            t_new = _step_end(t, h, t_max)
            out.step(t, y, fy, t_new, y_new, k[6])
            t, y, fy = t_new, y_new, k[6]
            n_steps += 1
            if bar is not None:
                bar.update(t - bar.n)
            stopped = stop_when is not None and bool(stop_when(t, y)) and t < t_max
            if stopped:
                out.stop(t, y)
        else:
            n_rejected += 1
        h = h * _step_factor(err)
        if h < 1e-14 * max(1.0, t):
            raise FloatingPointError(f"step size underflow at t = {t:.6g}")
    if bar is not None:
        bar.close()
    return Solution(np.array(out.times), out.states, n_steps, n_rejected, stopped)
