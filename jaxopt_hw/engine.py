"""The sweep engine: one problem, one optimizer family, a grid of learning rates × seeds, one
compiled program.

:func:`sweep` runs every grid point at once: the grid is ``vmap``-ed and the steps are a loop inside
one ``jit`` (an XLA while loop, which is what ``lax.scan`` lowers to too; here its bounds are traced
values). The steps run in chunks of at most ``chunk_size`` through that same compiled program — the
last, shorter chunk included — so that a progress bar can advance between chunks without compiling
anything new. Between two logged steps the loop body is only the optimizer step and its divergence
and tolerance bookkeeping. What it keeps per grid point does not grow with the number of steps: the
final parameters, the loss at a fixed number of logged steps, the step from which a tolerance holds
until the end, and a divergence flag. A point whose loss becomes non-finite or explodes is frozen
and flagged; nothing raises.

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
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxopt_hw.errors import UserInputError
from jaxopt_hw.problems import Problem

#: ``learning_rate -> GradientTransformation``, e.g. ``optax.sgd`` or
#: ``lambda lr: optax.sgd(optax.exponential_decay(lr, 1, 0.5))``. Called inside the compiled
#: program with a traced scalar learning rate.
OptimizerFamily = Callable[[jax.Array], optax.GradientTransformation]


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
  ],
  meta_fields=["axes", "steps", "tol", "compilations"],
)
@dataclasses.dataclass(frozen=True)
class SweepResult:
  """Everything a sweep keeps, as arrays whose leading axes are the grid.

  The grid's coordinates (``learning_rates``, ``seeds``, ``log_steps``) are NumPy arrays; the
  results are JAX arrays on the device that computed them.

  The grid axes are ``axes``: ``("learning_rate", "seed")``, or
  ``("problem", "learning_rate", "seed")`` for a batch of problem instances; ``G`` below stands for
  them (e.g. ``(L, S)``).

  Attributes:
    learning_rates: (L,) the learning rates swept.
    seeds: (S,) the seeds (they only drive ``problem.init``).
    params: the final parameters: the problem's pytree with leaves of shape ``G + leaf shape``.
      A diverged point keeps the parameters at which divergence was detected.
    losses: ``G + (K,)`` the loss at each of ``log_steps`` (NaN from the step a point diverged).
    log_steps: (K,) the logged steps, from 0 (the start) to ``steps`` (the end).
    final_loss: ``G`` the loss at the final parameters.
    steps_to_tol: ``G`` int: the first step t from which the tolerance holds at every later step up
      to the end (0 if it always held); −1 if it does not hold at the end or the point diverged.
      The tolerance is ``loss <= tol``, or ``max|θ − target| <= tol`` when a target was given.
    diverged: ``G`` bool: the loss became non-finite or exceeded ``explode_factor`` times the
      initial loss (checked at every step, on the loss the step computes anyway; the final
      parameters are also checked for non-finite entries).
    diverged_at: ``G`` int: the step t whose loss f(θ_t) triggered it, −1 if never; the point's
      parameters stay at θ_t from then on.
    params_log: None, or (with ``record_params=True``) the parameters at ``log_steps``: leaves of
      shape ``G + (K,) + leaf shape``.
    axes: names of the grid axes.
    steps: the number of optimizer steps.
    tol: the tolerance of ``steps_to_tol``.
    compilations: how many times this call traced and compiled the step program (1 for a new
      program; 0 when an earlier sweep with the same functions and shapes had compiled it).
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
  axes: tuple = ()
  steps: int = 0
  tol: float = 0.0
  compilations: int = 0

  @property
  def grid_shape(self) -> tuple[int, ...]:
    return tuple(np.shape(self.diverged))

  @property
  def converged(self):
    """``G`` bool: not diverged and within tolerance from some step until the end."""
    return jnp.logical_and(jnp.logical_not(self.diverged), jnp.asarray(self.steps_to_tol) >= 0)


# ---------------------------------------------------------------------------------------------
# The compiled program.


@dataclasses.dataclass(frozen=True)
class _Static:
  """Everything that shapes the compiled program (hashable: functions hash by identity)."""

  loss: Callable
  init: Callable
  example_losses: Callable | None
  optimizer: Callable
  per_example: bool
  batched: bool
  target_mode: str  # "none" | "shared" | "per_problem"
  record_params: bool
  chunk: int


