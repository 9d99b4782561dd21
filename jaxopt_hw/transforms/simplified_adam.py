"""Simplified Adam of the homework's Q2(b): a diagonal preconditioner from the epoch's RMS gradient.

No momentum, no weight decay, no running average across epochs: at each step,

.. math::

  u_t = -\\alpha_t \\, M_t \\, \\bar g_t, \\qquad
  (M_t)_{jj} = \\frac{1}{\\sqrt{\\tfrac1n \\sum_i g_{t,ij}^2} + \\epsilon}, \\qquad
  \\bar g_t = \\tfrac1n \\sum_i g_{t,i},

where g_{t,i} is the gradient of example i at θ_t and the mean runs over the n examples of the
epoch. **What "over the epoch" means here:** one step is one epoch — every training example's
gradient is evaluated at the current θ_t, the step moves along their mean (the full-batch gradient)
and each coordinate is divided by the root-mean-square of that coordinate over the examples. This is
the literal reading of the homework for full-batch training, needs no state beyond a step counter
for schedules, and is exact rather than an average of gradients taken at stale parameters. It is not
Adam/RMSprop with minibatches (those keep an exponential moving average across steps; use
``optax.scale_by_rms`` for that).

With one example (``per_example=False``, the homework's case) the update is exactly
``-α·sign(g)``: (M g)_j = g_j/|g_j|. By Cauchy–Schwarz |ḡ_j| ≤ RMS_j, so no coordinate ever moves by
more than α in one step.

**ε and zero gradients.** ``eps`` is added to the RMS as in Adam; it defaults to 0 so that the
one-example update is exactly the sign. A coordinate whose gradients are all zero gets a zero
update (never NaN), whatever ``eps`` is. The division is done after scaling each coordinate by its
largest |g_ij|, so tiny gradients (whose squares would underflow) still give the exact sign.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxopt_hw.validation import check_learning_rate, check_number


class ScaleByEpochRMSState(NamedTuple):
  """Stateless: the preconditioner is recomputed from each epoch's gradients."""


def _epoch_direction(g: jax.Array, per_example: bool, eps: float) -> jax.Array:
  """ḡ_j / (RMS_j + eps) over the leading example axis (or of g alone)."""
  if not per_example:
    g = g[None]
  peak = jnp.max(jnp.abs(g), axis=0)
  zero = peak == 0
  safe_peak = jnp.where(zero, jnp.ones_like(peak), peak)
  scaled = g / safe_peak  # entries in [-1, 1]; exactly ±1 for a single nonzero example
  mean = jnp.mean(scaled, axis=0)
  rms = jnp.sqrt(jnp.mean(scaled * scaled, axis=0))  # >= 1/sqrt(n) where not zero
  # m/(rms + eps) in the original units is (peak·mean)/(peak·rms + eps) = mean/(rms + eps/peak);
  # eps = 0 adds an exact zero, so the one-example update stays exactly the sign. (No Python `if`
  # on eps: under optax.inject_hyperparams it is a traced array.)
  denom = rms + jnp.asarray(eps, g.dtype) / safe_peak
  direction = mean / jnp.where(zero, jnp.ones_like(denom), denom)
  # NaN in g propagates (peak is NaN, not 0), so a diverging run stays visible.
  return jnp.where(zero, jnp.zeros_like(direction), direction).astype(g.dtype)


def scale_by_epoch_rms(
  *, eps: float = 0.0, per_example: bool = False
) -> optax.GradientTransformationExtraArgs:
  """Divide the (mean) gradient by the root-mean-square gradient of the epoch, coordinate-wise.

  Args:
    eps: added to the RMS (Adam's ε); 0 keeps the one-example update exactly ``sign(g)``.
    per_example: if True, every leaf of the incoming updates has a leading axis of per-example
      gradients (the epoch), which this transform reduces: its output has the parameters' shapes.
      If False, the incoming gradient is the epoch's only example.

  Returns:
    A GradientTransformation (no learning rate, no sign flip: chain with one).
  """
  check_number("eps", eps, lambda v: 0 <= v < math.inf, "a finite number >= 0")

  def init_fn(params):
    del params
    return ScaleByEpochRMSState()

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    return jax.tree.map(lambda g: _epoch_direction(g, per_example, eps), updates), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def simplified_adam(
  learning_rate: optax.ScalarOrSchedule, *, eps: float = 0.0, per_example: bool = False
) -> optax.GradientTransformationExtraArgs:
  """Simplified Adam (Q2(b)): θ ← θ − α_t · diag(1/RMS_epoch(g)) · ḡ, no momentum, no weight decay.

  .. math::

    u_t = -\\alpha_t \\, \\frac{\\bar g_t}{\\sqrt{\\mathrm{mean}_i\\, g_{t,i}^2} + \\epsilon}
    \\quad\\text{(coordinate-wise; }
    u_t = -\\alpha_t\\,\\mathrm{sign}(g_t) \\text{ for one example)}

  One step is one epoch over the examples (see the module docstring). On the homework problem
  f(θ) = (1 − aᵀθ)² the update is −α_t·sign(g) = α_t·sign(1 − aᵀθ)·(1, 1, 1) when a > 0, so θ stays
  on the line c·(1, 1, 1): a constant step oscillates around c* = 1/Σa_j without converging, while a
  schedule with α_t → 0 and Σα_t = ∞ converges to θ = (1, 1, 1)/Σa_j.

  Args:
    learning_rate: α, a float or an optax schedule of the step count.
    eps: added to the RMS; 0 (default) keeps the one-example update exactly the sign.
      All-zero gradient coordinates always give a zero update.
    per_example: the incoming updates carry a leading axis of per-example gradients (the epoch);
      the output has the parameters' shapes. ``jaxopt_hw.sweep(..., per_example_grads=True)``
      provides them.

  Returns:
    A GradientTransformation; apply its updates with ``optax.apply_updates``.

  Example::

    >>> import jax.numpy as jnp, optax
    >>> tx = simplified_adam(0.1)
    >>> g = jnp.array([2.0, -0.5, 0.0])
    >>> u, _ = tx.update(g, tx.init(g))
    >>> u  # -0.1 * sign(g); the zero coordinate gets -0.0 (== 0)
    Array([-0.1,  0.1, -0. ], dtype=float32)

  References:
    Kingma & Ba, "Adam: A Method for Stochastic Optimization", arXiv:1412.6980 (Adam without
    momentum and bias correction, with the second moment taken over the epoch).
  """
  check_learning_rate(learning_rate)
  return optax.chain(
    scale_by_epoch_rms(eps=eps, per_example=per_example),
    optax.scale_by_learning_rate(learning_rate),
  )
