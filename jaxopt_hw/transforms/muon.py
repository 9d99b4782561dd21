r"""Muon, assembled from steepest descent under the spectral norm and optax's own pieces.

``jaxopt_hw.muon(...)`` takes the arguments of ``optax.contrib.muon`` (optax 0.2.8) with the same
defaults and gives the same updates, step for step (to float32 rounding): it is

.. code-block:: text

  partition(
    matrices: chain(Nesterov momentum, debiased           (optax's scale_by_muon, first part)
                    scale_by_steepest_descent(spectral norm by Newton–Schulz, per leaf,
                                              ball form — or penalty form ×2 when adaptive)
                    shape scaling √max(1, fan_out/fan_in) (or consistent RMS)
                    add_decayed_weights(weight_decay, weight_decay_mask)
                    scale_by_learning_rate(learning_rate)),
    the rest:  optax.adamw(...))

so Muon's update is the homework's ball step under the spectral norm with α = learning rate
(times the shape factor), and ``adaptive=True`` is the penalty step −(α/2)‖G‖_nuc·UVᵀ with
α = 2·learning_rate: optax scales by ⟨G, O⟩ = ‖G‖_nuc, the homework's penalty by ½‖G‖_nuc.

References:
  Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (2024).
  Bernstein & Newhouse, "Old Optimizer, New Norm: An Anthology", arXiv:2409.20325 (2024).
  Liu et al., "Muon is Scalable for LLM Training", arXiv:2502.16982 (2025) — consistent RMS.
  optax 0.2.8, ``optax/contrib/_muon.py`` — the defaults, the momentum, the shape scaling, the
  parameter labels and the Adam fallback reproduced here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax.contrib import MuonDimensionNumbers

from jaxopt_hw import duality, polar
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.names import NS_PRESETS
from jaxopt_hw.transforms.steepest import NormsOf, scale_by_steepest_descent
from jaxopt_hw.validation import check_count, check_learning_rate

#: optax's preset names for ``ns_coeffs`` (optax/contrib/_muon.py, ``_NS_COEFFS_PRESET_DICT``):
#: ``"standard"`` is the "jordan" quintic. The others are :func:`jaxopt_hw.orthogonalize`'s.
_OPTAX_PRESETS = {"standard": polar.JORDAN, "dion": polar.DION}


class MuonMomentumState(NamedTuple):
  """State of :func:`scale_by_muon_momentum`."""

  count: jax.Array  # int32, the number of updates so far
  mu: optax.Updates  # the exponential moving average of the gradients


def scale_by_muon_momentum(
  beta: float = 0.95, *, nesterov: bool = True, mu_dtype=None
) -> optax.GradientTransformation:
  r"""The momentum of Muon: a debiased exponential moving average of the gradients, Nesterov by
  default (optax/contrib/_muon.py, ``scale_by_muon``, before the orthogonalisation).

  .. math::

    μ_t = βμ_{t-1} + (1 − β) g_t, \qquad
    \hat μ_t = β\,\frac{μ_t}{1 − β^{t+1}} + (1 − β)\,\frac{g_t}{1 − β^t}
    \ \text{(Nesterov)}, \quad \text{else } \frac{μ_t}{1 − β^t}.

  Returns:
    A :class:`optax.GradientTransformation`; ``mu_dtype`` is the accumulator's dtype.
  """
  mu_dtype = None if mu_dtype is None else jax.dtypes.canonicalize_dtype(mu_dtype)

  def init_fn(params):
    return MuonMomentumState(
      count=jnp.zeros([], jnp.int32), mu=optax.tree.zeros_like(params, dtype=mu_dtype)
    )

  def update_fn(updates, state, params=None):
    del params
    mu = optax.tree.update_moment(updates, state.mu, beta, 1)
    count = optax.safe_increment(state.count)
    if nesterov:
      mu_hat = jax.tree.map(
        lambda m, g: beta * m + (1 - beta) * g,
        optax.tree.bias_correction(mu, beta, optax.safe_increment(count)),
        optax.tree.bias_correction(updates, beta, count),
      )
    else:
      mu_hat = optax.tree.bias_correction(mu, beta, count)
    return mu_hat, MuonMomentumState(count=count, mu=optax.tree.cast(mu, mu_dtype))

  return optax.GradientTransformation(init_fn, update_fn)


def _is_dims(x) -> bool:
  return isinstance(x, MuonDimensionNumbers)


def _scale_by_shape(dims_of: Callable, consistent_rms) -> optax.GradientTransformation:
  """√max(1, fan_out/fan_in) per leaf, or √max(fan_in, fan_out)·consistent_rms
  (optax/contrib/_muon.py, ``scale_by_shape``)."""

  def update_fn(updates, state, params=None):
    del params

    def scale(u, dims):
      fan_in, fan_out = duality.fan_in_out(jnp.shape(u), dims)
      if consistent_rms is None:
        return jnp.sqrt(jnp.maximum(1, fan_out / fan_in)) * u
      return jnp.sqrt(jnp.maximum(fan_in, fan_out)) * consistent_rms * u

    return jax.tree.map(scale, updates, dims_of(updates), is_leaf=_is_dims), state

  return optax.GradientTransformation(optax.init_empty_state, update_fn)


def _schedule(ns_coeffs, ns_steps) -> np.ndarray:
  """The (k, 3) table optax's muon uses for ``ns_coeffs`` and ``ns_steps``."""
  steps = check_count(
    "ns_steps", ns_steps, traced_hint="with optax.inject_hyperparams pass static_args=('ns_steps',)"
  )
  if isinstance(ns_coeffs, str):
    if ns_coeffs in _OPTAX_PRESETS:
      ns_coeffs = _OPTAX_PRESETS[ns_coeffs]
    elif ns_coeffs in NS_PRESETS:
      return polar.coefficient_schedule(ns_coeffs, steps)
    else:
      raise UserInputError(
        f"ns_coeffs: {ns_coeffs!r} is not valid; allowed: "
        f"{', '.join(list(_OPTAX_PRESETS) + [p for p in NS_PRESETS if p != 'dion'])}, "
        "a row (a, b, c) or a (k, 3) table"
      )
  table = np.asarray(ns_coeffs, np.float64)
  if table.ndim == 2 and table.shape[-1] == 3:
    # optax takes the last ns_steps rows and refuses a table with more rows than steps
    if table.shape[0] > steps:
      raise UserInputError(
        f"ns_steps: {steps} is fewer than the {table.shape[0]} rows of ns_coeffs; "
        "allowed: ns_steps >= the number of rows"
      )
    return polar.coefficient_schedule(table)
  return polar.coefficient_schedule(table, steps)


