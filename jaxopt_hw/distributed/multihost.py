"""The same paradigms across several processes (hosts), on JAX's own multi-process runtime.

Every process runs the same program. After :func:`initialize`, ``jax.devices()`` lists the devices
of all processes, a mesh over them spans the processes, and the collectives inside
``jax.shard_map`` cross process boundaries: Gloo over TCP on CPU, NCCL on GPU. Nothing here is a
transport of its own.

On each host (process ``i`` of ``N``)::

  from jaxopt_hw.distributed import multihost
  multihost.initialize("10.0.0.1:1234", num_processes=N, process_id=i)  # before any JAX computation
  mesh = multihost.global_mesh()                                         # all devices of all hosts

or, to check a set-up end to end, on each host::

  python -m jaxopt_hw.distributed.multihost --coordinator 10.0.0.1:1234 \\
      --num-processes 2 --process-id 0 --local-devices 4

which runs every paradigm over all the devices and prints one JSON line with the largest difference
from ``pmean`` and from the float64 mean (``"ok": true`` when they agree to float32 rounding).
On one machine, ``--local-devices`` emulates that many CPU devices per process.
"""

from __future__ import annotations

import argparse
import json
import sys

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxopt_hw.distributed import paradigms
from jaxopt_hw.distributed.mesh import AXIS, make_mesh
from jaxopt_hw.names import AGGREGATORS


def initialize(
  coordinator_address: str,
  num_processes: int,
  process_id: int,
  *,
  local_cpu_devices: int | None = None,
  cpu_collectives: str = "gloo",
  timeout_s: int = 60,
) -> None:
  """Join the multi-process runtime; call it in every process before JAX computes anything.

  Args:
    coordinator_address: ``host:port`` of process 0 (every process passes the same address).
    num_processes: how many processes take part.
    process_id: this process's index, 0 … num_processes − 1.
    local_cpu_devices: emulate this many CPU devices in this process (CPU only; None keeps the
      default).
    cpu_collectives: the cross-process CPU collectives (``"gloo"``; ``"mpi"`` needs an MPI build).
    timeout_s: how long to wait for the other processes.
  """
  jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
  if local_cpu_devices is not None:
    jax.config.update("jax_num_cpu_devices", int(local_cpu_devices))
  jax.distributed.initialize(
    coordinator_address=coordinator_address,
    num_processes=num_processes,
    process_id=process_id,
    initialization_timeout=timeout_s,
  )


def global_mesh(num_devices: int | None = None, axis_name: str = AXIS):
  """A 1-D mesh over the first ``num_devices`` devices of all processes (default: all)."""
  return make_mesh(num_devices or jax.device_count(), axis_name)


def aggregate_global(paradigm: str, per_worker: np.ndarray, axis_name: str = AXIS):
  """Run ``paradigm`` on a ``[n, p]`` array (the same on every process) over all processes' devices.

  Returns this process's rows of the result as ``{worker index: row}`` (workers only).
  """
  n = per_worker.shape[0]
  mesh = paradigms.mesh_for(paradigm, n, axis_name)
  if paradigms.uses_server(paradigm):
    per_worker = np.concatenate([per_worker, np.zeros_like(per_worker[:1])])
  fn = paradigms.mean_fn(paradigm)
  run = jax.jit(
    jax.shard_map(
      lambda v: fn(v[0], axis_name)[None], mesh=mesh, in_specs=P(axis_name), out_specs=P(axis_name)
    )
  )
  global_in = jax.make_array_from_callback(
    per_worker.shape, NamedSharding(mesh, P(axis_name)), lambda index: per_worker[index]
  )
  out = run(global_in)
  rows = {}
  for shard in out.addressable_shards:
    start = shard.index[0].start or 0
    for k, row in enumerate(np.asarray(shard.data)):
      if start + k < n:
        rows[start + k] = row
  return rows


def check_paradigms(p: int = 1000, seed: int = 0, paradigm_names=None) -> dict:
  """Every paradigm against ``pmean`` and the float64 mean, over all devices of all processes."""
  devices = jax.device_count()
  data = np.random.default_rng(seed).normal(size=(devices, p)).astype(np.float32)
  names = list(paradigm_names or AGGREGATORS)
  report = {
    "process_id": jax.process_index(),
    "process_count": jax.process_count(),
    "devices": devices,
    "local_devices": jax.local_device_count(),
    "p": p,
  }
  base = aggregate_global("pmean", data)
  results = {}
  for name in names:
    # The parameter server keeps one device for itself.
    n = devices - (paradigms.num_devices(name, 1) - 1)
    mean64 = data[:n].astype(np.float64).mean(axis=0)
    rows = aggregate_global(name, data[:n])
    base_n = base if n == devices else aggregate_global("pmean", data[:n])
    results[name] = {
      "n": n,
      "local_workers": sorted(rows),
      "max_diff_vs_pmean": max(float(np.abs(rows[w] - base_n[w]).max()) for w in rows)
      if rows
      else 0.0,
      "max_diff_vs_mean64": max(float(np.abs(rows[w] - mean64).max()) for w in rows)
      if rows
      else 0.0,
    }
  report["paradigms"] = results
  report["ok"] = all(
    r["max_diff_vs_pmean"] < 1e-5 and r["max_diff_vs_mean64"] < 1e-5 for r in results.values()
  )
  return report


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m jaxopt_hw.distributed.multihost",
    description="Check every paradigm across processes (run once per process).",
  )
  parser.add_argument("--coordinator", required=True, help="host:port of process 0")
  parser.add_argument("--num-processes", type=int, required=True)
  parser.add_argument("--process-id", type=int, required=True)
  parser.add_argument(
    "--local-devices", type=int, default=None, help="emulated CPU devices in this process"
  )
  parser.add_argument("--p", type=int, default=1000, help="gradient entries")
  parser.add_argument(
    "--timeout", type=int, default=60, help="seconds to wait for the other processes"
  )
  args = parser.parse_args(argv)
  initialize(
    args.coordinator,
    args.num_processes,
    args.process_id,
    local_cpu_devices=args.local_devices,
    timeout_s=args.timeout,
  )
  try:
    report = check_paradigms(args.p)
  finally:
    jax.distributed.shutdown()
  print(json.dumps(report), flush=True)
  return 0 if report["ok"] else 1


if __name__ == "__main__":
  sys.exit(main())
