"""The sweep engine: one problem, one optimizer family, a grid of hyperparameters × seeds, one
compiled program.

:func:`sweep` runs every grid point at once: the grid is flattened into one axis that is ``vmap``-ed
(and sharded over the devices it is given, ``jax.sharding`` with one mesh axis), and the steps are a
loop inside one ``jit`` (an XLA while loop, which is what ``lax.scan`` lowers to too; here its
bounds are traced values). The steps run in chunks of at most ``chunk_size`` through that same
compiled program — the last, shorter chunk included — so that a progress bar can advance between
chunks without compiling anything new; without a bar, by default, a full-batch sweep is one call of
one program (start, steps, verdicts). Between two logged steps the loop body is only the optimizer
step and its divergence and tolerance bookkeeping. What it keeps per grid point does not grow with
the number of steps: the final parameters, the loss (and any held-out metrics) at a fixed number of
logged steps, the step from which a tolerance holds until the end, and a divergence flag. A point
whose loss becomes non-finite or explodes is frozen and flagged; nothing raises.

The grid: ``learning_rates`` (one axis, the family called as ``optimizer(lr)``), and/or
``hyperparams`` — any float hyperparameters, as a Cartesian product or a list of points
(:mod:`jaxopt_hw.grids`), passed through ``optax.inject_hyperparams`` — times ``seeds`` (× problem
instances). Hyperparameters and seeds are traced values: a second grid of the same shape compiles
nothing new.

Networks on data (:func:`jaxopt_hw.problems.classification`, :func:`~.problems.nnx_problem`): with
a ``batch_size`` each grid point draws a fresh permutation of the examples every epoch from its
seed, inside the program; the logged loss is the mean over the whole training set and the metrics
are averaged over the held-out set, both in batches, at the logged steps.

Example::

    import optax
    import jaxopt_hw
    from jaxopt_hw import problems

    result = jaxopt_hw.sweep(problems.homework_problem(), optax.sgd,
                   learning_rates=[0.1, 0.5, 0.9], seeds=[0], steps=2000)
    result.params          # (3, 1, 3): final θ per (learning rate, seed)
    result.losses          # (3, 1, K): loss at result.log_steps
    result.diverged        # (3, 1) bool
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import math
import numbers
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from jaxopt_hw import grids
from jaxopt_hw.errors import UserInputError, did_you_mean
from jaxopt_hw.problems import Problem

#: ``learning_rate -> GradientTransformation``, e.g. ``optax.sgd`` or
#: ``lambda lr: optax.sgd(optax.exponential_decay(lr, 1, 0.5))``. Called inside the compiled
#: program with a traced scalar learning rate. With ``hyperparams`` it is called with keyword
#: arguments (``optax.adamw(learning_rate=..., weight_decay=...)``) through
#: ``optax.inject_hyperparams``.
OptimizerFamily = Callable[..., optax.GradientTransformation]

#: Most steps one sweep may take: steps are counted in int32 inside the program.
MAX_STEPS = 2**31 - 1

#: Largest seed: seeds become ``jax.random.key(seed)`` from a uint32.
MAX_SEED = 2**32 - 1

#: Most logged steps (each costs a column of every log buffer).
MAX_LOG_POINTS = 100_000

#: The increment of a Weyl sequence, ⌊2³²/φ⌋ (φ the golden ratio), as in SplitMix (Steele, Lea and
#: Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014) and Knuth's multiplicative
#: hashing: consecutive multiples are spread evenly over the 32-bit integers.
_GOLDEN = 0x9E3779B9

#: Offsets separating the seed and epoch streams: the first two of SHA-256's initial hash words
#: (FIPS 180-4, section 5.3.3; the fractional parts of √2 and √3), constants with no structure.
_SEED_OFFSET, _EPOCH_OFFSET = 0x6A09E667, 0xBB67AE85


def _fmix32(h):
  """MurmurHash3's 32-bit finaliser (Appleby, MurmurHash3.cpp, ``fmix32``): a bijection of the
  uint32s in which every input bit affects every output bit."""
  h = h ^ (h >> 16)
  h = h * jnp.uint32(0x85EBCA6B)
  h = h ^ (h >> 13)
  h = h * jnp.uint32(0xC2B2AE35)
  return h ^ (h >> 16)


def order_stream(seed):
  """A grid point's mini-batch stream from its seed: fmix32(seed·0x9E3779B9 + 0x6A09E667)."""
  seed = jnp.asarray(seed).astype(jnp.uint32)
  return _fmix32(seed * jnp.uint32(_GOLDEN) + jnp.uint32(_SEED_OFFSET))


#: Rounds of the Feistel network of :func:`epoch_positions` (Luby and Rackoff: four rounds of
#: independent round functions give a pseudorandom permutation; "How to construct pseudorandom
#: permutations from pseudorandom functions", SIAM J. Comput. 17(2), 1988).
_FEISTEL_ROUNDS = 4


def _half_bits(n: int) -> int:
  """Bits of each Feistel half: the smallest h with 4**h >= n (at least 1)."""
  return max(1, math.ceil(math.ceil(math.log2(max(n, 2))) / 2))


def epoch_positions(stream, epoch, positions, n: int):
  """Which examples a grid point visits at ``positions`` (0 … n−1) of epoch ``epoch``: π(p) for
  the epoch's permutation π of 0 … n−1, computed for just those positions (no sort: O(positions)
  work).

  π is a keyed bijection of the h-bit halves' domain 0 … 4^h − 1 (4^h ≥ n), restricted to
  0 … n−1 by cycle walking (applied again until the value falls below n: Black and Rogaway,
  "Ciphers with arbitrary finite domains", CT-RSA 2002). The bijection is a 4-round Feistel
  network: (L, R) → (R, L ⊕ (fmix32(R ⊕ kⱼ) mod 2^h)), with round keys
  kⱼ = fmix32(r + j·0x9E3779B9) and r = fmix32(stream ⊕ fmix32(epoch·0x9E3779B9 + 0xBB67AE85)).
  A fresh permutation for every seed (``stream``) and epoch, easy to reproduce outside JAX.
  """
  h = _half_bits(n)
  mask = jnp.uint32((1 << h) - 1)
  epoch = jnp.asarray(epoch).astype(jnp.uint32)
  r = _fmix32(stream ^ _fmix32(epoch * jnp.uint32(_GOLDEN) + jnp.uint32(_EPOCH_OFFSET)))
  keys = [_fmix32(r + jnp.uint32(j * _GOLDEN & 0xFFFFFFFF)) for j in range(_FEISTEL_ROUNDS)]

  def feistel(x):
    left, right = x >> jnp.uint32(h), x & mask
    for key in keys:
      left, right = right, left ^ (_fmix32(right ^ key) & mask)
    return (left << jnp.uint32(h)) | right

  x = feistel(jnp.asarray(positions).astype(jnp.uint32))
  # a cycle of the bijection through a position below n comes back below n: this stops
  x = jax.lax.while_loop(lambda x: jnp.any(x >= n), lambda x: jnp.where(x >= n, feistel(x), x), x)
  return x.astype(jnp.int32)


def epoch_order(stream, epoch, n: int):
  """The whole order of epoch ``epoch``: :func:`epoch_positions` at positions 0 … n−1 (a
  permutation of 0 … n−1)."""
  return epoch_positions(stream, epoch, jnp.arange(n, dtype=jnp.uint32), n)


#: The mesh axis the grid is sharded along.
GRID_AXIS = "grid"


