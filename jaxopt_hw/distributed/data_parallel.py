"""Data-parallel training of a flax ``nnx`` model, with the gradients averaged by any paradigm.

The batch is split into n equal shards, one per worker; each worker computes the gradient of the
mean loss on its shard; the paradigm averages the n gradients (the mean of equal-size shard means
is the full-batch mean); every worker applies the same optax update. With the parameter server the
server device (the (n+1)-th) holds the optimizer state, applies the update and sends the weights
back (:func:`parameter_server_update`); it gets no data.

Because every paradigm leaves all workers with bitwise identical gradients (or weights), the
replicas never drift apart, and after K steps the weights equal those of single-device training on
the full batch up to floating-point rounding (:func:`train_single_device` is that reference).

Example::

  model = models.MLP((8, 32, 1), rngs=nnx.Rngs(0))  # from jaxopt_hw import models
  x, y = regression_data(jax.random.key(0), batch=64, features=8)
  result = train_data_parallel(
    model, x, y, optax.sgd(0.1), paradigm="ring_allreduce", n=4, steps=100
  )
  result.losses        # full-batch loss before each step
  result.model         # the trained model
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxopt_hw.distributed import paradigms
from jaxopt_hw.distributed.mesh import AXIS, check_workers
from jaxopt_hw.distributed.parameter_server import parameter_server_update
from jaxopt_hw.errors import UserInputError


def regression_data(key, batch: int, features: int, outputs: int = 1, dtype=jnp.float32):
  """``(x, y)``: Gaussian inputs and a smooth nonlinear target, ``batch`` examples."""
  kx, kw = jax.random.split(key)
  x = jax.random.normal(kx, (batch, features), dtype)
  w = jax.random.normal(kw, (features, outputs), dtype) / jnp.sqrt(jnp.asarray(features, dtype))
  return x, jnp.sin(2 * x @ w) + 0.5 * x[:, :outputs] ** 2


def mse(model, x, y):
  """Mean squared error of ``model`` on ``(x, y)``."""
  return jnp.mean((model(x) - y) ** 2)


@dataclasses.dataclass
class TrainResult:
  """What training returns: the final weights, the loss before each step, and the model."""

  params: nnx.State
  opt_state: object
  losses: np.ndarray  # full-batch loss before step k, k = 0 … steps − 1
  model: nnx.Module


def _loss_fn(graphdef, loss):
  def fn(params, x, y):
    return loss(nnx.merge(graphdef, params), x, y)

  return fn


def train_single_device(
  model: nnx.Module, x, y, optimizer: optax.GradientTransformation, *, steps: int, loss=mse
) -> TrainResult:
  """Full-batch training on one device: the reference data-parallel training must reproduce."""
  graphdef, params = nnx.split(model)
  loss_fn = _loss_fn(graphdef, loss)

  @jax.jit
  def run(params, opt_state):
    def step(carry, _):
      params, opt_state = carry
      value, grads = jax.value_and_grad(loss_fn)(params, x, y)
      updates, opt_state = optimizer.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), value

    (params, opt_state), losses = lax.scan(step, (params, opt_state), None, length=steps)
    return params, opt_state, losses

  params, opt_state, losses = run(params, optimizer.init(params))
  return TrainResult(params, opt_state, np.asarray(losses), nnx.merge(graphdef, params))


def train_data_parallel(
  model: nnx.Module,
  x,
  y,
  optimizer: optax.GradientTransformation,
  *,
  paradigm: str,
  n: int,
  steps: int,
  loss=mse,
  axis_name: str = AXIS,
) -> TrainResult:
  """Train ``model`` for ``steps`` steps with the batch split over ``n`` workers.

  Args:
    model: a flax ``nnx`` module (not modified; the trained copy is in the result).
    x, y: the full batch; its size must be divisible by ``n``.
    optimizer: any optax ``GradientTransformation`` (e.g. ``optax.sgd``, ``optax.adam``, or
      ``jaxopt_hw.transforms.steepest.steepest_descent``); it receives the averaged gradient.
    paradigm: one of :data:`jaxopt_hw.distributed.AGGREGATORS`.
    n: number of workers (the parameter server uses one more device).
    steps: number of optimizer steps, all run in one compiled program.
    loss: ``loss(model, x, y) -> scalar``, the mean over the examples given.

  Returns:
    A :class:`TrainResult`; ``losses[k]`` is the full-batch loss before step k (the mean of the
    workers' shard losses).
  """
  paradigms.check_paradigm(paradigm)
  n = check_workers(n)
  if x.shape[0] % n or x.shape[0] != y.shape[0]:
    raise UserInputError(
      f"batch: {x.shape[0]} examples (with {y.shape[0]} targets) cannot be split into {n} "
      "equal shards; allowed: a batch size divisible by n"
    )
  server = paradigms.uses_server(paradigm)
  mesh = paradigms.mesh_for(paradigm, n, axis_name)
  devices = mesh.devices.size
  graphdef, params = nnx.split(model)
  loss_fn = _loss_fn(graphdef, loss)
  opt_state = optimizer.init(params)
  if server:
    # The server has no data: it gets a shard of zeros, and only its own optimizer state is used.
    x = jnp.concatenate([x, jnp.zeros_like(x[: x.shape[0] // n])])
    y = jnp.concatenate([y, jnp.zeros_like(y[: y.shape[0] // n])])
    opt_state = jax.tree.map(lambda a: jnp.broadcast_to(a, (devices,) + jnp.shape(a)), opt_state)
  mean = paradigms.mean_fn(paradigm)

  def per_device(params, opt_state, x, y):
    if server:
      opt_state = jax.tree.map(lambda a: a[0], opt_state)

    def step(carry, _):
      params, opt_state = carry
      value, grads = jax.value_and_grad(loss_fn)(params, x, y)
      if server:
        params, opt_state = parameter_server_update(grads, params, opt_state, optimizer, axis_name)
      else:
        updates, opt_state = optimizer.update(mean(grads, axis_name), opt_state, params)
        params = optax.apply_updates(params, updates)
      return (params, opt_state), value

    (params, opt_state), losses = lax.scan(step, (params, opt_state), None, length=steps)
    if server:
      opt_state = jax.tree.map(lambda a: a[None], opt_state)
    return params, opt_state, losses[None]

  state_spec = P(axis_name) if server else P()
  # check_vma=False: the paradigms leave every worker with bitwise identical weights, which the
  # type system cannot see (ppermute results are "varying"), so the weights are returned replicated.
  run = jax.jit(
    jax.shard_map(
      per_device,
      mesh=mesh,
      in_specs=(P(), state_spec, P(axis_name), P(axis_name)),
      out_specs=(P(), state_spec, P(axis_name)),
      check_vma=False,
    )
  )
  sharded, replicated = NamedSharding(mesh, P(axis_name)), NamedSharding(mesh, P())
  params = jax.device_put(params, replicated)
  opt_state = jax.device_put(opt_state, sharded if server else replicated)
  params, opt_state, losses = run(
    params, opt_state, jax.device_put(x, sharded), jax.device_put(y, sharded)
  )
  losses = np.asarray(losses)[:n].mean(axis=0)
  if server:
    opt_state = jax.tree.map(lambda a: a[n], opt_state)
  return TrainResult(params, opt_state, losses, nnx.merge(graphdef, params))


def max_param_difference(a: nnx.State, b: nnx.State) -> float:
  """The largest absolute difference between two weight trees of the same structure: the ∞-norm of
  ``a − b`` (0 for trees without entries)."""
  # optax's ∞-norm of a tree without entries is −inf; a NaN difference still comes through.
  return float(jnp.maximum(optax.tree.norm(optax.tree.sub(a, b), ord=jnp.inf), 0.0))


def num_params(model_or_params) -> int:
  """Number of scalar parameters of a model or weight tree."""
  tree = nnx.state(model_or_params) if isinstance(model_or_params, nnx.Module) else model_or_params
  return int(sum(np.size(leaf) for leaf in jax.tree.leaves(tree)))
