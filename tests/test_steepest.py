"""`steepest_descent` as an optax transform: right on pytrees, and composable with optax and flax.

Expected updates are written out by hand from the closed forms (e.g. −(α/2)·g for ℓ2, −α·sign(g)
for the ℓ∞ ball, −α·UVᵀ from NumPy's SVD for spectral), or checked through the dual-norm identity
with NumPy's norms; the closed forms themselves are proven against SciPy in test_duality.py.
"""

from __future__ import annotations

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxopt_hw import duality
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.transforms import steepest, steepest_descent, steepest_step


def _tree(rng, dtype=jnp.float64):
  return {
    "a": jnp.asarray(rng.standard_normal(3), dtype),
    "b": {"c": jnp.asarray(rng.standard_normal((2, 2)), dtype)},
    "d": jnp.asarray(rng.standard_normal(()), dtype),
  }


def _flat(tree):
  """Concatenate leaves in jax.tree order (the order ravel_pytree uses) as float64 NumPy."""
  return np.concatenate([np.asarray(x, np.float64).ravel() for x in jax.tree.leaves(tree)])


def _step(tx, grads, params=None):
  state = tx.init(grads if params is None else params)
  updates, _ = tx.update(grads, state, params)
  return updates


# ---------------------------------------------------------------------------------------------
# The update on pytrees.


def test_vector_norms_treat_the_pytree_as_one_vector():
  g = _tree(np.random.default_rng(0))
  v, alpha = _flat(g), 0.3
  hand = {
    ("l2", "penalty"): -(alpha / 2) * v,  # gradient descent, step α/2
    ("l2", "ball"): -alpha * v / np.linalg.norm(v),  # normalised GD
    ("linf", "penalty"): -(alpha / 2) * np.abs(v).sum() * np.sign(v),  # sign descent × ‖g‖₁
    ("linf", "ball"): -alpha * np.sign(v),  # sign descent
    ("l1", "ball"): -alpha * np.sign(v) * (np.abs(v) == np.abs(v).max()),  # greedy coordinate
    ("l1", "penalty"): -(alpha / 2) * np.abs(v).max() * np.sign(v) * (np.abs(v) == np.abs(v).max()),
  }
  for (norm, form), expected in hand.items():
    u = _step(steepest_descent(alpha, norm, form=form), g)
    assert jax.tree.structure(u) == jax.tree.structure(g)
    np.testing.assert_allclose(_flat(u), expected, rtol=1e-13, atol=1e-15, err_msg=f"{norm} {form}")


def test_lp_and_mahalanobis_on_a_pytree_reach_the_dual_norm_optimum_of_the_flat_vector():
  rng = np.random.default_rng(1)
  g = _tree(rng)
  v, alpha, n = _flat(g), 0.7, 8
  A = rng.standard_normal((n, n))
  M = A @ A.T + np.eye(n)
  p, q = 3.0, 1.5
  # u = −(α/2)M⁻¹g by hand (preconditioned GD), and the ℓp optimum −(α/4)‖g‖_q² by Hölder.
  u = _flat(_step(steepest_descent(alpha, "mahalanobis", M=M), g))
  np.testing.assert_allclose(u, -(alpha / 2) * np.linalg.solve(M, v), rtol=1e-12)
  u = _flat(_step(steepest_descent(alpha, "lp", p=p), g))
  objective = v @ u + np.sum(np.abs(u) ** p) ** (2 / p) / alpha
  np.testing.assert_allclose(
    objective, -(alpha / 4) * np.sum(np.abs(v) ** q) ** (2 / q), rtol=1e-12
  )
  u = _flat(_step(steepest_descent(alpha, "lp", p=p, form="ball"), g))
  np.testing.assert_allclose(np.sum(np.abs(u) ** p) ** (1 / p), alpha, rtol=1e-12)
  np.testing.assert_allclose(v @ u, -alpha * np.sum(np.abs(v) ** q) ** (1 / q), rtol=1e-12)


