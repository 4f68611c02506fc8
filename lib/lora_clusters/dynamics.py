r"""Self-attention as an interacting particle system: velocity fields and integrators.

Tokens :math:`x_1,\dots,x_n\in\mathbb R^d` evolve in "time" (depth) by eq. (2),

.. math::  \dot x_i = \sum_j P_{ij}(t)\, V x_j,\qquad
           P_{ij} = \frac{e^{\langle Qx_i, Kx_j\rangle}}{\sum_k e^{\langle Qx_i, Kx_k\rangle}}   \quad (2),(7)

and the rescaled tokens :math:`z_i = e^{-tV}x_i` by eq. (8),

.. math::  \dot z_i = \sum_j \frac{e^{\langle Qe^{tV}z_i, Ke^{tV}z_j\rangle}}
           {\sum_k e^{\langle Qe^{tV}z_i, Ke^{tV}z_k\rangle}}\, V(z_j-z_i). \quad (8)

Numerics.  In (8) the logits grow like :math:`e^{2t\,\mathrm{Re}\,\lambda_{\max}(V)}`;
computed naively they overflow float64 near :math:`t = 709/(2\lambda_{\max})`
(t ~ 355 for V = I) and the softmax returns NaN.  Here the growth is factored out
exactly: :math:`e^{tV} = e^{ct}E(t)` with :math:`c=\max\mathrm{Re}\,\lambda(V)`, so the
logits are :math:`\beta(t)\,\langle QE z_i, KE z_j\rangle` with an inverse temperature
:math:`\beta = e^{2ct}` carried as its logarithm.  The softmax subtracts the row
maximum before multiplying by :math:`\beta`, which is then finite for every t; once
:math:`\beta` exceeds :math:`e^{690}` the weights equal their hard-max limit (uniform
over the row's arg-max set) to float64 resolution, and that is what is returned.

Shapes.  Tokens are ``(n, d)`` or a batch ``(B, n, d)``; each of Q, K, V is ``(d, d)``
or a batch ``(B, d, d)``.  Batches broadcast against each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg

from . import integrators
from ._validation import as_finite_array, as_square_matrix, as_tokens, finite_scalar, positive_int, positive_scalar
from .integrators import ADAPTIVE, MAX_STEPS, PRECISE, IntegratorOptions, fixed_step_count

__all__ = [
    "ADAPTIVE",
    "PRECISE",
    "IntegratorOptions",
    "LOG_BETA_HARDMAX",
    "ScaledExponential",
    "Trajectory",
    "attention_average",
    "attention_matrix",
    "rescaled_velocity",
    "simulate",
    "velocity",
]

#: Above this log inverse temperature the softmax is replaced by its hard-max limit.
#: e^690 ~ 1e299: any logit gap larger than 1e-297 then has weight below e^-100, so the
#: two agree to float64 resolution, and the product beta * gap can no longer overflow.
LOG_BETA_HARDMAX = 690.0

#: Scaled, max-shifted logits are floored here before exponentiation (see _attention_weights).
LOGIT_FLOOR = -700.0


# --------------------------------------------------------------------------------------
# softmax that never overflows
# --------------------------------------------------------------------------------------
def _attention_weights(queries: np.ndarray, keys: np.ndarray, log_beta) -> np.ndarray:
    r"""Unnormalised weights :math:`w_{ij} = e^{\beta(\langle q_i,k_j\rangle - \max_k\langle q_i,k_k\rangle)}`.

    Entries lie in [e^-700, 1] and every row holds at least one 1, so row sums are >= 1.
    """
    logits = queries @ np.swapaxes(keys, -1, -2)
    logits -= logits.max(axis=-1, keepdims=True)
    # The gaps (<= 0) are floored at LOGIT_FLOOR / beta before the product, so that
    # beta * gap lies in [LOGIT_FLOOR, 0]: it cannot overflow, and np.exp stays off its
    # underflow path (5-30x slower; it dominated long runs in the hard-max regime).
    # Weights below e^-700 ~ 1e-304 are raised to it, which changes nothing at float64
    # resolution next to the row's weight 1.  beta = 0 (log_beta -> -inf) gives uniform weights.
    log_beta = np.asarray(log_beta, dtype=float)
    if log_beta.size == 1 or bool((log_beta == log_beta.flat[0]).all()):
        # one temperature for the whole batch (value matrices with the same top
        # eigenvalue): scalar arithmetic is cheaper than broadcasting
        beta = math.exp(min(float(log_beta.flat[0]), LOG_BETA_HARDMAX))
        floor = LOGIT_FLOOR / beta if beta > 0.0 else -math.inf
    else:
        beta = np.exp(np.minimum(log_beta, LOG_BETA_HARDMAX))[..., None, None]
        floor = np.divide(LOGIT_FLOOR, beta, out=np.full_like(beta, -np.inf), where=beta > 0.0)
    np.maximum(logits, floor, out=logits)
    logits *= beta
    np.exp(logits, out=logits)
    return logits


def attention_average(queries, keys, values, log_beta=0.0) -> np.ndarray:
    r"""Attention-weighted average :math:`\sum_j P_{ij} v_j` with
    :math:`P_{ij} = \mathrm{softmax}_j\big(e^{\text{log\_beta}}\langle q_i, k_j\rangle\big)`.

    This is eq. (7) with logits written as an inverse temperature times moderate
    numbers.  ``log_beta`` may be any real number (or +inf for the hard-max limit).
    Shapes: queries, keys ``(..., n, p)``; values ``(..., n, d)``; log_beta scalar or ``(...,)``.
    """
    weights = _attention_weights(queries, keys, log_beta)
    return (weights @ values) / weights.sum(axis=-1, keepdims=True)


def attention_matrix(x, Q, K, *, t: float = 0.0, V=None) -> np.ndarray:
    r"""The attention matrix P(t) of eq. (7), rows summing to one.

    With ``V`` given, ``x`` are rescaled tokens z and the logits are
    :math:`\langle Qe^{tV}z_i, Ke^{tV}z_j\rangle` as in (8); otherwise
    :math:`\langle Qx_i, Kx_j\rangle` as in (2).  Stays finite for every t.
    """
    x = as_tokens(x, "x")
    d = x.shape[-1]
    Q = as_square_matrix(Q, "Q", d)
    K = as_square_matrix(K, "K", d)
    if V is None:
        queries, keys, log_beta = _normalised_queries_keys(x, Q, K)
    else:
        V = as_square_matrix(V, "V", d)
        E, log_scale = ScaledExponential(V)(finite_scalar(t, "t"))
        queries, keys, log_beta = _rescaled_queries(x, E, Q, K), x, 2.0 * log_scale
    w = _attention_weights(queries, keys, log_beta)
    return w / w.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------
# e^{tV} with its exponential growth factored out
# --------------------------------------------------------------------------------------
class ScaledExponential:
    r"""The matrix exponential written as :math:`e^{tV} = e^{c\,t}\,E(t)`.

    :math:`c = \max \mathrm{Re}\,\lambda(V)`, so :math:`E(t)` grows at most polynomially
    (it is bounded when V is diagonalisable).  ``prop(t)`` returns ``(E(t), c*t)``.

    When the eigenvector matrix of V is well conditioned,
    :math:`E(t) = P\,\mathrm{diag}(e^{t(\lambda-c)})P^{-1}` is evaluated directly (cheap
    for every t); otherwise (defective or nearly defective V) it falls back to
    ``scipy.linalg.expm(t (V - c I))``.  V may be ``(d, d)`` or ``(B, d, d)``.
    """

    #: eigenvector matrices with a larger condition number use the expm fallback
    MAX_EIGVEC_COND = 1e8

    def __init__(self, V):
        V = np.asarray(V, dtype=float)
        self._batched = V.ndim == 3
        Vb = V if self._batched else V[None]
        w, P = np.linalg.eig(Vb)
        self.growth_rate = w.real.max(axis=-1)  # c, shape (B,)
        self._shifted_eigs = w - self.growth_rate[:, None]
        cond = np.linalg.cond(P)
        self.uses_eigendecomposition = bool(np.all(np.isfinite(cond)) and np.all(cond < self.MAX_EIGVEC_COND))
        if self.uses_eigendecomposition:
            self._P = P
            self._Pinv = np.linalg.inv(P)
            self._real = bool(np.all(np.isreal(w)))
            if self._real:
                self._P, self._Pinv = self._P.real, self._Pinv.real
                self._shifted_eigs = self._shifted_eigs.real
        else:
            d = Vb.shape[-1]
            self._shifted = Vb - self.growth_rate[:, None, None] * np.eye(d)

    def __call__(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        if self.uses_eigendecomposition:
            E = (self._P * np.exp(t * self._shifted_eigs)[:, None, :]) @ self._Pinv
            if not self._real:
                E = E.real
        else:
            E = scipy.linalg.expm(t * self._shifted)
        log_scale = self.growth_rate * t
        if not self._batched:
            return E[0], log_scale[0]
        return E, log_scale

    def expm(self, t: float) -> np.ndarray:
        """:math:`e^{tV}` itself (may overflow for large t; for checks and plots)."""
        E, log_scale = self(t)
        return np.exp(log_scale)[..., None, None] * E if self._batched else math.exp(log_scale) * E


# --------------------------------------------------------------------------------------
# velocity fields
# --------------------------------------------------------------------------------------
def _normalised_queries_keys(x, Q, K):
    """Queries and keys of eq. (2) divided by the token scale s, and log beta = 2 log s."""
    scale = np.abs(x).max(axis=(-2, -1))
    scale = np.where(scale > 0, scale, 1.0)
    xs = x / scale[..., None, None]
    return xs @ np.swapaxes(Q, -1, -2), xs @ np.swapaxes(K, -1, -2), 2.0 * np.log(scale)


def _velocity(x, Q, K, V):
    queries, keys, log_beta = _normalised_queries_keys(x, Q, K)
    return attention_average(queries, keys, x, log_beta) @ np.swapaxes(V, -1, -2)


def _rescaled_queries(z, E, Q, K):
    """Queries z_i^T M against keys z_j, where M = (QE)^T (KE): the logits of (8) up to
    the factor e^{2ct}, with one small product instead of two."""
    return z @ (np.swapaxes(Q @ E, -1, -2) @ (K @ E))


def _rescaled_velocity(z, E, log_scale, Q, K, V):
    mean_field = attention_average(_rescaled_queries(z, E, Q, K), z, z, 2.0 * log_scale)
    return (mean_field - z) @ np.swapaxes(V, -1, -2)


def velocity(x, Q, K, V) -> np.ndarray:
    r"""Right-hand side of eq. (2): :math:`\dot x_i = \sum_j P_{ij} V x_j`."""
    x = as_tokens(x, "x")
    d = x.shape[-1]
    return _velocity(x, *(as_square_matrix(M, name, d) for M, name in ((Q, "Q"), (K, "K"), (V, "V"))))


def rescaled_velocity(z, t: float, Q, K, V) -> np.ndarray:
    r"""Right-hand side of eq. (8): :math:`\dot z_i = \sum_j P_{ij}(t) V (z_j - z_i)`,
    with logits :math:`\langle Qe^{tV}z_i, Ke^{tV}z_j\rangle`.  Finite for every t."""
    z = as_tokens(z, "z")
    d = z.shape[-1]
    Q, K, V = (as_square_matrix(M, name, d) for M, name in ((Q, "Q"), (K, "K"), (V, "V")))
    E, log_scale = ScaledExponential(V)(finite_scalar(t, "t"))
    return _rescaled_velocity(z, E, log_scale, Q, K, V)


class _Field:
    """The velocity of (2) or (8) as a function of (t, y), caching e^{tV} by time."""

    def __init__(self, Q, K, V, rescaled: bool):
        self.Q, self.K, self.V = Q, K, V
        self.rescaled = rescaled
        self.nfev = 0
        self._prop = ScaledExponential(V) if rescaled else None
        self._cache: dict[float, tuple] = {}

    def __call__(self, t: float, y: np.ndarray) -> np.ndarray:
        self.nfev += 1
        if not self.rescaled:
            return _velocity(y, self.Q, self.K, self.V)
        hit = self._cache.get(t)
        if hit is None:
            if len(self._cache) > 8:
                self._cache.clear()
            hit = self._cache[t] = self._prop(t)
        return _rescaled_velocity(y, hit[0], hit[1], self.Q, self.K, self.V)


# --------------------------------------------------------------------------------------
# simulate: checks, output grid, dispatch to an integrator
# --------------------------------------------------------------------------------------
@dataclass
class Trajectory:
    """Result of :func:`simulate`.

    ``t`` has shape (m,) with ``t[0] == 0``; ``states`` has shape (m, n, d), or
    (B, m, n, d) when the initial tokens or a parameter matrix were batched.
    ``stopped_early`` is true when ``stop_when`` ended the run before ``t_max``.
    """

    t: np.ndarray
    states: np.ndarray
    rescaled: bool
    method: str
    n_steps: int
    n_rejected: int = 0
    nfev: int = 0
    stopped_early: bool = False

    @property
    def final(self) -> np.ndarray:
        """The last saved state, (n, d) or (B, n, d)."""
        return self.states[..., -1, :, :]

    def select(self, b: int) -> Trajectory:
        """Member ``b`` of a batched trajectory, as an unbatched one (same times;
        the step counts are those of the whole batch, which shared its steps)."""
        if self.states.ndim != 4:
            raise ValueError(
                f"select needs a batched trajectory (states of shape (B, m, n, d)), got {self.states.shape}"
            )
        if not -self.states.shape[0] <= b < self.states.shape[0]:
            raise IndexError(f"b = {b} is out of range for a batch of {self.states.shape[0]}")
        return replace(self, states=self.states[b])


#: the largest output a run may produce (its saved states), in bytes
MAX_OUTPUT_BYTES = 4 * 2**30

#: tokens whose attention logits would leave float64 at t = 0 are refused
_MAX_LOGIT = 1e300


def _checked_inputs(x0, Q, K, V):
    """Validated tokens and matrices, broadcast to a common batch: (y0, Q, K, V, batched)."""
    x0 = as_tokens(x0, "x0")
    d = x0.shape[-1]
    Q = as_square_matrix(Q, "Q", d)
    K = as_square_matrix(K, "K", d)
    V = as_square_matrix(V, "V", d)
    batch_sizes = {a.shape[0] for a in (x0, Q, K, V) if a.ndim == 3}
    if len(batch_sizes) > 1:
        raise ValueError(
            "the leading batch axes of x0, Q, K, V must agree, got sizes "
            + ", ".join(f"{name}: {a.shape[0]}" for name, a in zip("x0 Q K V".split(), (x0, Q, K, V)) if a.ndim == 3)
        )
    batched = bool(batch_sizes)
    B = batch_sizes.pop() if batched else 1
    y0 = np.broadcast_to(x0 if x0.ndim == 3 else x0[None], (B,) + x0.shape[-2:]).copy()
    Qb, Kb, Vb = (M if M.ndim == 3 else M[None] for M in (Q, K, V))
    return y0, Qb, Kb, Vb, batched


def _output_grid(t_max: float, dt: float, save_every: int, t_eval, method: str) -> np.ndarray | None:
    """The output times of a dopri5 run (None for rk4, whose grid is its steps)."""
    if method == "rk4":
        if t_eval is not None:
            raise ValueError("t_eval is only supported with method='dopri5'; use save_every with 'rk4'")
        return None
    if t_eval is None:
        n_grid = t_max / dt
        if not n_grid / save_every <= MAX_STEPS:
            raise ValueError(
                f"dt = {dt!r} and save_every = {save_every} ask for {n_grid / save_every:.3g} output "
                f"times up to t_max = {t_max!r}; at most {MAX_STEPS:.0e}: increase dt or save_every"
            )
        n_grid = max(1, int(round(n_grid)))
        idx = np.arange(0, n_grid + 1, save_every)
        grid = idx * dt
        if idx[-1] != n_grid:
            grid = np.append(grid, n_grid * dt)
        grid[-1] = t_max
        return grid
    grid = as_finite_array(t_eval, "t_eval")
    if grid.ndim != 1 or grid.size == 0 or np.any(np.diff(grid) <= 0):
        raise ValueError("t_eval must be a non-empty increasing 1-D array of times")
    if grid[0] < 0 or grid[-1] > t_max:
        raise ValueError(f"t_eval must lie in [0, t_max] = [0, {t_max}]")
    return grid


def _check_output_size(n_frames: float, y0: np.ndarray) -> None:
    size = n_frames * y0.size * 8
    if size > MAX_OUTPUT_BYTES:
        raise ValueError(
            f"the run would keep {n_frames:.3g} states of {y0.size} numbers ({size / 2**30:.3g} GiB, "
            f"more than {MAX_OUTPUT_BYTES / 2**30:.0f} GiB): save fewer times (dt, save_every or t_eval)"
        )


def _checked_steps(t_max, dt, save_every) -> tuple[float, float, int]:
    """Validated ``t_max``, ``dt`` (at most ``t_max``) and ``save_every`` of :func:`simulate`."""
    t_max = positive_scalar(t_max, "t_max")
    dt = positive_scalar(dt, "dt")
    if dt > t_max:
        raise ValueError(f"dt must be at most t_max = {t_max!r}, got dt = {dt!r}")
    return t_max, dt, positive_int(save_every, "save_every")


def _integrator_options(options, **overrides) -> IntegratorOptions:
    """``options`` (default :class:`IntegratorOptions`) with the fields given in
    ``overrides`` that are not None replaced."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if options is not None and not isinstance(options, IntegratorOptions):
        raise ValueError(f"options must be an IntegratorOptions, got {type(options).__name__}")
    return replace(options or IntegratorOptions(), **overrides)


