"""The paradigms by name, and a host-level ``aggregate`` that runs one on stacked per-worker inputs.

Per-device functions (call them inside :func:`jax.shard_map` or :func:`jax.pmap`), by name:

* ``all_to_all``: :func:`all_to_all.all_to_all_mean`, on an axis of n devices;
* ``parameter_server``: :func:`parameter_server.parameter_server_mean`, on an axis of n + 1 devices
  (the last is the server);
* ``ring_allreduce``: :func:`ring.ring_allreduce_mean`, on an axis of n devices;
* ``pmean``: :func:`pmean_mean` (``jax.lax.pmean``), on an axis of n devices — the baseline.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec as P

from jaxopt_hw.distributed import mesh as mesh_lib
from jaxopt_hw.distributed.all_to_all import all_to_all_mean
from jaxopt_hw.distributed.parameter_server import parameter_server_mean
from jaxopt_hw.distributed.ring import ring_allreduce_mean
from jaxopt_hw.errors import unknown_choice
from jaxopt_hw.names import AGGREGATORS, BASELINE, PARADIGMS

# The lists of names live in the jax-free jaxopt_hw.names; they are re-exported here because
# callers reach them as paradigms.AGGREGATORS.
__all__ = [
  "AGGREGATORS",
  "BASELINE",
  "PARADIGMS",
  "aggregate",
  "check_paradigm",
  "mean_fn",
  "mesh_for",
  "num_devices",
  "pmean_mean",
  "uses_server",
]


def pmean_mean(tree, axis_name):
  """The baseline: :func:`jax.lax.pmean` of every leaf (one all-reduce per leaf)."""
  return lax.pmean(tree, axis_name)


_MEAN_FNS = {
  "all_to_all": all_to_all_mean,
  "parameter_server": parameter_server_mean,
  "ring_allreduce": ring_allreduce_mean,
  "pmean": pmean_mean,
}


def check_paradigm(name, field: str = "paradigm", allowed=AGGREGATORS) -> str:
  """``name`` if it is one of ``allowed``, else a :class:`UserInputError` with a suggestion."""
  if name not in allowed:
    raise unknown_choice(field, name, allowed)
  return name


def mean_fn(name: str) -> Callable:
  """The per-device function ``fn(tree, axis_name) -> mean tree`` of paradigm ``name``."""
  return _MEAN_FNS[check_paradigm(name)]


def uses_server(name: str) -> bool:
  """Whether paradigm ``name`` needs a server device besides its workers."""
  return check_paradigm(name) == "parameter_server"


def num_devices(name: str, n: int) -> int:
  """Devices paradigm ``name`` needs for ``n`` workers (n + 1 for the parameter server)."""
  return mesh_lib.check_workers(n) + (1 if uses_server(name) else 0)


def mesh_for(name: str, n: int, axis_name: str = mesh_lib.AXIS, devices=None) -> jax.sharding.Mesh:
  """The mesh paradigm ``name`` runs on with ``n`` workers."""
  return mesh_lib.worker_mesh(n, server=uses_server(name), axis_name=axis_name, devices=devices)


@functools.lru_cache(maxsize=128)
def _compiled_aggregate(name: str, n: int, axis_name: str, mesh: jax.sharding.Mesh):
  fn = mean_fn(name)

  def per_device(local):
    tree = jax.tree.map(lambda a: a[0], local)
    return jax.tree.map(lambda a: a[None], fn(tree, axis_name))

  return jax.jit(
    jax.shard_map(per_device, mesh=mesh, in_specs=P(axis_name), out_specs=P(axis_name))
  )


def aggregate(
  name: str, per_worker, *, axis_name: str = mesh_lib.AXIS, include_server: bool = False
):
  """Average per-worker trees with paradigm ``name`` on a mesh of emulated or real devices.

  Args:
    name: one of :data:`AGGREGATORS` (the paradigms and the baseline, see :mod:`jaxopt_hw.names`).
    per_worker: a pytree whose leaves have a leading axis of length n: row i is worker i's value.
    axis_name: the mesh axis name.
    include_server: for the parameter server, also return the server's copy (as row n).

  Returns:
    The pytree with every leaf's row i holding worker i's result (every row equals the mean).
  """
  check_paradigm(name)
  leaves = jax.tree.leaves(per_worker)
  if not leaves:
    return per_worker
  n = leaves[0].shape[0]
  mesh = mesh_for(name, n, axis_name)
  if uses_server(name):
    # The server has no data of its own: its input row is zeros and is ignored.
    per_worker = jax.tree.map(lambda a: jnp.concatenate([a, jnp.zeros_like(a[:1])]), per_worker)
  per_worker = jax.device_put(per_worker, jax.sharding.NamedSharding(mesh, P(axis_name)))
  out = _compiled_aggregate(name, n, axis_name, mesh)(per_worker)
  if uses_server(name) and not include_server:
    out = jax.tree.map(lambda a: a[:n], out)
  return out
