"""The engine on networks: mini-batches per seed, nnx models, held-out metrics inside the program,
any float hyperparameter, sharding; and the guarantees users ask optax for (no recompilation for a
new grid of the same shape, a grid point equals the same point alone, a seed reproduces its run).

One small problem (an nnx MLP on a slice of the digits) and one optimizer family serve most tests,
so they share one compiled program.
"""

import logging
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import sklearn.datasets
from flax import nnx

from jaxopt_hw import datasets, engine, grids, models, problems
from jaxopt_hw.engine import epoch_order, order_stream, sweep
from jaxopt_hw.errors import UserInputError

N_TRAIN, N_TEST, BATCH = 96, 40, 8  # 12 steps per epoch
SIZES = (64, 8, 10)
STEPS = 30  # two and a half epochs: the order is redrawn twice
LOG_POINTS = 4  # steps 0, 10, 20, 30


@pytest.fixture(scope="module")
def data():
  train, test = datasets.digits()
  small = lambda d, n: {k: v[:n] for k, v in d.items()}
  return small(train, N_TRAIN), small(test, N_TEST)


@pytest.fixture(scope="module")
def problem(data):
  train, test = data
  # a float64 model (its layers compute in their own dtype), so the references can be tight
  return problems.classification(
    models.MLP,
    train,
    test,
    batch_size=BATCH,
    model_args=(SIZES,),
    model_kwargs={"dtype": jnp.float64},
  )


GRID = {"learning_rate": [0.1, 0.5], "momentum": [0.0, 0.9]}
SEEDS = [3, 11]


def run(problem, hyperparams=GRID, seeds=SEEDS, **kwargs):
  kwargs = {
    "steps": STEPS,
    "log_points": LOG_POINTS,
    "record_params": True,
    "dtype": jnp.float64,
    **kwargs,
  }
  return sweep(problem, optax.sgd, hyperparams=hyperparams, seeds=seeds, progress=False, **kwargs)


@pytest.fixture(scope="module")
def result(problem):
  return run(problem)


def pick(tree, index):
  """One grid point's (and logged step's) leaves."""
  return jax.tree.map(lambda p: np.asarray(p)[index], tree)


# --- An independent reference: the documented order, in NumPy; optax stepped in a Python loop.


def _fmix32(h):
  # MurmurHash3's fmix32 on NumPy uint32 (wrapping arithmetic), written from its definition
  h = np.uint32(h)
  h ^= h >> np.uint32(16)
  h = np.uint32((int(h) * 0x85EBCA6B) & 0xFFFFFFFF)
  h ^= h >> np.uint32(13)
  h = np.uint32((int(h) * 0xC2B2AE35) & 0xFFFFFFFF)
  h ^= h >> np.uint32(16)
  return h


def numpy_order(seed: int, epoch: int, n: int) -> np.ndarray:
  """epoch_order's documented construction with Python integers: a 4-round Feistel network on
  h-bit halves (4**h >= n), keyed by seed and epoch, cycle-walked into 0 ... n-1."""
  golden, mask32 = 0x9E3779B9, 0xFFFFFFFF
  stream = int(_fmix32((seed * golden + 0x6A09E667) & mask32))
  r = int(_fmix32(stream ^ int(_fmix32((epoch * golden + 0xBB67AE85) & mask32))))
  keys = [int(_fmix32((r + j * golden) & mask32)) for j in range(4)]
  h = 1
  while 4**h < n:
    h += 1
  half = (1 << h) - 1

  def feistel(x):
    left, right = x >> h, x & half
    for key in keys:
      left, right = right, left ^ (int(_fmix32(right ^ key)) & half)
    return (left << h) | right

  out = []
  for p in range(n):
    x = feistel(p)
    while x >= n:
      x = feistel(x)
    out.append(x)
  return np.asarray(out)