def _check_logit_range(y0: np.ndarray, Qb: np.ndarray, Kb: np.ndarray) -> None:
    r"""Refuse tokens whose logits :math:`\langle Qz_i, Kz_j\rangle` of eq. (8) overflow at t = 0.

    The rescaled tokens stay in the convex hull of their start, and the logits times
    :math:`e^{2ct}` are computed from them, so they must be finite at t = 0.
    """
    scale = float(np.abs(y0).max())
    if scale * scale * max(float(np.abs(Qb).max()), 1.0) * max(float(np.abs(Kb).max()), 1.0) > _MAX_LOGIT:
        raise ValueError(
            f"x0 is too large (largest entry {scale:.3g}): the attention logits <Qx_i, Kx_j> "
            "overflow float64; rescale the tokens"
        )


def _frame_stop(stop_when, batched: bool):
    """``stop_when`` as the integrators call it, on states (B, n, d): an unbatched run's
    callback is given the one output frame (n, d)."""
    if stop_when is None or batched:
        return stop_when

    def stop(t, y):
        return stop_when(t, y[0])

    return stop


def _integrate(field_, y0, t_max, dt, grid, opts, save_every, stop, progress) -> integrators.Solution:
    """Run :func:`~lora_clusters.integrators.rk4` (step ``dt``) or
    :func:`~lora_clusters.integrators.dopri5` (output at ``grid``, first trial step
    ``min(dt, max_step)``) on the velocity field ``field_`` from ``y0``."""
    if opts.method == "rk4":
        return integrators.rk4(field_, y0, t_max, dt, save_every=save_every, stop_when=stop, progress=progress)
    max_step = t_max if opts.max_step is None else opts.max_step
    return integrators.dopri5(
        field_,
        y0,
        t_max,
        grid,
        h0=min(dt, max_step),
        rtol=opts.rtol,
        atol=opts.atol,
        max_step=max_step,
        stop_when=stop,
        progress=progress,
    )


