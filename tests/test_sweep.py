"""The sweep engine: one compiled program over the grid, chunking, logging, divergence, dtypes."""

import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_hw import engine, problems
from jaxopt_hw.engine import SweepResult, log_step_schedule, sweep
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.transforms.simplified_adam import simplified_adam

A = np.array(problems.HOMEWORK_A)
NORM2 = A @ A  # ‖a‖² = 1.0101


def _reference_loop(problem, tx, steps, dtype=np.float64, key=0):
  """A plain per-configuration Python loop over optax (no jit, no vmap): the independent
  reference."""
  params = jnp.asarray(problem.init(jax.random.PRNGKey(key), problem.data), dtype)
  data = jax.tree.map(lambda x: jnp.asarray(x, dtype), problem.data)
  state = tx.init(params)
  losses = []
  for _ in range(steps):
    loss, g = jax.value_and_grad(problem.loss)(params, data)
    losses.append(float(loss))
    u, state = tx.update(g, state, params)
    params = optax.apply_updates(params, u)
  losses.append(float(problem.loss(params, data)))
  return np.asarray(params), np.asarray(losses)


def test_result_has_grid_shapes_and_logs_from_step_0_to_the_end():
  r = sweep(
    problems.homework_problem(), optax.sgd, [0.1, 0.2, 0.3], seeds=[0, 1], steps=50, log_points=6
  )
  assert isinstance(r, SweepResult)
  assert r.axes == ("learning_rate", "seed") and r.grid_shape == (3, 2)
  assert r.params.shape == (3, 2, 3) and r.losses.shape == (3, 2, 6)
  assert list(np.asarray(r.log_steps)) == [0, 10, 20, 30, 40, 50]
  assert r.final_loss.shape == r.steps_to_tol.shape == r.diverged.shape == (3, 2)
  # the loss logged at step 0 is f(0) = 1 and the last one is the final loss
  np.testing.assert_allclose(np.asarray(r.losses)[..., 0], 1.0)
  np.testing.assert_array_equal(np.asarray(r.losses)[..., -1], np.asarray(r.final_loss))
  # a pytree: jax.tree functions see the arrays
  assert all(hasattr(x, "shape") for x in jax.tree.leaves(r))


def test_compiles_the_step_program_once_however_many_chunks(caplog):
  problem = problems.homework_problem()
  family = lambda lr: optax.sgd(lr, momentum=0.5)  # a fresh family: nothing cached yet
  with jax.log_compiles(True), caplog.at_level(logging.WARNING):
    r = sweep(problem, family, np.linspace(0.01, 0.5, 7), seeds=[0, 1, 2], steps=103, chunk_size=10)
  compiled = [m for m in caplog.messages if m.startswith("Compiling jit(_chunk)")]
  assert len(compiled) == 1, compiled  # 11 chunks (the last one 3 steps), one compilation
  assert r.compilations == 1
  # a new grid with the same shapes reuses the compiled program
  r2 = sweep(problem, family, np.linspace(0.6, 0.9, 7), seeds=[3, 4, 5], steps=103, chunk_size=10)
  assert r2.compilations == 0


