"""One pytree as one vector, and one vector as n equal chunks.

Every paradigm sends "the gradient" as a single vector of p entries, whatever pytree it came from:
:func:`flatten` concatenates the leaves with :func:`jax.flatten_util.ravel_pytree`. Leaves of one
dtype travel in that dtype; leaves of mixed dtypes travel in their common promoted dtype (as
``ravel_pytree`` does), and :func:`flatten`'s ``unflatten`` casts every leaf back to its own dtype,
so results always have the dtypes of the inputs.

The ring splits the vector into n chunks of c = ceil(p / n) entries. When n does not divide p the
last chunk is padded with n·c − p zeros: those zeros are sent like real entries (so the measured
message size is ceil(p / n)) and are dropped again by :func:`from_chunks`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def flatten(tree) -> tuple[jax.Array, Callable[[jax.Array], object]]:
  """``(vector, unflatten)``: the leaves of ``tree`` as one 1-D vector, and the inverse map."""
  return ravel_pytree(tree)


def chunk_size(p: int, n: int) -> int:
  """Entries per chunk when p entries are cut into n chunks: ceil(p / n)."""
  return -(-p // n)


def to_chunks(vector: jax.Array, n: int) -> jax.Array:
  """``vector`` (length p) as an ``[n, ceil(p/n)]`` array, zero-padded at the end."""
  p = vector.shape[0]
  c = chunk_size(p, n)
  return jnp.pad(vector, (0, n * c - p)).reshape(n, c)


def from_chunks(chunks: jax.Array, p: int) -> jax.Array:
  """The first ``p`` entries of ``chunks`` read row by row (drops the padding of
  :func:`to_chunks`)."""
  return chunks.reshape(-1)[:p]