def _finite_states(sol: integrators.Solution, rescaled: bool) -> np.ndarray:
    """The saved states stacked as (B, m, n, d), refusing any that left the float64 range."""
    arr = np.stack(sol.states, axis=1)
    if not np.all(np.isfinite(arr)):
        hint = (
            "with rescaled=False the tokens grow like e^{tV}: use rescaled=True for long horizons"
            if not rescaled
            else "the rescaled tokens diverged (is a step or tolerance too large?)"
        )
        raise FloatingPointError(f"the states left the float64 range; {hint}")
    return arr


def simulate(
    x0,
    Q,
    K,
    V,
    t_max: float,
    dt: float = 0.1,
    rescaled: bool = True,
    *,
    options: IntegratorOptions | None = None,
    method: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    max_step: float | None = None,
    save_every: int = 1,
    t_eval=None,
    stop_when: Callable[[float, np.ndarray], bool] | None = None,
    progress: bool = False,
) -> Trajectory:
    r"""Integrate the token dynamics (8) (``rescaled=True``, states are z) or (2) (states are x).

    Parameters
    ----------
    x0 : (n, d) or (B, n, d)
        Initial tokens; z(0) = x(0).
    Q, K, V : (d, d) or (B, d, d)
        Query, key and value matrices; a leading batch axis runs several parameter
        sets at once (broadcast against the batch of ``x0``).
    t_max : float > 0
        Final time (number of layers in the continuous-depth picture).
    dt : float in (0, t_max]
        RK4 step (the paper uses 0.1); for the adaptive method the spacing of the
        default output grid and the first trial step.
    options : :class:`~lora_clusters.integrators.IntegratorOptions`, optional
        The integrator: ``method`` ``"rk4"`` (default; classical fourth-order
        Runge-Kutta with the attention recomputed at each of the four stages, on the
        grid t_k = k dt, k = 0..round(t_max/dt), so the last time is within dt/2 of
        t_max) or ``"dopri5"`` (adaptive Dormand-Prince 5(4) with error control at
        ``rtol``/``atol``, far fewer steps on long horizons where tokens sit in
        clusters; output at ``t_eval`` by cubic Hermite interpolation).  Presets:
        :data:`~lora_clusters.integrators.ADAPTIVE`, :data:`~lora_clusters.integrators.PRECISE`.
    method, rtol, atol, max_step : optional
        Override the corresponding field of ``options``.
    save_every : int >= 1
        Keep every ``save_every``-th grid point (the last one is always kept).
    t_eval : increasing times in [0, t_max], optional (adaptive method only)
        Output times; default: the RK4 grid thinned by ``save_every``, ending at t_max.
    stop_when : callable(t, states) -> bool, optional
        Checked after every (accepted) step with states shaped like one output
        frame; returning True ends the run there (``stopped_early`` is then set).
    progress : bool
        Show a tqdm bar over simulated time.

    Returns
    -------
    Trajectory with ``t`` (m,) and ``states`` (m, n, d) or (B, m, n, d).
    """
    y0, Qb, Kb, Vb, batched = _checked_inputs(x0, Q, K, V)
    t_max, dt, save_every = _checked_steps(t_max, dt, save_every)
    opts = _integrator_options(options, method=method, rtol=rtol, atol=atol, max_step=max_step)
    if stop_when is not None and not callable(stop_when):
        raise ValueError(f"stop_when must be a callable (t, states) -> bool, got {stop_when!r}")
    if rescaled:
        _check_logit_range(y0, Qb, Kb)
    grid = _output_grid(t_max, dt, save_every, t_eval, opts.method)
    n_frames = (fixed_step_count(t_max, dt) / save_every + 2) if grid is None else grid.size
    _check_output_size(n_frames, y0)

    field_ = _Field(Qb, Kb, Vb, rescaled)
    sol = _integrate(field_, y0, t_max, dt, grid, opts, save_every, _frame_stop(stop_when, batched), progress)
    arr = _finite_states(sol, rescaled)  # (B, m, n, d)
    return Trajectory(
        t=sol.t,
        states=arr if batched else arr[0],
        rescaled=rescaled,
        method=opts.method,
        n_steps=sol.n_steps,
        n_rejected=sol.n_rejected,
        nfev=field_.nfev,
        stopped_early=sol.stopped,
    )


