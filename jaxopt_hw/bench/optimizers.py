"""`jaxopt-hw bench optimizers`: Newton–Schulz schedules against the SVD, and one Muon step against
optax's.

Two measurements, each a ratio taken within one run:

* **newton_schulz** — :func:`jaxopt_hw.orthogonalize` with each preset at each step count against
  the exact polar factor by SVD (``method="svd"``), on square float32 matrices G = U·diag(σ)·Vᵀ with
  σ/‖G‖_F spread from its largest value down to 1e-3 (the range the presets are judged on).
  Columns: seconds per call (median of ``--repeats``, taken round robin over the points of one size
  after a warm-up call that compiles), SVD time ÷ that time (how many times faster than the SVD),
  and max|σᵢ − 1| of the result (how far from UVᵀ).
* **muon** — one jitted update of ``jaxopt_hw.muon`` and of ``optax.contrib.muon`` (same
  arguments) on the parameters of a ``--layers``-layer ``--width``-wide MLP (kernels and biases,
  float32), the two timed alternately so that load on a shared machine hits both; the ratio is
  ours ÷ optax's (target ≤ 1.1: the same work must not cost more).

Sizes default to what a 2-core CPU finishes in a few minutes (up to 1024²); pass
``--sizes 1024 2048 4096`` on a bigger machine or a GPU.
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

import jaxopt_hw
from jaxopt_hw.bench._args import Parser
from jaxopt_hw.errors import UserInputError, unknown_choice
from jaxopt_hw.names import NS_PRESETS
from jaxopt_hw.platform import configure, device_summary

PARTS = ("newton_schulz", "muon")


def _parser() -> argparse.ArgumentParser:
  parser = Parser(prog="jaxopt-hw bench optimizers", description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--parts", nargs="+", default=list(PARTS), help="newton_schulz, muon (default: both)"
  )
  parser.add_argument(
    "--sizes",
    type=int,
    nargs="+",
    default=[128, 256, 512, 1024],
    help="square matrix sizes n (n × n, float32) for newton_schulz (default: 128 256 512 1024)",
  )
  parser.add_argument(
    "--presets", nargs="+", default=list(NS_PRESETS), help="default: " + " ".join(NS_PRESETS)
  )
  parser.add_argument(
    "--steps", type=int, nargs="+", default=[5, 8], help="Newton–Schulz steps (default: 5 8)"
  )
  parser.add_argument("--width", type=int, default=1024, help="MLP width for muon (default 1024)")
  parser.add_argument("--layers", type=int, default=4, help="MLP layers for muon (default 4)")
  parser.add_argument(
    "--repeats", type=int, default=5, help="timed calls per point; the median is reported"
  )
  parser.add_argument("--json", action="store_true", help="print the results as JSON")
  return parser


def _check(args) -> None:
  for part in args.parts:
    if part not in PARTS:
      raise unknown_choice("--parts", part, PARTS)
  for preset in args.presets:
    if preset not in NS_PRESETS:
      raise unknown_choice("--presets", preset, NS_PRESETS)
  for field, values in (("--sizes", args.sizes), ("--steps", args.steps)):
    if not values or any(v < 1 for v in values):
      raise UserInputError(f"{field}: {values} is not allowed; every value must be >= 1")
  for field, value in (("--width", args.width), ("--layers", args.layers)):
    if value < 1:
      raise UserInputError(f"{field}: {value} is not allowed; must be >= 1")
  if args.repeats < 1:
    raise UserInputError(f"--repeats: {args.repeats} is not allowed; must be >= 1")


def _test_matrix(n: int, seed: int = 0) -> jax.Array:
  """G = U·diag(σ)·Vᵀ (random orthogonal U, V) with σ log-spaced from 1 down to the value that makes
  σ_min/‖G‖_F = 1e-3: every σ/‖G‖_F lies in the range [1e-3, 1] the presets are judged on."""
  rng = np.random.default_rng(seed)
  U, _ = np.linalg.qr(rng.standard_normal((n, n)))
  V, _ = np.linalg.qr(rng.standard_normal((n, n)))
  low = 1e-3
  for _ in range(50):  # fixed point of low = 1e-3·‖σ(low)‖₂ (‖σ‖ shrinks as low does)
    low = min(1.0, 1e-3 * float(np.linalg.norm(np.geomspace(1.0, low, n))))
  sigma = np.geomspace(1.0, low, n)
  return jnp.asarray((U * sigma) @ V.T, jnp.float32)


def _deviation(Q) -> float:
  s = np.linalg.svd(np.asarray(Q, np.float64), compute_uv=False)
  return float(np.max(np.abs(s - 1)))


def bench_newton_schulz(args) -> list[dict]:
  rows = []
  for n in args.sizes:
    G = _test_matrix(n)
    points = [("svd", None, None)] + [
      ("newton_schulz", p, k) for p in args.presets for k in args.steps
    ]
    fns = []
    for method, preset, steps in points:
      if method == "svd":
        fn = jax.jit(lambda g: jaxopt_hw.orthogonalize(g, method="svd"))
      else:
        fn = jax.jit(
          lambda g, p=preset, k=steps: jaxopt_hw.orthogonalize(g, coefficients=p, steps=k)
        )
      jax.block_until_ready(fn(G))  # compile
      fns.append(fn)
    times = [[] for _ in points]
    for _ in range(args.repeats):  # round robin, so that load on the machine hits every point alike
      for i, fn in enumerate(fns):
        start = time.perf_counter()
        jax.block_until_ready(fn(G))
        times[i].append(time.perf_counter() - start)
    seconds = [statistics.median(t) for t in times]
    for (method, preset, steps), fn, t in zip(points, fns, seconds):
      rows.append(
        {
          "n": n,
          "method": method,
          "preset": preset,
          "steps": steps,
          "seconds": t,
          "svd_over_this": seconds[0] / t,
          "max_abs_sigma_minus_1": _deviation(fn(G)),
        }
      )
    if not args.json:
      print(f"  n={n}: done", file=sys.stderr, flush=True)
  return rows


def bench_muon(args) -> dict:
  rng = np.random.default_rng(0)
  params = {}
  for i in range(args.layers):
    params[f"layer{i}"] = {
      "kernel": jnp.asarray(
        rng.standard_normal((args.width, args.width)) / np.sqrt(args.width), jnp.float32
      ),
      "bias": jnp.zeros(args.width, jnp.float32),
    }
  grads = jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape), jnp.float32), params)
  steps = {}
  for name, tx in (("jaxopt_hw", jaxopt_hw.muon(0.02)), ("optax", optax.contrib.muon(0.02))):
    state = tx.init(params)
    update = jax.jit(tx.update)
    jax.block_until_ready(update(grads, state, params))  # compile
    steps[name] = (update, state)
  times = {name: [] for name in steps}
  for _ in range(args.repeats):  # alternate, so that load on the machine hits both alike
    for name, (update, state) in steps.items():
      start = time.perf_counter()
      jax.block_until_ready(update(grads, state, params))
      times[name].append(time.perf_counter() - start)
  ours, theirs = (statistics.median(times[k]) for k in ("jaxopt_hw", "optax"))
  return {
    "layers": args.layers,
    "width": args.width,
    "jaxopt_hw_seconds": ours,
    "optax_seconds": theirs,
    "ratio": ours / theirs,
  }


def format_newton_schulz(rows: list[dict]) -> str:
  lines = [
    "| n | method | steps | time per call | SVD time ÷ this | max abs(σᵢ − 1) |",
    "|---:|---|---:|---:|---:|---:|",
  ]
  for r in rows:
    method = "SVD" if r["method"] == "svd" else r["preset"]
    steps = "—" if r["steps"] is None else str(r["steps"])
    lines.append(
      f"| {r['n']} | {method} | {steps} | {r['seconds'] * 1e3:.2f} ms | "
      f"{r['svd_over_this']:.2f}× | {r['max_abs_sigma_minus_1']:.2e} |"
    )
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  _check(args)
  configure()
  result = {"device": device_summary(), "cpu_count": os.cpu_count()}
  if "newton_schulz" in args.parts:
    result["newton_schulz"] = bench_newton_schulz(args)
  if "muon" in args.parts:
    result["muon"] = bench_muon(args)
  if args.json:
    print(json.dumps(result))
    return 0
  d = result["device"]
  print(f"{d['backend']} ({d['device_kind']}), {os.cpu_count()} CPUs, float32")
  if "newton_schulz" in result:
    print("\nNewton–Schulz against the SVD (σ/‖G‖_F from its largest down to 1e-3):\n")
    print(format_newton_schulz(result["newton_schulz"]))
  if "muon" in result:
    m = result["muon"]
    print(
      f"\nOne muon update, {m['layers']} layers of {m['width']}×{m['width']}: jaxopt_hw.muon "
      f"{m['jaxopt_hw_seconds'] * 1e3:.1f} ms, optax.contrib.muon {m['optax_seconds'] * 1e3:.1f} "
      f"ms, ratio {m['ratio']:.3f} (target ≤ 1.1)"
    )
  return 0


if __name__ == "__main__":
  sys.exit(main())