def test_per_leaf_steps_every_leaf_in_its_own_norm():
  g = _tree(np.random.default_rng(2))
  alpha = 0.4
  u = _step(steepest_descent(alpha, "l2", form="ball", per_leaf=True), g)
  for gl, ul in zip(jax.tree.leaves(g), jax.tree.leaves(u)):
    gl = np.asarray(gl)
    np.testing.assert_allclose(np.asarray(ul), -alpha * gl / np.linalg.norm(gl), rtol=1e-13)
  u = _step(steepest_descent(alpha, "linf", per_leaf=True), g)
  for gl, ul in zip(jax.tree.leaves(g), jax.tree.leaves(u)):
    gl = np.asarray(gl)
    np.testing.assert_allclose(
      np.asarray(ul), -(alpha / 2) * np.abs(gl).sum() * np.sign(gl), rtol=1e-13
    )
  # Mahalanobis per leaf: one M per leaf (here diagonals), u_l = −(α/2) g_l / m_l.
  Ms = {"a": np.array([1.0, 2.0, 3.0]), "b": {"c": np.full((4,), 0.5)}, "d": np.array([4.0])}
  u = _step(steepest_descent(alpha, "mahalanobis", M=Ms, per_leaf=True), g)
  for gl, ul, m in zip(jax.tree.leaves(g), jax.tree.leaves(u), jax.tree.leaves(Ms)):
    np.testing.assert_allclose(
      np.asarray(ul).ravel(), -(alpha / 2) * np.asarray(gl).ravel() / m, rtol=1e-13
    )


def _polar_np(G):
  U, _, Vt = np.linalg.svd(G, full_matrices=False)
  return U @ Vt


def test_spectral_steps_each_matrix_and_the_penalty_uses_the_product_norm():
  rng = np.random.default_rng(3)
  g = {
    "w1": jnp.asarray(rng.standard_normal((4, 3))),
    "w2": jnp.asarray(rng.standard_normal((2, 5))),
  }
  alpha = 0.2
  nuc = {k: np.linalg.norm(np.asarray(x), "nuc") for k, x in g.items()}
  ball = _step(steepest_descent(alpha, "spectral", form="ball"), g)
  per_leaf = _step(steepest_descent(alpha, "spectral", per_leaf=True), g)
  product = _step(steepest_descent(alpha, "spectral"), g)
  for k in g:
    Q = _polar_np(np.asarray(g[k]))
    np.testing.assert_allclose(np.asarray(ball[k]), -alpha * Q, atol=1e-13)  # Muon without momentum
    np.testing.assert_allclose(np.asarray(per_leaf[k]), -(alpha / 2) * nuc[k] * Q, atol=1e-13)
    np.testing.assert_allclose(
      np.asarray(product[k]), -(alpha / 2) * sum(nuc.values()) * Q, atol=1e-13
    )

  # The product step minimises ⟨g, Δ⟩ + (1/α)·max_l ‖Δ_l‖_op²: optimum −(α/4)(Σ_l ‖G_l‖_nuc)², and
  # random perturbations never do better.
  def objective(d):
    return (
      sum(np.sum(np.asarray(g[k]) * d[k]) for k in g)
      + max(np.linalg.norm(d[k], 2) for k in g) ** 2 / alpha
    )

  u = {k: np.asarray(x) for k, x in product.items()}
  optimum = -(alpha / 4) * sum(nuc.values()) ** 2
  np.testing.assert_allclose(objective(u), optimum, rtol=1e-12)
  for eps in (1e-4, 1e-2, 1.0):
    for _ in range(30):
      assert objective({k: u[k] + eps * rng.standard_normal(u[k].shape) for k in u}) >= optimum * (
        1 - 1e-12
      )


def test_spectral_rejects_non_matrix_leaves_unless_given_a_vector_norm_for_them():
  params = {"kernel": jnp.ones((3, 2)), "bias": jnp.ones(2)}
  with pytest.raises(UserInputError, match=r"leaf \['bias'\] has shape \(2,\).*non_matrix='l2'"):
    steepest_descent(0.1, "spectral").init(params)
  g = {"kernel": jnp.asarray(np.arange(6.0).reshape(3, 2) - 2), "bias": jnp.array([3.0, -4.0])}
  u = _step(steepest_descent(0.1, "spectral", form="ball", non_matrix="l2"), g)
  np.testing.assert_allclose(
    np.asarray(u["bias"]), [-0.06, 0.08], rtol=1e-13
  )  # −α g/‖g‖₂, ‖g‖₂ = 5
  np.testing.assert_allclose(
    np.asarray(u["kernel"]), -0.1 * _polar_np(np.asarray(g["kernel"])), atol=1e-13
  )


