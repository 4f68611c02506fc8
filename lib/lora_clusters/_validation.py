"""Argument checks shared by the public functions.

Every check raises ``ValueError`` whose message names the argument and says what
was expected, so that bad input never surfaces as a NaN or as a traceback from deep
inside numpy.
"""

from __future__ import annotations

import math

import numpy as np


def as_finite_array(value, name: str) -> np.ndarray:
    """``value`` as a float64 array, refusing complex numbers, NaN and infinities."""
    if np.iscomplexobj(value):
        raise ValueError(f"{name} must be real, got complex values (take .real explicitly if that is what you mean)")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers ({exc})") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    return arr


def as_tokens(value, name: str, *, allow_batch: bool = True) -> np.ndarray:
    """Tokens as an array of shape (n, d), or (B, n, d) when ``allow_batch``."""
    arr = as_finite_array(value, name)
    ok = arr.ndim == 2 or (allow_batch and arr.ndim == 3)
    if not ok:
        expected = "(n, d) or (B, n, d)" if allow_batch else "(n, d)"
        raise ValueError(f"{name} must have shape {expected}, got shape {arr.shape}")
    if arr.shape[-2] < 1 or arr.shape[-1] < 1:
        raise ValueError(f"{name} must hold at least one token of dimension >= 1, got shape {arr.shape}")
    return arr


def as_square_matrix(value, name: str, d: int | None = None, *, allow_batch: bool = True) -> np.ndarray:
    """A (d, d) matrix, or a (B, d, d) stack of them when ``allow_batch``."""
    arr = as_finite_array(value, name)
    if arr.ndim not in ((2, 3) if allow_batch else (2,)) or arr.shape[-1] != arr.shape[-2]:
        expected = "(d, d) or (B, d, d)" if allow_batch else "(d, d)"
        raise ValueError(f"{name} must be a square matrix of shape {expected}, got shape {arr.shape}")
    if d is not None and arr.shape[-1] != d:
        raise ValueError(f"{name} must be {d} x {d} to match the token dimension d = {d}, got shape {arr.shape}")
    return arr


def finite_scalar(value, name: str) -> float:
    """A finite real number."""
    return _real_scalar(value, name, "a finite real number", lambda x: True)


def positive_scalar(value, name: str) -> float:
    """A finite real number > 0."""
    return _real_scalar(value, name, "a finite number > 0", lambda x: x > 0)


def _real_scalar(value, name: str, expected: str, accept) -> float:
    # bool, str and complex convert to float (or fail late): refuse them by name
    if isinstance(value, (bool, str, bytes)) or np.iscomplexobj(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {expected}, got {value!r}") from None
    if not (math.isfinite(x) and accept(x)):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return x


def positive_int(value, name: str) -> int:
    """An integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def seed_list(value, name: str = "seeds") -> np.ndarray:
    """A non-empty 1-D list of integer seeds >= 0 (floats with a fractional part refused)."""
    arr = np.atleast_1d(np.asarray(value if not isinstance(value, range) else list(value)))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty list of integers >= 0, got {value!r}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind != "f" or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must be integers >= 0, got {value!r}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be integers >= 0 (numpy seeds), got {value!r}")
    return arr.astype(np.int64)