def reference_run(problem, lr, momentum, seed, steps):
  """Plain optax in a Python loop over the mini-batches of numpy_order."""
  model = models.MLP(SIZES, rngs=nnx.Rngs(jax.random.key(seed)), dtype=jnp.float64)
  graphdef, params = nnx.split(model, nnx.Param)
  tx = optax.sgd(lr, momentum=momentum)
  state = tx.init(params)
  per_epoch = N_TRAIN // BATCH

  @jax.jit  # one configuration, one step: compiled once, called in a Python loop
  def step(params, state, batch):
    def loss(p):
      logits = nnx.merge(graphdef, p)(batch["x"])
      return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()

    updates, state = tx.update(jax.grad(loss)(params), state, params)
    return optax.apply_updates(params, updates), state

  for k in range(steps):
    order = numpy_order(seed, k // per_epoch, N_TRAIN)
    idx = order[(k % per_epoch) * BATCH : (k % per_epoch + 1) * BATCH]
    batch = {"x": jnp.asarray(problem.data["x"][idx], jnp.float64), "y": problem.data["y"][idx]}
    params, state = step(params, state, batch)
  return params


def test_epoch_order_is_the_documented_feistel_shuffle_and_a_fresh_permutation_each_epoch():
  for seed, epoch, n in [(0, 0, 50), (5, 2, 2), (2**32 - 1, 7, 300)]:
    got = np.asarray(epoch_order(order_stream(np.uint32(seed)), epoch, n))
    np.testing.assert_array_equal(got, numpy_order(seed, epoch, n))  # the Python re-implementation
    assert sorted(got) == list(range(n))
  orders = {tuple(numpy_order(s, e, 50)) for s in range(4) for e in range(4)}
  assert len(orders) == 16  # every seed and epoch its own order


def test_each_point_trains_on_its_seeds_minibatches_like_a_plain_optax_loop(problem, result):
  assert result.axes == ("learning_rate", "momentum", "seed")
  assert result.grid_shape == (2, 2, 2)
  for i, j, s in [(0, 0, 0), (1, 1, 1), (0, 1, 1)]:
    lr, momentum, seed = GRID["learning_rate"][i], GRID["momentum"][j], SEEDS[s]
    expected = reference_run(problem, lr, momentum, seed, STEPS)
    got = pick(result.params, (i, j, s))
    # float64 both ways; only rounding differs (another batch would move them by ~1e-2)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
      np.testing.assert_allclose(a, np.asarray(b), rtol=1e-9, atol=1e-11)


def test_steps_are_counted_in_epochs_too(result):
  assert result.steps_per_epoch == N_TRAIN // BATCH == 12
  assert result.epochs == STEPS / 12
  np.testing.assert_allclose(result.log_epochs, np.array([0, 10, 20, 30]) / 12)


def test_metrics_at_logged_steps_equal_the_model_scored_outside_the_program(problem, data, result):
  _, test = data
  for idx in [(0, 0, 0), (1, 1, 1)]:
    for k in range(LOG_POINTS):
      params = pick(result.params_log, idx + (k,))
      logits = np.asarray(problems.nnx_model(problem, params)(jnp.asarray(test["x"], jnp.float64)))
      # float64 NumPy reference: cross-entropy and strict arg-max accuracy
      z = logits - logits.max(-1, keepdims=True)
      xent = np.log(np.exp(z).sum(-1)) - z[np.arange(N_TEST), test["y"]]
      right = logits[np.arange(N_TEST), test["y"]] > np.max(
        np.where(np.eye(10, dtype=bool)[test["y"]], -np.inf, logits), axis=-1
      )
      np.testing.assert_allclose(result.metrics["loss"][idx][k], xent.mean(), rtol=1e-12)
      np.testing.assert_allclose(result.metrics["accuracy"][idx][k], right.mean(), rtol=1e-15)


def test_the_training_loss_is_logged_over_the_whole_training_set(problem, data, result):
  train, _ = data
  idx = (1, 0, 1)
  params = pick(result.params_log, idx + (-1,))
  logits = np.asarray(problems.nnx_model(problem, params)(jnp.asarray(train["x"], jnp.float64)))
  z = logits - logits.max(-1, keepdims=True)
  xent = np.log(np.exp(z).sum(-1)) - z[np.arange(N_TRAIN), train["y"]]  # float64 reference
  np.testing.assert_allclose(result.losses[idx][-1], xent.mean(), rtol=1e-12)
  np.testing.assert_allclose(result.final_loss[idx], xent.mean(), rtol=1e-12)


def test_a_second_grid_of_the_same_shape_compiles_nothing(problem, result, caplog):
  # optax #577: new hyperparameter values and new seeds are data, not a new program
  new = {"learning_rate": [0.2, 0.05], "momentum": [0.5, 0.8]}
  with jax.log_compiles(True), caplog.at_level(logging.WARNING):
    r = run(problem, hyperparams=new, seeds=[5, 6])
    jax.block_until_ready(r)
  compiled = [m for m in caplog.messages if m.startswith("Compiling")]
  assert compiled == [] and r.compilations == 0
  # a list of as many points (quasi-random search) runs the same step program; only the last
  # reshape, to the grid's new shape (4, 2), is compiled anew
  caplog.clear()
  points = grids.quasi_random(4, seed=1, learning_rate=(0.01, 1.0, "log"), momentum=(0.0, 0.9))
  with jax.log_compiles(True), caplog.at_level(logging.WARNING):
    r = run(problem, hyperparams=points, seeds=[0, 1])
    jax.block_until_ready(r)
  compiled = [m.split(" with")[0] for m in caplog.messages if m.startswith("Compiling")]
  assert compiled == ["Compiling jit(_finish)"] and r.compilations == 0
  assert r.axes == ("point", "seed") and r.grid_shape == (4, 2)


def test_a_seed_reproduces_its_run_bitwise(problem, result):
  again = run(problem)
  for a, b in zip(jax.tree.leaves(result), jax.tree.leaves(again)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_grid_point_equals_the_same_point_run_alone_bitwise(problem, result):
  # optax #1532 reports vmapped points drifting from the same point alone; at these sizes they are
  # equal to the bit (XLA:CPU picks the same kernels however many points share the program; at
  # other sizes it need not: see the rounding test below)
  alone = run(problem, hyperparams={"learning_rate": [0.5], "momentum": [0.9]}, seeds=[11])
  fields = ("params", "losses", "final_loss", "metrics", "params_log", "steps_to_tol", "diverged")
  for field in fields:
    in_grid = jax.tree.map(lambda x: np.asarray(x)[1, 1, 1], getattr(result, field))
    on_its_own = jax.tree.map(lambda x: np.asarray(x)[0, 0, 0], getattr(alone, field))
    for a, b in zip(jax.tree.leaves(in_grid), jax.tree.leaves(on_its_own)):
      np.testing.assert_array_equal(a, b)


def test_the_grid_sharded_over_16_devices_equals_the_one_device_run_bitwise(problem, result):
  devices = jax.devices("cpu")
  assert len(devices) == 16  # tests/conftest.py emulates 16 CPU devices
  sharded = run(problem, devices=devices)  # 8 points padded to 32: two per device
  assert sharded.num_devices == 16
  for a, b in zip(jax.tree.leaves(result), jax.tree.leaves(sharded)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_where_xla_rounds_differently_a_point_agrees_alone_and_sharded_to_rounding(data):
  # At other sizes XLA:CPU may sum a short axis (the softmax's 10 classes) in another order when
  # another number of points shares a device: 15 points here are 16 on one device, 2 per device
  # sharded and 2 alone, and the results then differ in the last bits (measured: about 0.07 ulp
  # of the largest parameter per step). That is optax #1532's drift, and it is rounding. Bound:
  # one ulp of the largest parameter (or logged loss) per step taken; the differences add up over
  # the steps, and 60 stable steps do not amplify them. A wrong mini-batch, seed or learning rate
  # moves a parameter by about α·|g| in a single step, 10⁴ times that bound.
  train, _ = data
  net = problems.classification(
    models.MLP,
    train,
    batch_size=32,
    model_args=((64, 64, 10),),
    model_kwargs={"dtype": jnp.float32},
  )
  steps = 60
  kwargs = {"steps": steps, "log_points": 4, "dtype": jnp.float32, "progress": False}
  grid = {"learning_rate": [0.02, 0.05, 0.1, 0.2, 0.5], "momentum": [0.9]}
  one = sweep(net, optax.sgd, hyperparams=grid, seeds=[3, 11, 12], **kwargs)
  sharded = sweep(
    net, optax.sgd, hyperparams=grid, seeds=[3, 11, 12], devices=jax.devices(), **kwargs
  )
  alone = sweep(
    net, optax.sgd, hyperparams={"learning_rate": [0.5], "momentum": [0.9]}, seeds=[11], **kwargs
  )
  assert not np.asarray(one.diverged).any()
  ulp = float(jnp.finfo(jnp.float32).eps)

  def assert_close(got, want):
    got, want = [np.asarray(x, np.float64) for x in got], [np.asarray(x, np.float64) for x in want]
    scale = max(np.abs(w).max() for w in want)
    for g, w in zip(got, want):
      np.testing.assert_array_less(np.abs(g - w), steps * ulp * scale)

  point = lambda tree, i: [np.asarray(x)[i] for x in jax.tree.leaves(tree)]
  assert_close(point(one.params, (4, 0, 1)), point(alone.params, (0, 0, 0)))
  assert_close(point(one.losses, (4, 0, 1)), point(alone.losses, (0, 0, 0)))
  assert_close(jax.tree.leaves(sharded.params), jax.tree.leaves(one.params))
  assert_close(jax.tree.leaves(sharded.losses), jax.tree.leaves(one.losses))


def test_the_sharded_step_program_exchanges_nothing_between_devices(problem, monkeypatch):
  # Every grid point steps on its own, so each device runs its shard without waiting for the
  # others. A collective in the step program is a synchronisation of all devices wherever it sits:
  # the epoch order's cycle walk, vmapped over the sharded grid, once tested "any point left to
  # walk?" with an all-reduce at every pass (a third of the sharded network benchmark's time).
  # Read off the compiled programs, as the distributed message tables are.
  texts = []
  real = engine._program

  def spy(static):
    program = real(static)
    for name in ("chunk", "whole"):
      fn = getattr(program, name)

      def compiled_then_called(*args, _fn=fn):
        texts.append(_fn.lower(*args).compile().as_text())
        return _fn(*args)

      monkeypatch.setattr(program, name, compiled_then_called)
    return program

  monkeypatch.setattr(engine, "_program", spy)
  sharded = run(problem, devices=jax.devices("cpu"))
  assert sharded.num_devices == 16 and texts
  collective = r"\b(all-reduce|all-gather|all-to-all|collective-permute|reduce-scatter)(-start)?\("
  for text in texts:
    assert re.search(r"\bwhile\(", text)  # the step loop is in this program
    assert re.findall(collective, text) == []


def test_quasi_random_points_are_reproducible_in_range_and_log_scaled():
  g = grids.quasi_random(64, seed=7, learning_rate=(1e-4, 1e-1, "log"), b1=(0.8, 0.99))
  again = grids.quasi_random(64, seed=7, learning_rate=(1e-4, 1e-1, "log"), b1=(0.8, 0.99))
  np.testing.assert_array_equal(g.values["learning_rate"], again.values["learning_rate"])
  lr, b1 = g.values["learning_rate"], g.values["b1"]
  assert np.all((lr >= 1e-4) & (lr <= 1e-1)) and np.all((b1 >= 0.8) & (b1 <= 0.99))
  # log-uniform: about a third of the points in each of the three decades (Halton: low discrepancy)
  counts = np.histogram(np.log10(lr), bins=[-4, -3, -2, -1])[0]
  assert counts.min() >= 18, counts
  assert g.axes == ("point",) and g.shape == (64,)


def test_a_product_grid_flattens_row_major():
  g = grids.product(learning_rate=[1.0, 2.0, 3.0], momentum=[0.0, 0.5])
  flat = g.flat()
  np.testing.assert_array_equal(flat["learning_rate"], [1, 1, 2, 2, 3, 3])
  np.testing.assert_array_equal(flat["momentum"], [0, 0.5, 0, 0.5, 0, 0.5])


def test_a_one_axis_grid_is_the_product_of_one_and_names_its_field_in_errors():
  a, b = grids.axis("momentum", [0.0, 0.9]), grids.product(momentum=[0.0, 0.9])
  assert (
    (a.axes, a.shape, a.axis_of)
    == (b.axes, b.shape, b.axis_of)
    == (
      ("momentum",),
      (2,),
      {"momentum": "momentum"},
    )
  )
  np.testing.assert_array_equal(a.flat()["momentum"], [0.0, 0.9])
  with pytest.raises(
    UserInputError, match=r"^learning_rates: \[0\.1, 0\.0\] is not allowed; .*> 0$"
  ):
    grids.axis("learning_rate", [0.1, 0.0], field="learning_rates")
  with pytest.raises(UserInputError, match=r"^hyperparams\.momentum: \[nan\] is not allowed"):
    grids.axis("momentum", [float("nan")])


@pytest.mark.parametrize("make", [grids.product, grids.points])
def test_a_swept_learning_rate_must_be_positive_in_every_kind_of_grid(make):
  with pytest.raises(UserInputError, match=r"^hyperparams\.learning_rate: \[-1\.0, 0\.1\] is not"):
    make(learning_rate=[-1.0, 0.1], momentum=[0.0, 0.9])
  assert make(learning_rate=[0.1, 1.0], momentum=[-0.5, 0.9]).size >= 2  # others may be <= 0


def test_nnx_problem_refuses_models_with_state_that_is_not_a_parameter(data):
  class WithBatchNorm(nnx.Module):
    def __init__(self, *, rngs):
      self.linear = nnx.Linear(64, 10, rngs=rngs)
      self.norm = nnx.BatchNorm(10, rngs=rngs)

    def __call__(self, x):
      return self.norm(self.linear(x))

  train, test = data
  with pytest.raises(UserInputError, match=r"^model: WithBatchNorm holds variables of type"):
    problems.classification(WithBatchNorm, train, test, batch_size=8)


def test_conv_computes_what_nnx_conv_computes():
  # the reference: flax's own nnx.Conv ('SAME', stride 1) with the same kernel and bias
  rngs = nnx.Rngs(0)
  ref = nnx.Conv(3, 5, (3, 3), rngs=rngs, param_dtype=jnp.float64, dtype=jnp.float64)
  mine = models.Conv(3, 5, (3, 3), rngs=rngs, dtype=jnp.float64)
  ref.bias[...] = jax.random.normal(jax.random.key(1), (5,), jnp.float64)
  mine.kernel[...], mine.bias[...] = ref.kernel[...], ref.bias[...]
  x = jax.random.normal(jax.random.key(2), (2, 8, 8, 3), jnp.float64)
  np.testing.assert_allclose(np.asarray(mine(x)), np.asarray(ref(x)), rtol=1e-12, atol=1e-12)


def test_digits_split_is_stratified_deterministic_and_disjoint():
  train, test = datasets.digits()
  assert len(train["y"]) + len(test["y"]) == 1797  # scikit-learn's digits: 1,797 images
  again_train, _ = datasets.digits()
  np.testing.assert_array_equal(train["x"], again_train["x"])
  # together they are the whole data set, each image once (compared with scikit-learn's own copy)
  full = sklearn.datasets.load_digits()
  ours = np.concatenate([train["x"], test["x"]]) * 16
  theirs = np.asarray(full.data, np.float32)
  key = lambda a: a[np.lexsort(a.T[::-1])]
  np.testing.assert_array_equal(key(np.round(ours)), key(theirs))
  for c in range(10):
    n_c = np.sum(train["y"] == c) + np.sum(test["y"] == c)
    assert np.sum(test["y"] == c) == round(0.2 * n_c)
  assert train["x"].min() >= 0 and train["x"].max() <= 1
