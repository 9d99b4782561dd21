"""`jaxopt-hw bench collectives`: time and bytes per aggregation for each paradigm and for pmean.

For every n and p: compile one aggregation (the same programs :func:`accounting.measure` counts),
read the bytes each worker sends off the compiled HLO, and time the program on real arrays (median
of ``--repeats`` runs after one warm-up). On emulated CPU devices all "devices" share the host's
cores and memory, so times measure the collective machinery and memory traffic, not a network;
compare paradigms within one run, not across machines.

Columns: seconds per aggregation, bytes sent per worker, and that divided by the bandwidth-optimal
all-reduce bound 2(n − 1)/n · p · itemsize (1.00 = optimal; pmean's bytes are the model of
:mod:`accounting`, optimal by construction), and the bytes of the busiest device (for the parameter
server that is the server, n · p · itemsize: its workers send less than the bound because the server
is an extra machine that carries the load).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from matplotlib.figure import Figure

from jaxopt_hw.bench._args import Parser
from jaxopt_hw.distributed import accounting
from jaxopt_hw.distributed.mesh import AXIS
from jaxopt_hw.distributed.paradigms import check_paradigm
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.names import AGGREGATORS as PARADIGM_CHOICES
from jaxopt_hw.platform import configure


def _parser() -> argparse.ArgumentParser:
  parser = Parser(prog="jaxopt-hw bench collectives", description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--n", type=int, nargs="+", default=[2, 4, 8], help="worker counts (default: 2 4 8)"
  )
  parser.add_argument(
    "--min-log2", type=int, default=10, help="smallest p = 2**MIN_LOG2 entries (default: 10)"
  )
  parser.add_argument(
    "--max-log2", type=int, default=24, help="largest p = 2**MAX_LOG2 entries (default: 24)"
  )
  parser.add_argument(
    "--step-log2", type=int, default=2, help="p grows by 2**STEP_LOG2 (default: 2)"
  )
  parser.add_argument(
    "--paradigms", nargs="+", default=list(PARADIGM_CHOICES), help="default: all three and pmean"
  )
  parser.add_argument(
    "--repeats",
    type=int,
    default=5,
    help="timed runs per point; the median is reported (default: 5)",
  )
  parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
  parser.add_argument(
    "--platform",
    default=None,
    help="devices to use: cpu, gpu, ... (default: JAX's default backend)",
  )
  parser.add_argument(
    "--max-memory-gb",
    type=float,
    default=8.0,
    help="skip points whose buffers would exceed this (default: 8)",
  )
  parser.add_argument("--plot", metavar="FILE", help="save a plot of time against p (PNG)")
  parser.add_argument(
    "--json", action="store_true", help="print the rows as a JSON list instead of a table"
  )
  return parser


def _estimated_bytes(paradigm: str, n: int, p: int, itemsize: int) -> int:
  """Rough peak of the buffers one aggregation holds on all devices together."""
  per_device = {"all_to_all": n + 2, "parameter_server": n + 3, "ring_allreduce": 4, "pmean": 3}[
    paradigm
  ]
  return (n + 1) * per_device * p * itemsize


def run_point(paradigm: str, n: int, p: int, dtype: str, repeats: int, devices) -> dict:
  """Compile, count and time one aggregation."""
  compiled, mesh = accounting.compile_paradigm(paradigm, n, p, dtype, devices=devices)
  count = accounting.count_from_text(compiled.as_text(), paradigm, n, p, dtype)
  sharding = NamedSharding(mesh, P(AXIS))
  shape = (mesh.devices.size, p)
  x = jax.jit(lambda: jnp.ones(shape, dtype), out_shardings=sharding)()
  args = (x, x) if paradigm == "parameter_server" else (x,)
  compiled(*args).block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    compiled(*args).block_until_ready()
    times.append(time.perf_counter() - start)
  return {
    "paradigm": paradigm,
    "n": n,
    "p": p,
    "seconds": statistics.median(times),
    "bytes_per_worker": count.bytes_per_worker,
    "bytes_busiest_device": max(count.bytes_per_worker, count.bytes_server),
    "optimal_bytes_per_worker": count.optimal_bytes_per_worker,
    "byte_ratio": count.bytes_per_worker / count.optimal_bytes_per_worker
    if count.optimal_bytes_per_worker
    else None,
    "messages": count.messages,
    "message_size": count.message_size,
    "dtype": str(jnp.dtype(dtype)),
  }


def _human_bytes(b: float) -> str:
  for unit in ("B", "KiB", "MiB", "GiB"):
    if abs(b) < 1024 or unit == "GiB":
      return f"{b:.0f} {unit}" if unit == "B" else f"{b:.1f} {unit}"
    b /= 1024
  return f"{b:.1f} GiB"


def format_table(rows: list[dict]) -> str:
  lines = [
    "| paradigm | n | p | time per aggregation | bytes sent per worker | measured / optimal "
    "bytes | busiest device sends | messages |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    ratio = "—" if r["byte_ratio"] is None else f"{r['byte_ratio']:.2f}"
    lines.append(
      f"| {r['paradigm']} | {r['n']} | 2^{r['p'].bit_length() - 1} | {r['seconds'] * 1e3:.3f} ms "
      f"| {_human_bytes(r['bytes_per_worker'])} | {ratio} | "
      f"{_human_bytes(r['bytes_busiest_device'])} | {r['messages']} |"
    )
  return "\n".join(lines)


def plot(rows: list[dict], path: str) -> None:
  ns = sorted({r["n"] for r in rows})
  fig = Figure(figsize=(4.5 * len(ns), 3.8))
  axes = fig.subplots(1, len(ns), squeeze=False, sharey=True)
  for ax, n in zip(axes[0], ns):
    for paradigm in PARADIGM_CHOICES:
      pts = sorted(
        (r["p"], r["seconds"]) for r in rows if r["n"] == n and r["paradigm"] == paradigm
      )
      if pts:
        ax.loglog([p for p, _ in pts], [s for _, s in pts], marker="o", label=paradigm)
    ax.set_title(f"n = {n}")
    ax.set_xlabel("p (entries)")
    ax.grid(True, which="both", alpha=0.3)
  axes[0][0].set_ylabel("seconds per aggregation")
  axes[0][-1].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  for name in args.paradigms:
    check_paradigm(name, field="--paradigms")
  if any(n < 1 for n in args.n):
    raise UserInputError(f"--n: {args.n} is not allowed; every worker count must be >= 1")
  if not 0 <= args.min_log2 <= args.max_log2 or args.step_log2 < 1:
    raise UserInputError(
      f"--min-log2/--max-log2/--step-log2: {args.min_log2}/{args.max_log2}/{args.step_log2} is "
      "not allowed; need 0 <= min <= max and step >= 1"
    )
  if args.repeats < 1:
    raise UserInputError(f"--repeats: {args.repeats} is not allowed; must be >= 1")

  configure()
  devices = jax.devices(args.platform) if args.platform else jax.devices()
  itemsize = jnp.dtype(args.dtype).itemsize
  rows, skipped = [], []
  for n in args.n:
    for log2 in range(args.min_log2, args.max_log2 + 1, args.step_log2):
      p = 2**log2
      for paradigm in args.paradigms:
        if _estimated_bytes(paradigm, n, p, itemsize) > args.max_memory_gb * 2**30:
          skipped.append(f"{paradigm} n={n} p=2^{log2}")
          continue
        rows.append(run_point(paradigm, n, p, args.dtype, args.repeats, devices))
        if not args.json:
          print(
            f"  {paradigm:17s} n={n} p=2^{log2}: {rows[-1]['seconds'] * 1e3:.3f} ms",
            file=sys.stderr,
            flush=True,
          )
  if args.json:
    print(json.dumps(rows))
  else:
    device = devices[0]
    print(
      f"devices: {len(devices)} x {device.device_kind} ({device.platform}); jax "
      f"{jax.__version__}; dtype {args.dtype}; median of {args.repeats}"
    )
    print(format_table(rows))
  if skipped:
    print(
      f"skipped (over --max-memory-gb {args.max_memory_gb}): {', '.join(skipped)}", file=sys.stderr
    )
  if args.plot:
    plot(rows, args.plot)
    print(f"plot: {args.plot}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