@functools.partial(
  jax.tree_util.register_dataclass,
  data_fields=[
    "learning_rates",
    "seeds",
    "params",
    "losses",
    "log_steps",
    "final_loss",
    "steps_to_tol",
    "diverged",
    "diverged_at",
    "params_log",
    "hyperparams",
    "metrics",
  ],
  meta_fields=["axes", "steps", "tol", "compilations", "steps_per_epoch", "num_devices"],
)
@dataclasses.dataclass(frozen=True)
class SweepResult:
  """Everything a sweep keeps, as arrays whose leading axes are the grid.

  The grid's coordinates (``learning_rates``, ``seeds``, ``log_steps``, ``hyperparams``) are NumPy
  arrays; the results are JAX arrays on the device(s) that computed them.

  The grid axes are ``axes``: ``("learning_rate", "seed")`` for learning rates alone; one axis per
  hyperparameter of a product grid (``("learning_rate", "momentum", "seed")``), or ``("point",
  "seed")`` for a list of points; ``"problem"`` first for a batch of problem instances. ``G``
  below stands for them (e.g. ``(L, S)``).

  Attributes:
    learning_rates: the values along the ``learning_rate`` axis (or at each point of a list of
      points); None when the learning rate is not swept.
    seeds: (S,) the seeds (they drive ``problem.init`` and the mini-batch order).
    params: the final parameters: the problem's pytree with leaves of shape ``G + leaf shape``.
      A diverged point keeps the parameters at which divergence was detected.
    losses: ``G + (K,)`` the loss at each of ``log_steps`` (NaN from the step a point diverged); for
      a data set, the mean loss over all of its examples.
    log_steps: (K,) the logged steps, from 0 (the start) to ``steps`` (the end).
    final_loss: ``G`` the loss at the final parameters.
    steps_to_tol: ``G`` int: the first step t from which the tolerance holds at every later step up
      to the end (0 if it always held); −1 if it does not hold at the end or the point diverged.
      The tolerance is ``loss <= tol`` (the mini-batch loss during training, for a data set), or
      ``max|θ − target| <= tol`` when a target was given.
    diverged: ``G`` bool: the loss became non-finite or exceeded ``explode_factor`` times the
      initial loss (checked at every step, on the loss the step computes anyway; the final
      parameters are also checked for non-finite entries).
    diverged_at: ``G`` int: the step t whose loss f(θ_t) triggered it, −1 if never; the point's
      parameters stay at θ_t from then on.
    params_log: None, or (with ``record_params=True``) the parameters at ``log_steps``: leaves of
      shape ``G + (K,) + leaf shape``.
    hyperparams: ``{name: values}``: every swept hyperparameter's values along its axis (the
      learning rate included), float64 as given (the program computes with them in ``dtype``).
    metrics: ``{name: G + (K,)}``: the problem's held-out metrics at ``log_steps`` (NaN once a
      point diverged); empty without them.
    axes: names of the grid axes.
    steps: the number of optimizer steps.
    tol: the tolerance of ``steps_to_tol``.
    compilations: how many times this call traced and compiled the step program (1 for a new
      program; 0 when an earlier sweep with the same functions and shapes had compiled it).
    steps_per_epoch: optimizer steps per pass over the data (1 for a full-batch problem).
    num_devices: the devices the grid was sharded over.
  """

  learning_rates: Any
  seeds: Any
  params: Any
  losses: Any
  log_steps: Any
  final_loss: Any
  steps_to_tol: Any
  diverged: Any
  diverged_at: Any
  params_log: Any
  hyperparams: Any = None
  metrics: Any = None
  axes: tuple = ()
  steps: int = 0
  tol: float = 0.0
  compilations: int = 0
  steps_per_epoch: int = 1
  num_devices: int = 1

  @property
  def grid_shape(self) -> tuple[int, ...]:
    return tuple(np.shape(self.diverged))

  @property
  def converged(self):
    """``G`` bool: not diverged and within tolerance from some step until the end."""
    return jnp.logical_and(jnp.logical_not(self.diverged), jnp.asarray(self.steps_to_tol) >= 0)

  @property
  def epochs(self) -> float:
    """``steps`` counted in passes over the data."""
    return self.steps / self.steps_per_epoch

  @property
  def log_epochs(self) -> np.ndarray:
    """(K,) the logged steps counted in passes over the data."""
    return np.asarray(self.log_steps) / self.steps_per_epoch


# ---------------------------------------------------------------------------------------------
# The compiled program.


@dataclasses.dataclass(frozen=True)
class _EvalStatic:
  """What shapes the programs that do not depend on the optimizer: drawing the initial parameters
  and evaluating the loss and metrics. They are compiled once per problem, not once per optimizer
  (building a network under ``vmap`` is the slowest program of all to compile)."""

  loss: Callable
  init: Callable
  example_losses: Callable | None
  metrics: Callable | None
  batch_size: int | None
  dtype: Any
  point_data: bool  # data carry the grid axis: a batch of problems
  mesh: Any  # a jax.sharding.Mesh with one axis, GRID_AXIS, or None for one device


@dataclasses.dataclass(frozen=True)
class _Static:
  """Everything that shapes the step program (hashable: functions hash by identity)."""

  ev: _EvalStatic
  optimizer: Callable
  hp_names: tuple[str, ...]
  keyword: bool  # the family takes keyword hyperparameters, through inject_hyperparams
  per_example: bool
  target_mode: str  # "none" | "shared" | "per_point"
  record_params: bool
  num_examples: int | None
  replay: bool  # steps without a per-step freeze, replayed with it when a point diverges


def _all_finite(tree) -> jax.Array:
  leaves = [
    jnp.all(jnp.isfinite(x))
    for x in jax.tree.leaves(tree)
    if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
  ]
  return functools.reduce(jnp.logical_and, leaves, jnp.asarray(True))


@functools.lru_cache(maxsize=64)
def _keyword_family(optimizer: Callable, names: tuple[str, ...]) -> Callable:
  """``optimizer`` taking exactly the swept hyperparameters as keywords, so that
  ``optax.inject_hyperparams`` traces those and keeps every other argument at its default (an
  integer default such as ``ns_steps`` stays a Python int)."""

  def family(**hyperparams):
    return optimizer(**hyperparams)

  family.__signature__ = inspect.Signature(
    [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names]
  )
  return family


def _mean_over(fn, params, batches, mask):
  """The mean of the per-example values ``fn(params, batch)`` (an array, or a dict of arrays)
  over a data set stored as ``batches`` (leaves (nb, E, ...)) with ``mask`` (nb, E) marking the
  real examples; one batch at a time, so memory does not grow with the data set."""
  first = jax.tree.map(lambda x: x[0], batches)
  shapes = jax.eval_shape(fn, params, first)
  zero = jax.tree.map(lambda s: jnp.zeros((), jnp.result_type(s.dtype, jnp.float32)), shapes)

  def body(acc, xs):
    batch, m = xs
    values = fn(params, batch)
    return jax.tree.map(
      lambda a, v: a + jnp.sum(jnp.where(m, v, 0)).astype(a.dtype), acc, values
    ), None

  total, _ = jax.lax.scan(body, zero, (batches, mask))
  # times 1/n rather than divided by n: XLA may rewrite a division by a scalar into that product in
  # one program and not in another (e.g. once sharded), which changes the last bit
  count = jnp.sum(mask)
  return jax.tree.map(lambda t: t * (1 / count.astype(t.dtype)), total)


def _constrain(mesh, tree, spec):
  if mesh is None:
    return tree
  sharding = NamedSharding(mesh, spec)
  return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, sharding), tree)


def _within(target_mode: str, loss, params, target, tol):
  """The tolerance: ``loss <= tol``, or max|θ − target| <= tol when a target was given."""
  if target_mode == "none":
    return loss <= tol
  return optax.tree.norm(optax.tree.sub(params, target), ord=jnp.inf) <= tol


def _verdict(st, loss, metrics, *, final: bool = False):
  """(bad now, diverged, the loss and metrics to log: NaN once diverged) of a point whose state is
  ``st`` and whose loss and metrics are ``loss`` and ``metrics``."""
  bad = jnp.logical_not(jnp.isfinite(loss)) | (loss > st["limit"])
  if final:
    bad = bad | jnp.logical_not(_all_finite(st["params"]))
  diverged = (st["mark"] < 0) | bad
  nan = jnp.asarray(jnp.nan, loss.dtype)
  logged = {
    "loss": jnp.where(diverged, nan, loss),
    "metrics": {k: jnp.where(diverged, nan, v) for k, v in metrics.items()},
  }
  return bad, diverged, logged


