"""simplified_adam: the homework's Q2(b) rule as an optax transform, against float64 references."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_hw.transforms.simplified_adam import scale_by_epoch_rms, simplified_adam


def _numpy_update(G, lr, eps=0.0):
  """Independent float64 reference: −α · mean_i g_i / (sqrt(mean_i g_i²) + ε),
  0 where all g_ij = 0."""
  G = np.asarray(G, np.float64)
  mean = G.mean(axis=0)
  rms = np.sqrt((G**2).mean(axis=0))
  out = np.zeros_like(mean)
  nz = np.any(G != 0, axis=0)
  out[nz] = -lr * mean[nz] / (rms[nz] + eps)
  return out


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32, jnp.float64])
def test_one_example_gives_exactly_minus_lr_times_sign(dtype):
  # With one example, mean g² = g², so M g = g/|g| = sign(g) (0 for g = 0).
  rng = np.random.default_rng(0)
  g = rng.standard_normal(1000) * 10.0 ** rng.integers(-20, 20, 1000)
  g[::7] = 0.0
  g = jnp.asarray(g, dtype)
  tx = simplified_adam(0.25)
  u, _ = tx.update(g, tx.init(g))
  assert u.dtype == dtype
  np.testing.assert_array_equal(
    np.asarray(u, np.float64), -0.25 * np.sign(np.asarray(g, np.float64))
  )


def test_tiny_gradients_whose_squares_underflow_still_give_the_sign():
  # g² underflows to 0 in float32 (the smallest normal is 1.2e-38); subnormal g would be flushed
  # to zero by XLA on CPU and count as a zero gradient
  g = jnp.array([1e-30, -1e-25, 3e-37], jnp.float32)
  tx = simplified_adam(1.0)
  u, _ = tx.update(g, tx.init(g))
  np.testing.assert_array_equal(np.asarray(u), [-1.0, 1.0, -1.0])


def test_zero_gradient_gives_zero_update_never_nan_whatever_eps():
  for eps in (0.0, 1e-8):
    tx = simplified_adam(0.1, eps=eps)
    u, _ = tx.update(jnp.zeros(4), tx.init(jnp.zeros(4)))
    np.testing.assert_array_equal(np.asarray(u), 0.0)
    tx = simplified_adam(0.1, eps=eps, per_example=True)
    u, _ = tx.update(jnp.zeros((3, 4)), tx.init(jnp.zeros(4)))
    np.testing.assert_array_equal(np.asarray(u), 0.0)


def test_nan_gradients_stay_visible():
  tx = simplified_adam(0.1)
  u, _ = tx.update(jnp.array([jnp.nan, 1.0]), tx.init(jnp.zeros(2)))
  assert np.isnan(np.asarray(u)[0]) and np.asarray(u)[1] == -0.1


@pytest.mark.parametrize("eps", [0.0, 1e-3])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_per_example_update_equals_the_float64_formula(n, eps):
  rng = np.random.default_rng(n)
  G = rng.standard_normal((n, 6)) * np.array([1e-3, 1, 10, 0, 1, 1])
  G[:, 4] = 0.0
  G[1:, 5] = 0.0  # only one example has a gradient on coordinate 5
  tx = simplified_adam(0.3, eps=eps, per_example=True)
  u, _ = tx.update(jnp.asarray(G), tx.init(jnp.zeros(6)))
  np.testing.assert_allclose(np.asarray(u), _numpy_update(G, 0.3, eps), rtol=1e-13, atol=1e-300)


def test_per_example_update_never_moves_a_coordinate_more_than_lr():
  # Cauchy–Schwarz: |mean g| <= sqrt(mean g²), equality iff all examples agree
  G = np.random.default_rng(1).standard_normal((7, 50))
  tx = simplified_adam(0.5, per_example=True)
  u, _ = tx.update(jnp.asarray(G), tx.init(jnp.zeros(50)))
  assert np.max(np.abs(np.asarray(u))) <= 0.5 * (1 + 1e-15)
  same = np.tile(np.arange(1.0, 4.0), (4, 1))  # identical examples: the sign again
  u, _ = tx.update(jnp.asarray(same), tx.init(jnp.zeros(3)))
  np.testing.assert_allclose(np.asarray(u), -0.5)


def test_schedules_pytrees_and_jit():
  sched = optax.exponential_decay(1.0, transition_steps=1, decay_rate=0.5)
  tx = simplified_adam(sched)
  params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(3)}
  grads = {"w": jnp.array([[1.0, -2.0], [0.0, 3.0]]), "b": jnp.array([-1.0, 0.0, 2.0])}
  state = tx.init(params)
  update = jax.jit(tx.update)
  for t in range(3):
    u, state = update(grads, state)
    np.testing.assert_array_equal(np.asarray(u["w"]), -(0.5**t) * np.sign(np.asarray(grads["w"])))
    np.testing.assert_array_equal(np.asarray(u["b"]), -(0.5**t) * np.sign(np.asarray(grads["b"])))


def test_learning_rates_vmapped_through_inject_hyperparams():
  tx = optax.inject_hyperparams(simplified_adam)(learning_rate=0.1)
  g = jnp.array([2.0, -3.0])

  def one(lr):
    state = tx.init(jnp.zeros(2))
    state.hyperparams["learning_rate"] = lr
    return tx.update(g, state)[0]

  out = jax.vmap(one)(jnp.array([0.1, 0.2]))
  np.testing.assert_allclose(np.asarray(out), [[-0.1, 0.1], [-0.2, 0.2]])


def test_scale_by_epoch_rms_alone_has_no_learning_rate_and_no_sign_flip():
  tx = scale_by_epoch_rms()
  u, _ = tx.update(jnp.array([3.0, -0.2]), tx.init(jnp.zeros(2)))
  np.testing.assert_array_equal(np.asarray(u), [1.0, -1.0])
  with pytest.raises(ValueError, match="eps"):
    scale_by_epoch_rms(eps=-1.0)


def test_homework_trajectory_stays_on_the_diagonal_line():
  # ∇f = −2(1 − aᵀθ)a with a > 0, so sign(∇f) = −sign(1 − aᵀθ)·(1,1,1): every step adds the same
  # amount to each coordinate and θ_t = c_t·(1,1,1) exactly (same float operations per coordinate).
  a = jnp.array([1.0, 0.1, 0.01], jnp.float64)
  tx = simplified_adam(lambda t: 1.0 / (t + 1))
  theta = jnp.zeros(3, jnp.float64)
  state = tx.init(theta)
  for _ in range(50):
    g = jax.grad(lambda th: (1 - a @ th) ** 2)(theta)
    u, state = tx.update(g, state)
    theta = optax.apply_updates(theta, u)
    assert theta[0] == theta[1] == theta[2]
