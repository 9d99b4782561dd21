"""Every transform the package exports behaves as an optax transform must.

The checks follow optax's own suite for its contributed optimizers
(``optax/contrib/_common_test.py``): each case below is run through jit, extra keyword arguments in
``update``, ``inject_hyperparams`` (jitted, learning rates vmapped), bf16/f32/f64, a zero gradient,
a state whose structure does not change, ``chain`` + ``apply_updates``, ``optax.MultiSteps``,
``flax.nnx.Optimizer`` and convergence on a parabola and on Rosenbrock's function. A new transform
joins by one line in ``CASES``.

Reference values: a zero gradient must give exactly zero; the inject_hyperparams and MultiSteps
results are compared with the same transform built directly (same arithmetic, so equal to rounding);
the minimisers of the parabola (its centre) and of Rosenbrock's function ((1, 1)) are known in
closed form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxopt_hw

# --------------------------------------------------------------------------------------------
# The cases.


def _tree(dtype=jnp.float32):
  """A small parameter pytree: a matrix and a vector."""
  return {
    "w": jnp.asarray([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype),
    "b": jnp.asarray([0.1, -0.2, 0.3], dtype),
  }


def _matrix(dtype=jnp.float32):
  return {"w": jnp.asarray([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype)}


def _vector(dtype=jnp.float32):
  return jnp.asarray([0.5, -1.0, 2.0], dtype)


def _size(tree) -> int:
  return sum(int(np.size(x)) for x in jax.tree.leaves(tree))


def _diag_M(template):
  """A positive diagonal M sized to the flattened parameters."""
  return np.linspace(0.5, 2.0, _size(template))


def _diagonal_tree(template):
  """A positive diagonal shaped like the parameters (for scale_by_fixed_diagonal)."""
  leaves, treedef = jax.tree.flatten(template)
  return jax.tree.unflatten(
    treedef, [np.linspace(0.5, 2.0, np.size(x)).reshape(np.shape(x)) for x in leaves]
  )


def _features(template):
  """Features X (n, d) for rescaled SGD on a vector of d parameters."""
  d = _size(template)
  return np.stack([np.geomspace(1.0, 0.1, d), np.linspace(0.5, 1.5, d)])


@dataclasses.dataclass(frozen=True)
class Case:
  """One exported transform with the arguments it is tested with.

  ``kwargs(template)`` gives the factory's arguments (except the learning rate) for parameters
  shaped like ``template``; ``has_lr`` says whether the factory takes ``learning_rate`` (a
  ``scale_by_*`` transform does not, and is chained with ``optax.scale_by_learning_rate``);
  ``params`` builds the parameter template in a dtype; ``lr`` is the constant learning rate of the
  unit checks; ``schedule`` and ``rosenbrock_schedule`` are the step sizes with which it converges
  on the parabola (5,000 steps) and on Rosenbrock's function (20,000 steps, from ``rosenbrock``).
  """

  id: str
  factory: Callable
  kwargs: Callable[[Any], dict] = lambda template: {}
  has_lr: bool = True
  params: Callable = _tree
  static_args: tuple[str, ...] = ()
  lr: float = 0.1
  schedule: Callable = lambda t: 0.5 / jnp.sqrt(t + 1.0)
  rosenbrock_schedule: Callable = optax.constant_schedule(2e-3)
  rosenbrock: Callable = lambda dtype=jnp.float32: jnp.zeros(2, dtype)

  def make(self, learning_rate, template):
    kwargs = self.kwargs(template)
    if self.has_lr:
      return self.factory(learning_rate=learning_rate, **kwargs)
    return optax.chain(self.factory(**kwargs), optax.scale_by_learning_rate(learning_rate))


def _steepest(norm, form, **extra):
  fixed = {"norm": norm, "form": form, **extra}
  return lambda template: dict(fixed)


def _mahalanobis(form):
  return lambda template: {"norm": "mahalanobis", "form": form, "M": _diag_M(template)}


def _matrix_rosenbrock(dtype=jnp.float32):
  return jnp.zeros((1, 2), dtype)


# Sign-like steps (ℓ∞ and ℓ1 balls, simplified Adam) zigzag across Rosenbrock's curved valley: a
# small step decaying linearly to 0 travels the valley (Σα = 2) and settles at the minimiser.
_SIGN_ROSENBROCK = optax.linear_schedule(2e-4, 0.0, 20_000)


CASES = [
  Case("steepest_descent[l2,penalty]", jaxopt_hw.steepest_descent, _steepest("l2", "penalty")),
  Case("steepest_descent[l2,ball]", jaxopt_hw.steepest_descent, _steepest("l2", "ball")),
  Case("steepest_descent[linf,penalty]", jaxopt_hw.steepest_descent, _steepest("linf", "penalty")),
  Case(
    "steepest_descent[linf,ball]",
    jaxopt_hw.steepest_descent,
    _steepest("linf", "ball"),
    rosenbrock_schedule=_SIGN_ROSENBROCK,
  ),
  Case("steepest_descent[l1,penalty]", jaxopt_hw.steepest_descent, _steepest("l1", "penalty")),
  Case(
    "steepest_descent[l1,ball]",
    jaxopt_hw.steepest_descent,
    _steepest("l1", "ball"),
    rosenbrock_schedule=_SIGN_ROSENBROCK,
  ),
  Case(
    "steepest_descent[lp,penalty]", jaxopt_hw.steepest_descent, _steepest("lp", "penalty", p=3.0)
  ),
  Case("steepest_descent[lp,ball]", jaxopt_hw.steepest_descent, _steepest("lp", "ball", p=1.5)),
  Case(
    "steepest_descent[mahalanobis,penalty]", jaxopt_hw.steepest_descent, _mahalanobis("penalty")
  ),
  Case("steepest_descent[mahalanobis,ball]", jaxopt_hw.steepest_descent, _mahalanobis("ball")),
  Case(
    "steepest_descent[spectral,penalty]",
    jaxopt_hw.steepest_descent,
    _steepest("spectral", "penalty", non_matrix="l2"),
    rosenbrock=_matrix_rosenbrock,
  ),
  Case(
    "steepest_descent[spectral,ball]",
    jaxopt_hw.steepest_descent,
    _steepest("spectral", "ball"),
    params=_matrix,
    rosenbrock=_matrix_rosenbrock,
  ),
  Case(
    "steepest_descent[spectral,newton_schulz]",
    jaxopt_hw.steepest_descent,
    _steepest("spectral", "ball", spectral_method="newton_schulz", ns_steps=40),
    params=_matrix,
    static_args=("ns_steps",),
    rosenbrock=_matrix_rosenbrock,
  ),
  Case(
    "steepest_descent[linf,per_leaf]",
    jaxopt_hw.steepest_descent,
    _steepest("linf", "ball", per_leaf=True),
    rosenbrock_schedule=_SIGN_ROSENBROCK,
  ),
  Case(
    "scale_by_steepest_descent[l2,penalty]",
    jaxopt_hw.scale_by_steepest_descent,
    _steepest("l2", "penalty"),
    has_lr=False,
  ),
  Case(
    "scale_by_steepest_descent[linf,ball]",
    jaxopt_hw.scale_by_steepest_descent,
    _steepest("linf", "ball"),
    has_lr=False,
    rosenbrock_schedule=_SIGN_ROSENBROCK,
  ),
  Case(
    "scale_by_steepest_descent[spectral,ball]",
    jaxopt_hw.scale_by_steepest_descent,
    _steepest("spectral", "ball", non_matrix="l2"),
    has_lr=False,
    rosenbrock=_matrix_rosenbrock,
  ),
  Case(
    "scale_by_steepest_descent[auto,ball]",
    jaxopt_hw.scale_by_steepest_descent,
    _steepest("auto", "ball"),
    has_lr=False,
    rosenbrock=_matrix_rosenbrock,
  ),
  Case(
    "muon",
    jaxopt_hw.muon,
    static_args=("ns_steps",),
    rosenbrock=_matrix_rosenbrock,
    rosenbrock_schedule=_SIGN_ROSENBROCK,
  ),
  # scion(constrained=True) has no case: its Frank–Wolfe step shrinks W by η even for a zero
  # gradient (as weight decay does); tests/test_norm_optimizers.py checks it on its own.
  Case("scion", jaxopt_hw.scion, rosenbrock_schedule=_SIGN_ROSENBROCK),
  Case("simplified_adam", jaxopt_hw.simplified_adam, rosenbrock_schedule=_SIGN_ROSENBROCK),
  Case(
    "simplified_adam[eps]",
    jaxopt_hw.simplified_adam,
    lambda template: {"eps": 1e-8},
    rosenbrock_schedule=_SIGN_ROSENBROCK,
  ),
  Case(
    "scale_by_epoch_rms",
    jaxopt_hw.scale_by_epoch_rms,
    has_lr=False,
    rosenbrock_schedule=_SIGN_ROSENBROCK,
  ),
  Case(
    "preconditioned_sgd",
    jaxopt_hw.preconditioned_sgd,
    lambda template: {"diagonal": _diagonal_tree(template)},
    schedule=lambda t: 0.1 + 0.0 * t,
  ),
  Case(
    "scale_by_fixed_diagonal",
    jaxopt_hw.scale_by_fixed_diagonal,
    lambda template: {"diagonal": _diagonal_tree(template)},
    has_lr=False,
    schedule=lambda t: 0.1 + 0.0 * t,
  ),
  Case(
    "rescaled_sgd",
    jaxopt_hw.rescaled_sgd,
    lambda template: {"X": _features(template)},
    params=_vector,
    schedule=lambda t: 0.1 + 0.0 * t,
    rosenbrock_schedule=optax.constant_schedule(1e-3),
  ),
]

IDS = [c.id for c in CASES]


def _grads_like(params):
  """A fixed, non-zero gradient with the parameters' structure and dtypes."""
  leaves, treedef = jax.tree.flatten(params)
  out = []
  for i, leaf in enumerate(leaves):
    n = int(np.size(leaf))
    values = np.sin(np.arange(1, n + 1) * (1.3 + i)) + 0.05 * (i + 1)
    out.append(jnp.asarray(values.reshape(np.shape(leaf)), leaf.dtype))
  return jax.tree.unflatten(treedef, out)