def test_newton_schulz_method_matches_the_svd_in_the_transform():
  rng = np.random.default_rng(4)
  U, _ = np.linalg.qr(rng.standard_normal((5, 3)))
  V, _ = np.linalg.qr(rng.standard_normal((3, 3)))
  G = jnp.asarray(U @ np.diag([2.0, 1.0, 0.3]) @ V.T)
  u = _step(
    steepest_descent(0.5, "spectral", form="ball", spectral_method="newton_schulz", ns_steps=25),
    {"w": G},
  )
  np.testing.assert_allclose(np.asarray(u["w"]), -0.5 * U @ V.T, atol=1e-12)


def test_a_norm_per_leaf_with_radii_steps_in_the_product_norm():
  rng = np.random.default_rng(11)
  g = {"w": jnp.asarray(rng.standard_normal((4, 3))), "b": jnp.asarray(rng.standard_normal(3))}
  norms = {"w": duality.get_norm("rms_spectral", radius=2.0), "b": "rms"}
  alpha = 0.3
  W, b = np.asarray(g["w"]), np.asarray(g["b"])
  Q = np.sqrt(3 / 4) * _polar_np(W)  # d(W) of the RMS→RMS norm: √(fan_out/fan_in)·UVᵀ
  duals = {  # ρ·√(fan_out/fan_in)·‖W‖_nuc and √n·‖b‖₂ (NumPy)
    "w": 2.0 * np.sqrt(3 / 4) * np.linalg.norm(W, "nuc"),
    "b": np.sqrt(3) * np.linalg.norm(b),
  }
  maps = {"w": 2.0 * Q, "b": np.sqrt(3) * b / np.linalg.norm(b)}
  ball = _step(steepest_descent(alpha, norms, form="ball"), g)
  product = _step(steepest_descent(alpha, norms), g)
  separate = _step(steepest_descent(alpha, norms, per_leaf=True), g)
  for k in g:
    np.testing.assert_allclose(np.asarray(ball[k]), -alpha * maps[k], atol=1e-12)
    # one penalty for the whole tree in max_l ‖Δ_l‖_l/ρ_l: the duals add up
    np.testing.assert_allclose(
      np.asarray(product[k]), -(alpha / 2) * sum(duals.values()) * maps[k], atol=1e-12
    )
    np.testing.assert_allclose(
      np.asarray(separate[k]), -(alpha / 2) * duals[k] * maps[k], atol=1e-12
    )


def test_layer_norm_names_and_newton_schulz_presets_in_steepest_descent():
  rng = np.random.default_rng(12)
  U, _ = np.linalg.qr(rng.standard_normal((5, 3)))
  V, _ = np.linalg.qr(rng.standard_normal((3, 3)))
  G = U @ np.diag([2.0, 1.0, 0.1]) @ V.T
  g = {"w": jnp.asarray(G), "b": jnp.asarray([3.0, -4.0])}
  # one layer norm for every matrix, a vector norm for the rest (as with "spectral")
  u = _step(
    steepest_descent(
      0.1,
      "rms_spectral",
      form="ball",
      non_matrix="l2",
      spectral_method="newton_schulz",
      ns_coefficients="polar_express",
      ns_steps=8,
    ),
    g,
  )
  # 8 Polar Express steps reach UVᵀ to ~1e-10 for σ/‖G‖_F ≥ 1e-3 (here ≥ 0.04)
  np.testing.assert_allclose(np.asarray(u["w"]), -0.1 * np.sqrt(3 / 5) * U @ V.T, atol=1e-8)
  np.testing.assert_allclose(np.asarray(u["b"]), [-0.06, 0.08], rtol=1e-13)


def test_a_callable_and_auto_choose_norms_by_path():
  g = {"kernel": jnp.ones((2, 3)), "head": {"kernel": jnp.asarray([[1.0, -2.0, 0.5]] * 2)}}
  choose = lambda path, leaf: "sign" if "head" in jax.tree_util.keystr(path) else "auto"
  u = _step(steepest_descent(0.5, choose, form="ball"), g)
  # head: −α·sign(G)/d_in with d_in = 2; the rest "auto": RMS→RMS spectral of a rank-1 matrix,
  # −α·√(3/2)·u vᵀ with u = 1/√2, v = 1/√3 (all entries 1/√6)
  np.testing.assert_allclose(
    np.asarray(u["head"]["kernel"]), -0.25 * np.sign(np.asarray(g["head"]["kernel"])), rtol=1e-13
  )
  np.testing.assert_allclose(
    np.asarray(u["kernel"]), -0.5 * np.sqrt(3 / 2) / np.sqrt(6) * np.ones((2, 3)), atol=1e-12
  )