class _Evaluator:
  """The initial parameters of every grid point, and the loss and metrics at given parameters."""

  def __init__(self, e: _EvalStatic):
    self.e = e
    self.initial = jax.jit(self._initial)
    self.values = jax.jit(self._values, static_argnums=(4,))
    self.finish = jax.jit(self._finish, static_argnums=(8, 9))

  @property
  def data_axis(self):
    return 0 if self.e.point_data else None

  def shard(self, tree, axis: int = 0):
    """Keep the grid axis (``axis`` of every leaf) sharded over the mesh."""
    return _constrain(self.e.mesh, tree, P(*([None] * axis), GRID_AXIS))

  def point_loss(self, params, data, train_sets):
    """The loss on the training data: ``loss(params, data)``, or for a data set the mean of the
    per-example losses over all of it, in batches."""
    e = self.e
    if e.batch_size is None:
      return e.loss(params, data)
    return _mean_over(e.example_losses, params, *train_sets).astype(e.dtype)

  def point_values(self, params, data, train_sets, eval_sets, with_metrics: bool = True):
    """(loss, {metric: value}) at ``params``."""
    loss = self.point_loss(params, data, train_sets)
    metrics = {}
    if with_metrics and self.e.metrics is not None:
      values = _mean_over(self.e.metrics, params, *eval_sets)
      metrics = {k: v.astype(loss.dtype) for k, v in values.items()}
    return loss, metrics

  def _initial(self, first, data, train_sets, eval_sets):
    """(params, loss, metrics) at the start of every grid point.

    The parameters depend only on the point's seed and problem instance, so they are drawn once
    per distinct pair — ``first = (seeds, data of the pairs or None when all points share the
    data, each grid point's pair)``, at least two pairs (see :func:`_layout`) — and copied to the
    grid points: a grid of 128 learning rates × 8 seeds draws 8 starts, not 1024. (Initialisers
    are random bits and elementwise arithmetic, the same bits whichever points they run for.)

    On one device the starting loss and metrics are scored once per pair too and copied: scoring
    a network's training set is a pass over all of it, and 64 points of 4 seeds then make 4 passes,
    not 64 (5 % of a 200-step network sweep). Sharded, every device would score every pair,
    so there each device scores its own points, as at any other logged step."""
    seeds, pair_data, index = first
    pair_data = data if pair_data is None else pair_data
    draw = jax.vmap(lambda seed, d: self.e.init(jax.random.key(seed), d), (0, self.data_axis))
    pair_params = draw(seeds, pair_data)
    to_points = lambda tree: jax.tree.map(lambda x: jnp.take(x, index, axis=0), tree)
    params = self.shard(to_points(pair_params))
    if self.e.mesh is None:
      return (params, *to_points(self._values(pair_params, pair_data, train_sets, eval_sets, True)))
    return (params, *self._values(params, data, train_sets, eval_sets, True))

  def _values(self, params, data, train_sets, eval_sets, with_metrics: bool):
    f = jax.vmap(
      lambda p, d: self.point_values(p, d, train_sets, eval_sets, with_metrics),
      (0, self.data_axis),
    )
    return self.shard(f(params, data))

  def _point_finish(self, st, loss, metrics, target, T, tol, target_mode):
    bad, diverged, logged = _verdict(st, loss, metrics, final=True)
    mark = st["mark"]
    alive = mark >= 0
    within = _within(target_mode, loss, st["params"], target, tol) & jnp.logical_not(diverged)
    out = {
      "params": st["params"],
      "final_loss": loss,
      "steps_to_tol": jnp.where(within, mark, -1).astype(jnp.int32),
      "diverged": diverged,
      "diverged_at": jnp.where(alive, jnp.where(bad, T, -1), -1 - mark).astype(jnp.int32),
    }
    return out, logged

  def _finish(self, st, logs, plogs, loss, metrics, T, tol, target, target_mode, shape):
    """The final verdicts, and every result trimmed to the grid's points and shaped ``shape``.

    ``st`` holds the parameters, marks and limits (not the optimizer state), so this program does
    not depend on the optimizer: sweeps of one problem with several optimizers compile it once."""
    target_axis = 0 if target_mode == "per_point" else None
    fin = jax.vmap(self._point_finish, in_axes=(0, 0, 0, target_axis, None, None, None))
    out, logged = self.shard(fin(st, loss, metrics, target, T, tol, target_mode))
    K = logs["loss"].shape[0]
    G = math.prod(shape)

    def grid(x, leading: int = 0):
      """x with its grid axis (after ``leading`` axes) moved first, trimmed and reshaped."""
      x = jnp.moveaxis(x, leading, 0)[:G]
      return x.reshape(shape + x.shape[1:])

    logs = jax.tree.map(lambda buf, v: buf.at[K - 1].set(v), logs, logged)
    result = {k: jax.tree.map(grid, v) for k, v in out.items()}
    result["losses"] = grid(jnp.moveaxis(logs["loss"], 0, -1))
    result["metrics"] = {k: grid(jnp.moveaxis(v, 0, -1)) for k, v in logs["metrics"].items()}
    if plogs is not None:
      plogs = jax.tree.map(lambda buf, p: buf.at[K - 1].set(p), plogs, out["params"])
      result["params_log"] = jax.tree.map(lambda b: grid(b, 1), plogs)
    else:
      result["params_log"] = None
    return _constrain(self.e.mesh, result, P())


@functools.lru_cache(maxsize=32)
def _evaluator(e: _EvalStatic) -> _Evaluator:
  return _Evaluator(e)


