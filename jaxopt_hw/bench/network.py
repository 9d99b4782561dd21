"""`jaxopt-hw bench network`: training many small networks at once, against one after another.

One grid of configurations (learning rates × seeds) of SGD training a flax MLP (64 → hidden → 10,
tanh) on scikit-learn's digits in mini-batches, run four ways in the same process:

* **sweep** — :func:`jaxopt_hw.sweep`: every configuration in one compiled program (``vmap`` over
  the grid, the mini-batch order drawn per seed inside it, the whole training set scored at the
  first and last step), on one device; and the same sweep with its grid sharded over ``--devices``
  devices (default: every device of the default backend — the GPUs of a GPU machine, or on a CPU
  the devices JAX emulates with ``jax_num_cpu_devices``, whose shards run on the cores in
  parallel);
* **compiled sequential** — the same configurations one after another, each a ``jit`` of a
  ``lax.scan`` over its steps (one compiled program, called once per configuration);
* **Python loop** — a Python loop over steps calling one jitted training step, for
  ``--loop-configs`` configurations (extrapolated per example).

The baselines see the same mini-batches (:func:`jaxopt_hw.engine.epoch_order`, precomputed) and
take the same steps; they skip the sweep's bookkeeping (divergence flags, logged losses).
Reported: training examples per second (configurations × steps × batch size ÷ seconds, medians of
``--repeats`` runs after a warm-up that compiles) and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxopt_hw import datasets, grids, models, problems
from jaxopt_hw.bench._args import Parser, check_bounds, positive_int
from jaxopt_hw.engine import epoch_order, order_stream, sweep
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.platform import device_summary
from jaxopt_hw.report import markdown_table

MAX_CONFIGS = 2**16
MAX_STEPS = 10**7
MAX_REPEATS = 1000


def _parser() -> argparse.ArgumentParser:
  parser = Parser(prog="jaxopt-hw bench network", description=__doc__.split("\n\n")[0])
  add = parser.add_argument
  add("--configs", type=positive_int, default=64, help="learning rates × seeds (default 64)")
  add("--seeds", type=positive_int, default=4, help="seeds per learning rate (default 4)")
  add("--steps", type=positive_int, default=200, help="optimizer steps (default 200)")
  add("--batch-size", type=positive_int, default=32, help="examples per step (default 32)")
  add("--hidden", type=positive_int, default=128, help="MLP hidden width (default 128)")
  add(
    "--loop-configs",
    type=positive_int,
    default=2,
    help="configurations the Python step loop is timed on (default 2)",
  )
  add(
    "--devices",
    type=positive_int,
    default=None,
    help="devices the sharded sweep spreads its grid over (default: every device)",
  )
  add("--repeats", type=positive_int, default=3, help="timed runs; medians (default 3)")
  add("--dtype", default="float32", choices=["float32", "float64"])
  add("--json", action="store_true", help="print one JSON object instead of a table")
  return parser


def _check(args, n_train: int) -> None:
  bounds = {
    "configs": MAX_CONFIGS,
    "seeds": MAX_CONFIGS,
    "steps": MAX_STEPS,
    "batch_size": n_train,
    "hidden": 65_536,
    "loop_configs": MAX_CONFIGS,
    "repeats": MAX_REPEATS,
  }
  check_bounds(args, bounds)
  available = len(jax.devices())
  if args.devices is not None and not 1 <= args.devices <= available:
    raise UserInputError(
      f"--devices: {args.devices} is not allowed; must be from 1 to the {available} devices of "
      f"the {jax.default_backend()} backend"
    )
  if args.configs % args.seeds:
    raise UserInputError(
      f"--configs: {args.configs} is not allowed; must be a multiple of --seeds ({args.seeds})"
    )
  if args.loop_configs > args.configs:
    raise UserInputError(
      f"--loop-configs: {args.loop_configs} is not allowed; must be <= --configs ({args.configs})"
    )


class _Setup:
  """The data, the problem, the grid and what the baselines need to take the same steps."""

  def __init__(self, args):
    dtype = np.dtype(args.dtype)
    self.train, _ = datasets.digits(dtype=dtype)
    _check(args, len(self.train["y"]))
    self.args = args
    self.dtype = dtype
    self.sizes = (64, args.hidden, 10)
    self.problem = problems.classification(
      models.MLP,
      self.train,
      batch_size=args.batch_size,
      model_args=(self.sizes,),
      model_kwargs={"dtype": jnp.dtype(dtype)},
    )
    self.lrs = np.geomspace(0.01, 0.5, args.configs // args.seeds)
    self.seeds = list(range(args.seeds))
    self.configs = [(lr, seed) for lr in self.lrs for seed in self.seeds]
    n = len(self.train["y"])
    self.per_epoch = n // args.batch_size
    self.graphdef = self.problem.init.spec.graphdef

  def batches(self, seed: int) -> np.ndarray:
    """(steps, batch) example indices: the sweep's order for this seed."""
    a = self.args
    stream = order_stream(np.uint32(seed))
    epochs = -(-a.steps // self.per_epoch)
    n = len(self.train["y"])
    orders = [np.asarray(epoch_order(stream, e, n)) for e in range(epochs)]
    rows = [orders[k // self.per_epoch] for k in range(a.steps)]
    pos = [(k % self.per_epoch) * a.batch_size for k in range(a.steps)]
    return np.stack([r[p : p + a.batch_size] for r, p in zip(rows, pos)])

  def init(self, seed: int):
    model = models.MLP(self.sizes, rngs=nnx.Rngs(jax.random.key(seed)), dtype=self.dtype)
    return nnx.state(model, nnx.Param)

  def loss(self, params, x, y):
    logits = nnx.merge(self.graphdef, params)(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _median_seconds(call, repeats: int) -> tuple[float, float]:
  """(first call, median of ``repeats`` later calls), in seconds."""
  t0 = time.perf_counter()
  call()
  first = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    call()
    times.append(time.perf_counter() - t0)
  return first, statistics.median(times)


def _time_sweep(s: _Setup, devices) -> tuple[float, float]:
  a = s.args

  def call():
    r = sweep(
      s.problem,
      optax.sgd,
      hyperparams=grids.product(learning_rate=s.lrs),
      seeds=s.seeds,
      steps=a.steps,
      log_points=2,
      dtype=s.dtype,
      progress=False,
      devices=devices,
    )
    jax.block_until_ready(r)

  return _median_seconds(call, a.repeats)


def _time_compiled_sequential(s: _Setup) -> tuple[float, float]:
  """Each configuration its own run of one compiled ``jit(scan)`` program, one after another."""
  x = jnp.asarray(s.train["x"])
  y = jnp.asarray(s.train["y"])

  @jax.jit
  def train(params, lr, idx):
    tx = optax.sgd(lr)

    def step(carry, batch):
      params, state = carry
      grads = jax.grad(s.loss)(params, x[batch], y[batch])
      updates, state = tx.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), idx)
    return params

  starts = {seed: s.init(seed) for seed in s.seeds}
  batches = {seed: jnp.asarray(s.batches(seed)) for seed in s.seeds}

  def call():
    for lr, seed in s.configs:
      jax.block_until_ready(train(starts[seed], jnp.asarray(lr, s.dtype), batches[seed]))

  return _median_seconds(call, s.args.repeats)


def _time_python_loop(s: _Setup) -> dict:
  """A Python loop over steps calling one jitted training step (what a user writes by hand)."""
  x = jnp.asarray(s.train["x"])
  y = jnp.asarray(s.train["y"])

  @jax.jit
  def step(params, state, lr, batch):
    tx = optax.sgd(lr)
    grads = jax.grad(s.loss)(params, x[batch], y[batch])
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  stride = max(1, len(s.configs) // s.args.loop_configs)
  chosen = s.configs[::stride][: s.args.loop_configs]
  batches = {seed: jnp.asarray(s.batches(seed)) for _, seed in chosen}

  def one(lr, seed):
    params = s.init(seed)
    state = optax.sgd(lr).init(params)
    lr = jnp.asarray(lr, s.dtype)
    for k in range(s.args.steps):
      params, state = step(params, state, lr, batches[seed][k])
    jax.block_until_ready(params)

  one(*chosen[0])  # compile
  t0 = time.perf_counter()
  for lr, seed in chosen:
    one(lr, seed)
  seconds = time.perf_counter() - t0
  return {"timed_configs": len(chosen), "seconds_per_config": seconds / len(chosen)}


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  setup = _Setup(args)  # checks the sizes before anything runs
  examples = args.configs * args.steps * args.batch_size
  devices = jax.devices()[: args.devices or len(jax.devices())]
  sweep_first, sweep_seconds = _time_sweep(setup, devices[:1])
  sharded_first, sharded_seconds = _time_sweep(setup, devices)
  seq_first, seq_seconds = _time_compiled_sequential(setup)
  loop = _time_python_loop(setup)
  loop_seconds = loop["seconds_per_config"] * args.configs  # extrapolated to the whole grid
  result = {
    "device": device_summary(),
    "cpu_count": os.cpu_count(),
    "configs": args.configs,
    "steps": args.steps,
    "batch_size": args.batch_size,
    "model": f"MLP {setup.sizes[0]}-{setup.sizes[1]}-{setup.sizes[2]}",
    "dtype": args.dtype,
    "examples": examples,
    "sweep_examples_per_second": examples / sweep_seconds,
    "sweep_seconds": sweep_seconds,
    "sweep_first_call_seconds": sweep_first,
    "compiled_sequential_examples_per_second": examples / seq_seconds,
    "compiled_sequential_seconds": seq_seconds,
    "compiled_sequential_first_call_seconds": seq_first,
    "python_loop_examples_per_second": examples / loop_seconds,
    "python_loop_timed_configs": loop["timed_configs"],
    "python_loop_extrapolated_seconds": loop_seconds,
    "speedup_vs_compiled_sequential": seq_seconds / sweep_seconds,
    "speedup_vs_python_loop": loop_seconds / sweep_seconds,
    "sharded_devices": len(devices),
    "sharded_sweep_examples_per_second": examples / sharded_seconds,
    "sharded_sweep_seconds": sharded_seconds,
    "sharded_sweep_first_call_seconds": sharded_first,
    "sharded_speedup_vs_compiled_sequential": seq_seconds / sharded_seconds,
  }
  if args.json:
    print(json.dumps(result))
    return 0
  d = result["device"]
  print(
    f"SGD training {result['model']} on the digits, {args.configs} configurations × {args.steps} "
    f"steps × batch {args.batch_size}, {args.dtype}, {d['backend']} ({d['device_kind']}), "
    f"{os.cpu_count()} CPUs"
  )
  rate = lambda r: f"{r:,.0f}"
  rows = [
    [
      "sweep: the grid in one compiled program, one device",
      rate(result["sweep_examples_per_second"]),
      f"{sweep_seconds:.3g} s (first call with compile: {sweep_first:.3g} s)",
      "1",
    ],
    [
      f"sweep sharded over {len(devices)} {d['backend']} devices",
      rate(result["sharded_sweep_examples_per_second"]),
      f"{sharded_seconds:.3g} s (first call with compile: {sharded_first:.3g} s)",
      f"{sweep_seconds / sharded_seconds:.3g}×",
    ],
    [
      "compiled sequential: one jit(scan) per configuration",
      rate(result["compiled_sequential_examples_per_second"]),
      f"{seq_seconds:.3g} s (first call with compile: {seq_first:.3g} s)",
      f"{result['speedup_vs_compiled_sequential']:.3g}×",
    ],
    [
      f"Python loop over a jitted step ({loop['timed_configs']} configs timed)",
      rate(result["python_loop_examples_per_second"]),
      f"{loop_seconds:.3g} s (extrapolated)",
      f"{result['speedup_vs_python_loop']:.3g}×",
    ],
  ]
  print(markdown_table(["method", "examples / s", "whole grid", "sweep is faster by"], rows))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
