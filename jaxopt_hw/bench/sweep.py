"""`jaxopt-hw bench sweep`: the compiled sweep against the loops a user would write without it.

One grid of configurations (learning rates × seeds) of SGD on the homework's Q2 problem
f(θ) = (1 − aᵀθ)² from random starts, run three ways in the same process:

* **sweep** — :func:`jaxopt_hw.sweep.sweep`: the whole grid as one compiled jit(vmap(loop))
  program, with its loss logging, divergence flags and steps-to-tolerance (timed after a warm-up
  call that compiles);
* **loop** — a Python loop over configurations and steps calling one jitted optax step
  (``value_and_grad`` + ``tx.update`` + ``apply_updates``, learning rate passed as an argument so it
  compiles once); only ``--loop-configs`` configurations are timed and the rate is per
  configuration-step;
* **numpy** — a NumPy loop over steps, vectorised over all configurations, with the gradient
  written by hand (no logging beyond the loss every few steps, no divergence checks: less work than
  the sweep);
* **bare scan** — ``jit(vmap(scan))`` of the same optax SGD step from the same starts over the same
  flat list of configurations (one ``vmap`` axis, as the sweep lays out its grid), the data closed
  over as constants, returning only the final parameters: what the sweep would cost without its
  bookkeeping (divergence flags, steps to tolerance, the logged losses, input checks).
  ``overhead_vs_bare_scan`` is the sweep's time ÷ the bare scan's (timed alternately, medians).
  Beside it, ``overhead_vs_nested_bare_scan``: the same against ``jit(vmap(vmap(scan)))`` over
  learning rates × seeds, which XLA:CPU runs a few per cent faster than the flat layout (the same
  operations on arrays shaped (rates, seeds, 3) instead of (configurations, 3)).

Reported: configuration-steps per second of each and the ratios. Peak memory: the sweep is run in
a fresh subprocess at ``--memory-steps`` and at ``--memory-factor`` times as many steps, and each
child reports its peak resident set size (``ru_maxrss``; on an accelerator also the device's
``peak_bytes_in_use``); ``memory_ratio`` is large-step peak ÷ small-step peak. Beside it: what
keeping every step's loss would take at the large step count (the sweep keeps 64 logged points).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_hw import problems
from jaxopt_hw.bench._args import Parser, check_bounds, positive_int
from jaxopt_hw.engine import MAX_STEPS, sweep
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.platform import configure, device_summary
from jaxopt_hw.problems import HOMEWORK_A
from jaxopt_hw.report import markdown_table

#: Upper bounds of the sizes (typos such as 10**12 configurations are refused, not attempted).
MAX_CONFIGS = 2**24
MAX_REPEATS = 1000


def _parser() -> argparse.ArgumentParser:
  parser = Parser(prog="jaxopt-hw bench sweep", description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--configs",
    type=positive_int,
    default=1024,
    help="configurations in the grid (learning rates × seeds; default 1024)",
  )
  parser.add_argument(
    "--seeds",
    type=positive_int,
    default=8,
    help="seeds per learning rate (default 8; configs must be a multiple)",
  )
  parser.add_argument(
    "--steps",
    type=positive_int,
    default=2000,
    help="optimizer steps per configuration (default 2000)",
  )
  parser.add_argument(
    "--loop-configs",
    type=positive_int,
    default=4,
    help="configurations the per-configuration loop is timed on (default 4)",
  )
  parser.add_argument(
    "--repeats",
    type=positive_int,
    default=21,
    help="timed runs of the sweep, the bare scan and NumPy; medians are reported (default 21: "
    "one run takes milliseconds, and a median of 5 still moved by several per cent)",
  )
  parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
  parser.add_argument(
    "--memory-steps",
    type=positive_int,
    default=2000,
    help="steps of the smaller memory run (default 2000)",
  )
  parser.add_argument(
    "--memory-factor",
    type=positive_int,
    default=100,
    help="the larger memory run has this many times the steps (default 100)",
  )
  parser.add_argument(
    "--memory-configs",
    type=positive_int,
    default=None,
    help="configurations of the memory runs (default: --configs); larger grids make the sweep's "
    "own buffers visible above the runtime's",
  )
  parser.add_argument(
    "--no-memory", action="store_true", help="skip the memory measurement (no subprocesses)"
  )
  parser.add_argument(
    "--json", action="store_true", help="print one JSON object instead of a table"
  )
  parser.add_argument(
    "--_memory-child", dest="memory_child", type=positive_int, default=None, help=argparse.SUPPRESS
  )
  return parser


def _check(args) -> None:
  """Every size in range, before anything runs."""
  bounds = {
    "configs": MAX_CONFIGS,
    "seeds": MAX_CONFIGS,
    "steps": MAX_STEPS,
    "loop_configs": MAX_CONFIGS,
    "repeats": MAX_REPEATS,
    "memory_steps": MAX_STEPS,
    "memory_factor": MAX_STEPS,
  }
  check_bounds(args, bounds)
  if args.configs % args.seeds:
    raise UserInputError(
      f"--configs: {args.configs} is not allowed; must be a multiple of --seeds ({args.seeds})"
    )
  if args.memory_configs is not None and (
    args.memory_configs < 1 or args.memory_configs > MAX_CONFIGS or args.memory_configs % args.seeds
  ):
    raise UserInputError(
      f"--memory-configs: {args.memory_configs} is not allowed; must be a positive multiple of "
      f"--seeds ({args.seeds}), at most {MAX_CONFIGS}"
    )
  if args.loop_configs > args.configs:
    raise UserInputError(
      f"--loop-configs: {args.loop_configs} is not allowed; must be <= --configs ({args.configs})"
    )
  if not args.no_memory and args.memory_steps * args.memory_factor > MAX_STEPS:
    raise UserInputError(
      f"--memory-factor: {args.memory_factor} is not allowed with --memory-steps "
      f"{args.memory_steps}; the larger memory run takes their product in steps, which must be "
      f"<= {MAX_STEPS} (or pass --no-memory)"
    )


def _grid(args):
  lrs = np.geomspace(
    1e-3, 0.9, args.configs // args.seeds
  )  # all below 1/‖a‖² ≈ 0.99: nothing diverges
  return lrs, list(range(args.seeds))


def _problem():
  return problems.homework_problem(init_scale=1.0)


def _dtype(args):
  return {"float32": jnp.float32, "float64": jnp.float64}[args.dtype]


def _sweep_call(args, steps: int):
  lrs, seeds = _grid(args)
  problem = _problem()
  kwargs = dict(seeds=seeds, steps=steps, dtype=_dtype(args), log_points=64, progress=False)
  return lambda: jax.block_until_ready(sweep(problem, optax.sgd, lrs, **kwargs))


def _bare_scan_call(args, *, nested: bool = False):
  """``jit(vmap(scan))`` of the same SGD steps from the same starts over the flat list of
  configurations, nothing else; ``nested``: ``jit(vmap(vmap(scan)))`` over rates × seeds."""
  lrs, seeds = _grid(args)
  problem = _problem()
  dtype = _dtype(args)
  data = jax.tree.map(lambda x: jnp.asarray(x, dtype), problem.data)

  def run(lr, seed):
    theta = problem.init(jax.random.key(seed), data).astype(dtype)
    tx = optax.sgd(lr)

    def step(carry, _):
      theta, state = carry
      grads = jax.grad(problem.loss)(theta, data)
      updates, state = tx.update(grads, state, theta)
      return (optax.apply_updates(theta, updates), state), None

    (theta, _), _ = jax.lax.scan(step, (theta, tx.init(theta)), None, length=args.steps)
    return theta

  if nested:
    bare = jax.jit(jax.vmap(jax.vmap(run, in_axes=(None, 0)), in_axes=(0, None)))
    lr_arr, seed_arr = jnp.asarray(lrs, dtype), jnp.asarray(seeds, jnp.uint32)
  else:  # the sweep's order: learning rate outer, seed inner
    bare = jax.jit(jax.vmap(run))
    lr_arr = jnp.asarray(np.repeat(lrs, len(seeds)), dtype)
    seed_arr = jnp.asarray(np.tile(seeds, len(lrs)), jnp.uint32)
  return lambda: jax.block_until_ready(bare(lr_arr, seed_arr))


def _time_alternately(calls: dict, repeats: int) -> dict:
  """{name: (first call's seconds, median seconds)}; the calls take turns, so a busy machine
  slows each of them alike."""
  first = {}
  for name, call in calls.items():
    t0 = time.perf_counter()
    call()
    first[name] = time.perf_counter() - t0
  times = {name: [] for name in calls}
  for _ in range(repeats):
    for name, call in calls.items():
      t0 = time.perf_counter()
      call()
      times[name].append(time.perf_counter() - t0)
  return {name: (first[name], statistics.median(times[name])) for name in calls}


def _time_sweep(args, steps: int) -> dict:
  first, seconds = _time_alternately({"sweep": _sweep_call(args, steps)}, args.repeats)["sweep"]
  return {
    "seconds": seconds,
    "first_call_seconds": first,
    "config_steps_per_second": args.configs * steps / seconds,
  }


def _time_loop(args) -> dict:
  """A per-configuration Python loop over one jitted optax step (what a user writes without a
  sweep)."""
  lrs, seeds = _grid(args)
  problem = _problem()
  dtype = _dtype(args)
  data = jax.tree.map(lambda x: jnp.asarray(x, dtype), problem.data)

  @jax.jit
  def step(params, opt_state, lr):
    tx = optax.sgd(lr)
    loss, grads = jax.value_and_grad(problem.loss)(params, data)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  configs = [(lr, seed) for lr in lrs for seed in seeds]
  stride = max(1, len(configs) // args.loop_configs)
  chosen = configs[::stride][: args.loop_configs]

  def one(lr, seed):
    params = jnp.asarray(problem.init(jax.random.PRNGKey(seed), data), dtype)
    opt_state = optax.sgd(lr).init(params)
    lr = jnp.asarray(lr, dtype)
    losses = []
    for _ in range(args.steps):
      params, opt_state, loss = step(params, opt_state, lr)
      losses.append(loss)
    return jax.block_until_ready((params, losses[-1]))

  one(*chosen[0])  # compile
  t0 = time.perf_counter()
  for lr, seed in chosen:
    one(lr, seed)
  seconds = time.perf_counter() - t0
  per = seconds / (len(chosen) * args.steps)
  return {
    "timed_configs": len(chosen),
    "seconds": seconds,
    "seconds_per_config_step": per,
    "config_steps_per_second": 1.0 / per,
    "extrapolated_seconds": per * args.configs * args.steps,
  }


def _time_numpy(args) -> dict:
  """A NumPy loop over steps, vectorised over every configuration, gradient by hand."""
  lrs, seeds = _grid(args)
  dtype = np.dtype(args.dtype)
  a = np.asarray(HOMEWORK_A, dtype)
  lr = np.repeat(lrs, len(seeds)).astype(dtype)[:, None]
  rng = np.random.default_rng(0)
  log_every = max(1, args.steps // 63)

  def run():
    theta = rng.standard_normal((args.configs, a.size)).astype(dtype)
    log = []
    for t in range(args.steps):
      r = 1 - theta @ a
      if t % log_every == 0:
        log.append(r * r)
      theta -= lr * (-2 * r[:, None] * a)
    return theta, log

  run()
  times = []
  for _ in range(args.repeats):
    t0 = time.perf_counter()
    run()
    times.append(time.perf_counter() - t0)
  seconds = statistics.median(times)
  return {"seconds": seconds, "config_steps_per_second": args.configs * args.steps / seconds}


def _memory_child(args) -> int:
  """Run one sweep of ``args.memory_child`` steps and print this process's peak memory as JSON."""
  configure()
  out = _time_sweep(argparse.Namespace(**{**vars(args), "repeats": 1}), args.memory_child)
  report = {
    "steps": args.memory_child,
    "maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "seconds": out["seconds"],
  }
  stats = jax.devices()[0].memory_stats() if jax.default_backend() != "cpu" else None
  if stats and "peak_bytes_in_use" in stats:
    report["device_peak_bytes"] = int(stats["peak_bytes_in_use"])
  print(json.dumps(report))
  return 0


def _measure_memory(args) -> dict:
  runs = {}
  for steps in (args.memory_steps, args.memory_steps * args.memory_factor):
    configs = args.memory_configs or args.configs
    cmd = [
      sys.executable,
      "-m",
      "jaxopt_hw.bench.sweep",
      "--configs",
      str(configs),
      "--seeds",
      str(args.seeds),
      "--dtype",
      args.dtype,
      "--_memory-child",
      str(steps),
    ]
    proc = subprocess.run(
      cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    if proc.returncode != 0:
      last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
      raise RuntimeError(f"the memory run of {steps} steps failed in its subprocess: {last}")
    runs[steps] = json.loads(proc.stdout.strip().splitlines()[-1])
  small, large = (runs[s] for s in sorted(runs))
  out = {
    "memory_configs": args.memory_configs or args.configs,
    "small_steps": small["steps"],
    "large_steps": large["steps"],
    "small_peak_rss_bytes": small["maxrss_bytes"],
    "large_peak_rss_bytes": large["maxrss_bytes"],
    "memory_ratio": large["maxrss_bytes"] / small["maxrss_bytes"],
  }
  if "device_peak_bytes" in small and "device_peak_bytes" in large:
    out["small_device_peak_bytes"] = small["device_peak_bytes"]
    out["large_device_peak_bytes"] = large["device_peak_bytes"]
    out["device_memory_ratio"] = large["device_peak_bytes"] / max(small["device_peak_bytes"], 1)
  return out


def _fmt_rate(x: float) -> str:
  for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
    if x >= scale:
      return f"{x / scale:.3g} {unit}"
  return f"{x:.3g}"


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  if args.memory_child is not None:
    return _memory_child(args)
  _check(args)
  timed = _time_alternately(
    {
      "sweep": _sweep_call(args, args.steps),
      "bare": _bare_scan_call(args),
      "nested": _bare_scan_call(args, nested=True),
    },
    args.repeats,
  )
  (sweep_first, sweep_seconds), (_, bare_seconds) = timed["sweep"], timed["bare"]
  nested_seconds = timed["nested"][1]
  sweep_t = {
    "seconds": sweep_seconds,
    "first_call_seconds": sweep_first,
    "config_steps_per_second": args.configs * args.steps / sweep_seconds,
  }
  bare_rate = args.configs * args.steps / bare_seconds
  loop_t = _time_loop(args)
  numpy_t = _time_numpy(args)
  result = {
    "device": device_summary(),
    "cpu_count": os.cpu_count(),
    "configs": args.configs,
    "steps": args.steps,
    "dtype": args.dtype,
    "sweep_config_steps_per_second": sweep_t["config_steps_per_second"],
    "sweep_seconds": sweep_t["seconds"],
    "sweep_first_call_seconds": sweep_t["first_call_seconds"],
    "loop_config_steps_per_second": loop_t["config_steps_per_second"],
    "loop_timed_configs": loop_t["timed_configs"],
    "loop_extrapolated_seconds": loop_t["extrapolated_seconds"],
    "numpy_config_steps_per_second": numpy_t["config_steps_per_second"],
    "numpy_seconds": numpy_t["seconds"],
    "speedup_vs_loop": sweep_t["config_steps_per_second"] / loop_t["config_steps_per_second"],
    "speedup_vs_numpy": sweep_t["config_steps_per_second"] / numpy_t["config_steps_per_second"],
    "bare_scan_config_steps_per_second": bare_rate,
    "bare_scan_seconds": bare_seconds,
    "overhead_vs_bare_scan": sweep_seconds / bare_seconds,
    "nested_bare_scan_seconds": nested_seconds,
    "overhead_vs_nested_bare_scan": sweep_seconds / nested_seconds,
    "memory_ratio": None,
    "full_trajectory_bytes_large": None,
  }
  if not args.no_memory:
    mem = _measure_memory(args)
    result.update(mem)
    itemsize = 4 if args.dtype == "float32" else 8
    # what keeping every step's loss would take at the large step count (the sweep keeps 64 points)
    result["full_trajectory_bytes_large"] = mem["memory_configs"] * mem["large_steps"] * itemsize
  if args.json:
    print(json.dumps(result))
    return 0
  d = result["device"]
  print(
    f"SGD on (1 − aᵀθ)², {args.configs} configurations × {args.steps} steps, {args.dtype}, "
    f"{d['backend']} ({d['device_kind']}), {os.cpu_count()} CPUs"
  )
  rows = [
    [
      "compiled sweep (jit · vmap · loop)",
      _fmt_rate(result["sweep_config_steps_per_second"]),
      f"{result['sweep_seconds']:.3g} s (first call with compile: "
      f"{result['sweep_first_call_seconds']:.3g} s)",
      "1",
    ],
    [
      f"Python loop over a jitted optax step ({loop_t['timed_configs']} configs timed)",
      _fmt_rate(result["loop_config_steps_per_second"]),
      f"{result['loop_extrapolated_seconds']:.3g} s (extrapolated)",
      f"{result['speedup_vs_loop']:.3g}×",
    ],
    [
      "bare jit(vmap(scan)) of the same SGD steps (no bookkeeping)",
      _fmt_rate(result["bare_scan_config_steps_per_second"]),
      f"{result['bare_scan_seconds']:.3g} s",
      f"{1 / result['overhead_vs_bare_scan']:.3g}× "
      f"(sweep ÷ bare: {result['overhead_vs_bare_scan']:.3g}×)",
    ],
    [
      "bare jit(vmap(vmap(scan))) over rates × seeds",
      _fmt_rate(args.configs * args.steps / nested_seconds),
      f"{nested_seconds:.3g} s",
      f"{1 / result['overhead_vs_nested_bare_scan']:.3g}× "
      f"(sweep ÷ bare: {result['overhead_vs_nested_bare_scan']:.3g}×)",
    ],
    [
      "NumPy loop vectorised over configs",
      _fmt_rate(result["numpy_config_steps_per_second"]),
      f"{result['numpy_seconds']:.3g} s",
      f"{result['speedup_vs_numpy']:.3g}×",
    ],
  ]
  print(
    markdown_table(["method", "configuration-steps / s", "whole grid", "sweep is faster by"], rows)
  )
  if result["memory_ratio"] is not None:
    mb = lambda b: f"{b / 2**20:.1f} MiB"
    print(
      f"\npeak memory ({result['memory_configs']} configurations, a fresh process each, "
      f"ru_maxrss): {result['small_steps']} steps {mb(result['small_peak_rss_bytes'])}, "
      f"{result['large_steps']} steps {mb(result['large_peak_rss_bytes'])}: ratio "
      f"{result['memory_ratio']:.3f} (storing every step's loss at {result['large_steps']} steps "
      f"would take {mb(result['full_trajectory_bytes_large'])})"
    )
    if "device_memory_ratio" in result:
      print(
        f"device peak: {mb(result['small_device_peak_bytes'])} vs "
        f"{mb(result['large_device_peak_bytes'])}: ratio {result['device_memory_ratio']:.3f}"
      )
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