def _assert_trees_close(a, b, rtol, atol=0.0):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(
      np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol
    )


# --------------------------------------------------------------------------------------------
# The checks.


def test_every_exported_transform_has_a_case():
  """A transform exported at the top level without a case here would escape the suite."""
  exported = {
    name
    for name in jaxopt_hw.__all__
    if name in jaxopt_hw.TRANSFORMS  # the package's own list of its transform factories
  }
  covered = {c.factory.__name__ for c in CASES}
  assert exported, "jaxopt_hw.TRANSFORMS is empty"
  assert exported <= covered, f"no conformance case for {sorted(exported - covered)}"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_returns_an_optax_transformation_that_accepts_extra_update_arguments(case):
  params = case.params()
  tx = case.make(case.lr, params)
  assert isinstance(tx, optax.GradientTransformation)
  state = tx.init(params)
  grads = _grads_like(params)
  plain, _ = tx.update(grads, state, params)
  # optax's GradientTransformationExtraArgs convention: unknown keyword arguments are accepted
  # (e.g. the loss value some optimizers need) and ignored by transforms that do not use them.
  extra, _ = tx.update(grads, state, params, value=jnp.asarray(1.0), loss=jnp.asarray(2.0))
  _assert_trees_close(extra, plain, rtol=0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_jitted_init_and_update_equal_the_eager_ones(case):
  params = case.params(jnp.float64)
  tx = case.make(case.lr, params)
  grads = _grads_like(params)
  eager, eager_state = tx.update(grads, tx.init(params), params)
  state = jax.jit(tx.init)(params)
  jitted, jitted_state = jax.jit(tx.update)(grads, state, params)
  _assert_trees_close(jitted, eager, rtol=1e-12, atol=1e-15)
  assert jax.tree.structure(jitted_state) == jax.tree.structure(eager_state)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_state_structure_shapes_and_dtypes_are_stable_across_updates(case):
  params = case.params()
  tx = case.make(case.lr, params)
  state = tx.init(params)
  update = jax.jit(tx.update)
  grads = _grads_like(params)
  first = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), state)
  for _ in range(3):
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
  after = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), state)
  assert jax.tree.structure(state) == jax.tree.structure(tx.init(params))
  assert after == first


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32, jnp.float64], ids=str)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_updates_keep_the_dtype_of_the_gradients(case, dtype):
  params = case.params(dtype)
  tx = case.make(case.lr, params)
  grads = _grads_like(params)
  updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
  for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(grads)):
    assert u.dtype == g.dtype
    assert np.all(np.isfinite(np.asarray(u, np.float64)))
  new_params = optax.apply_updates(params, updates)
  assert jax.tree.map(lambda x: x.dtype, new_params) == jax.tree.map(lambda x: x.dtype, params)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_zero_gradient_gives_exactly_a_zero_update(case):
  params = case.params(jnp.float64)
  tx = case.make(case.lr, params)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = jax.jit(tx.update)(zeros, tx.init(params), params)
  for u in jax.tree.leaves(updates):
    assert np.all(np.asarray(u) == 0), u


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_inject_hyperparams_jitted_with_vmapped_learning_rates_equals_each_rate_alone(case):
  params = case.params(jnp.float64)
  grads = _grads_like(params)
  rates = jnp.asarray([0.05, 0.1, 0.4], jnp.float64)
  kwargs = case.kwargs(params)
  if case.has_lr:
    injected = optax.inject_hyperparams(case.factory, static_args=case.static_args)

    def make(lr):
      return injected(learning_rate=lr, **kwargs)
  else:
    # a scale_by_* transform has no learning rate: inject its own hyper-parameters and vmap the
    # rate of the optax.scale_by_learning_rate it is chained with
    injected = optax.inject_hyperparams(case.factory, static_args=case.static_args)

    def make(lr):
      return optax.chain(injected(**kwargs), optax.inject_hyperparams(optax.scale)(-lr))

  @jax.jit
  @jax.vmap
  def one(lr):
    tx = make(lr)
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    return updates

  swept = one(rates)
  for i, lr in enumerate(np.asarray(rates)):
    tx = case.make(float(lr), params)
    alone, _ = tx.update(grads, tx.init(params), params)
    _assert_trees_close(jax.tree.map(lambda x, i=i: x[i], swept), alone, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_chain_with_clipping_and_apply_updates(case):
  params = case.params(jnp.float64)
  grads = _grads_like(params)
  tx = optax.chain(optax.clip_by_global_norm(0.5), case.make(case.lr, params))
  updates, _ = tx.update(grads, tx.init(params), params)
  clipped, _ = optax.clip_by_global_norm(0.5).update(grads, optax.EmptyState())
  direct = case.make(case.lr, params)
  expected, _ = direct.update(clipped, direct.init(params), params)
  _assert_trees_close(updates, expected, rtol=1e-12, atol=1e-15)
  moved = optax.apply_updates(params, updates)
  _assert_trees_close(
    moved, jax.tree.map(lambda p, u: p + u, params, expected), rtol=1e-12, atol=1e-15
  )


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_multisteps_applies_the_transform_to_the_mean_of_k_gradients(case):
  params = case.params(jnp.float64)
  g1 = _grads_like(params)
  g2 = jax.tree.map(lambda g: -0.5 * g + 0.25, g1)
  k = 2
  # a float64 accumulator (optax's default is float32) so the mean equals ours to float64 rounding
  multi = optax.MultiSteps(
    case.make(case.lr, params), every_k_schedule=k, accumulator_dtype=jnp.float64
  )
  state = multi.init(params)
  u1, state = multi.update(g1, state, params)
  for u in jax.tree.leaves(u1):  # nothing moves before the k-th gradient
    assert np.all(np.asarray(u) == 0)
  u2, state = multi.update(g2, state, params)
  direct = case.make(case.lr, params)
  mean = jax.tree.map(lambda a, b: (a + b) / k, g1, g2)
  expected, _ = direct.update(mean, direct.init(params), params)
  _assert_trees_close(u2, expected, rtol=1e-10, atol=1e-14)


class _Model(nnx.Module):
  def __init__(self, template):
    self.params = nnx.data(jax.tree.map(lambda x: nnx.Param(jnp.asarray(x)), template))

  def __call__(self):
    params = jax.tree.leaves(self.params, is_leaf=lambda x: isinstance(x, nnx.Param))
    return sum(jnp.sum(jnp.sin(p[...]) ** 2) for p in params)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_flax_nnx_optimizer_steps_equal_the_plain_optax_loop(case):
  template = case.params(jnp.float64)
  model = _Model(template)
  # the transform's own arguments (a diagonal shaped like the parameters, ...) follow flax's
  # parameter structure, an nnx.State
  nnx_template = nnx.state(model, nnx.Param)
  optimizer = nnx.Optimizer(model, case.make(case.lr, nnx_template), wrt=nnx.Param)

  def loss_of(params):
    return sum(jnp.sum(jnp.sin(p) ** 2) for p in jax.tree.leaves(params))

  tx = case.make(case.lr, template)
  params, state = template, tx.init(template)
  for _ in range(3):
    grads = nnx.grad(lambda m: m())(model)
    optimizer.update(model, grads)
    g = jax.grad(loss_of)(params)
    updates, state = tx.update(g, state, params)
    params = optax.apply_updates(params, updates)
  got = jax.tree.map(lambda p: p[...], model.params, is_leaf=lambda x: isinstance(x, nnx.Param))
  _assert_trees_close(got, params, rtol=1e-12, atol=1e-14)


def _run(tx, loss, params, steps):
  @jax.jit
  def run(params):
    def body(_, carry):
      params, state = carry
      updates, state = tx.update(jax.grad(loss)(params), state, params)
      return optax.apply_updates(params, updates), state

    return jax.lax.fori_loop(0, steps, body, (params, tx.init(params)))[0]

  return run(params)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_converges_to_the_centre_of_a_parabola(case):
  start = jax.tree.map(lambda x: 3.0 * x, case.params(jnp.float64))
  centre = jax.tree.map(lambda x: jnp.ones_like(x) * 0.5, start)  # the minimiser, by construction

  def loss(params):
    return sum(
      jnp.sum((p - c) ** 2) for p, c in zip(jax.tree.leaves(params), jax.tree.leaves(centre))
    )

  tx = case.make(case.schedule, start)
  final = _run(tx, loss, start, 5000)
  _assert_trees_close(final, centre, rtol=0, atol=3e-2)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_converges_to_the_minimiser_of_rosenbrock(case):
  start = case.rosenbrock(jnp.float64)

  def loss(params):  # (1 − x)² + 100 (y − x²)²: minimiser (1, 1)
    x, y = jnp.ravel(params)[0], jnp.ravel(params)[1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2

  tx = case.make(case.rosenbrock_schedule, start)
  final = _run(tx, loss, start, 20_000)
  np.testing.assert_allclose(np.ravel(np.asarray(final)), [1.0, 1.0], atol=3e-2)
