"""The thing to beat: a simulator written the way the authors' public code works.

Kept only as a baseline for ``benchmarks/run.py``; the book never uses it.  Per RK4
step it (i) recomputes e^{tV} with ``scipy.linalg.expm`` for every pair of tokens in
Python loops, and (ii) freezes the attention matrix over the four RK4 stages, which
makes the scheme first-order accurate in the attention.  Plain exponentials are
used for the logits, so it overflows near t = 355 for V = I.
"""

import numpy as np
from scipy.linalg import expm


def attention(z, t, Q, K, V):
    n = len(z)
    P = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            E = expm(t * V)
            P[i, j] = np.exp(np.dot(Q @ E @ z[i], K @ E @ z[j]))
        P[i] /= P[i].sum()
    return P


def velocity(z, P, V):
    n = len(z)
    out = np.zeros_like(z)
    for i in range(n):
        for j in range(n):
            out[i] += P[i, j] * (V @ (z[j] - z[i]))
    return out


def simulate(z0, Q, K, V, t_max, dt=0.1):
    z = np.array(z0, dtype=float)
    states = [z.copy()]
    n_steps = int(round(t_max / dt))
    for k in range(n_steps):
        P = attention(z, k * dt, Q, K, V)  # frozen over the four stages
        k1 = velocity(z, P, V)
        k2 = velocity(z + dt / 2 * k1, P, V)
        k3 = velocity(z + dt / 2 * k2, P, V)
        k4 = velocity(z + dt * k3, P, V)
        z = z + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        states.append(z.copy())
    return np.arange(n_steps + 1) * dt, np.array(states)
