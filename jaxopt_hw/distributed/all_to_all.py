"""All-to-all aggregation: every worker sends its whole gradient to every other worker.

With n workers and a gradient of p entries, worker i sends its p entries to each of the n − 1 other
workers, so one iteration sends n(n − 1) messages of p entries, and every worker sends
(n − 1)·p entries.

Written as n − 1 cyclic shifts with :func:`jax.lax.ppermute`: shift k sends worker j's vector to
worker j + k (mod n). Each shift is one collective-permute with n source-target pairs (n messages of
p entries), so the compiled program shows exactly the n(n − 1) point-to-point messages of the
definition. (An ``all_gather`` moves the same data, but how many messages it is depends on how the
backend implements it.)

Every worker then adds the n gradients in the same order, g_0 + g_1 + … + g_{n−1}, whatever order
they arrived in, so all workers end with bitwise identical averages and their weights never drift
apart.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxopt_hw.distributed import packing


def shift_pairs(n: int, k: int) -> list[tuple[int, int]]:
  """The source-target pairs of the cyclic shift by ``k``: j -> (j + k) mod n."""
  return [(j, (j + k) % n) for j in range(n)]


def all_to_all_mean(tree, axis_name):
  """The mean of ``tree`` over the workers of ``axis_name``, by direct all-to-all exchange.

  Call inside :func:`jax.shard_map` (or :func:`jax.pmap`) over the axis ``axis_name``.

  Args:
    tree: this worker's gradient (any pytree of arrays).
    axis_name: the mesh axis whose n devices are the workers.

  Returns:
    The average of the n workers' trees, the same (bitwise) on every worker, with ``tree``'s dtypes.
  """
  n = lax.axis_size(axis_name)
  if n == 1:
    return tree
  vector, unflatten = packing.flatten(tree)
  me = lax.axis_index(axis_name)
  # by_distance[k] is the gradient of worker (me − k) mod n.
  by_distance = jnp.stack(
    [vector] + [lax.ppermute(vector, axis_name, shift_pairs(n, k)) for k in range(1, n)]
  )
  total = None
  for source in range(n):
    g = lax.dynamic_index_in_dim(by_distance, (me - source) % n, keepdims=False)
    total = g if total is None else total + g
  return unflatten(total / n)
