"""Norm-based optimizers that train networks: muon, scion, a norm per leaf — against optax.

The migration table of the README, proven over 20+ steps on a small MLP and a small CNN: each row is
a configuration of this library and the optax optimizer it reproduces (optax is the reference);
the hand-written steps (SVD polar factors from NumPy, RMS and row normalisation) are float64 NumPy.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from optax.contrib import MuonDimensionNumbers

import jaxopt_hw
from jaxopt_hw import duality
from jaxopt_hw.errors import UserInputError

# ------------------------------------------------------------------------------------------------
# Two small networks as pure functions of a parameter dict, in float32.

_RNG = np.random.default_rng(0)
_X = jnp.asarray(_RNG.standard_normal((32, 6)), jnp.float32)
_Y = jnp.sin(_X[:, :2]) + 0.1 * _X[:, 2:4]
_IMAGES = jnp.asarray(_RNG.standard_normal((8, 6, 6, 2)), jnp.float32)
_LABELS = jnp.asarray(_RNG.standard_normal((8, 3)), jnp.float32)


def _mlp_params(seed=0):
  r = np.random.default_rng(seed)
  layer = lambda i, o: {
    "kernel": jnp.asarray(r.standard_normal((i, o)) / np.sqrt(i), jnp.float32),
    "bias": jnp.asarray(0.1 * r.standard_normal(o), jnp.float32),
  }
  return {"dense0": layer(6, 16), "dense1": layer(16, 16), "out": layer(16, 2)}


def _mlp_loss(p):
  h = jnp.tanh(_X @ p["dense0"]["kernel"] + p["dense0"]["bias"])
  h = jnp.tanh(h @ p["dense1"]["kernel"] + p["dense1"]["bias"])
  return jnp.mean((h @ p["out"]["kernel"] + p["out"]["bias"] - _Y) ** 2)


def _cnn_params(seed=0):
  r = np.random.default_rng(seed)
  return {
    "conv": {
      "kernel": jnp.asarray(r.standard_normal((3, 3, 2, 4)) / np.sqrt(18), jnp.float32),
      "bias": jnp.zeros(4, jnp.float32),
    },
    "head": {
      "kernel": jnp.asarray(r.standard_normal((4, 3)) / 2, jnp.float32),
      "bias": jnp.zeros(3, jnp.float32),
    },
  }


def _cnn_loss(p):
  h = jax.lax.conv_general_dilated(
    _IMAGES, p["conv"]["kernel"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  h = jnp.mean(jax.nn.relu(h + p["conv"]["bias"]), axis=(1, 2))
  return jnp.mean((h @ p["head"]["kernel"] + p["head"]["bias"] - _LABELS) ** 2)


_CONV_DIMS = {
  "conv": {"kernel": MuonDimensionNumbers((0, 1, 2), 3), "bias": None},
  "head": {"kernel": MuonDimensionNumbers(), "bias": None},
}


def _train(tx, loss, params, steps=25):
  """Params after ``steps`` steps of ``tx`` on ``loss``, and the losses seen."""
  state = tx.init(params)

  @jax.jit
  def step(params, state):
    value, grads = jax.value_and_grad(loss)(params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state, value

  losses = []
  for _ in range(steps):
    params, state, value = step(params, state)
    losses.append(float(value))
  return params, losses


def _max_diff(a, b):
  return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# ------------------------------------------------------------------------------------------------
# The migration table: this library's rule = that optax optimizer.

# (id, ours, optax's, network): 25 steps each.
TABLE = [
  (
    "sgd = l2 penalty, alpha = 2 lr",
    lambda: jaxopt_hw.steepest_descent(2 * 0.1, "l2"),
    lambda: optax.sgd(0.1),
    "mlp",
  ),
  (
    "sign_sgd = linf ball",
    lambda: jaxopt_hw.steepest_descent(0.01, "linf", form="ball"),
    lambda: optax.sign_sgd(0.01),
    "mlp",
  ),
  ("muon", lambda: jaxopt_hw.muon(0.02), lambda: optax.contrib.muon(0.02), "mlp"),
  (
    "muon adaptive",
    lambda: jaxopt_hw.muon(0.02, adaptive=True),
    lambda: optax.contrib.muon(0.02, adaptive=True),
    "mlp",
  ),
  (
    "muon without nesterov",
    lambda: jaxopt_hw.muon(0.02, nesterov=False),
    lambda: optax.contrib.muon(0.02, nesterov=False),
    "mlp",
  ),
  (
    "muon dion, weight decay with a mask, consistent rms",
    lambda: jaxopt_hw.muon(
      0.02,
      ns_coeffs="dion",
      weight_decay=0.1,
      weight_decay_mask=lambda p: jax.tree.map(lambda x: x.shape[0] != 16, p),
      consistent_rms=0.2,
    ),
    lambda: optax.contrib.muon(
      0.02,
      ns_coeffs="dion",
      weight_decay=0.1,
      weight_decay_mask=lambda p: jax.tree.map(lambda x: x.shape[0] != 16, p),
      consistent_rms=0.2,
    ),
    "mlp",
  ),
  ("sgd on a cnn", lambda: jaxopt_hw.steepest_descent(0.2, "l2"), lambda: optax.sgd(0.1), "cnn"),
  (
    "muon with a conv kernel through its dimension numbers",
    lambda: jaxopt_hw.muon(0.02, muon_weight_dimension_numbers=_CONV_DIMS),
    lambda: optax.contrib.muon(0.02, muon_weight_dimension_numbers=_CONV_DIMS),
    "cnn",
  ),
]


@pytest.mark.parametrize("row", TABLE, ids=[r[0] for r in TABLE])
def test_configurations_reproduce_optax_over_25_steps(row):
  _, ours, reference, network = row
  params, loss = (_mlp_params(), _mlp_loss) if network == "mlp" else (_cnn_params(), _cnn_loss)
  got, got_losses = _train(ours(), loss, params)
  want, want_losses = _train(reference(), loss, params)
  # float32 rounding: the same arithmetic up to the order of a few sums (the Newton–Schulz input is
  # divided by max|G| first), ~1e-7 relative per step, over 25 steps of moving weights
  assert _max_diff(got, want) < 2e-5, _max_diff(got, want)
  np.testing.assert_allclose(got_losses, want_losses, rtol=1e-4)
  assert want_losses[-1] < want_losses[0]  # the reference does train: the comparison is not idle


# ------------------------------------------------------------------------------------------------
# The penalty form's trap.


def test_the_linf_penalty_step_grows_with_the_l1_norm_and_diverges_where_the_ball_trains():
  # A 64→256→1 MLP (16,897 parameters): the ℓ∞ penalty step moves every coordinate by
  # (α/2)·‖g‖₁, a sum over all parameters, so a learning rate that suits sign descent explodes.
  r = np.random.default_rng(1)
  X = jnp.asarray(r.standard_normal((128, 64)), jnp.float32)
  y = jnp.sin(X[:, :1]) + 0.1 * X[:, 1:2]
  params = {
    "w1": jnp.asarray(r.standard_normal((64, 256)) / 8, jnp.float32),
    "b1": jnp.zeros(256, jnp.float32),
    "w2": jnp.asarray(r.standard_normal((256, 1)) / 16, jnp.float32),
    "b2": jnp.zeros(1, jnp.float32),
  }

  def loss(p):
    return jnp.mean((jnp.tanh(X @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"] - y) ** 2)

  for alpha in (0.05, 0.01):
    _, losses = _train(jaxopt_hw.steepest_descent(alpha, "linf"), loss, params, steps=6)
    assert not math.isfinite(losses[-1]) or losses[-1] > 1e6 * losses[0], losses
  _, losses = _train(jaxopt_hw.steepest_descent(0.01, "linf", form="ball"), loss, params, steps=20)
  assert losses[-1] < 0.5 * losses[0], losses


# ------------------------------------------------------------------------------------------------
# scion.


def _polar_np(G):
  """U_rV_rᵀ over the singular values above σ_max·max(m, n)·eps of float32 (the gradients are
  float32: below that, σ is rounding noise — e.g. a softmax head's gradient has rank classes − 1),
  the least-norm maximiser duality.SpectralNorm documents."""
  U, s, Vt = np.linalg.svd(G, full_matrices=False)
  keep = s > s[0] * max(G.shape) * np.finfo(np.float32).eps
  return (U * keep) @ Vt


def test_scion_unconstrained_first_step_is_the_per_layer_lmo_by_hand():
  params = _cnn_params()
  grads = jax.grad(_cnn_loss)(params)
  tx = jaxopt_hw.scion(0.1, radius=2.0, spectral_method="svd")
  updates, _ = tx.update(grads, tx.init(params), params)
  g = jax.tree.map(lambda x: np.asarray(x, np.float64), grads)
  # conv kernel (3, 3, 2, 4) as an (18, 4) matrix: −η·ρ·√(4/18)·UVᵀ; head (4, 3): −η·ρ·√(3/4)·UVᵀ;
  # biases: −η·ρ·√n·b/‖b‖₂ (momentum 0.9 from 0 scales m, not its direction)
  conv = -0.1 * 2.0 * np.sqrt(4 / 18) * _polar_np(g["conv"]["kernel"].reshape(18, 4))
  np.testing.assert_allclose(np.asarray(updates["conv"]["kernel"]).reshape(18, 4), conv, atol=1e-6)
  head = -0.1 * 2.0 * np.sqrt(3 / 4) * _polar_np(g["head"]["kernel"])
  np.testing.assert_allclose(np.asarray(updates["head"]["kernel"]), head, atol=1e-6)
  for name in ("conv", "head"):
    b = g[name]["bias"]
    want = -0.1 * 2.0 * np.sqrt(b.size) * b / np.linalg.norm(b)
    np.testing.assert_allclose(np.asarray(updates[name]["bias"]), want, atol=1e-6)


def test_scion_constrained_keeps_the_weights_in_the_ball_and_shrinks_them_on_a_zero_gradient():
  radius = 1.5
  params = _mlp_params()
  # start inside the ball: each layer scaled to half its radius in its own norm
  auto = lambda path, leaf: duality.auto_norm(path, leaf)
  with_paths = jax.tree_util.tree_flatten_with_path(params)[0]
  leaves = [
    leaf * (0.5 * radius / float(auto(path, leaf).value(leaf))) for path, leaf in with_paths
  ]
  params = jax.tree.unflatten(jax.tree.structure(params), leaves)
  tx = jaxopt_hw.scion(0.2, constrained=True, radius=radius, spectral_method="svd", momentum=0.5)
  final, losses = _train(tx, _mlp_loss, params, steps=20)
  assert losses[-1] < losses[0]
  for (path, _), leaf in zip(with_paths, jax.tree.leaves(final)):
    w = np.asarray(leaf, np.float64)
    if w.ndim == 2:  # RMS→RMS operator norm, NumPy
      size = np.sqrt(w.shape[0] / w.shape[1]) * np.linalg.norm(w, 2)
    else:  # RMS
      size = np.linalg.norm(w) / np.sqrt(w.size)
    assert size <= radius * (1 + 1e-5), (jax.tree_util.keystr(path), size)
  # a zero gradient: the Frank–Wolfe step is −η·W (the LMO of 0 is 0)
  zero = jax.tree.map(jnp.zeros_like, params)
  updates, _ = jax.jit(tx.update)(zero, tx.init(params), params)
  for u, w in zip(jax.tree.leaves(updates), jax.tree.leaves(params)):
    np.testing.assert_allclose(np.asarray(u), -0.2 * np.asarray(w), rtol=1e-6)


def test_scion_hyperparameters_vmap_through_inject_hyperparams():
  params = _mlp_params()
  grads = jax.grad(_mlp_loss)(params)
  grid = {
    "learning_rate": jnp.array([0.1, 0.05, 0.2]),
    "radius": jnp.array([1.0, 2.0, 0.5]),
    "momentum": jnp.array([0.9, 0.5, 0.0]),
    "weight_decay": jnp.array([0.0, 0.1, 0.01]),
  }
  injected = optax.inject_hyperparams(jaxopt_hw.scion)

  def two_steps(lr, radius, momentum, weight_decay):
    tx = injected(learning_rate=lr, radius=radius, momentum=momentum, weight_decay=weight_decay)
    state = tx.init(params)
    u1, state = tx.update(grads, state, params)
    p = optax.apply_updates(params, u1)
    u2, _ = tx.update(grads, state, p)
    return optax.apply_updates(p, u2)

  swept = jax.jit(jax.vmap(two_steps))(*grid.values())
  alone = jax.jit(two_steps)  # the same function, one configuration at a time
  for i in range(3):
    one = alone(*(v[i] for v in grid.values()))
    # the same arithmetic, batched or not: float32 rounding
    assert _max_diff(jax.tree.map(lambda x, i=i: x[i], swept), one) < 1e-6
  # and a traced hyper-parameter is the constant one: scion built directly, for the last column
  tx = jaxopt_hw.scion(**{k: float(v[2]) for k, v in grid.items()})

  @jax.jit
  def direct_two_steps(params):
    state = tx.init(params)
    u1, state = tx.update(grads, state, params)
    p = optax.apply_updates(params, u1)
    return optax.apply_updates(p, tx.update(grads, state, p)[0])

  direct = direct_two_steps(params)
  assert _max_diff(jax.tree.map(lambda x: x[2], swept), direct) < 1e-6


def test_muon_beta_and_weight_decay_vmap_through_inject_hyperparams():
  params = _mlp_params()
  grads = jax.grad(_mlp_loss)(params)
  injected = optax.inject_hyperparams(jaxopt_hw.muon, static_args=("ns_steps",))

  @jax.jit
  @jax.vmap
  def one(beta, weight_decay):
    tx = injected(learning_rate=0.02, beta=beta, weight_decay=weight_decay)
    return tx.update(grads, tx.init(params), params)[0]

  swept = one(jnp.array([0.95, 0.5]), jnp.array([0.0, 0.1]))
  for i, (beta, wd) in enumerate([(0.95, 0.0), (0.5, 0.1)]):
    ref = optax.contrib.muon(0.02, beta=beta, weight_decay=wd)  # optax as the reference
    want = jax.jit(ref.update)(grads, ref.init(params), params)[0]
    assert _max_diff(jax.tree.map(lambda x, i=i: x[i], swept), want) < 1e-6


# ------------------------------------------------------------------------------------------------
# flax nnx: "auto" picks a norm by shape and name; scion steps nnx models under nnx.Optimizer.


class _MLP(nnx.Module):
  def __init__(self, rngs):
    self.hidden = nnx.Linear(6, 16, rngs=rngs)
    self.out = nnx.Linear(16, 2, rngs=rngs)

  def __call__(self, x):
    return self.out(jnp.tanh(self.hidden(x)))


class _TokenCNN(nnx.Module):
  """Tokens on a 5×5 grid → embedding → 3×3 conv → LayerNorm → dense head."""

  def __init__(self, rngs):
    self.embed = nnx.Embed(10, 4, rngs=rngs)
    self.conv = nnx.Conv(4, 6, (3, 3), rngs=rngs)
    self.norm = nnx.LayerNorm(6, rngs=rngs)
    self.head = nnx.Linear(6, 3, rngs=rngs)

  def __call__(self, tokens):
    h = jax.nn.relu(self.conv(self.embed(tokens)))
    return self.head(self.norm(jnp.mean(h, axis=(1, 2))))


_TOKENS = jnp.asarray(_RNG.integers(0, 10, (8, 5, 5)))
_CLASSES = jnp.asarray(_RNG.integers(0, 3, (8,)))


def _cnn_nnx_loss(model):
  logits = model(_TOKENS)
  return optax.softmax_cross_entropy_with_integer_labels(logits, _CLASSES).mean()


def _mlp_nnx_loss(model):
  return jnp.mean((model(_X) - _Y) ** 2)


def test_auto_picks_a_norm_by_flax_name_and_shape():
  state = nnx.state(_TokenCNN(nnx.Rngs(0)), nnx.Param)
  chosen = {
    jax.tree_util.keystr(path): duality.auto_norm(path, leaf)
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
  }
  by_name = {k.replace(".value", ""): v for k, v in chosen.items()}
  embedding = by_name["['embed']['embedding']"]
  assert isinstance(embedding, duality.ScaledNorm)
  assert isinstance(embedding.norm, duality.RowL2Norm) and embedding.radius == 2.0  # √features
  conv = by_name["['conv']['kernel']"]
  assert isinstance(conv, duality.RMSSpectralNorm)
  assert conv.dimension_numbers == MuonDimensionNumbers((0, 1, 2), 3)
  assert isinstance(by_name["['head']['kernel']"], duality.RMSSpectralNorm)
  assert by_name["['head']['kernel']"].dimension_numbers is None
  for name in ("['conv']['bias']", "['head']['bias']", "['norm']['scale']", "['norm']['bias']"):
    assert isinstance(by_name[name], duality.RMSNorm), name


def test_scion_auto_first_step_on_an_nnx_cnn_with_an_embedding_is_the_lmo_by_hand():
  model = _TokenCNN(nnx.Rngs(0))
  before = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  grads = nnx.grad(_cnn_nnx_loss)(model)
  optimizer = nnx.Optimizer(model, jaxopt_hw.scion(0.05, spectral_method="svd"), wrt=nnx.Param)
  nnx.jit(lambda model, optimizer, grads: optimizer.update(model, grads))(model, optimizer, grads)
  after = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  g = jax.tree.map(lambda x: np.asarray(x, np.float64), nnx.to_pure_dict(grads))
  step = jax.tree.map(lambda a, b: np.asarray(a, np.float64) - np.asarray(b), after, before)
  eta = 0.05
  E = g["embed"]["embedding"]  # each token's row to ℓ2 norm √features (RMS 1)
  rows = np.where(np.linalg.norm(E, axis=1, keepdims=True) > 0, E, 1)
  want = -eta * 2.0 * E / np.linalg.norm(rows, axis=1, keepdims=True)
  np.testing.assert_allclose(step["embed"]["embedding"], want, atol=2e-6)
  K = g["conv"]["kernel"].reshape(36, 6)  # (3·3·4, 6)
  want = -eta * np.sqrt(6 / 36) * _polar_np(K)
  np.testing.assert_allclose(step["conv"]["kernel"].reshape(36, 6), want, atol=2e-6)
  want = -eta * np.sqrt(3 / 6) * _polar_np(g["head"]["kernel"])
  np.testing.assert_allclose(step["head"]["kernel"], want, atol=2e-6)
  for layer, name in (("conv", "bias"), ("head", "bias"), ("norm", "scale"), ("norm", "bias")):
    b = g[layer][name]
    want = -eta * np.sqrt(b.size) * b / np.linalg.norm(b)
    np.testing.assert_allclose(step[layer][name], want, atol=2e-6)


@pytest.mark.parametrize(
  "make,loss",
  [(_MLP, _mlp_nnx_loss), (_TokenCNN, _cnn_nnx_loss)],
  ids=["mlp", "cnn-with-embedding"],
)
def test_scion_auto_trains_nnx_models_under_nnx_optimizer(make, loss):
  model = make(nnx.Rngs(1))
  optimizer = nnx.Optimizer(model, jaxopt_hw.scion(0.02), wrt=nnx.Param)

  @nnx.jit
  def train_step(model, optimizer):
    value, grads = nnx.value_and_grad(loss)(model)
    optimizer.update(model, grads)
    return value

  losses = [float(train_step(model, optimizer)) for _ in range(30)]
  assert losses[-1] < 0.7 * losses[0], losses


# ------------------------------------------------------------------------------------------------
# A norm per leaf as a pytree, faults, errors.


def test_a_pytree_of_norms_matches_leaves_by_key_also_on_an_nnx_state():
  # a prefix tree: "sign" covers both leaves of "out" (d_in = 16 for the kernel, 1 for the bias)
  specs = {"hidden": {"kernel": "rms_spectral", "bias": "auto"}, "out": "sign"}
  model = _MLP(nnx.Rngs(0))
  grads = nnx.grad(_mlp_nnx_loss)(model)
  tx = jaxopt_hw.steepest_descent(0.1, specs, form="ball", spectral_method="svd")
  nnx.Optimizer(model, tx, wrt=nnx.Param)  # init on the nnx.State (Variables' ".value" paths)
  updates, _ = tx.update(grads, tx.init(grads))
  u = jax.tree.map(np.asarray, nnx.to_pure_dict(updates))
  g = jax.tree.map(lambda x: np.asarray(x, np.float64), nnx.to_pure_dict(grads))
  np.testing.assert_allclose(
    u["hidden"]["kernel"], -0.1 * np.sqrt(16 / 6) * _polar_np(g["hidden"]["kernel"]), atol=1e-6
  )
  b = g["hidden"]["bias"]  # "auto" for a bias: RMS, −α·√n·b/‖b‖₂
  np.testing.assert_allclose(u["hidden"]["bias"], -0.1 * 4 * b / np.linalg.norm(b), atol=1e-6)
  np.testing.assert_allclose(u["out"]["kernel"], -0.1 * np.sign(g["out"]["kernel"]) / 16, atol=1e-7)
  np.testing.assert_allclose(u["out"]["bias"], -0.1 * np.sign(g["out"]["bias"]), atol=1e-7)


def test_muon_and_scion_turn_a_non_finite_gradient_into_a_non_finite_update_at_once():
  params = _mlp_params()
  grads = jax.grad(_mlp_loss)(params)
  txs = (jaxopt_hw.muon(0.02), jaxopt_hw.scion(0.02), jaxopt_hw.scion(0.02, spectral_method="svd"))
  for tx in txs:
    update = jax.jit(tx.update)
    for bad in (jnp.inf, jnp.nan):
      kernel = grads["dense1"]["kernel"].at[2, 3].set(bad)
      broken = {**grads, "dense1": {**grads["dense1"], "kernel": kernel}}
      updates, _ = update(broken, tx.init(params), params)
      assert not np.all(np.isfinite(np.asarray(updates["dense1"]["kernel"])))


@pytest.mark.parametrize(
  "call,match",
  [
    (
      lambda: jaxopt_hw.scion(0.1, momentum=1.0),
      r"momentum: 1.0 is not allowed; allowed: a number in \[0, 1\)",
    ),
    (lambda: jaxopt_hw.scion(0.1, radius=0), r"radius: 0 is not allowed"),
    (
      lambda: jaxopt_hw.scion(0.1, constrained=True, weight_decay=0.1),
      r"weight_decay: the constrained",
    ),
    (lambda: jaxopt_hw.scion(0.1, constrained="yes"), r"constrained: 'yes' is not allowed"),
    (lambda: jaxopt_hw.scion(-1.0), r"learning_rate: -1.0 is not allowed"),
    (lambda: jaxopt_hw.muon(0.1, ns_coeffs="fast"), r"ns_coeffs: 'fast' is not valid"),
    (
      lambda: jaxopt_hw.muon(0.1, ns_coeffs="dion", ns_steps=3),
      r"ns_steps: 3 is fewer than the 5 rows",
    ),
    (
      lambda: jaxopt_hw.steepest_descent(0.1, {"w": "l3"}).init({"w": jnp.ones(2)}),
      r"norm: the norm of leaf \['w'\] is 'l3'",
    ),
    (
      lambda: jaxopt_hw.steepest_descent(0.1, {"v": "l2"}).init({"w": jnp.ones(2)}),
      r"norm: no norm given for leaf \['w'\]",
    ),
    (
      lambda: jaxopt_hw.steepest_descent(0.1, {"w": "l2", "x": "l2"}).init({"w": jnp.ones(2)}),
      r"names x, which is not a parameter",
    ),
    (
      lambda: jaxopt_hw.steepest_descent(0.1, "auto", non_matrix="l2"),
      r"non_matrix: not used with a norm per leaf",
    ),
    (
      lambda: jaxopt_hw.steepest_descent(0.1, {"w": "col_l2"}).init({"w": jnp.ones(2)}),
      r"leaf \['w'\] has shape \(2,\), which norm 'col_l2' cannot measure",
    ),
    (
      lambda: duality.get_norm("rms", dimension_numbers=MuonDimensionNumbers()),
      r"dimension_numbers: only the matrix norms",
    ),
    (lambda: duality.get_norm("sign", radius=-1.0), r"radius: -1.0 is not allowed"),
  ],
)
def test_bad_arguments_are_one_line_user_errors(call, match):
  with pytest.raises(UserInputError, match=match) as info:
    call()
  assert "\n" not in str(info.value)
