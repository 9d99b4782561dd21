r"""Optimizer families, step-size schedules, and the homework's Q2 methods swept on least squares.

A *family* is ``learning_rate -> optax.GradientTransformation``: what :func:`jaxopt_hw.sweep` calls,
inside its compiled program, with a traced learning rate. The families here are cached per setting
(one object per schedule and decay rate), because the sweep's program cache is keyed on the family
object: sweeping the same family again compiles nothing new.

Schedules (:func:`step_size`): ``constant`` α, ``harmonic`` α/(t+1), ``inverse_sqrt`` α/√(t+1) and
``exponential`` α·γᵗ. :func:`sweep_method` runs one of Q2's methods (SGD, simplified Adam,
rescaled-feature SGD, or the same as SGD preconditioned by a fixed diagonal) on
f(θ) = mean_i (x_iᵀθ − y_i)² with θ reported in the original units; :func:`converged_thetas` is
where each lands on the homework's problem at the homework report's settings
(:data:`HOMEWORK_SETTINGS`), which the answer checker grades against.

:data:`NETWORK_OPTIMIZERS` is the registry of optimizers the network study trains with: each a
family of keyword hyperparameters (``learning_rate=...``, swept through
``optax.inject_hyperparams``) with the centre of its learning-rate grid. Adding one is one line.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_hw import problems
from jaxopt_hw.engine import SweepResult, sweep
from jaxopt_hw.errors import unknown_choice
from jaxopt_hw.names import METHODS, SCHEDULES
from jaxopt_hw.transforms.muon import muon
from jaxopt_hw.transforms.rescale import preconditioned_sgd
from jaxopt_hw.transforms.scion import scion
from jaxopt_hw.transforms.simplified_adam import simplified_adam
from jaxopt_hw.transforms.steepest import steepest_descent

__all__ = [
  "HOMEWORK_SETTINGS",
  "NETWORK_OPTIMIZERS",
  "MethodSettings",
  "NetworkOptimizer",
  "converged_thetas",
  "preconditioned_family",
  "sgd_family",
  "simplified_adam_family",
  "step_size",
  "sweep_method",
]


def step_size(kind: str, learning_rate, decay_rate: float = 0.5):
  """α_t of a schedule: ``learning_rate`` itself for ``constant``, else a function of the step t.

  The schedule computes in the learning rate's floating dtype (float32 for an integer), so a
  float64 sweep gets float64 step sizes (optax's own schedules return float32).
  """
  if kind not in SCHEDULES:
    raise unknown_choice("schedule", kind, SCHEDULES)
  if kind == "constant":
    return learning_rate
  lr = jnp.asarray(learning_rate)
  dtype = lr.dtype if jnp.issubdtype(lr.dtype, jnp.floating) else jnp.float32

  def as_float(t):
    return jnp.asarray(t).astype(dtype)

  if kind == "harmonic":
    return lambda t: lr / (as_float(t) + 1)
  if kind == "inverse_sqrt":
    return lambda t: lr / jnp.sqrt(as_float(t) + 1)
  return lambda t: lr * jnp.asarray(decay_rate, dtype) ** as_float(t)


@functools.cache
def sgd_family(schedule: str = "constant", decay_rate: float = 0.5):
  """``lr -> optax.sgd(step_size(schedule, lr, decay_rate))`` (``optax.sgd`` itself if constant)."""
  if schedule == "constant":
    return optax.sgd

  def family(lr):
    return optax.sgd(step_size(schedule, lr, decay_rate))

  return family


@functools.cache
def simplified_adam_family(schedule: str, decay_rate: float = 0.5, per_example: bool = False):
  """``lr -> simplified_adam(step_size(schedule, lr, decay_rate), per_example=per_example)``."""

  def family(lr):
    return simplified_adam(step_size(schedule, lr, decay_rate), per_example=per_example)

  return family


@functools.cache
def preconditioned_family(diagonal: tuple[float, ...]):
  """``lr -> preconditioned_sgd(lr, diagonal)``: SGD with a fixed diagonal preconditioner M."""

  def family(lr):
    return preconditioned_sgd(lr, jnp.asarray(diagonal, jnp.asarray(lr).dtype))

  return family


def sweep_method(
  method: str,
  a,
  learning_rates,
  *,
  steps: int,
  schedule: str = "constant",
  decay_rate: float = 0.5,
  dtype=jnp.float64,
  seeds=(0,),
  init_scale: float | None = None,
  target=None,
  tol: float = 1e-8,
  log_points: int = 120,
  log_spacing: str = "log",
  record_params: bool = False,
  progress: bool | None = None,
) -> SweepResult:
  """Sweep one Q2 method on f(θ) = (1 − aᵀθ)² over ``learning_rates``; θ in the original units.

  Args:
    method: ``"sgd"``, ``"simplified_adam"``, ``"rescaled_sgd"`` (rescale the feature to unit
      second moment, run SGD on w, report θ = s ⊙ w) or ``"preconditioned_sgd"`` (SGD with
      M = diag(1/E[x²]) on θ directly: the same iterates as ``rescaled_sgd``).
    a: the feature vector of the single example (target 1).
    learning_rates: the grid of α (for a schedule, its α₀).
    steps: optimizer steps.
    schedule, decay_rate: α_t for ``sgd`` and ``simplified_adam`` (see :func:`step_size`).
    dtype: ``jnp.float32``/``jnp.float64`` or their names.
    seeds, init_scale: θ₀ = 0, or θ₀ ~ N(0, init_scale²) per seed.
    target, tol, log_points, log_spacing, record_params, progress: as :func:`jaxopt_hw.sweep`
      (``target`` in the original units).

  Returns:
    The :class:`~jaxopt_hw.engine.SweepResult`, with ``params`` (and ``params_log``) in θ units.
  """
  allowed = METHODS + ("preconditioned_sgd",)
  if method not in allowed:
    raise unknown_choice("method", method, allowed)
  a = np.asarray(a, np.float64)
  common = dict(
    steps=steps,
    seeds=seeds,
    dtype=jnp.dtype(dtype),
    tol=tol,
    log_points=log_points,
    log_spacing=log_spacing,
    record_params=record_params,
    progress=progress,
  )
  problem = problems.homework_problem(a, init_scale=init_scale)
  s = 1.0 / np.sqrt(problems.feature_second_moments(a[None, :]))  # 1/|a_j|
  if method == "sgd":
    family = sgd_family(schedule, decay_rate)
    return sweep(problem, family, learning_rates, target=target, desc="q2: sgd", **common)
  if method == "simplified_adam":
    family = simplified_adam_family(schedule, decay_rate)
    desc = "q2: simplified adam"
    return sweep(problem, family, learning_rates, target=target, desc=desc, **common)
  if method == "preconditioned_sgd":
    family = preconditioned_family(tuple(s * s))
    desc = "q2: preconditioned sgd"
    return sweep(problem, family, learning_rates, target=target, desc=desc, **common)
  rescaled = problems.homework_problem(a * s, init_scale=init_scale)  # the point sign(a)
  w_target = None if target is None else np.asarray(target, np.float64) / s
  family = sgd_family(schedule, decay_rate)
  r = sweep(rescaled, family, learning_rates, target=w_target, desc="q2: rescaled sgd", **common)
  scale = jnp.asarray(s, r.params.dtype)
  return dataclasses.replace(
    r,
    params=r.params * scale,
    params_log=None if r.params_log is None else jax.tree.map(lambda x: x * scale, r.params_log),
  )


@dataclasses.dataclass(frozen=True)
class MethodSettings:
  """One Q2 method's run: the learning rate (α₀ of the schedule), steps and schedule."""

  learning_rate: float
  steps: int
  schedule: str = "constant"
  decay_rate: float = 0.5


#: The homework report's runs: SGD and rescaled SGD with constant steps (below their stability
#: thresholds 1/‖a‖² and 1/d), simplified Adam with α_t = 1/(t+1), which converges because
#: α_t → 0 and Σα_t = ∞ (a constant step oscillates around the limit).
HOMEWORK_SETTINGS = {
  "sgd": MethodSettings(learning_rate=0.5, steps=3000),
  "simplified_adam": MethodSettings(learning_rate=1.0, steps=200_000, schedule="harmonic"),
  "rescaled_sgd": MethodSettings(learning_rate=0.1, steps=3000),
}


def converged_thetas(a=problems.HOMEWORK_A, settings=None) -> dict[str, np.ndarray]:
  """θ each Q2 method converges to on f(θ) = (1 − aᵀθ)², run in float64.

  Args:
    a: the example's features (default: the homework's [1, 0.1, 0.01]).
    settings: ``{method: MethodSettings}`` (default: :data:`HOMEWORK_SETTINGS`).

  Returns:
    ``{method: θ}``, float64 arrays of shape (d,).
  """
  settings = HOMEWORK_SETTINGS if settings is None else settings
  out = {}
  for method, m in settings.items():
    r = sweep_method(
      method,
      a,
      [m.learning_rate],
      steps=m.steps,
      schedule=m.schedule,
      decay_rate=m.decay_rate,
      dtype=jnp.float64,
      log_points=2,
      progress=False,
    )
    out[method] = np.asarray(r.params, np.float64)[0, 0]
  return out


# ---------------------------------------------------------------------------------------------
# Optimizers for networks.


@dataclasses.dataclass(frozen=True)
class NetworkOptimizer:
  """An optimizer to train networks with in a sweep.

  Attributes:
    family: ``family(learning_rate=...) -> GradientTransformation`` (keyword hyperparameters, so
      :func:`jaxopt_hw.sweep` can pass them through ``optax.inject_hyperparams``).
    learning_rate: the centre of its learning-rate grid (a value that trains the study's small
      networks; the grid spans decades around it).
    label: shown in tables and figures.
    per_example: it reads per-example gradients (the sweep's ``per_example_grads=True``).
  """

  family: Callable
  learning_rate: float
  label: str
  per_example: bool = False


#: The network study's optimizers. ``functools.partial`` objects made once here, so every sweep of
#: one of them reuses its compiled program. Adding one is one line.
NETWORK_OPTIMIZERS = {
  "sgd": NetworkOptimizer(optax.sgd, 0.3, "SGD"),
  "momentum": NetworkOptimizer(
    functools.partial(optax.sgd, momentum=0.9), 0.03, "SGD with momentum 0.9"
  ),
  "sign_descent": NetworkOptimizer(
    functools.partial(steepest_descent, norm="linf", form="ball"), 3e-3, "sign descent (ℓ∞ ball)"
  ),
  # matrices step by −α·UVᵀ; biases (and a CNN's 4-D kernels) in the ℓ2 ball of radius α. UVᵀ by
  # Newton–Schulz: under vmap on XLA:CPU the SVD is about 100× slower (15 64×64 matrices: 276 ms
  # against 1.8 ms, measured on the 2-core machine of BENCHMARKS.md)
  "spectral": NetworkOptimizer(
    functools.partial(
      steepest_descent,
      norm="spectral",
      form="ball",
      non_matrix="l2",
      spectral_method="newton_schulz",
    ),
    0.1,
    "spectral rule (Muon-like)",
  ),
  # Q2's rule with the mini-batch as the epoch: g / RMS of the per-example gradients
  "simplified_adam": NetworkOptimizer(
    functools.partial(simplified_adam, per_example=True), 3e-3, "simplified Adam", per_example=True
  ),
  "muon": NetworkOptimizer(muon, 0.03, "Muon (jaxopt_hw)"),
  # the per-layer LMO with "auto" norms (RMS→RMS spectral for kernels, RMS for biases), momentum 0.9
  "scion": NetworkOptimizer(scion, 0.03, "Scion (jaxopt_hw, per-layer norms)"),
  # references
  "adamw": NetworkOptimizer(optax.adamw, 3e-3, "AdamW (optax)"),
  "optax_muon": NetworkOptimizer(optax.contrib.muon, 0.03, "Muon (optax.contrib)"),
}