def test_chunking_does_not_change_the_results():
  problem = problems.homework_problem(init_scale=1.0)
  kwargs = dict(seeds=[0, 1], steps=97, dtype=jnp.float64, log_points=9, record_params=True)
  whole = sweep(problem, optax.sgd, [0.1, 0.7], chunk_size=97, **kwargs)
  chunked = sweep(
    problem, optax.sgd, [0.1, 0.7], chunk_size=8, **kwargs
  )  # 13 chunks, the last of 1 step
  for x, y in zip(jax.tree.leaves(whole), jax.tree.leaves(chunked)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize(
  "family",
  [
    optax.sgd,
    # (exponential_decay would evaluate decay_rate ** (count / k) in float32, whose vectorised and
    # scalar XLA kernels differ in the last bits; piecewise-constant is exact in float64)
    lambda lr: optax.sgd(optax.piecewise_constant_schedule(lr, {10: 0.5, 25: 0.2})),
    lambda lr: optax.inject_hyperparams(optax.adam)(learning_rate=lr),
    lambda lr: optax.chain(
      optax.clip_by_global_norm(0.5), simplified_adam(optax.cosine_decay_schedule(lr, 40))
    ),
  ],
  ids=["sgd", "sgd+piecewise_constant", "inject_hyperparams(adam)", "clip+simplified_adam+cosine"],
)
def test_every_grid_point_equals_a_plain_python_loop_over_optax(family):
  # Reference: the same optax transform stepped one configuration at a time in float64.
  problem = problems.homework_problem(init_scale=0.5)
  lrs, seeds, steps = [0.05, 0.3], [0, 7], 25
  r = sweep(problem, family, lrs, seeds=seeds, steps=steps, dtype=jnp.float64, log_points=steps + 1)
  for i, lr in enumerate(lrs):
    for j, seed in enumerate(seeds):
      params, losses = _reference_loop(
        problem, family(jnp.asarray(lr, jnp.float64)), steps, key=seed
      )
      np.testing.assert_allclose(np.asarray(r.params)[i, j], params, rtol=1e-12, atol=1e-14)
      np.testing.assert_allclose(np.asarray(r.losses)[i, j], losses, rtol=1e-12, atol=1e-14)


def test_sgd_loss_curve_and_steps_to_tolerance_match_the_closed_form():
  # SGD from 0 on (1 - aᵀθ)²: the residual r_t = 1 - aᵀθ_t obeys r_{t+1} = (1 - 2α‖a‖²) r_t,
  # r_0 = 1, so loss_t = ρ^{2t} with ρ = 1 - 2α‖a‖², and (|ρ| < 1) the loss first drops below tol
  # at t* = ceil(log(tol) / (2 log|ρ|)) and stays below it.
  lrs = np.array([0.05, 0.2, 0.45, 0.8])
  tol = 1e-10
  r = sweep(
    problems.homework_problem(),
    optax.sgd,
    lrs,
    steps=300,
    dtype=jnp.float64,
    log_points=301,
    tol=tol,
  )
  rho = 1 - 2 * lrs * NORM2
  t = np.arange(301)
  # compare |r_t| = sqrt(loss_t): computing 1 − aᵀθ loses ~1e-15 absolutely once θ is near θ*
  np.testing.assert_allclose(
    np.sqrt(np.asarray(r.losses)[:, 0]), np.abs(rho[:, None]) ** t, rtol=1e-9, atol=1e-14
  )
  expected_steps = np.ceil(np.log(tol) / (2 * np.log(np.abs(rho)))).astype(int)
  np.testing.assert_array_equal(np.asarray(r.steps_to_tol)[:, 0], expected_steps)


def test_steps_to_tolerance_on_the_distance_to_a_target():
  # same recursion: max|θ_t − θ*| = |ρ|^t · max|θ*| with θ* = a/‖a‖²
  theta_star = A / NORM2
  lrs = np.array([0.1, 0.3])
  tol = 1e-8
  r = sweep(
    problems.homework_problem(),
    optax.sgd,
    lrs,
    steps=200,
    dtype=jnp.float64,
    tol=tol,
    target=theta_star,
  )
  rho = np.abs(1 - 2 * lrs * NORM2)
  expected = np.ceil(np.log(tol / theta_star.max()) / np.log(rho)).astype(int)
  np.testing.assert_array_equal(np.asarray(r.steps_to_tol)[:, 0], expected)


def test_never_converging_points_report_minus_one():
  r = sweep(problems.homework_problem(), optax.sgd, [1e-4], steps=20, tol=1e-12)
  assert (
    int(r.steps_to_tol[0, 0]) == -1 and not bool(r.diverged[0, 0]) and not bool(r.converged[0, 0])
  )


def test_diverging_points_are_flagged_and_frozen_without_raising():
  # GD on (1 - aᵀθ)² is stable iff α < 1/‖a‖² ≈ 0.990 (Hessian 2aaᵀ, λmax = 2‖a‖²).
  lrs = [0.5, 0.98, 1.05, 3.0]
  r = sweep(
    problems.homework_problem(), optax.sgd, lrs, steps=5000, dtype=jnp.float32, explode_factor=1e6
  )
  diverged = np.asarray(r.diverged)[:, 0]
  np.testing.assert_array_equal(diverged, [False, False, True, True])
  at = np.asarray(r.diverged_at)[:, 0]
  # loss_t = ρ^{2t} exceeds 1e6 (the initial loss is 1) at the first t with 2t log|ρ| > log 1e6
  rho = np.abs(1 - 2 * np.array(lrs[2:]) * NORM2)
  np.testing.assert_array_equal(at[2:], np.floor(np.log(1e6) / (2 * np.log(rho))).astype(int) + 1)
  assert list(at[:2]) == [-1, -1]
  assert np.all(np.isfinite(np.asarray(r.params)))  # frozen before any overflow
  losses = np.asarray(r.losses)[2:, 0]
  assert np.isnan(losses[:, -1]).all()  # logged as NaN from divergence on
  assert np.isfinite(np.asarray(r.losses)[:2]).all()


def test_a_nan_loss_is_divergence_not_an_error():
  def loss(theta, data):
    return jnp.sum(jnp.log(data["c"] - theta))  # NaN once θ passes c

  problem = problems.Problem(
    loss, lambda key, data: jnp.zeros(2, data["c"].dtype), {"c": np.array([1.0, 2.0])}
  )
  r = sweep(problem, optax.sgd, [0.1, 1.5], steps=50, dtype=jnp.float64)  # steps overshoot θ = c
  assert list(np.asarray(r.diverged)[:, 0]) == [True, True]
  assert np.all(np.asarray(r.diverged_at)[:, 0] >= 1)


def test_float32_by_default_float64_on_request():
  p = problems.homework_problem()
  r32 = sweep(p, optax.sgd, [0.1], steps=5)
  r64 = sweep(p, optax.sgd, [0.1], steps=5, dtype=jnp.float64)
  assert r32.params.dtype == jnp.float32 and r32.losses.dtype == jnp.float32
  assert r64.params.dtype == jnp.float64 and r64.final_loss.dtype == jnp.float64


def test_float64_works_with_x64_switched_off():
  with jax.enable_x64(False):
    r = sweep(problems.homework_problem(), optax.sgd, [0.1], steps=5, dtype=jnp.float64)
  assert r.params.dtype == jnp.float64


def test_memory_of_the_result_does_not_depend_on_the_number_of_steps():
  p = problems.homework_problem()
  small = sweep(p, optax.sgd, [0.1, 0.2], steps=200, log_points=16, record_params=True)
  large = sweep(p, optax.sgd, [0.1, 0.2], steps=20_000, log_points=16, record_params=True)
  sizes = lambda r: [x.size for x in jax.tree.leaves(r)]
  assert sizes(small) == sizes(large)


def test_log_spacing():
  assert list(log_step_schedule(1000, 5, "log")) == [0, 1, 10, 100, 1000]
  assert list(log_step_schedule(3, 10)) == [0, 1, 2, 3]  # never more points than steps + 1


def test_a_batch_of_problems_is_the_outer_grid_axis_and_equals_separate_sweeps():
  batch = problems.random_overparameterized([0, 1, 2], n=3, d=6)
  r = sweep(batch, optax.sgd, [0.2, 0.5], steps=60, batched_data=True, dtype=jnp.float64)
  assert r.axes == ("problem", "learning_rate", "seed") and r.grid_shape == (3, 2, 1)
  for i in range(3):
    one = sweep(problems.select(batch, i), optax.sgd, [0.2, 0.5], steps=60, dtype=jnp.float64)
    np.testing.assert_allclose(
      np.asarray(r.params)[i], np.asarray(one.params), rtol=1e-13, atol=1e-15
    )


def test_each_point_starts_from_its_own_instance_and_seed():
  # The starts are drawn once per (instance, seed) pair and copied to the grid points; the
  # reference draws each point's start alone: problems.normal_init(key(seed), that instance's data),
  # with a different init_scale per instance so that a start from the wrong instance shows.
  X = np.random.default_rng(0).standard_normal((3, 2, 4))
  data = {"X": X, "y": np.ones((3, 2)), "init_scale": np.array([0.5, 1.0, 2.0])}
  batch = problems.Problem(problems.least_squares_loss, problems.normal_init, data)
  seeds = [4, 9]
  r = sweep(
    batch,
    optax.sgd,
    [0.01, 0.02],
    seeds=seeds,
    steps=3,
    batched_data=True,
    dtype=jnp.float64,
    record_params=True,
  )
  assert r.params_log.shape == (3, 2, 2, 4, 4)
  for p in range(3):
    for j, seed in enumerate(seeds):
      instance = {key: value[p] for key, value in data.items()}
      start = problems.normal_init(jax.random.key(seed), instance)
      for i in range(2):
        np.testing.assert_allclose(r.params_log[p, i, j, 0], start, rtol=1e-15, atol=0)


def test_per_example_gradients_reach_the_optimizer():
  # two examples: per-example grads g_i = 2(x_iᵀθ − y_i) x_i; simplified Adam moves by
  # −α · mean_i g_i / sqrt(mean_i g_i²) coordinate-wise (numpy float64 reference for one step)
  X = np.array([[1.0, -2.0, 0.0], [3.0, 0.5, 0.0]])
  y = np.array([1.0, -1.0])
  problem = problems.least_squares(X, y)
  r = sweep(
    problem,
    lambda lr: simplified_adam(lr, per_example=True),
    [0.1],
    steps=1,
    dtype=jnp.float64,
    per_example_grads=True,
  )
  g = 2 * (X @ np.zeros(3) - y)[:, None] * X
  rms = np.sqrt(np.mean(g**2, axis=0))
  expected = -0.1 * np.divide(g.mean(0), rms, out=np.zeros(3), where=rms > 0)
  np.testing.assert_allclose(np.asarray(r.params)[0, 0], expected, rtol=1e-14)


def test_progress_bar_advances_once_per_chunk(monkeypatch):
  updates = []

  class Recorder:
    def __init__(self, total, **kwargs):
      self.total = total

    def update(self, k):
      updates.append(k)

    def close(self):
      updates.append("closed")

  monkeypatch.setattr(engine, "tqdm", Recorder)
  sweep(problems.homework_problem(), optax.sgd, [0.1], steps=25, chunk_size=10, progress=True)
  assert updates == [10, 10, 5, "closed"]


@pytest.mark.parametrize(
  "kwargs, message",
  [
    (dict(steps=0), r"^steps: 0 is not allowed; must be an integer >= 1$"),
    (
      dict(steps=10, learning_rates=[0.1, -1.0]),
      (
        r"^learning_rates: \[0\.1, -1\.0\] is not allowed; "
        r"must be a non-empty list of finite numbers > 0$"
      ),
    ),
    (dict(steps=10, seeds=[-1]), r"^seeds: \[-1\] is not allowed"),
    (
      dict(steps=10, log_spacing="cubic"),
      r"^log_spacing: 'cubic' is not allowed; allowed: linear, log$",
    ),
    (dict(steps=10, dtype=jnp.int32), r"^dtype: .* must be a floating dtype"),
    (dict(steps=10, chunk_size=0), r"^chunk_size: 0 is not allowed"),
    (
      dict(steps=10, target=np.zeros(2)),
      r"^target: shapes \[\(2,\)\] do not match the parameters' \[\(3,\)\]$",
    ),
  ],
)
def test_bad_arguments_are_user_input_errors(kwargs, message):
  kwargs = {"learning_rates": [0.1], **kwargs}
  with pytest.raises(UserInputError, match=message):
    sweep(problems.homework_problem(), optax.sgd, **kwargs)


@pytest.mark.parametrize("seeds", [np.array(3), np.uint8(3), np.array([3]), (3,), range(3, 4)])
def test_one_seed_may_be_given_as_a_numpy_scalar_or_any_sequence(seeds):
  # reference: the same sweep with seeds=[3] (a plain list of Python ints)
  problem = problems.homework_problem()
  want = sweep(problem, optax.sgd, [0.1], steps=5, seeds=[3])
  got = sweep(problem, optax.sgd, [0.1], steps=5, seeds=seeds)
  assert got.seeds.tolist() == [3]
  np.testing.assert_array_equal(got.losses, want.losses)


@pytest.mark.parametrize(
  "seeds, shown",
  [
    (np.array([[1, 2]]), r"\[array\(\[1, 2\]\)\]"),
    ([1.5], r"\[1\.5\]"),
    (np.array([True]), r"\[True\]"),
  ],
)
def test_seeds_that_are_not_integers_are_refused_by_name(seeds, shown):
  with pytest.raises(UserInputError, match=rf"^seeds: {shown} is not allowed; must be a non-empty"):
    sweep(problems.homework_problem(), optax.sgd, [0.1], steps=5, seeds=seeds)


def _squared_errors(theta, data):
  return {"squared_error": problems.least_squares_example_losses(theta, data)}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("which", ["homework", "overparameterized"])
def test_logging_the_steps_own_loss_equals_evaluating_it_at_the_logged_steps(which, dtype):
  # A full-batch problem without metrics writes the loss its logged step computes; with metrics
  # the sweep evaluates the loss there instead (loss(θ_k, data), as before the shortcut). The
  # reference is that evaluation: the same problem given held-out metrics. The metrics change
  # nothing else, so every logged loss, logged θ and verdict must agree bitwise, through
  # divergences (lr 1.3 diverges on the homework problem, 2.5 on the scaled random one).
  if which == "homework":
    problem = problems.homework_problem(init_scale=1.0)
  else:
    problem = problems.select(problems.random_overparameterized(n=8, d=64, seeds=[0]), 0)
  held_out = {"X": problem.data["X"], "y": problem.data["y"]}
  evaluated = dataclasses.replace(problem, eval_data=held_out, metrics=_squared_errors)
  kwargs = dict(seeds=[0, 5], steps=120, dtype=dtype, log_points=13, record_params=True)
  lrs = [0.05, 0.5, 1.3, 2.5]
  a = sweep(problem, optax.sgd, lrs, **kwargs)
  b = sweep(evaluated, optax.sgd, lrs, **kwargs)
  assert a.diverged.any() and not a.diverged.all()
  np.testing.assert_array_equal(a.losses, b.losses)
  np.testing.assert_array_equal(a.params_log, b.params_log)
  for name in ("final_loss", "steps_to_tol", "diverged", "diverged_at", "params"):
    np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_a_diverging_point_keeps_exactly_the_parameters_at_which_it_diverged():
  # Steps run without the per-step freeze and a stretch is replayed with it when a point diverges;
  # the reference is plain SGD in a float64 Python loop, stopped at the first step t whose loss
  # exceeds explode_factor × the initial loss: the sweep must report θ_t and t, and keep them
  # through the later stretches (7 logged steps: stretches of 50 steps).
  problem = problems.homework_problem(init_scale=1.0)
  lrs, seeds, factor = [0.5, 1.05, 1.3], [0, 3], 1e6
  r = sweep(
    problem,
    optax.sgd,
    lrs,
    seeds=seeds,
    steps=300,
    dtype=jnp.float64,
    explode_factor=factor,
    log_points=7,
  )
  data = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), problem.data)
  for i, lr in enumerate(lrs):
    for j, seed in enumerate(seeds):
      theta = jnp.asarray(problem.init(jax.random.key(seed), data), jnp.float64)
      limit = factor * float(problem.loss(theta, data))
      at = -1
      for t in range(300):
        loss, g = jax.value_and_grad(problem.loss)(theta, data)
        if not np.isfinite(float(loss)) or float(loss) > limit:
          at = t
          break
        theta = theta - lr * g
      assert int(r.diverged_at[i, j]) == at, (lr, seed)
      np.testing.assert_allclose(np.asarray(r.params)[i, j], np.asarray(theta), rtol=1e-12)
  assert not bool(np.any(np.asarray(r.diverged)[0])) and bool(np.all(np.asarray(r.diverged)[1:]))