def muon(
  learning_rate: optax.ScalarOrSchedule,
  ns_coeffs: Any = polar.JORDAN,
  ns_steps: int = 5,
  beta: float = 0.95,
  eps: float = 1e-8,
  weight_decay: float = 0.0,
  weight_decay_mask: Any = None,
  mu_dtype: Any = None,
  *,
  nesterov: bool = True,
  adaptive: bool = False,
  preconditioning: str = "frobenius",
  adam_b1: float = 0.9,
  adam_b2: float = 0.999,
  adam_eps_root: float = 0.0,
  adam_weight_decay: float = 0.0,
  adam_learning_rate: optax.ScalarOrSchedule | None = None,
  muon_weight_dimension_numbers: Any = None,
  consistent_rms: float | None = None,
) -> optax.GradientTransformation:
  r"""Muon: momentum orthogonalised by Newton–Schulz, as ``optax.contrib.muon`` (same arguments).

  Matrices (2-D leaves, or the leaves ``muon_weight_dimension_numbers`` names) step by

  .. math::

    u = -η\,s\,\operatorname{NS}(\hat μ) - η\,λ\,W, \qquad s = \sqrt{\max(1, n_{out}/n_{in})},

  the spectral-norm ball step of the homework applied to the Nesterov momentum \hat μ (Newton–Schulz
  with optax's quintic stands in for UVᵀ); with ``adaptive=True`` the orthogonalised momentum is
  scaled by ⟨\hat μ, NS(\hat μ)⟩ ≈ ‖\hat μ‖_nuc, the penalty step with α = 2η. Every other leaf
  goes to ``optax.adamw``. Differences from optax, by design: bfloat16/float16 matrices are
  orthogonalised in float32; ``ns_coeffs`` also takes this package's presets (``"jordan"`` =
  optax's ``"standard"``, ``"cubic"``, ``"polar_express"``); a non-finite gradient gives NaN.

  Args:
    learning_rate: η, a float or an optax schedule.
    ns_coeffs: optax's ``"standard"`` (default, the ``"jordan"`` quintic) or ``"dion"``, a preset
      of :func:`jaxopt_hw.orthogonalize`, a row (a, b, c), or a (k, 3) table (then k ≤ ns_steps).
    ns_steps: Newton–Schulz steps (static under ``inject_hyperparams``: pass
      ``static_args=("ns_steps",)``).
    beta: momentum decay β.
    eps: added to the Frobenius norm before Newton–Schulz (and Adam's ε).
    weight_decay, weight_decay_mask: decoupled weight decay λ of the matrices (multiplied by η),
      and optax's mask for it.
    mu_dtype: the momentum accumulators' dtype.
    nesterov: Nesterov momentum (also for Adam).
    adaptive: scale by the dual norm (the penalty form).
    preconditioning: ``"frobenius"``, ``"spectral"``, ``"aol"`` or ``"schatten"`` (optax's).
    adam_b1, adam_b2, adam_eps_root, adam_weight_decay, adam_learning_rate: ``optax.adamw``'s
      arguments for the other leaves (its learning rate defaults to η).
    muon_weight_dimension_numbers: a pytree of :class:`optax.contrib.MuonDimensionNumbers` (``None``
      for a leaf sends it to Adam), or a callable returning one from the parameters: how conv or
      attention kernels are reshaped to matrices (other axes are a batch).
    consistent_rms: scale by √max(n_in, n_out)·consistent_rms instead of ``s``.

  Returns:
    An :class:`optax.GradientTransformation`.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> params = {"w": jnp.ones((4, 3)), "b": jnp.zeros(3)}
    >>> tx = muon(0.02)
    >>> grads = {"w": jnp.arange(12.0).reshape(4, 3), "b": jnp.ones(3)}
    >>> updates, state = tx.update(grads, tx.init(params), params)
    >>> bool(jnp.allclose(updates["w"], optax.contrib.muon(0.02).update(
    ...   grads, optax.contrib.muon(0.02).init(params), params)[0]["w"], atol=1e-6))
    True
  """
  check_learning_rate(learning_rate)
  if adam_learning_rate is None:
    adam_learning_rate = learning_rate
  check_learning_rate(adam_learning_rate, "adam_learning_rate")
  schedule = _schedule(ns_coeffs, ns_steps)

  # Which leaves Muon steps and how they are reshaped: optax/contrib/_muon.py, ``muon``.
  if muon_weight_dimension_numbers is None:

    def param_labels(params):
      return jax.tree.map(lambda x: "muon" if jnp.ndim(x) == 2 else "adam", params)

    dimension_numbers = MuonDimensionNumbers()
  else:
    dimension_numbers = muon_weight_dimension_numbers

    def param_labels(params):
      dims = dimension_numbers(params) if callable(dimension_numbers) else dimension_numbers
      return jax.tree.map(
        lambda d, x: jax.tree.map(lambda _: "muon" if d is not None else "adam", x),
        dims,
        params,
        is_leaf=lambda x: x is None or _is_dims(x),
      )

  def dims_of(params):
    """The dimension numbers of every Muon leaf, ``MaskedNode`` where Adam steps the leaf."""
    dims = dimension_numbers(params) if callable(dimension_numbers) else dimension_numbers
    mask = jax.tree.map(lambda label: label == "muon", param_labels(params))
    return jax.tree.map(
      lambda d, submask: jax.tree.map(lambda m: d if m else optax.MaskedNode(), submask),
      dims,
      mask,
      is_leaf=lambda x: x is None or _is_dims(x) or isinstance(x, optax.MaskedNode),
    )

  def norms_of(tree):
    return jax.tree.map(
      lambda d, _: (
        d
        if isinstance(d, optax.MaskedNode)
        else duality.SpectralNorm(
          "newton_schulz",
          len(schedule),
          ns_coefficients=schedule,
          eps=eps,
          preconditioning=preconditioning,
          dimension_numbers=d,
        )
      ),
      dims_of(tree),
      tree,
      is_leaf=lambda x: _is_dims(x) or isinstance(x, optax.MaskedNode),
    )

  matrices = [
    scale_by_muon_momentum(beta, nesterov=nesterov, mu_dtype=mu_dtype),
    scale_by_steepest_descent(
      NormsOf(norms_of), form="penalty" if adaptive else "ball", per_leaf=True
    ),
  ]
  if adaptive:
    matrices.append(optax.scale(2.0))  # ½‖G‖*·d(G) → ‖G‖*·d(G): optax's ⟨G, O⟩·O
  matrices += [
    _scale_by_shape(dims_of, consistent_rms),
    optax.add_decayed_weights(weight_decay, weight_decay_mask),
    optax.scale_by_learning_rate(learning_rate),
  ]
  return optax.partition(
    transforms={
      "muon": optax.chain(*matrices),
      "adam": optax.adamw(
        learning_rate=adam_learning_rate,
        b1=adam_b1,
        b2=adam_b2,
        eps=eps,
        eps_root=adam_eps_root,
        weight_decay=adam_weight_decay,
        mu_dtype=mu_dtype,
        nesterov=nesterov,
      ),
    },
    param_labels=param_labels,
  )