def _all_finite(tree) -> jax.Array:
  leaves = [
    jnp.all(jnp.isfinite(x))
    for x in jax.tree.leaves(tree)
    if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
  ]
  return functools.reduce(jnp.logical_and, leaves, jnp.asarray(True))


class _Program:
  """The jitted init / chunk / finish functions of one :class:`_Static`, and a trace counter."""

  def __init__(self, s: _Static):
    self.s = s
    self.traces = 0
    self.init = jax.jit(self._init)
    self.chunk = jax.jit(self._chunk, donate_argnums=(0,))
    self.finish = jax.jit(self._finish)

  # -- per grid point ----------------------------------------------------------------------------

  def _point_init(self, key, lr, data, explode_factor):
    s = self.s
    params = s.init(key, data)
    opt_state = s.optimizer(lr).init(params)
    loss0 = s.loss(params, data)
    limit = jnp.where(loss0 > 0, explode_factor * loss0, jnp.inf).astype(loss0.dtype)
    i32 = jnp.int32
    state = {
      "params": params,
      "opt_state": opt_state,
      "diverged_at": jnp.asarray(-1, i32),  # diverged iff >= 0
      "last_bad": jnp.asarray(-1, i32),
      "limit": limit,
    }
    return state

  def _loss_and_grads(self, params, data):
    s = self.s
    if not s.per_example:
      return jax.value_and_grad(s.loss)(params, data)
    losses, vjp = jax.vjp(lambda p: s.example_losses(p, data), params)
    n = losses.shape[0]
    (grads,) = jax.vmap(vjp)(
      jnp.eye(n, dtype=losses.dtype)
    )  # leaves (n, *shape): one row per example
    return jnp.mean(losses), grads

  def _verdict(self, st, loss, params, tol, target, *, final: bool = False):
    """(newly diverged, diverged, within tolerance) of a point whose loss at ``params`` is ``loss``.

    Divergence: the loss is non-finite or above the explosion limit (at the end, also non-finite
    parameters). The tolerance is on the loss, or on max|θ − target| when a target was given.
    """
    bad = jnp.logical_not(jnp.isfinite(loss)) | (loss > st["limit"])
    if final:
      bad = bad | jnp.logical_not(_all_finite(params))
    newly = (st["diverged_at"] < 0) & bad
    diverged = (st["diverged_at"] >= 0) | newly
    if self.s.target_mode == "none":
      within = loss <= tol
    else:
      within = optax.tree.norm(optax.tree.sub(params, target), ord=jnp.inf) <= tol
    return newly, diverged, within & jnp.logical_not(diverged)

  def _point_step(self, st, lr, data, target, k, tol):
    params = st["params"]
    loss, grads = self._loss_and_grads(params, data)
    newly, diverged, ok = self._verdict(st, loss, params, tol, target)
    tx = self.s.optimizer(lr)
    updates, new_opt_state = tx.update(grads, st["opt_state"], params)
    new_params = optax.apply_updates(params, updates)
    move = jnp.logical_not(diverged)
    return {
      "params": optax.tree.where(move, new_params, params),
      "opt_state": optax.tree.where(move, new_opt_state, st["opt_state"]),
      "diverged_at": jnp.where(newly, k, st["diverged_at"]).astype(jnp.int32),
      "last_bad": jnp.where(ok, st["last_bad"], k).astype(jnp.int32),
      "limit": st["limit"],
    }

  def _point_logged(self, st, data, target, tol):
    """The loss to log at the current parameters: NaN once the point has diverged."""
    loss = self.s.loss(st["params"], data)
    _, diverged, _ = self._verdict(st, loss, st["params"], tol, target)
    return jnp.where(diverged, jnp.asarray(jnp.nan, loss.dtype), loss)

  def _point_finish(self, st, data, target, T, tol):
    params = st["params"]
    loss = self.s.loss(params, data)
    newly, diverged, ok = self._verdict(st, loss, params, tol, target, final=True)
    last_bad = jnp.where(ok, st["last_bad"], T)
    steps_to_tol = jnp.where(ok, last_bad + 1, -1).astype(jnp.int32)
    diverged_at = jnp.where(newly, T, st["diverged_at"]).astype(jnp.int32)
    logged = jnp.where(diverged, jnp.asarray(jnp.nan, loss.dtype), loss)
    return {
      "params": params,
      "final_loss": loss,
      "steps_to_tol": steps_to_tol,
      "diverged": diverged,
      "diverged_at": diverged_at,
    }, logged

  # -- over the grid -----------------------------------------------------------------------------

  def _grid(self, fn, point_axes: tuple, lr_axes: tuple, problem_axes: tuple):
    """vmap ``fn`` over seeds (innermost), learning rates, and problems (outermost, if batched)."""
    f = jax.vmap(fn, in_axes=point_axes)
    f = jax.vmap(f, in_axes=lr_axes)
    if self.s.batched:
      f = jax.vmap(f, in_axes=problem_axes)
    return f

  def _target_axis(self):
    return 0 if self.s.target_mode == "per_problem" else None

  def _init(self, seeds, lrs, data, explode_factor, log_steps):
    """The whole initial carry: per-point state, log pointer and the (empty) log buffers."""
    keys = jax.vmap(jax.random.key)(seeds)
    f = self._grid(
      self._point_init,
      (0, None, None, None),
      (None, 0, None, None),
      (None, None, 0, None),
    )
    state = f(keys, lrs, data, explode_factor)
    K = log_steps.shape[0]
    grid = state["diverged_at"].shape
    logs = jnp.full((K,) + grid, jnp.nan, lrs.dtype)
    plogs = (
      jax.tree.map(lambda p: jnp.full((K,) + p.shape, jnp.nan, p.dtype), state["params"])
      if self.s.record_params
      else None
    )
    return state, logs, plogs

  def _chunk(self, carry, k0, T, tol, target, log_steps, lrs, data):
    """Steps k0 … min(k0 + chunk, T) − 1 of every grid point.

    The steps between two logged steps run in a tight inner loop (the step and its divergence and
    tolerance bookkeeping, nothing else); the outer loop visits the logged steps that fall in this
    chunk and writes the loss (and parameters) there. Both loops are XLA while loops whose bounds
    are traced values, so every chunk, including a short last one, runs the same compiled program.
    """
    self.traces += 1  # runs at trace time only: counts compilations of this program
    s = self.s
    ta = self._target_axis()
    step = self._grid(
      self._point_step,
      (0, None, None, None, None, None),
      (0, 0, None, None, None, None),
      (0, None, 0, ta, None, None),
    )
    logged_loss = self._grid(
      self._point_logged, (0, None, None, None), (0, None, None, None), (0, 0, ta, None)
    )
    K = log_steps.shape[0]
    end = jnp.minimum(k0 + s.chunk, T)

    def segment(c):
      k, slot, st, logs, plogs = c
      next_log = jnp.where(slot < K, log_steps[jnp.minimum(slot, K - 1)], end)
      boundary = jnp.minimum(next_log, end)
      st = jax.lax.fori_loop(k, boundary, lambda i, st: step(st, lrs, data, target, i, tol), st)
      # a logged step inside this chunk (one at `end` belongs to the next chunk, T to finish)
      is_log = next_log < end

      def write(bufs):
        logs, plogs = bufs
        pc = jnp.minimum(slot, K - 1)
        loss = logged_loss(st, data, target, tol)
        logs = jax.lax.dynamic_update_index_in_dim(logs, loss, pc, axis=0)
        if s.record_params:
          plogs = jax.tree.map(
            lambda buf, p: jax.lax.dynamic_update_index_in_dim(buf, p, pc, axis=0),
            plogs,
            st["params"],
          )
        return logs, plogs

      logs, plogs = jax.lax.cond(is_log, write, lambda bufs: bufs, (logs, plogs))
      return boundary, slot + is_log.astype(slot.dtype), st, logs, plogs

    st, logs, plogs = carry
    slot0 = jnp.searchsorted(log_steps, k0).astype(jnp.int32)  # first logged step >= k0
    out = jax.lax.while_loop(lambda c: c[0] < end, segment, (k0, slot0, st, logs, plogs))
    return out[2], out[3], out[4]

  def _finish(self, carry, T, tol, target, lrs, data):
    del lrs
    ta = self._target_axis()
    fin = self._grid(
      self._point_finish,
      (0, None, None, None, None),
      (0, None, None, None, None),
      (0, 0, ta, None, None),
    )
    st, logs, plogs = carry
    out, logged = fin(st, data, target, T, tol)
    K = logs.shape[0]
    g = logged.ndim
    out["losses"] = jnp.moveaxis(logs.at[K - 1].set(logged), 0, -1)
    if self.s.record_params:
      plogs = jax.tree.map(
        lambda buf, p: jnp.moveaxis(buf.at[K - 1].set(p), 0, g), plogs, out["params"]
      )
    out["params_log"] = plogs
    return out


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
    return x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x

  return jax.tree.map(cast, tree)