class _Program:
  """The jitted init / chunk / finish functions of one :class:`_Static`, and a trace counter."""

  def __init__(self, s: _Static):
    self.s = s
    self.ev = _evaluator(s.ev)
    self.traces = 0
    self.init = jax.jit(self._init, donate_argnums=(0,))
    self.chunk = jax.jit(self._chunk, donate_argnums=(0,))
    # A full-batch problem's programs are small: the start (parameters, initial loss, state) and
    # the end (final loss, verdicts) are then one dispatch each instead of three and two.
    self.start = jax.jit(self._start)
    self.end = jax.jit(self._end, static_argnums=(7, 8))
    # ... and a full-batch run in one chunk (no progress bar) is a single dispatch: start, steps,
    # end. On XLA:CPU a dispatch costs tens of microseconds, as much as a few dozen small steps.
    self.whole = jax.jit(self._whole, static_argnums=(11, 12))

  # -- per grid point ----------------------------------------------------------------------------

  def _tx(self, hp):
    s = self.s
    if s.keyword:
      return optax.inject_hyperparams(_keyword_family(s.optimizer, s.hp_names))(**hp)
    return s.optimizer(hp["learning_rate"])

  def _loss_and_grads(self, params, batch):
    s, e = self.s, self.s.ev
    if not s.per_example:
      return jax.value_and_grad(e.loss)(params, batch)
    losses, vjp = jax.vjp(lambda p: e.example_losses(p, batch), params)
    n = losses.shape[0]
    (grads,) = jax.vmap(vjp)(jnp.eye(n, dtype=losses.dtype))  # leaves (n, *shape): one per example
    return jnp.mean(losses), grads

  def _draw(self, st, k):
    """The state with this epoch's mini-batch order of every grid point, before step k: drawn at
    each epoch's first step and kept (a slice of it per step is cheaper than walking the
    permutation per example). ``k`` is not batched, so the condition stays one branch of the
    program, not a select.

    Drawn for the whole grid at once, outside the per-point step: the cycle walk of
    :func:`epoch_positions` is a while loop whose test, under ``vmap``, asks whether any point has
    a value left to walk. Sharded, that test would be a reduction over every device at every pass
    (an all-reduce, about 26 passes an epoch for the digits); under ``shard_map`` each device
    walks its own points' cycles. The orders are the same either way: a walked value stays put."""
    s = self.s
    per_epoch = s.num_examples // s.ev.batch_size
    epoch, pos = k // per_epoch, k % per_epoch

    def draw():
      order = jax.vmap(lambda stream, epoch: epoch_order(stream, epoch, s.num_examples), (0, None))
      if s.ev.mesh is not None:
        order = jax.shard_map(
          order, mesh=s.ev.mesh, in_specs=(P(GRID_AXIS), P()), out_specs=P(GRID_AXIS)
        )
      return order(st["stream"], epoch)

    return {**st, "perm": jax.lax.cond(pos == 0, draw, lambda: st["perm"])}

  def _batch(self, st, data, k):
    """The mini-batch of step k, from the epoch's order in ``st`` (see :meth:`_draw`)."""
    batch_size = self.s.ev.batch_size
    pos = k % (self.s.num_examples // batch_size)
    idx = jax.lax.dynamic_slice_in_dim(st["perm"], pos * batch_size, batch_size)
    return jax.tree.map(lambda x: jnp.take(x, idx, axis=0, mode="clip"), data)

  def _point_init(self, params, seed, hp, loss0, explode_factor):
    s = self.s
    opt_state = self._tx(hp).init(params)
    # Finite (the largest float when there is no bound, or the bound overflows), so that a step's
    # test ``not loss <= limit`` also catches an infinite loss: one comparison per step instead of
    # an isfinite and a comparison (about 7 % of a small problem's step on XLA:CPU).
    big = jnp.finfo(loss0.dtype).max
    limit = jnp.minimum(jnp.where(loss0 > 0, explode_factor * loss0, big), big).astype(loss0.dtype)
    state = {
      "params": params,
      "opt_state": opt_state,
      # 0 or more: not diverged, and the tolerance has held since step `mark` (the step after the
      # last one that missed it); negative: diverged at step -1 - mark
      "mark": jnp.asarray(0, jnp.int32),
      "limit": limit,
    }
    if s.ev.batch_size is not None:
      state["stream"] = order_stream(seed)
      state["perm"] = jnp.zeros(s.num_examples, jnp.int32)  # drawn at step 0
    return state

  def _point_step(self, st, hp, data, target, k_next, tol, freeze: bool = True, with_loss=False):
    """Step k = k_next − 1. (The loop hands over the incremented counter so that nothing else
    reads the old one, which XLA would otherwise copy at every step.)

    With ``freeze`` a point whose loss is bad (or was before) keeps its parameters and optimizer
    state; without it every point takes its step, and :meth:`_refreeze` puts the frozen
    values back. ``with_loss``: (the new state, the loss the step computed). For a data set,
    ``st["perm"]`` already holds this epoch's order (:meth:`_draw`, over the whole grid)."""
    s = self.s
    k = k_next - 1
    params = st["params"]
    new = dict(st)
    if s.ev.batch_size is not None:
      batch = self._batch(st, data, k)
    else:
      batch = data
    loss, grads = self._loss_and_grads(params, batch)
    mark = st["mark"]
    bad = jnp.logical_not(loss <= st["limit"]) | (loss == -jnp.inf)  # NaN, +inf: limit is finite
    within = _within(self.s.target_mode, loss, params, target, tol)
    new["mark"] = jnp.where(
      mark >= 0, jnp.where(bad, -k_next, jnp.where(within, mark, k_next)), mark
    )
    updates, opt_state = self._tx(hp).update(grads, st["opt_state"], params)
    new_params = optax.apply_updates(params, updates)
    if not freeze:
      new["params"], new["opt_state"] = new_params, opt_state
    else:
      # Moving iff the new mark says "not diverged" (= alive and not bad): reading the new mark
      # rather than the old one leaves the old one a single reader, so XLA updates it in place.
      move = new["mark"] >= 0
      new["params"] = optax.tree.where(move, new_params, params)
      new["opt_state"] = optax.tree.where(move, opt_state, st["opt_state"])
    return (new, loss) if with_loss else new

  def _point_logged(self, st, data, train_sets, eval_sets):
    loss, metrics = self.ev.point_values(st["params"], data, train_sets, eval_sets)
    return _verdict(st, loss, metrics)[2]

  # -- over the grid -----------------------------------------------------------------------------

  @property
  def _target_axis(self):
    return 0 if self.s.target_mode == "per_point" else None

  def _shard(self, tree, axis: int = 0):
    return self.ev.shard(tree, axis)

  def _refreeze(self, start, st, plogs, log_steps, replay):
    """Give the points that diverged their frozen state back, after a chunk run without the
    per-step freeze (which costs as much as the rest of a small problem's step: a select on every
    parameter, every step).

    ``start`` is the state at the chunk's start and ``st`` at its end. A point that diverged before
    the chunk gets its parameters and optimizer state from ``start``; if points diverged during the
    chunk, ``replay`` runs the chunk's steps again from ``start`` up to the last of those
    divergences and keeps each such point's state from just before the step at which it diverged
    (the steps are deterministic, so the replay retraces the first pass). Everything else was
    already right: the points that never diverge compute the same values with or without the
    freeze (so the results are those of the frozen steps, bitwise), and a point's logged loss and
    metrics are NaN from its divergence on either way. With ``record_params`` the logged
    parameters from the step after a divergence on are the frozen ones too. Divergence is rare:
    usually this is one reduction and nothing else."""
    dead = st["mark"] < 0

    def refreeze():
      newly = dead & (start["mark"] >= 0)
      stop = jnp.max(jnp.where(newly, -st["mark"], 0))  # -mark: the step after the divergence
      before = {key: start[key] for key in ("params", "opt_state")}
      frozen = jax.lax.cond(
        jnp.any(newly), lambda: replay(stop, newly, -st["mark"]), lambda: before
      )
      back = jax.vmap(lambda d, a, b: optax.tree.where(d, a, b))
      out = dict(st)
      for key in ("params", "opt_state"):
        out[key] = self._shard(back(dead, frozen[key], st[key]))
      if plogs is None:
        return out, plogs
      # log slot j of point g holds frozen parameters from the step after its divergence on
      later = dead[None, :] & (log_steps[:, None] >= -st["mark"][None, :])

      def fix(buf, p):
        mask = later.reshape(later.shape + (1,) * (p.ndim - 1))
        return jnp.where(mask, p[None], buf)

      return out, self._shard(jax.tree.map(fix, plogs, out["params"]), 1)

    return jax.lax.cond(jnp.any(dead), refreeze, lambda: (st, plogs))

  def _logged(self, st, data, train_sets, eval_sets):
    f = jax.vmap(
      lambda st, data: self._point_logged(st, data, train_sets, eval_sets),
      in_axes=(0, self.ev.data_axis),
    )
    return f(st, data)

  def _init(self, params, seeds, hp, loss0, metrics0, explode_factor, log_steps):
    """The whole initial carry: per-point state and the log buffers, with the logged step 0 (the
    starting loss and metrics) already written, so the first chunk does not score it again."""
    f = jax.vmap(self._point_init, in_axes=(0, 0, 0, 0, None))
    state = self._shard(f(params, seeds, hp, loss0, explode_factor))
    K = log_steps.shape[0]
    full = lambda x: jnp.full((K,) + x.shape, jnp.nan, x.dtype)
    logs = {"loss": full(loss0), "metrics": {name: full(loss0) for name in metrics0}}
    step0 = jax.vmap(lambda st, loss, m: _verdict(st, loss, m)[2])(state, loss0, metrics0)
    logs = jax.tree.map(lambda buf, v: buf.at[0].set(v), logs, step0)
    plogs = None
    if self.s.record_params:
      plogs = jax.tree.map(lambda p: full(p).at[0].set(p), state["params"])
    return state, self._shard(logs, 1), self._shard(plogs, 1)

  def _start(self, first, seeds, hp, data, train_sets, eval_sets, explode_factor, log_steps):
    params, loss0, metrics0 = self.ev._initial(first, data, train_sets, eval_sets)
    return self._init(params, seeds, hp, loss0, metrics0, explode_factor, log_steps)

  def _end(self, carry, data, train_sets, eval_sets, T, tol, target, target_mode, shape):
    st, logs, plogs = carry
    loss, metrics = self.ev._values(st["params"], data, train_sets, eval_sets, True)
    st = {key: st[key] for key in ("params", "mark", "limit")}
    return self.ev._finish(st, logs, plogs, loss, metrics, T, tol, target, target_mode, shape)

  def _whole(
    self,
    first,
    seeds,
    hp,
    data,
    train_sets,
    eval_sets,
    explode,
    log_steps,
    T,
    tol,
    target,
    target_mode,
    shape,
  ):
    """:meth:`_start`, :meth:`_chunk` over all ``T`` steps and :meth:`_end`, as one program."""
    carry = self._start(first, seeds, hp, data, train_sets, eval_sets, explode, log_steps)
    k0 = jnp.zeros((), jnp.int32)
    carry = self._chunk(carry, k0, T, tol, target, log_steps, hp, data, train_sets, eval_sets)
    return self._end(carry, data, train_sets, eval_sets, T, tol, target, target_mode, shape)

  def _chunk(self, carry, k0, end, tol, target, log_steps, hp, data, train_sets, eval_sets):
    """Steps k0 … end − 1 of every grid point.

    The steps between two logged steps run in a tight inner loop (the step and its divergence and
    tolerance bookkeeping, nothing else); the outer loop visits the logged steps that fall in this
    chunk and writes the loss, metrics (and parameters) there. Both loops are XLA while loops whose
    bounds are traced values, so every chunk, including a short last one, runs the same compiled
    program.
    """
    self.traces += 1  # runs at trace time only: counts compilations of this program
    s = self.s
    point_step = jax.vmap(
      self._point_step,
      in_axes=(0, 0, self.ev.data_axis, self._target_axis, None, None, None, None),
    )

    def step(st, hp, data, target, k_next, tol, freeze: bool, with_loss: bool):
      if s.ev.batch_size is not None:
        st = self._draw(st, k_next - 1)
      return point_step(st, hp, data, target, k_next, tol, freeze, with_loss)

    def steps(st, k, stop, freeze: bool):
      """Steps k … stop − 1; returns (stop, the state)."""

      def one(c):
        i, st = c
        i = i + 1
        return i, self._shard(step(st, hp, data, target, i, tol, freeze, False))

      return jax.lax.while_loop(lambda c: c[0] < stop, one, (k, st))

    # the logged steps, and a sentinel past every step (slot K: none left in this chunk)
    ahead = jnp.append(log_steps, jnp.iinfo(jnp.int32).max)

    def put(bufs, values, slot):
      return jax.tree.map(
        lambda buf, v: jax.lax.dynamic_update_index_in_dim(buf, v, slot, axis=0), bufs, values
      )

    def evaluated(c):
      """A stretch of steps up to the next logged step, then the loss (and metrics) evaluated
      there and written."""
      k, slot, st, logs, plogs = c
      next_log = ahead[slot]
      # a full-batch problem's steps run without the freeze; see _refreeze. The loop's own counter
      # comes back as the next k (a fresh value: XLA need not copy the bound to keep it).
      k, st = steps(st, k, jnp.minimum(next_log, end), freeze=not s.replay)
      # a logged step inside this chunk (one at `end` belongs to the next chunk, T to finish)
      is_log = next_log < end

      def write(bufs):
        logs, plogs = bufs
        logs = put(logs, self._logged(st, data, train_sets, eval_sets), slot)
        if s.record_params:
          plogs = put(plogs, st["params"], slot)
        return logs, plogs

      logs, plogs = jax.lax.cond(is_log, write, lambda bufs: bufs, (logs, plogs))
      return k, slot + is_log.astype(slot.dtype), st, logs, plogs

    # A full-batch problem without metrics logs the loss that the logged step computes anyway: a
    # stretch that starts at a logged step takes that step on its own and writes its loss f(θ_k),
    # the same function of the same θ_k and data as an evaluation (the logs are bitwise those of
    # `evaluated`), without the evaluation's own kernels (about 1 µs per logged step on XLA:CPU,
    # 3 % of the homework's default sweep). Mini-batch losses and per-example gradients are not
    # the logged loss, so those problems evaluate.
    def peel(c):
      k, slot, st, logs, plogs = c
      new, loss = step(st, hp, data, target, k + 1, tol, False, True)
      logs = put(logs, jax.vmap(lambda st, loss: _verdict(st, loss, {})[2])(st, loss), slot)
      if s.record_params:
        plogs = put(plogs, st["params"], slot)
      return k + 1, slot + 1, self._shard(new), logs, plogs

    def peeled(c):
      """At a logged step, that step alone (its loss written); then a stretch up to the next."""
      k, slot, st, logs, plogs = jax.lax.cond(ahead[c[1]] == c[0], peel, lambda c: c, c)
      k, st = steps(st, k, jnp.minimum(ahead[slot], end), freeze=False)
      return k, slot, st, logs, plogs

    peels = s.replay and not s.per_example and s.ev.metrics is None
    segment = peeled if peels else evaluated
    start, logs, plogs = carry
    # the first logged step >= k0; step 0 (always logged) was written by the start
    slot0 = (jnp.searchsorted(log_steps, k0) + (k0 == 0)).astype(jnp.int32)
    _, _, st, logs, plogs = jax.lax.while_loop(
      lambda c: c[0] < end, segment, (k0, slot0, start, logs, plogs)
    )
    if s.replay:

      def replay(stop, newly, after):
        """Steps k0 … stop − 1 again, as before; each newly diverged point's state is kept before
        the step at which it diverged (``after`` − 1)."""
        keep = jax.vmap(lambda d, a, b: optax.tree.where(d, a, b))

        def one(c):
          i, st, saved = c
          i = i + 1
          here = newly & (i == after)
          saved = {key: self._shard(keep(here, st[key], saved[key])) for key in saved}
          return i, self._shard(step(st, hp, data, target, i, tol, False, False)), saved

        saved = {key: start[key] for key in ("params", "opt_state")}
        _, _, saved = jax.lax.while_loop(lambda c: c[0] < stop, one, (k0, start, saved))
        return saved

      st, plogs = self._refreeze(start, st, plogs, log_steps, replay)
    return self._shard(st), self._shard(logs, 1), self._shard(plogs, 1)


@functools.lru_cache(maxsize=32)
def _program(static: _Static) -> _Program:
  return _Program(static)


# ---------------------------------------------------------------------------------------------
# The public entry point.


def log_step_schedule(steps: int, points: int, spacing: str = "linear") -> np.ndarray:
  """The steps at which a sweep logs the loss: 0, …, ``steps``; at most ``points`` of them.

  ``spacing="linear"`` spaces them evenly; ``"log"`` geometrically (dense early, for log-log loss
  curves of long runs).
  """
  return _log_steps(int(steps), int(points), spacing).copy()


@functools.lru_cache(maxsize=64)
def _log_steps(steps: int, points: int, spacing: str) -> np.ndarray:
  points = min(points, steps + 1)  # never more points than steps + 1 (and no huge linspace)
  if spacing == "linear":
    raw = np.linspace(0, steps, points)
  else:
    raw = np.concatenate([[0], np.geomspace(1, steps, max(points - 1, 1))])
  out = np.unique(np.round(raw).astype(np.int64))
  out[-1] = steps
  return np.unique(out).astype(np.int32)


def _cast_floats(tree, dtype):
  """Floating leaves as ``dtype`` (NumPy arrays stay on the host; JAX arrays stay on their
  device)."""

  def cast(x):
    if isinstance(x, jax.Array):
      return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != dtype else x
    x = np.asarray(x)
    return x.astype(dtype, copy=False) if x.dtype.kind == "f" else x

  return jax.tree.map(cast, tree)


def _default_chunk(steps: int) -> int:
  chunks = min(50, max(1, math.ceil(steps / 1000)))
  return math.ceil(steps / chunks)


def _check(name: str, value, ok: bool, allowed: str) -> None:
  if not ok:
    raise UserInputError(f"{name}: {value!r} is not allowed; {allowed}")


def _is_int(x) -> bool:
  # `type(x) is int` first: the ABC check costs a microsecond, and a sweep makes a dozen of them
  return type(x) is int or (isinstance(x, numbers.Integral) and not isinstance(x, bool))


def _is_number(x) -> bool:
  return type(x) in (int, float) or (isinstance(x, numbers.Real) and not isinstance(x, bool))


def _check_seeds(seeds) -> np.ndarray:
  if isinstance(seeds, np.ndarray) and seeds.dtype.kind in "iu" and seeds.ndim == 1 and seeds.size:
    if seeds.min() >= 0 and seeds.max() <= MAX_SEED:  # the fast path: an array of integers
      return seeds.astype(np.uint32)
  if isinstance(seeds, np.ndarray) and seeds.ndim == 0:
    seeds = seeds[()]  # one seed, as a NumPy scalar
  items = list(seeds) if isinstance(seeds, (list, tuple, np.ndarray, range)) else [seeds]
  if not items or not all(_is_int(x) and 0 <= x <= MAX_SEED for x in items):
    allowed = f"must be a non-empty list of integers from 0 to {MAX_SEED} (2**32 - 1)"
    shown = [x.item() if isinstance(x, np.generic) else x for x in items]
    raise UserInputError(f"seeds: {shown!r} is not allowed; {allowed}")
  return np.asarray([int(x) for x in items], dtype=np.uint32)


def _family_name(optimizer) -> str:
  return getattr(optimizer, "__qualname__", None) or repr(optimizer)


def _check_family(optimizer, names: Sequence[str]) -> None:
  """The family accepts the swept hyperparameters as keywords and needs no other argument."""
  try:
    sig = inspect.signature(optimizer)
  except (TypeError, ValueError):
    return
  params = sig.parameters
  kinds = inspect.Parameter
  if not any(p.kind == kinds.VAR_KEYWORD for p in params.values()):
    takes = [
      n for n, p in params.items() if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)
    ]
    for name in names:
      if name not in takes:
        raise UserInputError(
          f"hyperparams: {name!r} is not an argument of {_family_name(optimizer)}"
          f"{did_you_mean(name, takes)}; it takes: {', '.join(takes)}"
        )
  missing = [
    n
    for n, p in params.items()
    if p.default is p.empty
    and p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)
    and n not in names
  ]
  if missing:
    raise UserInputError(
      f"hyperparams: {_family_name(optimizer)} needs {', '.join(missing)}; add "
      f"{'it' if len(missing) == 1 else 'them'} to the grid (or pass learning_rates)"
    )