# --------------------------------------------------------------------------------------
# the authors' scheme, for comparison only
# --------------------------------------------------------------------------------------
def simulate_frozen_attention(z0, Q, K, V, t_max: float, dt: float = 0.1) -> Trajectory:
    r"""The rescaled flow (8) integrated the way the authors' public notebook does it:
    RK4 steps of size ``dt`` in which the attention matrix :math:`P(t_k)` is computed
    once, at the start of the step, and reused for the four stages

    .. math:: k_s = \big(P(t_k)\,\zeta_s - \zeta_s\big)V^\top,\quad
              \zeta_1 = z_k,\ \zeta_2 = z_k + \tfrac{dt}2 k_1,\ \dots

    Freezing :math:`P` makes the scheme first order in ``dt`` (the attention's change
    within a step is dropped); the book uses it only to measure what that costs
    (Chapter 3).  The softmax is the stable one of :func:`attention_matrix`, so unlike
    the notebook it does not overflow.  Unbatched tokens (n, d) only; every step is
    saved."""
    z = as_tokens(z0, "z0", allow_batch=False).astype(float)
    d = z.shape[1]
    Q, K, V = (as_square_matrix(M, name, d) for M, name in ((Q, "Q"), (K, "K"), (V, "V")))
    t_max = positive_scalar(t_max, "t_max")
    dt = positive_scalar(dt, "dt")
    if dt > t_max:
        raise ValueError(f"dt must be at most t_max = {t_max}, got {dt}")
    n_steps = int(round(t_max / dt))
    _check_output_size(n_steps + 1, z)
    prop = ScaledExponential(V)
    states = np.empty((n_steps + 1, *z.shape))
    states[0] = z
    Vt = V.T
    for k in range(n_steps):
        E, log_scale = prop(k * dt)
        w = _attention_weights(_rescaled_queries(z, E, Q, K), z, 2.0 * log_scale)
        P = w / w.sum(axis=-1, keepdims=True)

        def frozen(y, P=P):
            return (P @ y - y) @ Vt

        k1 = frozen(z)
        k2 = frozen(z + dt / 2 * k1)
        k3 = frozen(z + dt / 2 * k2)
        k4 = frozen(z + dt * k3)
        z = z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        states[k + 1] = z
    return Trajectory(np.arange(n_steps + 1) * dt, states, True, "rk4-frozen-attention", n_steps, nfev=4 * n_steps)