def test_a_user_defined_norm_plugs_in():
  class TwiceL2(duality.Norm):
    """‖x‖ = 2‖x‖₂: dual ‖g‖₂/2, d(g) = g/(2‖g‖₂)."""

    name = "twice_l2"

    def value(self, x):
      return 2 * jnp.linalg.norm(x)

    def dual(self, g):
      return jnp.linalg.norm(g) / 2

    def dual_map(self, g):
      return g / (2 * jnp.linalg.norm(g))

  g = {"w": jnp.array([1.0, -2.0, 2.0])}
  # min gᵀΔ + 4‖Δ‖₂²/α  →  Δ = −(α/8) g, by setting the gradient g + 8Δ/α to zero.
  u = _step(steepest_descent(0.8, TwiceL2()), g)
  np.testing.assert_allclose(np.asarray(u["w"]), -0.1 * np.array([1.0, -2.0, 2.0]), rtol=1e-13)


CONFIGS = [
  dict(norm="l2"),
  dict(norm="linf", form="ball"),
  dict(norm="l1"),
  dict(norm="lp", p=1.5),
  dict(norm="mahalanobis", M=np.arange(1.0, 9.0)),
  dict(norm="spectral", non_matrix="linf"),
  dict(norm="spectral", form="ball", non_matrix="l2", per_leaf=True),
  dict(norm="l2", per_leaf=True),
]


@pytest.mark.parametrize(
  "kwargs", CONFIGS, ids=lambda k: "-".join(f"{v}" for k_, v in k.items() if k_ != "M")
)
def test_zero_gradient_gives_zero_update_and_mixed_dtypes_are_kept(kwargs):
  tx = steepest_descent(0.5, **kwargs)
  zeros = jax.tree.map(jnp.zeros_like, _tree(np.random.default_rng(5)))
  u = jax.jit(lambda g: _step(tx, g))(zeros)
  assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(u))
  mixed = _tree(np.random.default_rng(5))
  mixed = {
    "a": mixed["a"].astype(jnp.bfloat16),
    "b": {"c": mixed["b"]["c"].astype(jnp.float32)},
    "d": mixed["d"],
  }
  u = _step(tx, mixed)
  assert jax.tree.map(lambda x: x.dtype, u) == jax.tree.map(lambda x: x.dtype, mixed)
  assert all(np.all(np.isfinite(np.asarray(x, np.float64))) for x in jax.tree.leaves(u))


# ---------------------------------------------------------------------------------------------
# Composition: jit, vmap, grad, optax.chain, inject_hyperparams, flax nnx.Optimizer.


def test_jit_vmap_and_grad():
  rng = np.random.default_rng(6)
  tx = steepest_descent(0.3, "linf")
  grads = jnp.asarray(rng.standard_normal((5, 4)))  # a batch of 5 gradients of a 4-vector
  batched = jax.jit(jax.vmap(lambda g: _step(tx, g)))(grads)
  for i in range(5):
    v = np.asarray(grads[i])
    np.testing.assert_allclose(
      np.asarray(batched[i]), -0.15 * np.abs(v).sum() * np.sign(v), rtol=1e-13
    )

  # grad through the factory and the update: h(α) = Σ w·(θ + u(α)) with u = −(α/2)‖g‖₁ sign(g),
  # so dh/dα = −(1/2)‖g‖₁ Σ w·sign(g).
  g, w = np.asarray(grads[0]), np.arange(1.0, 5.0)

  def h(alpha):
    params = jnp.zeros(4)
    u = _step(steepest_descent(alpha, "linf"), jnp.asarray(g), params)
    return jnp.sum(w * optax.apply_updates(params, u))

  np.testing.assert_allclose(
    float(jax.grad(h)(0.3)), -0.5 * np.abs(g).sum() * np.sum(w * np.sign(g)), rtol=1e-13
  )


