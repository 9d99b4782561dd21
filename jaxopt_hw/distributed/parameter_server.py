"""Parameter server: n workers send gradients to one server, which updates and sends weights back.

The mesh axis has n + 1 devices: workers 0 … n−1 and the server, device n (the last). The server is
a device of its own, as in the homework ("a machine separate from the n workers"); it has no data.

* Gather: each worker sends its p-entry gradient to the server. :func:`jax.lax.ppermute` refuses a
  repeated destination, so this is n permutes with one source-target pair each.
* The server averages the n gradients (in the fixed order g_0 + … + g_{n−1}) and, in
  :func:`parameter_server_update`, applies the optimizer update to the weights it holds; the workers
  skip that computation (a :func:`jax.lax.cond` on the device index).
* Broadcast: the server sends the p new weights (or the mean gradient, in
  :func:`parameter_server_mean`) to each worker: n more single-pair permutes.

One iteration is therefore 2n messages of p entries. Each worker sends p entries; the server sends
n·p, which is why the server's link is the bottleneck as n grows.

The optimizer state lives on the server: on the workers :func:`parameter_server_update` returns the
state it was given, unchanged.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax
from jax import lax

from jaxopt_hw.distributed import packing


def num_workers(axis_name) -> int:
  """n, for an axis of n workers and one server."""
  size = lax.axis_size(axis_name)
  if size < 2:
    raise ValueError(
      "the parameter server needs an axis of n + 1 >= 2 devices (n workers and a server); "
      f"axis {axis_name!r} has {size}"
    )
  return size - 1


def _gather_to_server(vector, axis_name, n):
  """The workers' vectors as received by the server (zeros on every other device)."""
  return [lax.ppermute(vector, axis_name, [(w, n)]) for w in range(n)]


def _broadcast_from_server(vector, axis_name, n):
  """The server's ``vector`` on every device (the server keeps its own)."""
  me = lax.axis_index(axis_name)
  out = vector
  for w in range(n):
    received = lax.ppermute(vector, axis_name, [(n, w)])
    out = jnp.where(me == w, received, out)
  return out


def _average(vectors):
  total = vectors[0]
  for v in vectors[1:]:
    total = total + v
  return total / len(vectors)


def parameter_server_mean(tree, axis_name):
  """The mean of the workers' ``tree``, computed on the server and sent back to every worker.

  Call inside :func:`jax.shard_map` over an axis of n + 1 devices; the server's (last) input is
  ignored. Returns the average of the n workers' trees on every device, server included.
  """
  n = num_workers(axis_name)
  vector, unflatten = packing.flatten(tree)
  mean = _average(_gather_to_server(vector, axis_name, n))
  return unflatten(_broadcast_from_server(mean, axis_name, n))


def parameter_server_update(
  grads, params, opt_state, optimizer: optax.GradientTransformation, axis_name
):
  """One parameter-server iteration: gather gradients, update on the server, send weights back.

  Args:
    grads: this worker's gradient (pytree like ``params``); ignored on the server.
    params: the weights (the server's copy is the one that is updated).
    opt_state: ``optimizer``'s state; only the server's copy is used and advanced.
    optimizer: any optax ``GradientTransformation``; it receives the mean gradient.
    axis_name: the mesh axis of n workers + 1 server (the last device).

  Returns:
    ``(new_params, new_opt_state)``: the server's new weights on every device, and the server's new
    optimizer state on the server (each worker's ``opt_state`` is returned unchanged).
  """
  n = num_workers(axis_name)
  g_vector, g_unflatten = packing.flatten(grads)
  received = _gather_to_server(g_vector, axis_name, n)
  is_server = lax.axis_index(axis_name) == n

  def server_step(operands):
    params, opt_state, received = operands
    updates, new_state = optimizer.update(g_unflatten(_average(received)), opt_state, params)
    return optax.apply_updates(params, updates), new_state

  def worker_step(operands):
    params, opt_state, _ = operands
    return params, opt_state

  new_params, new_state = lax.cond(
    is_server, server_step, worker_step, (params, opt_state, received)
  )
  p_vector, p_unflatten = packing.flatten(new_params)
  return p_unflatten(_broadcast_from_server(p_vector, axis_name, n)), new_state
