"""Guarded arithmetic shared by the norms (:mod:`jaxopt_hw.duality`) and the polar factor
(:mod:`jaxopt_hw.polar`).

The guards catch an exact 0 only (0/0 → 0, √0 with a finite gradient): a NaN or an inf goes through
them and comes out as NaN, so a faulty gradient shows in the update instead of vanishing (issue
12.3). Norms divide by max|x| before squaring, so float32 gradients of 1e-20 (whose squares
underflow to 0) or 1e20 (whose squares overflow to inf) give the right step (issue 12.11).
"""

from __future__ import annotations

import jax.numpy as jnp


def float_dtype(dtype):
  """The dtype an update of a ``dtype`` gradient has: ``dtype`` itself when it is a float, else the
  default float (float32, or float64 with ``jax_enable_x64``) — integer and boolean gradients are
  promoted the way optax promotes them (its ``sgd`` multiplies them by a weakly typed learning
  rate), never cast back to integers (which truncated every step to 0)."""
  dtype = jnp.dtype(dtype)
  if jnp.issubdtype(dtype, jnp.floating):
    return dtype
  return jnp.result_type(dtype, 1.0)


def compute_dtype(dtype):
  """float32 for bfloat16/float16 inputs (sums in 8 bits of mantissa are too coarse), else the
  update dtype (:func:`float_dtype`)."""
  return jnp.promote_types(float_dtype(dtype), jnp.float32)


def up(x):
  """``x`` as an array in its compute dtype (:func:`compute_dtype`)."""
  x = jnp.asarray(x)
  return x.astype(compute_dtype(x.dtype))


def out_dtype(x):
  """The dtype of the result for an input ``x`` (see :func:`float_dtype`)."""
  return float_dtype(jnp.asarray(x).dtype)


def safe_sqrt(s):
  """sqrt with a zero (not NaN) gradient at 0; NaN stays NaN."""
  zero = s == 0
  return jnp.where(zero, 0, jnp.sqrt(jnp.where(zero, 1, s)))


def safe_div(num, den):
  """num / den, and 0 where den == 0 exactly (used where num is 0 whenever den is)."""
  zero = den == 0
  return jnp.where(zero, 0, num / jnp.where(zero, 1, den))


def safe_pow(b, r):
  """b**r for b >= 0, with 0**r = 0 and a finite gradient at 0; NaN stays NaN."""
  zero = b == 0
  return jnp.where(zero, 0, jnp.where(zero, 1, b) ** r)


def max_abs(x, axis=None, keepdims=False):
  """max|x_i| (0 for an empty array); NaN when any entry is NaN, inf when one is infinite."""
  return jnp.max(jnp.abs(x), axis=axis, keepdims=keepdims, initial=0)


def scaled(x, axis=None):
  """(m, x/m) with m = max|x_i| (over ``axis``, kept as a size-1 axis): squares of x/m neither
  underflow nor overflow. x = 0 gives (0, 0); a NaN or inf entry makes x/m NaN."""
  m = max_abs(x, axis=axis, keepdims=axis is not None)
  return m, safe_div(x, m)