def test_chain_with_clipping_and_a_schedule_matches_the_hand_computed_steps():
  schedule = optax.linear_schedule(0.5, 0.1, transition_steps=4)
  tx = optax.chain(optax.clip_by_global_norm(1.0), steepest_descent(schedule, "linf"))
  rng = np.random.default_rng(7)
  params = {"w": jnp.zeros(3), "b": jnp.zeros(2)}
  state = tx.init(params)
  # steepest_descent is chain(scale_by_steepest_descent, scale_by_learning_rate): count the schedule
  assert isinstance(state[1][1], optax.ScaleByScheduleState)
  theta = _flat(params)
  for t in range(3):
    grads = {"w": jnp.asarray(3 * rng.standard_normal(3)), "b": jnp.asarray(rng.standard_normal(2))}
    updates, state = jax.jit(tx.update)(grads, state, params)
    params = optax.apply_updates(params, updates)
    v = _flat(grads)
    clipped = v * min(1.0, 1.0 / np.linalg.norm(v))
    alpha = 0.5 + (0.1 - 0.5) * t / 4  # the linear schedule at count t
    theta = theta - (alpha / 2) * np.abs(clipped).sum() * np.sign(clipped)
    # optax schedules return float32 even with x64 on: α_t carries float32 rounding.
    np.testing.assert_allclose(_flat(params), theta, rtol=1e-7, atol=1e-7 * np.abs(theta).max())
  assert int(state[1][1].count) == 3


def test_inject_hyperparams_with_the_spectral_norm_under_jit():
  # inject_hyperparams turns every numeric default (ns_steps too) into an array: the SVD path must
  # not care, and Newton–Schulz asks for static_args.
  G = jnp.arange(6.0).reshape(3, 2) - 2.5
  opt = optax.inject_hyperparams(steepest_descent, static_args=("norm", "form"))(
    learning_rate=0.1, norm="spectral", form="ball"
  )
  u = jax.jit(opt.update)(G, opt.init(G))[0]
  np.testing.assert_allclose(np.asarray(u), -0.1 * _polar_np(np.asarray(G)), atol=1e-13)
  opt = optax.inject_hyperparams(steepest_descent, static_args=("norm", "spectral_method"))(
    learning_rate=0.1, norm="spectral", spectral_method="newton_schulz"
  )
  with pytest.raises(UserInputError, match=r"static_args=\('ns_steps',\)"):
    jax.jit(opt.update)(G, opt.init(G))


def test_inject_hyperparams_with_vmapped_learning_rates():
  lrs = jnp.array([0.01, 0.1, 1.0])
  g = {"w": jnp.array([1.0, -2.0, 0.0])}
  params = {"w": jnp.ones(3)}
  factory = optax.inject_hyperparams(steepest_descent, static_args=("norm", "form"))

  def set_in_state(lr):  # one optimizer, the learning rate overwritten in its state
    opt = factory(learning_rate=0.5, norm="linf", form="ball")
    state = opt.init(params)
    state.hyperparams["learning_rate"] = lr
    return opt.update(g, state)[0]["w"]

  def built_with(lr):  # the learning rate traced through the factory
    opt = factory(learning_rate=lr, norm="l2")
    return opt.update(g, opt.init(params))[0]["w"]

  ball = jax.jit(jax.vmap(set_in_state))(lrs)
  np.testing.assert_allclose(
    np.asarray(ball), -np.asarray(lrs)[:, None] * np.array([1.0, -1.0, 0.0]), rtol=1e-13
  )
  penalty = jax.vmap(built_with)(lrs)
  np.testing.assert_allclose(
    np.asarray(penalty), -np.asarray(lrs)[:, None] / 2 * np.array([1.0, -2.0, 0.0]), rtol=1e-13
  )


class _MLP(nnx.Module):
  def __init__(self, rngs):
    self.hidden = nnx.Linear(2, 8, rngs=rngs, param_dtype=jnp.float64)
    self.out = nnx.Linear(8, 1, rngs=rngs, param_dtype=jnp.float64)

  def __call__(self, x):
    return self.out(jnp.tanh(self.hidden(x)))