def _hyper_grid(optimizer, learning_rates, hyperparams) -> tuple[grids.Grid, bool]:
  """(the hyperparameter grid, whether the family takes keyword hyperparameters)."""
  if hyperparams is None:
    if learning_rates is None:
      raise UserInputError(
        "learning_rates: None is not allowed; must be a non-empty list of finite numbers > 0 "
        "(or give hyperparams)"
      )
    return grids.axis("learning_rate", learning_rates, field="learning_rates"), False
  if isinstance(hyperparams, Mapping):
    hp = grids.product(**hyperparams)
  elif isinstance(hyperparams, grids.Grid):
    hp = hyperparams
  else:
    raise UserInputError(
      f"hyperparams: {hyperparams!r} is not allowed; must be a mapping name -> values (a "
      "Cartesian product) or a jaxopt_hw.grids.Grid"
    )
  if learning_rates is not None:
    hp = grids.axis("learning_rate", learning_rates, field="learning_rates").times(hp)
  _check_family(optimizer, hp.names)
  return hp, True


def _check_dataset(problem: Problem, batched: bool) -> None:
  if problem.batch_size is None and problem.eval_data is None and problem.metrics is None:
    return
  if batched:
    raise UserInputError(
      "batched_data: True is not allowed for a problem with batch_size, eval_data or metrics"
    )
  if problem.batch_size is not None:
    leaves = jax.tree.leaves(problem.data)
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if not leaves or None in sizes or len(sizes) != 1:
      raise UserInputError(
        "problem.data: with batch_size, every leaf needs the same leading axis of examples; got "
        f"leading sizes {sorted(sizes, key=str)}"
      )
    n = sizes.pop()
    _check(
      "batch_size",
      problem.batch_size,
      _is_int(problem.batch_size) and 1 <= problem.batch_size <= n,
      f"must be an integer from 1 to the number of examples ({n})",
    )
    if problem.example_losses is None:
      raise UserInputError(
        "problem.example_losses: a problem with batch_size needs per-example losses (the logged "
        "loss is their mean over the whole data set)"
      )
  if (problem.eval_data is None) != (problem.metrics is None):
    raise UserInputError("problem.eval_data, problem.metrics: give both or neither")
  if problem.eval_data is not None:
    leaves = jax.tree.leaves(problem.eval_data)
    sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
    if not leaves or None in sizes or len(sizes) != 1 or 0 in sizes:
      raise UserInputError(
        "problem.eval_data: every leaf needs the same, non-zero leading axis of examples; got "
        f"leading sizes {sorted(sizes, key=str)}"
      )
  if problem.eval_batch_size is not None:
    _check(
      "eval_batch_size",
      problem.eval_batch_size,
      _is_int(problem.eval_batch_size) and problem.eval_batch_size >= 1,
      "must be an integer >= 1",
    )