def _default_chunk(steps: int) -> int:
  chunks = min(50, max(1, math.ceil(steps / 1000)))
  return math.ceil(steps / chunks)


def _check(name: str, value, ok: bool, allowed: str) -> None:
  if not ok:
    raise UserInputError(f"{name}: {value!r} is not allowed; {allowed}")


def sweep(
  problem: Problem,
  optimizer: OptimizerFamily,
  learning_rates: Sequence[float] | np.ndarray | jax.Array,
  *,
  steps: int,
  seeds: Sequence[int] = (0,),
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
  progress: bool | None = None,
  desc: str = "sweep",
) -> SweepResult:
  """Run ``optimizer(lr)`` on ``problem`` for every learning rate × seed as one compiled program.

  Args:
    problem: the objective (:class:`jaxopt_hw.problems.Problem`).
    optimizer: ``lr -> optax.GradientTransformation``; any optax transform, chain or schedule
      (``lambda lr: optax.sgd(optax.cosine_decay_schedule(lr, 1000))``) or
      ``optax.inject_hyperparams(optax.adam)``. It is called inside the compiled program with a
      traced learning rate.
    learning_rates: the learning rates (positive, finite).
    steps: optimizer steps per grid point.
    seeds: seeds for ``problem.init`` (PRNG keys ``jax.random.key(seed)``).
    batched_data: ``problem.data`` holds a batch of instances (leading axis P of every leaf), swept
      as the outermost grid axis (the same seeds are used for every instance).
    dtype: floating dtype of the parameters, data and learning rates (float32 by default; float64
      works whether or not ``jax_enable_x64`` is on globally).
    log_points: how many steps to log the loss at (memory does not depend on ``steps``).
    log_spacing: ``"linear"`` or ``"log"``, see :func:`log_step_schedule`.
    record_params: also keep the parameters at the logged steps (``params_log``).
    tol: tolerance of ``steps_to_tol``: on the loss, or on max|θ − target| when ``target`` is given.
    target: optional parameters (a pytree like the problem's; with ``batched_data`` it may carry a
      leading axis P, one target per instance).
    explode_factor: a loss above ``explode_factor`` × the initial loss counts as divergence.
    per_example_grads: hand the optimizer per-example gradients (leading axis n) computed from
      ``problem.example_losses``, e.g. for ``simplified_adam(..., per_example=True)``.
    chunk_size: steps per call of the compiled program (default: about steps/50, at least 1000
      unless steps is smaller); the last chunk may be shorter and runs the same program.
    progress: show a tqdm bar (default: only when stderr is a terminal).
    desc: the progress bar's label.

  Returns:
    A :class:`SweepResult` (a pytree of arrays).

  Raises:
    UserInputError: a non-positive step count, learning rate or tolerance, or unknown spacing.
  """
  _check(
    "steps", steps, isinstance(steps, (int, np.integer)) and steps >= 1, "must be an integer >= 1"
  )
  lrs = np.asarray(learning_rates, dtype=np.float64).reshape(-1)
  _check(
    "learning_rates",
    lrs.tolist(),
    lrs.size > 0 and bool(np.all(np.isfinite(lrs) & (lrs > 0))),
    "must be a non-empty list of finite numbers > 0",
  )
  seeds_np = np.asarray(seeds).reshape(-1)
  _check(
    "seeds",
    seeds_np.tolist(),
    seeds_np.size > 0 and np.issubdtype(seeds_np.dtype, np.integer) and bool(np.all(seeds_np >= 0)),
    "must be a non-empty list of integers >= 0",
  )
  _check(
    "log_points",
    log_points,
    isinstance(log_points, (int, np.integer)) and log_points >= 2,
    "must be an integer >= 2",
  )
  _check("log_spacing", log_spacing, log_spacing in ("linear", "log"), "allowed: linear, log")
  _check("tol", tol, math.isfinite(tol) and tol >= 0, "must be a finite number >= 0")
  _check("explode_factor", explode_factor, explode_factor > 1, "must be > 1")
  _check(
    "dtype",
    dtype,
    jnp.issubdtype(jnp.dtype(dtype), jnp.floating),
    "must be a floating dtype (float32, float64, ...)",
  )
  if per_example_grads and problem.example_losses is None:
    raise UserInputError(
      "per_example_grads: True needs a problem with example_losses; this problem has none"
    )
  chunk = _default_chunk(steps) if chunk_size is None else chunk_size
  _check(
    "chunk_size",
    chunk_size,
    isinstance(chunk, (int, np.integer)) and chunk >= 1,
    "must be an integer >= 1",
  )
  chunk = int(min(chunk, steps))

  settings = _Settings(
    learning_rates=lrs,
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
    chunk=chunk,
    progress=progress,
    desc=desc,
  )
  wide = settings.dtype == jnp.float64 and not jax.config.jax_enable_x64
  with jax.enable_x64(True) if wide else contextlib.nullcontext():
    return _run(problem, optimizer, target, settings)