@pytest.mark.parametrize("chunk_size", [None, 37], ids=["one-call", "chunks-of-37"])
def test_logged_parameters_and_losses_freeze_where_a_point_diverged(chunk_size):
  # Steps run without the per-step freeze; the points that diverged get their frozen parameters,
  # optimizer state and logged parameters back at the end of each call. Reference: plain SGD in a
  # float64 Python loop that stops at the first step d whose loss exceeds explode_factor × the
  # initial loss; the parameters logged at step L must be θ_min(L, d), and the loss logged at L
  # must be f(θ_L) before d and NaN from d on. Several points diverge, at different steps, in one
  # call or in different chunks.
  problem = problems.homework_problem(init_scale=1.0)
  lrs, seeds, factor, T = [0.5, 1.05, 1.3], [0, 3], 1e6, 300
  r = sweep(
    problem,
    optax.sgd,
    lrs,
    seeds=seeds,
    steps=T,
    dtype=jnp.float64,
    explode_factor=factor,
    log_points=13,
    record_params=True,
    chunk_size=chunk_size,
  )
  data = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), problem.data)
  log_steps = list(np.asarray(r.log_steps))
  for i, lr in enumerate(lrs):
    for j, seed in enumerate(seeds):
      theta = jnp.asarray(problem.init(jax.random.key(seed), data), jnp.float64)
      limit = factor * float(problem.loss(theta, data))
      thetas, d = [theta], -1
      for t in range(T):
        loss, g = jax.value_and_grad(problem.loss)(theta, data)
        if float(loss) > limit:
          d = t
          break
        theta = theta - lr * g
        thetas.append(theta)
      assert int(r.diverged_at[i, j]) == d, (lr, seed)
      for slot, L in enumerate(log_steps):
        expected = thetas[min(L, len(thetas) - 1)]
        np.testing.assert_allclose(r.params_log[i, j, slot], expected, rtol=1e-12)
        if d >= 0 and L >= d:
          assert np.isnan(r.losses[i, j, slot]), (lr, seed, L)
        else:
          want = float(problem.loss(expected, data))
          np.testing.assert_allclose(r.losses[i, j, slot], want, rtol=1e-12)
  assert sorted({int(x) for x in np.asarray(r.diverged_at)[1:].ravel()}) != [-1]