def sweep(
  problem: Problem,
  optimizer: OptimizerFamily,
  learning_rates: Sequence[float] | np.ndarray | jax.Array | None = None,
  *,
  steps: int,
  seeds: Sequence[int] = (0,),
  hyperparams: Mapping[str, Sequence[float]] | grids.Grid | None = None,
  batched_data: bool = False,
  dtype=jnp.float32,
  log_points: int = 64,
  log_spacing: str = "linear",
  record_params: bool = False,
  tol: float = 1e-8,
  target=None,
  explode_factor: float = 1e8,
  per_example_grads: bool = False,
  chunk_size: int | None = None,
  devices: Sequence[jax.Device] | None = None,
  progress: bool | None = None,
  desc: str = "sweep",
) -> SweepResult:
  """Run ``optimizer`` on ``problem`` for every grid point × seed as one compiled program.

  Args:
    problem: the objective (:class:`jaxopt_hw.problems.Problem`): a function and its data, or a
      network on a data set (mini-batches, held-out metrics).
    optimizer: ``lr -> optax.GradientTransformation``; any optax transform, chain or schedule
      (``lambda lr: optax.sgd(optax.cosine_decay_schedule(lr, 1000))``) or
      ``optax.inject_hyperparams(optax.adam)``. It is called inside the compiled program with a
      traced learning rate. With ``hyperparams`` it is called with keyword arguments through
      ``optax.inject_hyperparams`` (``optax.adamw``, ``functools.partial(optax.sgd,
      nesterov=True)``, ...).
    learning_rates: the learning rates (positive, finite): the grid's ``learning_rate`` axis.
    steps: optimizer steps per grid point (1 to :data:`MAX_STEPS`).
    seeds: seeds (0 to 2**32 − 1) for ``problem.init`` (PRNG keys ``jax.random.key(seed)``) and for
      the mini-batch order.
    hyperparams: other float hyperparameters: ``{name: values}`` for a Cartesian product (one grid
      axis each, after ``learning_rate``), or a :class:`jaxopt_hw.grids.Grid` (e.g.
      :func:`~jaxopt_hw.grids.points`, :func:`~jaxopt_hw.grids.quasi_random`; with it the learning
      rate may be one of its hyperparameters and ``learning_rates`` left out).
    batched_data: ``problem.data`` holds a batch of instances (leading axis P of every leaf), swept
      as the outermost grid axis (the same seeds are used for every instance).
    dtype: floating dtype of the parameters, data and hyperparameters (float32 by default; float64
      works whether or not ``jax_enable_x64`` is on globally).
    log_points: how many steps to log the loss at (memory does not depend on ``steps``).
    log_spacing: ``"linear"`` or ``"log"``, see :func:`log_step_schedule`.
    record_params: also keep the parameters at the logged steps (``params_log``).
    tol: tolerance of ``steps_to_tol``: on the loss, or on max|θ − target| when ``target`` is given.
    target: optional parameters (a pytree like the problem's; with ``batched_data`` it may carry a
      leading axis P, one target per instance).
    explode_factor: a loss above ``explode_factor`` × the initial loss counts as divergence.
    per_example_grads: hand the optimizer per-example gradients (leading axis n, or the mini-batch
      size) computed from ``problem.example_losses``, e.g. for
      ``simplified_adam(..., per_example=True)``.
    chunk_size: steps per call of the compiled program; the last chunk may be shorter and runs the
      same program. Default: with a progress bar about steps/50, at least 1000 unless steps is
      smaller (the bar advances once per chunk); without one, every step in one call.
    devices: the devices to shard the grid over (one mesh axis; the grid is padded to a multiple of
      their number). Default: every device of an accelerator backend, or of all processes after
      ``jax.distributed.initialize``; on a single CPU process, one device (emulated CPU devices
      share the same cores, so pass ``jax.devices("cpu")`` explicitly to shard over them; that
      pays for networks, whose shards run on the cores in parallel, not for tiny problems).
    progress: show a tqdm bar (default: only when stderr is a terminal).
    desc: the progress bar's label.

  Returns:
    A :class:`SweepResult` (a pytree of arrays).

  Raises:
    UserInputError: a bad step count, learning rate, hyperparameter, seed or tolerance, an unknown
      spacing, or a data set that cannot be batched.
  """
  _check("steps", steps, _is_int(steps) and steps >= 1, "must be an integer >= 1")
  _check(
    "steps",
    steps,
    steps <= MAX_STEPS,
    f"must be an integer < 2**31 = {MAX_STEPS + 1} (steps are counted in int32)",
  )
  hp_grid, keyword = _hyper_grid(optimizer, learning_rates, hyperparams)
  seeds_np = _check_seeds(seeds)
  _check(
    "log_points",
    log_points,
    _is_int(log_points) and 2 <= log_points <= MAX_LOG_POINTS,
    f"must be an integer from 2 to {MAX_LOG_POINTS}",
  )
  _check("log_spacing", log_spacing, log_spacing in ("linear", "log"), "allowed: linear, log")
  _check(
    "tol", tol, _is_number(tol) and math.isfinite(tol) and tol >= 0, "must be a finite number >= 0"
  )
  _check(
    "explode_factor",
    explode_factor,
    _is_number(explode_factor) and explode_factor > 1,
    "must be > 1",
  )
  try:
    floating = jnp.issubdtype(jnp.dtype(dtype), jnp.floating)
  except TypeError:
    floating = False
  _check("dtype", dtype, floating, "must be a floating dtype (float32, float64, ...)")
  if per_example_grads and problem.example_losses is None:
    raise UserInputError(
      "per_example_grads: True needs a problem with example_losses; this problem has none"
    )
  _check_dataset(problem, batched_data)
  if chunk_size is not None:
    _check(
      "chunk_size", chunk_size, _is_int(chunk_size) and chunk_size >= 1, "must be an integer >= 1"
    )
  devices = _resolve_devices(devices)

  settings = _Settings(
    grid=hp_grid,
    keyword=keyword,
    seeds=seeds_np,
    steps=int(steps),
    dtype=jnp.dtype(dtype),
    batched=batched_data,
    log_points=int(log_points),
    log_spacing=log_spacing,
    record_params=record_params,
    tol=float(tol),
    explode_factor=float(explode_factor),
    per_example=per_example_grads,
    chunk=None if chunk_size is None else int(min(chunk_size, steps)),
    devices=devices,
    progress=progress,
    desc=desc,
  )
  wide = settings.dtype == jnp.float64 and not jax.config.jax_enable_x64
  with jax.enable_x64(True) if wide else contextlib.nullcontext():
    return _run(problem, optimizer, target, settings)


