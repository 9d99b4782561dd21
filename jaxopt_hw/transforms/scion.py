r"""Scion: steepest descent with a norm (and a radius) per layer, unconstrained or Frank–Wolfe.

Pethick et al. (2025) train networks with the linear minimisation oracle (LMO) of a norm ball per
layer, lmo(m) = argmin_{‖Δ‖ ≤ ρ} ⟨m, Δ⟩ = −ρ·d(m), applied to a momentum m of the gradients:

.. math::

  m_t = β m_{t-1} + (1 − β) g_t, \qquad
  W_{t+1} = W_t + η\,\text{lmo}(m_t) \ \text{(unconstrained)}, \qquad
  W_{t+1} = (1 − η) W_t + η\,\text{lmo}(m_t) \ \text{(constrained)}.

The unconstrained step is exactly the homework's ball step with α = η under the norm that measures
the whole network by the largest of its layers' norms (each divided by its radius): it is
:func:`jaxopt_hw.scale_by_steepest_descent` with a norm per leaf and ``form="ball"``. The
constrained step is a Frank–Wolfe (conditional gradient) step, a convex combination of W_t and a
point of the ball, so weights that start in the ball stay in it.

References:
  Pethick et al., "Training Deep Learning Models with Norm-Constrained LMOs", arXiv:2502.07529
  (2025).
  Bernstein et al., modula ("Modular Duality in Deep Learning", arXiv:2410.21265) — the RMS→RMS
  operator norm per layer.
"""

from __future__ import annotations

import math
from typing import Any

import optax

from jaxopt_hw import polar
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.transforms.steepest import scale_by_steepest_descent
from jaxopt_hw.validation import check_learning_rate, check_number, concrete


def scion(
  learning_rate: optax.ScalarOrSchedule,
  *,
  norms: Any = "auto",
  momentum: float = 0.9,
  constrained: bool = False,
  radius: float = 1.0,
  weight_decay: float = 0.0,
  weight_decay_mask: Any = None,
  spectral_method: str = "newton_schulz",
  ns_coefficients: Any = "jordan",
  ns_steps: int | None = None,
  mu_dtype: Any = None,
) -> optax.GradientTransformation:
  r"""Scion: the per-layer LMO optimizer of Pethick et al. (2025), unconstrained or constrained.

  .. math::

    m ← β m + (1 − β) g, \qquad Δ = −η\,ρ\,d(m) − η\,[\text{constrained}]\,W − η λ W,

  with d the dual map of each leaf's norm (radius included) and ρ the global ``radius``.

  Args:
    learning_rate: η (α of the homework's ball form), a float or an optax schedule.
    norms: a norm per leaf: ``"auto"`` (default; :func:`jaxopt_hw.duality.auto_norm`: RMS→RMS
      spectral for dense and conv kernels, row-wise ℓ2 with radius √features for embeddings, RMS for
      biases and scales), a pytree of norms shaped like the parameters, a callable
      ``(path, leaf) -> norm``, or one norm for every leaf. A norm is a name (``"rms_spectral"``,
      ``"spectral"``, ``"col_l2"``, ``"row_l2"``, ``"rms"``, ``"sign"``, ...), ``"auto"``, or a
      :class:`jaxopt_hw.duality.Norm` (``get_norm(name, radius=ρ_l)`` gives a leaf its own radius).
    momentum: β of the moving average m (optax's convention: the weight of the past; Scion's code
      writes 1 − β, so its ``momentum=0.1`` is ``momentum=0.9`` here). 0 uses the raw gradient.
    constrained: the Frank–Wolfe step W ← (1 − η)W + η·lmo(m), which keeps W in the ball (exactly
      with ``spectral_method="svd"`` or the converging presets; the default "jordan" quintic
      leaves singular values in about [0.7, 1.2], so weights stay within about 1.2 radii).
    radius: ρ, a scale for every leaf's ball (Scion's ``scale``).
    weight_decay, weight_decay_mask: decoupled weight decay λ (multiplied by η), and optax's mask.
      With ``constrained=True`` the step already shrinks W by η: give λ only without it.
    spectral_method, ns_coefficients, ns_steps: how the spectral norms' dual map UVᵀ is computed
      (:func:`jaxopt_hw.orthogonalize`); default Newton–Schulz with the "jordan" quintic for 5
      steps, as Scion's code does.
    mu_dtype: the momentum accumulator's dtype.

  Returns:
    An :class:`optax.GradientTransformation`. ``learning_rate``, ``momentum``, ``radius`` and
    ``weight_decay`` may be traced (vmapped through ``optax.inject_hyperparams``).

  Example:
    >>> import jax.numpy as jnp, optax
    >>> params = {"kernel": jnp.ones((4, 3)), "bias": jnp.zeros(3)}
    >>> tx = scion(0.01)
    >>> grads = {"kernel": jnp.eye(4, 3), "bias": jnp.array([3.0, 0.0, -4.0])}
    >>> updates, _ = tx.update(grads, tx.init(params), params)
    >>> updates["bias"]  # −η·√3·b/‖b‖₂ (RMS norm), momentum 0.9 starting from 0
    Array([-0.0103923 , -0.        ,  0.01385641], dtype=float32)
  """
  check_learning_rate(learning_rate)
  for field, value, ok, allowed in (
    ("momentum", momentum, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("radius", radius, lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    ("weight_decay", weight_decay, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
  ):
    check_number(field, value, ok, allowed)
  if not isinstance(constrained, bool):
    raise UserInputError(f"constrained: {constrained!r} is not allowed; allowed: true or false")
  decay = concrete(weight_decay)
  if constrained and decay is not None and decay > 0:
    raise UserInputError(
      "weight_decay: the constrained (Frank–Wolfe) step already shrinks the weights by the "
      "learning rate; allowed with constrained=True: 0"
    )
  if ns_steps is None:
    ns_steps = (
      polar.DEFAULT_STEPS[ns_coefficients]
      if isinstance(ns_coefficients, str) and ns_coefficients in polar.DEFAULT_STEPS
      else len(polar.coefficient_schedule(ns_coefficients))
    )
  parts = [
    optax.ema(momentum, debias=False, accumulator_dtype=mu_dtype),
    scale_by_steepest_descent(
      norms,
      form="ball",
      spectral_method=spectral_method,
      ns_coefficients=ns_coefficients,
      ns_steps=ns_steps,
    ),
    optax.scale(radius),
  ]
  if constrained:
    parts.append(optax.add_decayed_weights(1.0))  # ρ·d(m) + W: the Frank–Wolfe step's −W
  if decay is None or decay > 0:
    parts.append(optax.add_decayed_weights(weight_decay, weight_decay_mask))
  parts.append(optax.scale_by_learning_rate(learning_rate))
  return optax.chain(*parts)
