"""The three paradigms (and pmean) compute the workers' average, on any pytree, n and p.

Reference: the float64 NumPy mean of the per-worker inputs (independent of JAX's collectives), and
``lax.pmean``; the parameter server's weights against optax applied on one device.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from jaxopt_hw import distributed as dist
from jaxopt_hw.distributed import packing
from jaxopt_hw.errors import UserInputError

# f32 sums of up to 8 terms of size ~1: a few ulps of the largest partial sum.
F32 = dict(rtol=1e-5, atol=2e-6)


def random_tree(rng, n, p, dtype=np.float32):
  """Worker-stacked pytree with p entries per worker over three leaves (a matrix, a vector, a
  scalar)."""
  rows = max(1, (p - 1) // 5)
  sizes = {"w": (rows, min(5, p - 1)) if p > 1 else (0, 0), "s": ()}
  used = int(np.prod(sizes["w"])) + 1
  sizes["b"] = (p - used,)
  return {k: jnp.asarray(rng.normal(size=(n,) + shape), dtype) for k, shape in sizes.items()}


def mean64(tree):
  return jax.tree.map(lambda a: np.asarray(a, np.float64).mean(axis=0), tree)


CASES = [(1, 5), (2, 7), (2, 64), (3, 10), (3, 9), (4, 33), (4, 64), (8, 13), (8, 256)]


@pytest.mark.parametrize("n,p", CASES)
@pytest.mark.parametrize("paradigm", dist.AGGREGATORS)
def test_every_paradigm_returns_the_workers_mean_on_every_worker(paradigm, n, p):
  rng = np.random.default_rng(1000 * n + p)
  tree = random_tree(rng, n, p)
  assert sum(np.size(a[0]) for a in jax.tree.leaves(tree)) == p
  out = dist.aggregate(paradigm, tree)
  expected = mean64(tree)  # the definition of "averaged update", in float64
  pmean = dist.aggregate("pmean", tree)
  for got, want, base in zip(
    jax.tree.leaves(out), jax.tree.leaves(expected), jax.tree.leaves(pmean)
  ):
    assert got.shape[0] == n and got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), np.broadcast_to(want, got.shape), **F32)
    np.testing.assert_allclose(np.asarray(got), np.asarray(base), **F32)
    # Every worker ends with bitwise the same result, so replicas never drift apart.
    assert (np.asarray(got) == np.asarray(got)[:1]).all()


@pytest.mark.parametrize("paradigm", dist.PARADIGMS)
def test_mixed_dtype_pytree_keeps_each_leaf_dtype(paradigm):
  rng = np.random.default_rng(7)
  tree = {
    "a": jnp.asarray(rng.normal(size=(4, 3, 2)), jnp.float64),
    "b": jnp.asarray(rng.normal(size=(4, 5)), jnp.float32),
  }
  out = dist.aggregate(paradigm, tree)
  assert out["a"].dtype == jnp.float64 and out["b"].dtype == jnp.float32
  expected = mean64(tree)
  np.testing.assert_allclose(np.asarray(out["a"][0]), expected["a"], rtol=1e-12)
  np.testing.assert_allclose(np.asarray(out["b"][0]), expected["b"], **F32)


def test_float64_inputs_are_averaged_to_float64_precision():
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(8, 1001)), jnp.float64)
  for paradigm in dist.PARADIGMS:
    out = dist.aggregate(paradigm, x)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(
      np.asarray(out), np.broadcast_to(np.asarray(x).mean(0), (8, 1001)), rtol=1e-13, atol=1e-15
    )


def test_parameter_server_copy_on_the_server_equals_the_workers():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 11)), jnp.float32)
  out = dist.aggregate("parameter_server", x, include_server=True)
  assert out.shape == (4, 11)
  assert (np.asarray(out) == np.asarray(out)[:1]).all()


@pytest.mark.parametrize("n,p", [(4, 10), (3, 7)])
def test_unrolled_ring_equals_looped_ring_bitwise(n, p):
  x = jnp.asarray(np.random.default_rng(n).normal(size=(n, p)), jnp.float32)
  mesh = dist.worker_mesh(n)

  def run(unroll):
    f = jax.shard_map(
      lambda v: dist.ring_allreduce_mean(v[0], "workers", unroll=unroll)[None],
      mesh=mesh,
      in_specs=P("workers"),
      out_specs=P("workers"),
    )
    return np.asarray(jax.jit(f)(x))

  np.testing.assert_array_equal(run(True), run(False))


def test_ring_reduce_scatter_leaves_worker_i_with_the_sum_of_chunk_i_plus_1():
  n, c = 4, 3
  x = jnp.asarray(np.random.default_rng(5).normal(size=(n, n, c)), jnp.float64)
  mesh = dist.worker_mesh(n)
  f = jax.shard_map(
    lambda v: dist.ring_reduce_scatter(v[0], "workers")[None],
    mesh=mesh,
    in_specs=P("workers"),
    out_specs=P("workers"),
  )
  out = np.asarray(jax.jit(f)(x))
  total = np.asarray(x).sum(axis=0)  # [n, c]: the sum over workers of each chunk
  for i in range(n):
    np.testing.assert_allclose(out[i, (i + 1) % n], total[(i + 1) % n], rtol=1e-13)


@pytest.mark.parametrize("paradigm", ["all_to_all", "ring_allreduce"])
def test_paradigms_run_under_pmap_too(paradigm):
  x = jnp.asarray(np.random.default_rng(11).normal(size=(4, 9)), jnp.float32)
  out = jax.pmap(lambda v: dist.mean_fn(paradigm)(v, "i"), axis_name="i")(x)
  np.testing.assert_allclose(
    np.asarray(out), np.broadcast_to(np.asarray(x, np.float64).mean(0), (4, 9)), **F32
  )


def _ps_steps(optimizer, params, worker_grads, steps_grads):
  """Run parameter_server_update for each gradient set in ``steps_grads``; every device's
  weights."""
  n = worker_grads
  mesh = dist.worker_mesh(n, server=True)
  state = jax.tree.map(lambda a: jnp.broadcast_to(a, (n + 1,) + a.shape), optimizer.init(params))

  def per_device(grads, params, state):
    new_params, new_state = dist.parameter_server_update(
      jax.tree.map(lambda a: a[0], grads),
      params,
      jax.tree.map(lambda a: a[0], state),
      optimizer,
      "workers",
    )
    return jax.tree.map(lambda a: a[None], new_params), jax.tree.map(lambda a: a[None], new_state)

  step = jax.jit(
    jax.shard_map(
      per_device,
      mesh=mesh,
      in_specs=(P("workers"), P(), P("workers")),
      out_specs=(P("workers"), P("workers")),
      check_vma=False,
    )
  )
  copies = None
  for grads in steps_grads:
    padded = jax.tree.map(lambda a: jnp.concatenate([a, jnp.zeros_like(a[:1])]), grads)
    copies, state = step(padded, params, state)
    params = jax.tree.map(lambda a: a[n], copies)  # the server's weights
  return copies


@pytest.mark.parametrize("n", [1, 2, 3])
def test_parameter_server_weights_equal_a_single_device_update(n):
  rng = np.random.default_rng(20 + n)
  params = {
    "w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float64),
    "b": jnp.asarray(rng.normal(size=(2,)), jnp.float64),
  }
  grads = [
    jax.tree.map(lambda a: jnp.asarray(rng.normal(size=(n,) + a.shape), jnp.float64), params)
    for _ in range(3)
  ]
  optimizer = optax.adam(0.1)  # stateful: the server's state must carry over between iterations
  copies = _ps_steps(optimizer, params, n, grads)
  # Reference: optax on one device, fed the NumPy float64 mean gradient of each iteration.
  ref_params, ref_state = params, optimizer.init(params)
  for g in grads:
    updates, ref_state = optimizer.update(
      jax.tree.map(jnp.asarray, mean64(g)), ref_state, ref_params
    )
    ref_params = optax.apply_updates(ref_params, updates)
  for got, want in zip(jax.tree.leaves(copies), jax.tree.leaves(ref_params)):
    np.testing.assert_allclose(
      np.asarray(got), np.broadcast_to(np.asarray(want), got.shape), rtol=1e-12, atol=1e-14
    )


def test_padding_round_trips_for_p_not_divisible_by_n():
  v = jnp.arange(10.0, dtype=jnp.float32)
  chunks = packing.to_chunks(v, 4)
  assert chunks.shape == (4, 3) and float(chunks[3, 1]) == 0.0 and float(chunks[3, 2]) == 0.0
  np.testing.assert_array_equal(np.asarray(packing.from_chunks(chunks, 10)), np.arange(10.0))


def test_more_workers_than_devices_says_how_to_emulate_cpu_devices():
  have = len(jax.devices())
  with pytest.raises(UserInputError) as e:
    dist.aggregate("ring_allreduce", jnp.zeros((have + 1, 3), jnp.float32))
  message = str(e.value)
  assert "\n" not in message and f"need {have + 1} devices" in message
  assert "jax_num_cpu_devices" in message and "xla_force_host_platform_device_count" in message


def test_parameter_server_counts_the_server_device():
  have = len(jax.devices())
  with pytest.raises(
    UserInputError, match=f"{have} workers and a parameter server need {have + 1} devices"
  ):
    dist.aggregate("parameter_server", jnp.zeros((have, 3), jnp.float32))


@pytest.mark.parametrize("n", [0, -2, 2.5, True])
def test_invalid_worker_counts_are_refused(n):
  with pytest.raises(UserInputError, match="allowed: an integer >= 1"):
    dist.worker_mesh(n)


def test_unknown_paradigm_gets_a_suggestion():
  with pytest.raises(UserInputError, match="did you mean 'ring_allreduce'"):
    dist.mean_fn("ring_all_reduce")
  with pytest.raises(
    UserInputError, match="allowed: all_to_all, parameter_server, ring_allreduce, pmean"
  ):
    dist.aggregate("gossip", jnp.zeros((2, 3), jnp.float32))


def test_too_few_accelerators_fall_back_to_emulated_cpu_devices():
  from jaxopt_hw.distributed.mesh import pick_devices

  gpu, cpu = ["gpu0"], [f"cpu{i}" for i in range(16)]
  assert pick_devices(4, gpu, cpu) == cpu  # one GPU, 4 workers: the emulated CPU devices
  assert pick_devices(1, gpu, cpu) == gpu  # enough accelerators: use them
  assert (
    pick_devices(20, gpu, cpu) == gpu
  )  # neither suffices: the caller reports the default backend