def _resolve_devices(devices) -> tuple:
  if devices is None:
    if jax.default_backend() == "cpu" and jax.process_count() == 1:
      return (jax.devices()[0],)
    return tuple(jax.devices())
  given = devices
  if isinstance(devices, jax.Device):
    devices = [devices]
  try:
    devices = tuple(devices)
  except TypeError:
    devices = (devices,)
  if not devices or not all(isinstance(d, jax.Device) for d in devices):
    raise UserInputError(
      f"devices: {given!r} is not allowed; must be a non-empty list of jax devices "
      "(e.g. jax.devices())"
    )
  if len(set(devices)) != len(devices):
    raise UserInputError("devices: a device appears twice; list each device once")
  return devices


@dataclasses.dataclass(frozen=True)
class _Settings:
  """The checked arguments of one :func:`sweep` call."""

  grid: grids.Grid
  keyword: bool
  seeds: np.ndarray  # uint32, (S,)
  steps: int
  dtype: np.dtype
  batched: bool
  log_points: int
  log_spacing: str
  record_params: bool
  tol: float
  explode_factor: float
  per_example: bool
  chunk: int | None  # None: the default (see _run)
  devices: tuple
  progress: bool | None
  desc: str


def _resolve_target(problem, data, target, s: _Settings):
  """(target cast to the sweep's dtype, "none" | "shared" | "per_problem")."""
  if target is None:
    return np.zeros((), s.dtype), "none"
  target = _cast_floats(target, s.dtype)
  point_data = jax.tree.map(lambda x: x[0], data) if s.batched else data
  one = jax.eval_shape(problem.init, jax.random.key(0), point_data)
  shapes = [np.shape(t) for t in jax.tree.leaves(target)]
  wanted = [p.shape for p in jax.tree.leaves(one)]
  if shapes == wanted:
    return target, "shared"
  if s.batched and shapes == [(np.shape(jax.tree.leaves(data)[0])[0],) + w for w in wanted]:
    return target, "per_problem"
  raise UserInputError(f"target: shapes {shapes} do not match the parameters' {wanted}")


