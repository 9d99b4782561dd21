"""Ring all-reduce: reduce-scatter then all-gather around a ring, with point-to-point messages.

The n workers form the ring 0 → 1 → … → n−1 → 0. Each splits its p-entry vector into n chunks of
c = ceil(p / n) entries (zero-padded when n does not divide p, see :mod:`packing`).

* Reduce-scatter, n − 1 steps: at step s worker i sends chunk (i − s) mod n to worker i + 1, which
  adds it to its own copy of that chunk. Afterwards worker i holds the full sum of chunk
  (i + 1) mod n.
* All-gather, n − 1 steps: at step s worker i sends chunk (i + 1 − s) mod n (fully reduced) to
  worker i + 1, which stores it.

Every step is one :func:`jax.lax.ppermute` in which all n workers send one chunk: n messages of c
entries. So one all-reduce sends 2(n − 1)·n messages of c entries, and each worker sends
2(n − 1)·c ≈ 2(n − 1)/n·p entries — the bandwidth-optimal amount for an all-reduce.

Each chunk's sum is built once, along the ring, and then copied, so every worker ends with bitwise
identical results. The mean divides each reduced chunk by n once, on its owner, before the
all-gather.

The steps run in a :func:`jax.lax.fori_loop` (one collective-permute in a ``while`` body with a
known trip count in the compiled program) or, with ``unroll=True``, as 2(n − 1) separate
collective-permutes.
"""

from __future__ import annotations

from jax import lax

from jaxopt_hw.distributed import packing


def ring_pairs(n: int) -> list[tuple[int, int]]:
  """Each worker sends to its right neighbour: i -> (i + 1) mod n."""
  return [(i, (i + 1) % n) for i in range(n)]


def _steps(count, step, carry, unroll):
  if unroll:
    for s in range(count):
      carry = step(s, carry)
    return carry
  return lax.fori_loop(0, count, step, carry)


def ring_reduce_scatter(chunks, axis_name, *, unroll: bool = False):
  """Reduce-scatter an ``[n, c]`` array around the ring.

  Returns the array in which row (i + 1) mod n of worker i holds the sum over all workers of that
  row (the other rows hold partial sums).
  """
  n = lax.axis_size(axis_name)
  me = lax.axis_index(axis_name)
  pairs = ring_pairs(n)

  def step(s, chunks):
    sent = lax.dynamic_index_in_dim(chunks, (me - s) % n, keepdims=False)
    received = lax.ppermute(sent, axis_name, pairs)
    row = (me - 1 - s) % n
    mine = lax.dynamic_index_in_dim(chunks, row, keepdims=False)
    return lax.dynamic_update_index_in_dim(chunks, mine + received, row, 0)

  return _steps(n - 1, step, chunks, unroll)


def ring_all_gather(chunks, axis_name, *, unroll: bool = False):
  """All-gather an ``[n, c]`` array around the ring: worker i contributes row (i + 1) mod n.

  Returns the array whose every row is its owner's row, the same on every worker.
  """
  n = lax.axis_size(axis_name)
  me = lax.axis_index(axis_name)
  pairs = ring_pairs(n)

  def step(s, chunks):
    sent = lax.dynamic_index_in_dim(chunks, (me + 1 - s) % n, keepdims=False)
    received = lax.ppermute(sent, axis_name, pairs)
    return lax.dynamic_update_index_in_dim(chunks, received, (me - s) % n, 0)

  return _steps(n - 1, step, chunks, unroll)


def ring_allreduce_mean(tree, axis_name, *, unroll: bool = False):
  """The mean of ``tree`` over the workers of ``axis_name``, by ring all-reduce.

  Call inside :func:`jax.shard_map` (or :func:`jax.pmap`) over the axis ``axis_name``.

  Args:
    tree: this worker's gradient (any pytree of arrays).
    axis_name: the mesh axis whose n devices form the ring.
    unroll: write the 2(n − 1) steps out instead of looping (same messages, bigger program).

  Returns:
    The average of the n workers' trees, the same (bitwise) on every worker, with ``tree``'s dtypes.
  """
  n = lax.axis_size(axis_name)
  if n == 1:
    return tree
  vector, unflatten = packing.flatten(tree)
  p = vector.shape[0]
  me = lax.axis_index(axis_name)
  chunks = ring_reduce_scatter(packing.to_chunks(vector, n), axis_name, unroll=unroll)
  owned = (me + 1) % n
  mean = lax.dynamic_index_in_dim(chunks, owned, keepdims=False) / n
  chunks = lax.dynamic_update_index_in_dim(chunks, mean, owned, 0)
  chunks = ring_all_gather(chunks, axis_name, unroll=unroll)
  return unflatten(packing.from_chunks(chunks, p))