@dataclasses.dataclass(frozen=True)
class _Settings:
  """The checked arguments of one :func:`sweep` call."""

  learning_rates: np.ndarray  # float64, (L,)
  seeds: np.ndarray  # integers, (S,)
  steps: int
  dtype: np.dtype
  batched: bool
  log_points: int
  log_spacing: str
  record_params: bool
  tol: float
  explode_factor: float
  per_example: bool
  chunk: int
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

  # The cast wrapper must be the same object across calls for the program cache to hit.
  static = _Static(
    loss=problem.loss,
    init=_cast_init(problem.init, s.dtype),
    example_losses=problem.example_losses,
    optimizer=optimizer,
    per_example=s.per_example,
    batched=s.batched,
    target_mode=target_mode,
    record_params=s.record_params,
    chunk=s.chunk,
  )
  program = _program(static)
  traces_before = program.traces

  # Host-side (NumPy) arguments: converting them costs no eager JAX dispatches.
  lr_arr = s.learning_rates.astype(s.dtype)
  log_steps = log_step_schedule(s.steps, s.log_points, s.log_spacing)
  T = np.int32(s.steps)
  tol_arr = np.asarray(s.tol).astype(s.dtype)
  explode = np.asarray(s.explode_factor).astype(s.dtype)
  carry = program.init(s.seeds.astype(np.uint32), lr_arr, data, explode, log_steps)

  show = sys.stderr.isatty() if s.progress is None else s.progress
  bar = tqdm(total=s.steps, desc=s.desc, leave=False, file=sys.stderr) if show else None
  try:
    for k0 in range(0, s.steps, s.chunk):
      carry = program.chunk(carry, np.int32(k0), T, tol_arr, target, log_steps, lr_arr, data)
      if bar is not None:
        jax.block_until_ready(carry[1])  # the loss log: wait for this chunk before the bar moves
        bar.update(min(s.chunk, s.steps - k0))
  finally:
    if bar is not None:
      bar.close()
  out = program.finish(carry, T, tol_arr, target, lr_arr, data)

  axes = ("problem", "learning_rate", "seed") if s.batched else ("learning_rate", "seed")
  return SweepResult(
    learning_rates=lr_arr,
    seeds=s.seeds.astype(np.int32),
    params=out["params"],
    losses=out["losses"],
    log_steps=log_steps,
    final_loss=out["final_loss"],
    steps_to_tol=out["steps_to_tol"],
    diverged=out["diverged"],
    diverged_at=out["diverged_at"],
    params_log=out["params_log"],
    axes=axes,
    steps=s.steps,
    tol=s.tol,
    compilations=program.traces - traces_before,
  )


@functools.lru_cache(maxsize=64)
def _cast_init(init: Callable, dtype) -> Callable:
  """``init`` whose floating outputs are cast to ``dtype`` (cached, so it is one object per
  pair)."""

  def cast_init(key, data):
    return _cast_floats(init(key, data), dtype)

  return cast_init