def _eval_batches(data, batch: int, dtype):
  """A data set (leaves (n, ...)) as (leaves (nb, batch, ...), mask (nb, batch)): zero-padded to a
  whole number of batches, the mask marking the real examples."""
  data = _cast_floats(data, dtype)
  n = int(np.shape(jax.tree.leaves(data)[0])[0])
  batch = max(1, min(batch, n))
  nb = -(-n // batch)
  pad = nb * batch - n

  def split(x):
    x = np.asarray(x)
    x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x
    return x.reshape((nb, batch) + x.shape[1:])

  mask = (np.arange(nb * batch) < n).reshape(nb, batch)
  return jax.tree.map(split, data), mask


class _Placer:
  """Puts host arrays where the program wants them: the grid axis sharded over the mesh, everything
  else replicated (or, on one device, simply on that device)."""

  def __init__(self, devices: tuple):
    self.devices = devices
    self.mesh = jax.sharding.Mesh(np.asarray(devices), (GRID_AXIS,)) if len(devices) > 1 else None
    # jit puts host arrays on the default device itself, at less cost than device_put
    self.as_is = self.mesh is None and devices[0] == jax.devices()[0]

  def __call__(self, tree, *, grid_axis: bool):
    if self.as_is:
      return tree
    if self.mesh is None:
      return jax.device_put(tree, self.devices[0])
    spec = P(GRID_AXIS) if grid_axis else P()
    sharding = NamedSharding(self.mesh, spec)

    def put(x):
      x = np.asarray(x) if not isinstance(x, jax.Array) else x
      return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    return jax.tree.map(put, tree)


@functools.lru_cache(maxsize=64)
def _layout(n_problems: int, H: int, S: int, D: int) -> tuple[np.ndarray, ...]:
  """The flat grid's indices (read-only): each padded point's hyperparameter point, seed, problem
  instance and (instance, seed) pair, and the distinct pairs.

  The grid is problem (outermost), hyperparameters, seed (innermost), padded with copies of its
  last point to a multiple of the device count ``D``, with at least two points per device: XLA
  drops a batch axis of size 1 and then picks other matrix product kernels, whose rounding differs
  in the last bit; with two or more, the matrix products compute the same bits however many points
  share a device (alone, in a grid, sharded). Reductions over a short axis (a softmax's classes) may
  still be summed in another order for another number of points, so a point agrees with itself
  alone or sharded bitwise at some sizes and to rounding at others (both are tests). The initial
  parameters depend only on the (instance, seed) pair, so they are drawn once per pair (at least
  two, as above) and copied to the points."""
  G = n_problems * H * S
  per_device = max(2, -(-G // D))
  padded = np.minimum(np.arange(per_device * D), G - 1)
  problem_index = (padded // (H * S)).astype(np.int64)
  pairs = n_problems * S
  first_pair = np.minimum(np.arange(max(2, pairs)), pairs - 1)
  pair_index = (problem_index * S + padded % S).astype(np.int32)
  out = (padded % (H * S) // S, padded % S, problem_index, first_pair, pair_index)
  for x in out:
    x.flags.writeable = False
  return out


def _run(problem: Problem, optimizer: OptimizerFamily, target, s: _Settings) -> SweepResult:
  data = _cast_floats(problem.data, s.dtype)
  if s.batched:
    sizes = {np.shape(x)[0] for x in jax.tree.leaves(data)}
    if len(sizes) != 1:
      raise UserInputError(
        f"batched_data: the data leaves have different leading sizes {sorted(sizes)}; "
        "expected one batch axis"
      )
  target, target_mode = _resolve_target(problem, data, target, s)

  # The flat grid (see _layout).
  n_problems = int(np.shape(jax.tree.leaves(data)[0])[0]) if s.batched else 1
  H, S = s.grid.size, len(s.seeds)
  D = len(s.devices)
  hp_index, seed_index, problem_index, first_pair, pair_index = _layout(n_problems, H, S, D)
  hp_flat = {name: v[hp_index].astype(s.dtype) for name, v in s.grid.flat().items()}
  seeds = s.seeds[seed_index]
  shape = ((n_problems,) if s.batched else ()) + s.grid.shape + (S,)
  axes = (("problem",) if s.batched else ()) + s.grid.axes + ("seed",)

  place = _Placer(s.devices)
  point_data = s.batched
  init_data = None  # shared data: the starts are drawn from `data` itself (three arguments fewer)
  if point_data:
    init_data = jax.tree.map(lambda x: np.take(np.asarray(x), first_pair // S, axis=0), data)
    data = jax.tree.map(lambda x: np.take(np.asarray(x), problem_index, axis=0), data)
    if target_mode == "per_problem":
      target = jax.tree.map(lambda x: np.take(np.asarray(x), problem_index, axis=0), target)
  mode = {"none": "none", "shared": "shared", "per_problem": "per_point"}[target_mode]

  batch_size = problem.batch_size
  num_examples = problem.num_examples
  eval_size = problem.eval_batch_size or batch_size
  train_sets = ()
  if batch_size is not None:
    train_sets = _eval_batches(problem.data, eval_size, s.dtype)
  eval_sets = ()
  if problem.eval_data is not None:
    n_eval = int(np.shape(jax.tree.leaves(problem.eval_data)[0])[0])
    eval_sets = _eval_batches(problem.eval_data, eval_size or n_eval, s.dtype)

  # The cast wrapper must be the same object across calls for the program cache to hit.
  ev_static = _EvalStatic(
    loss=problem.loss,
    init=_cast_init(problem.init, s.dtype),
    example_losses=problem.example_losses,
    metrics=problem.metrics,
    batch_size=batch_size,
    dtype=s.dtype,
    point_data=point_data,
    mesh=place.mesh,
  )
  static = _Static(
    ev=ev_static,
    optimizer=optimizer,
    hp_names=s.grid.names,
    keyword=s.keyword,
    per_example=s.per_example,
    target_mode=mode,
    record_params=s.record_params,
    num_examples=num_examples,
    # a data set's steps are dominated by the model's own work; replaying would double the code
    replay=batch_size is None,
  )
  program = _program(static)
  evaluator = program.ev
  traces_before = program.traces

  log_steps = log_step_schedule(s.steps, s.log_points, s.log_spacing)
  T = np.int32(s.steps)
  tol_arr = np.asarray(s.tol).astype(s.dtype)
  explode = np.asarray(s.explode_factor).astype(s.dtype)
  seeds_d = place(seeds, grid_axis=True)
  first_d = place((s.seeds[first_pair % S], init_data), grid_axis=False)
  first_d += (place(pair_index, grid_axis=True),)
  hp_d = place(hp_flat, grid_axis=True)
  data_d = place(data, grid_axis=point_data)
  target_d = place(target, grid_axis=mode == "per_point")
  train_d = place(train_sets, grid_axis=False)
  eval_d = place(eval_sets, grid_axis=False)
  log_d = place(log_steps, grid_axis=False)
  tol_d, explode_d = place((tol_arr, explode), grid_axis=False)

  def result(out: dict) -> SweepResult:
    values = s.grid.values  # float64, as given
    lr_values = values.get("learning_rate")
    return SweepResult(
      learning_rates=None if lr_values is None else lr_values.astype(s.dtype),
      seeds=s.seeds.astype(np.int64),
      params=out["params"],
      losses=out["losses"],
      log_steps=log_steps,
      final_loss=out["final_loss"],
      steps_to_tol=out["steps_to_tol"],
      diverged=out["diverged"],
      diverged_at=out["diverged_at"],
      params_log=out["params_log"],
      hyperparams=values,
      metrics=out["metrics"],
      axes=axes,
      steps=s.steps,
      tol=s.tol,
      compilations=program.traces - traces_before,
      steps_per_epoch=problem.steps_per_epoch,
      num_devices=D,
    )

  show = sys.stderr.isatty() if s.progress is None else s.progress
  # Chunks are for the progress bar: without one, by default, all steps run in one call.
  chunk = s.chunk if s.chunk is not None else _default_chunk(s.steps) if show else s.steps
  if static.replay and chunk >= s.steps:  # one dispatch
    out = program.whole(
      first_d,
      seeds_d,
      hp_d,
      data_d,
      train_d,
      eval_d,
      explode_d,
      log_d,
      T,
      tol_d,
      target_d,
      mode,
      shape,
    )
    return result(out)
  if static.replay:  # full batch: one dispatch
    carry = program.start(first_d, seeds_d, hp_d, data_d, train_d, eval_d, explode_d, log_d)
  else:  # compiled once per problem, shared by every optimizer
    params, loss0, metrics0 = evaluator.initial(first_d, data_d, train_d, eval_d)
    carry = program.init(params, seeds_d, hp_d, loss0, metrics0, explode_d, log_d)

  bar = tqdm(total=s.steps, desc=s.desc, leave=False, file=sys.stderr) if show else None
  try:
    for k0 in range(0, s.steps, chunk):
      end = min(k0 + chunk, s.steps)
      carry = program.chunk(
        carry, np.int32(k0), np.int32(end), tol_d, target_d, log_d, hp_d, data_d, train_d, eval_d
      )
      if bar is not None:
        jax.block_until_ready(carry[1])  # the loss log: wait for this chunk before the bar moves
        bar.update(end - k0)
  finally:
    if bar is not None:
      bar.close()
  if static.replay:
    out = program.end(carry, data_d, train_d, eval_d, T, tol_d, target_d, mode, shape)
  else:
    st, logs, plogs = carry
    del carry
    loss, metrics = evaluator.values(st["params"], data_d, train_d, eval_d, True)
    st = {key: st[key] for key in ("params", "mark", "limit")}
    out = evaluator.finish(st, logs, plogs, loss, metrics, T, tol_d, target_d, mode, shape)
  return result(out)


@functools.lru_cache(maxsize=64)
def _cast_init(init: Callable, dtype) -> Callable:
  """``init`` whose floating outputs are cast to ``dtype`` (cached, so it is one object per
  pair)."""

  def cast_init(key, data):
    return _cast_floats(init(key, data), dtype)

  return cast_init
