"""Distributed gradient aggregation written with JAX collectives, and what it costs in messages.

Three paradigms of the homework (Q5), each a per-device function ``fn(tree, axis_name)`` to call
inside :func:`jax.shard_map` (or :func:`jax.pmap`), each returning the workers' average:

* :func:`all_to_all_mean` — every worker sends its gradient to every other worker;
* :func:`parameter_server_mean` / :func:`parameter_server_update` — workers send gradients to a
  server device, which updates the weights and sends them back;
* :func:`ring_allreduce_mean` — reduce-scatter then all-gather around a ring;

plus :func:`pmean_mean`, XLA's all-reduce, as the baseline. :func:`aggregate` runs any of them on
stacked per-worker inputs; :mod:`accounting` reads messages and bytes off the compiled programs
(whose HLO text :mod:`hlo` parses);
:mod:`data_parallel` trains a flax model with any of them; :mod:`multihost` runs them across
processes.
"""

from jaxopt_hw.distributed import hlo
from jaxopt_hw.distributed.accounting import MessageCount, count_messages, measure
from jaxopt_hw.distributed.all_to_all import all_to_all_mean
from jaxopt_hw.distributed.mesh import AXIS, make_mesh, worker_mesh
from jaxopt_hw.distributed.paradigms import (
  AGGREGATORS,
  BASELINE,
  PARADIGMS,
  aggregate,
  check_paradigm,
  mean_fn,
  mesh_for,
  num_devices,
  pmean_mean,
  uses_server,
)
from jaxopt_hw.distributed.parameter_server import parameter_server_mean, parameter_server_update
from jaxopt_hw.distributed.ring import ring_all_gather, ring_allreduce_mean, ring_reduce_scatter

__all__ = [
  "AGGREGATORS",
  "AXIS",
  "BASELINE",
  "MessageCount",
  "PARADIGMS",
  "aggregate",
  "all_to_all_mean",
  "check_paradigm",
  "count_messages",
  "hlo",
  "make_mesh",
  "mean_fn",
  "measure",
  "mesh_for",
  "num_devices",
  "parameter_server_mean",
  "parameter_server_update",
  "pmean_mean",
  "ring_all_gather",
  "ring_allreduce_mean",
  "ring_reduce_scatter",
  "uses_server",
  "worker_mesh",
]