@pytest.mark.parametrize(
  "tx_kwargs,hand",
  [
    (dict(learning_rate=0.1, norm="l2"), lambda p, g: p - 0.05 * g),  # −(α/2)·g on the whole pytree
    # Muon-like: −α·UVᵀ on kernels, −α·g/‖g‖₂ on each bias
    (dict(learning_rate=0.05, norm="spectral", form="ball", non_matrix="l2"), None),
  ],
  ids=["l2-penalty", "spectral-ball"],
)
def test_flax_nnx_optimizer_trains_a_small_mlp(tx_kwargs, hand):
  model = _MLP(nnx.Rngs(0))
  rng = np.random.default_rng(8)
  x = jnp.asarray(rng.standard_normal((32, 2)))
  y = jnp.sin(x[:, :1]) + 0.5 * x[:, 1:]
  optimizer = nnx.Optimizer(model, steepest_descent(**tx_kwargs), wrt=nnx.Param)

  def loss_fn(m):
    return jnp.mean((m(x) - y) ** 2)

  before = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  loss0, grads = nnx.value_and_grad(loss_fn)(model)
  optimizer.update(model, grads)
  after = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  g = nnx.to_pure_dict(grads)
  if hand is None:
    alpha = tx_kwargs["learning_rate"]

    def hand(p, gl):
      gl = np.asarray(gl)
      return p - alpha * (_polar_np(gl) if gl.ndim == 2 else gl / np.linalg.norm(gl))

  expected = jax.tree.map(lambda p, gl: hand(np.asarray(p), np.asarray(gl)), before, g)
  for e, a in zip(jax.tree.leaves(expected), jax.tree.leaves(after)):
    np.testing.assert_allclose(np.asarray(a), e, rtol=1e-12, atol=1e-14)

  @nnx.jit
  def train_step(model, optimizer):
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  losses = [float(train_step(model, optimizer)) for _ in range(20)]
  assert losses[-1] < 0.5 * float(loss0)


def test_the_docstring_example_runs():
  result = doctest.testmod(steepest, verbose=False)
  assert result.attempted > 0 and result.failed == 0


def test_steepest_step_without_optax_state():
  g = {"w": jnp.array([1.0, -3.0])}
  np.testing.assert_allclose(
    np.asarray(steepest_step(g, 0.2, "l1", form="ball")["w"]), [0.0, 0.2], rtol=1e-13
  )


# ---------------------------------------------------------------------------------------------
# Errors a user can cause.


@pytest.mark.parametrize(
  "args,kwargs,match",
  [
    ((0.1, "l3"), {}, r"norm: 'l3' is not valid.*allowed: l2, linf, l1, lp, mahalanobis, spectral"),
    ((0.1, "l2"), {"form": "box"}, r"form: 'box' is not valid.*allowed: penalty, ball"),
    ((0.0, "l2"), {}, r"learning_rate: 0.0 is not allowed; allowed: a finite number > 0"),
    ((-1, "l2"), {}, r"learning_rate: -1 is not allowed"),
    ((float("nan"), "l2"), {}, r"learning_rate: nan is not allowed"),
    (("fast", "l2"), {}, r"learning_rate: 'fast' is not allowed"),
    (
      (0.1, "spectral"),
      {"spectral_method": "newton_schulz", "ns_steps": 0},
      r"ns_steps: 0 is not allowed; allowed: an integer >= 1",
    ),
    ((0.1, "lp"), {"p": 1.0}, r"p: 1.0 is not allowed.*1 < p < inf"),
    ((0.1, "lp"), {}, r"p: norm 'lp' needs p"),
    ((0.1, "lp"), {"p": "three"}, r"p: 'three' is not allowed for norm 'lp'"),
    ((0.1, "l2"), {"non_matrix": "l2"}, r"non_matrix: only norm 'spectral'"),
    ((0.1, "spectral"), {"non_matrix": "spectral"}, r"non_matrix: 'spectral' is not valid"),
    (
      (0.1, "spectral"),
      {"spectral_method": "svdd"},
      r"spectral_method: 'svdd' is not valid \(did you mean 'svd'\?\)",
    ),
    ((0.1, "mahalanobis"), {"M": -np.eye(2)}, r"M: is not positive definite"),
    ((0.1, "l2"), {"per_leaf": "yes"}, r"per_leaf: 'yes' is not allowed"),
  ],
)
def test_bad_arguments_raise_one_line_user_errors_at_the_factory(args, kwargs, match):
  with pytest.raises(UserInputError, match=match) as info:
    steepest_descent(*args, **kwargs)
  assert "\n" not in str(info.value)


def test_shape_errors_are_raised_at_init():
  params = {"a": jnp.ones(3), "b": jnp.ones((2, 2))}
  with pytest.raises(
    UserInputError, match=r"M: has size 3 but the parameters have 7 entries in all"
  ):
    steepest_descent(0.1, "mahalanobis", M=np.ones(3)).init(params)
  with pytest.raises(UserInputError, match=r"M: has size 3 but leaf \['b'\] has 4 entries"):
    steepest_descent(0.1, "mahalanobis", M=np.ones(3), per_leaf=True).init(params)
