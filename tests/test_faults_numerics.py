"""Hostile numbers into the norms and the update rules (issue 12, items 1, 3, 11 and 14).

* 12.1: a non-finite gradient gives a non-finite update at once, for every norm, form and method
  (LAPACK's SVD spins forever on a matrix holding an ``inf``; the hang is kept as a test that runs
  in a subprocess with a timeout, so a regression fails instead of stalling the suite).
* 12.3: NaN in → NaN out, every norm, form and method; the safe divisions guard only an exact zero.
* 12.11: gradients of ~1e-20 and ~1e20 in float32 give the right step (squares would underflow to 0
  or overflow to inf; the norms scale by max|g| before squaring).
* 12.14: integer gradients are promoted to the default float dtype, as optax does (optax's
  ``sgd``/``sign_sgd`` multiply them by the weakly typed learning rate), instead of being cast back
  to int, which truncated every update to 0.

Every expected value is a float64 NumPy closed form (−(α/2)·g, −α·g/‖g‖₂, −(α/2)·M⁻¹g, −α·UVᵀ from
NumPy's SVD) named beside its assertion, or optax's own output.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxopt_hw
from jaxopt_hw import duality

# Every norm, form and method: (id, keyword arguments of steepest_step), on a (3, 3) gradient.
_M = np.diag(np.arange(1.0, 10.0))
CONFIGS = [
  ("l2", dict(norm="l2")),
  ("linf", dict(norm="linf")),
  ("l1", dict(norm="l1")),
  ("lp", dict(norm="lp", p=3.0)),
  ("mahalanobis", dict(norm="mahalanobis", M=_M)),
  ("mahalanobis_diag", dict(norm="mahalanobis", M=np.arange(1.0, 10.0))),
  ("spectral_svd", dict(norm="spectral")),
  ("spectral_ns", dict(norm="spectral", spectral_method="newton_schulz")),
]
FORMS = ("penalty", "ball")


def _step(g, form, kwargs, alpha=0.1):
  return jaxopt_hw.steepest_step(g, alpha, form=form, **kwargs)


def _bad(value, dtype=jnp.float32):
  """A (3, 3) gradient with one non-finite entry at (1, 2)."""
  g = jnp.asarray(np.arange(1.0, 10.0).reshape(3, 3) - 4.5, dtype)
  return g.at[1, 2].set(value)


# ------------------------------------------------------------------------------------------------
# 12.1 — the hang, in a subprocess with a timeout.

_HANG_SCRIPT = textwrap.dedent(
  """
  import jax, jax.numpy as jnp, numpy as np, jaxopt_hw
  g = jnp.ones((3, 3), jnp.float32).at[0, 0].set(jnp.inf)
  for form in ("penalty", "ball"):
    f = lambda g: jaxopt_hw.steepest_step(g, 0.1, "spectral", form=form)
    for u in (f(g), jax.jit(f)(g), jax.vmap(f)(jnp.stack([g, -g]))):
      assert not bool(jnp.isfinite(u).all()), (form, u)
  print("done")
  """
)


def test_spectral_step_on_a_gradient_holding_inf_returns_a_non_finite_update_at_once():
  # On the base commit LAPACK's SVD never returns: the subprocess runs into the timeout. (The
  # Newton–Schulz method never hung; it is covered in process below.)
  proc = subprocess.run(
    [sys.executable, "-c", _HANG_SCRIPT], capture_output=True, text=True, timeout=180
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip() == "done"


# ------------------------------------------------------------------------------------------------
# 12.1 and 12.3 — every norm, form and method, in process (the SVD with inf only after the fix
# above; a regression there would hang this test, so the subprocess test guards it first).


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_a_non_finite_gradient_entry_makes_that_update_entry_non_finite(config, form):
  _, kwargs = config
  values = (np.inf, -np.inf, np.nan)
  bad = jnp.stack([_bad(v) for v in values])
  f = lambda g: _step(g, form, kwargs)
  # under jit and vmap (the three bad gradients as one batch), and eagerly for the NaN one
  batched = np.asarray(jax.jit(jax.vmap(f))(bad))
  eager = np.asarray(f(bad[2]))
  for u, value in [*zip(batched, values), (eager, np.nan)]:
    # the entry the gradient got wrong is not a number in the update; a NaN gradient gives NaN
    assert not np.isfinite(u[1, 2]), (value, u)
    if np.isnan(value):
      assert np.isnan(u[1, 2]), u


def test_the_layer_norms_also_turn_a_non_finite_entry_into_a_non_finite_step():
  for name in ("rms_spectral", "col_l2", "row_l2", "rms", "sign"):
    for value in (np.inf, np.nan):
      for form in FORMS:
        u = np.asarray(_step(_bad(value), form, {"norm": name}))
        assert not np.isfinite(u[1, 2]), (name, value, form, u)


@pytest.mark.parametrize(
  "norm",
  [
    duality.get_norm("l2"),
    duality.get_norm("linf"),
    duality.get_norm("l1"),
    duality.get_norm("lp", p=3.0),
    duality.get_norm("mahalanobis", M=_M),
    duality.get_norm("mahalanobis", M=np.arange(1.0, 10.0)),
    duality.get_norm("spectral"),
    duality.get_norm("spectral", spectral_method="newton_schulz"),
  ],
  ids=repr,
)
def test_norm_value_dual_and_map_of_a_nan_matrix_are_nan(norm):
  g = _bad(np.nan)
  assert np.isnan(float(norm.value(g)))
  assert np.isnan(float(norm.dual(g)))
  assert np.isnan(np.asarray(norm.dual_map(g))[1, 2])


def test_the_issue_examples_no_longer_turn_nan_into_zero():
  g = jnp.array([1.0, jnp.nan, 2.0])
  # NaN in -> NaN out (every entry: ‖g‖₂ is NaN, and it scales every entry)
  for form in FORMS:
    assert np.all(np.isnan(np.asarray(jaxopt_hw.steepest_step(g, 0.1, "l2", form=form))))
    u = jaxopt_hw.steepest_step(g, 0.1, "mahalanobis", M=np.ones(3), form=form)
    assert np.all(np.isnan(np.asarray(u)))
  assert np.all(np.isnan(np.asarray(jaxopt_hw.steepest_step(g, 0.1, "l1", form="ball"))))
  # ℓp couples every entry through ‖g‖_q: all NaN, not zeros beside one NaN
  for form in FORMS:
    assert np.all(np.isnan(np.asarray(jaxopt_hw.steepest_step(g, 0.1, "lp", p=3.0, form=form))))
  G = jnp.ones((2, 2)).at[0, 1].set(jnp.nan)
  u = jaxopt_hw.steepest_step(G, 0.1, "spectral", form="ball", spectral_method="newton_schulz")
  assert np.all(np.isnan(np.asarray(u)))


def test_a_nan_in_one_leaf_reaches_the_update_of_a_pytree():
  grads = {"a": jnp.array([1.0, 2.0]), "b": jnp.array([jnp.nan, 3.0])}
  for norm in ("l2", "linf", "l1"):
    for form in FORMS:
      u = jaxopt_hw.steepest_step(grads, 0.1, norm, form=form)
      assert np.isnan(np.asarray(u["b"])[0]), (norm, form, u)


def test_the_optax_transform_propagates_nan_like_optax_sgd():
  g = {"w": jnp.array([[1.0, jnp.nan], [2.0, 3.0]])}
  sgd = optax.sgd(0.05)
  ref, _ = sgd.update(g, sgd.init(g))
  assert np.isnan(np.asarray(ref["w"])[0, 1])  # optax's own behaviour, the reference
  tx = jaxopt_hw.steepest_descent(0.1, "l2")
  u, _ = tx.update(g, tx.init(g))
  assert np.all(np.isnan(np.asarray(u["w"])))


def test_zero_gradients_still_give_exact_zeros_after_the_nan_fix():
  # the guarded divisions still catch an exact 0 (the house rule: zero gradient -> zero update)
  for _, kwargs in CONFIGS:
    for form in FORMS:
      u = _step(jnp.zeros((3, 3), jnp.float32), form, kwargs)
      assert np.all(np.asarray(u) == 0), (kwargs, form)


# ------------------------------------------------------------------------------------------------
# 12.11 — tiny and huge gradients in float32.

_G = np.array([[3.0, -4.0, 1.0], [0.5, 2.0, -1.5]])


@pytest.mark.parametrize("scale", [1e-20, 1e20], ids=["1e-20", "1e20"])
def test_l2_steps_of_tiny_and_huge_float32_gradients(scale):
  g = jnp.asarray(_G * scale, jnp.float32)
  alpha = 0.1
  v = _G * scale
  penalty = np.asarray(jaxopt_hw.steepest_step(g, alpha, "l2"), np.float64)
  # closed form −(α/2)·g, float32 rounding
  np.testing.assert_allclose(penalty, -(alpha / 2) * v, rtol=1e-6)
  ball = np.asarray(jaxopt_hw.steepest_step(g, alpha, "l2", form="ball"), np.float64)
  # −α·g/‖g‖₂: a step of length α whatever the scale of g
  np.testing.assert_allclose(ball, -alpha * v / np.linalg.norm(v), rtol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(ball), alpha, rtol=1e-6)
  n = duality.get_norm("l2")
  np.testing.assert_allclose(float(n.value(g)), np.linalg.norm(v), rtol=1e-6)


@pytest.mark.parametrize("scale", [1e-20, 1e20], ids=["1e-20", "1e20"])
@pytest.mark.parametrize("diagonal", [True, False], ids=["diagonal", "matrix"])
def test_mahalanobis_steps_of_tiny_and_huge_float32_gradients(scale, diagonal):
  d = np.arange(1.0, 7.0)
  M = d if diagonal else np.diag(d) + 0.1 * np.ones((6, 6))
  Mm = np.diag(d) if diagonal else M
  g = jnp.asarray(_G * scale, jnp.float32)
  v = (_G * scale).ravel()
  alpha = 0.1
  w = np.linalg.solve(Mm, v)  # M⁻¹g in float64
  penalty = np.asarray(jaxopt_hw.steepest_step(g, alpha, "mahalanobis", M=M), np.float64)
  np.testing.assert_allclose(penalty.ravel(), -(alpha / 2) * w, rtol=1e-5)  # −(α/2)·M⁻¹g
  ball = np.asarray(jaxopt_hw.steepest_step(g, alpha, "mahalanobis", M=M, form="ball"))
  ball = ball.astype(np.float64).ravel()
  # −α·M⁻¹g/‖g‖_{M⁻¹}: length α in the M-norm
  np.testing.assert_allclose(ball, -alpha * w / np.sqrt(v @ w), rtol=1e-5)
  np.testing.assert_allclose(np.sqrt(ball @ Mm @ ball), alpha, rtol=1e-5)


@pytest.mark.parametrize("scale", [1e-20, 1e20], ids=["1e-20", "1e20"])
@pytest.mark.parametrize("method", ["svd", "newton_schulz"])
def test_spectral_ball_step_of_tiny_and_huge_float32_gradients_is_minus_alpha_uvt(scale, method):
  rng = np.random.default_rng(0)
  U, _ = np.linalg.qr(rng.standard_normal((4, 3)))
  V, _ = np.linalg.qr(rng.standard_normal((3, 3)))
  G = U @ np.diag([2.0, 1.0, 0.5]) @ V.T  # condition number 4: 30 cubic steps reach UVᵀ
  g = jnp.asarray(G * scale, jnp.float32)
  u = jaxopt_hw.steepest_step(g, 0.1, "spectral", form="ball", spectral_method=method)
  np.testing.assert_allclose(np.asarray(u, np.float64), -0.1 * U @ V.T, atol=2e-6)  # −α·UVᵀ
  p = jaxopt_hw.steepest_step(g, 0.1, "spectral", spectral_method=method)
  # −(α/2)·‖G‖_nuc·UVᵀ, nuclear norm 3.5·scale
  np.testing.assert_allclose(
    np.asarray(p, np.float64), -0.05 * 3.5 * scale * U @ V.T, atol=2e-6 * 0.175 * scale
  )


# ------------------------------------------------------------------------------------------------
# 12.14 — integer gradients.


def test_integer_gradients_are_promoted_as_optax_promotes_them():
  g = jnp.array([1, -2, 3])
  sgd = optax.sgd(0.05)
  ref, _ = sgd.update(g, sgd.init(g))  # optax: −lr·g in the default float
  u = jaxopt_hw.steepest_step(g, 0.1, "l2")  # ℓ2 penalty with α = 2·lr is optax.sgd(lr)
  assert u.dtype == ref.dtype
  np.testing.assert_allclose(np.asarray(u), np.asarray(ref), rtol=1e-12)
  sign = optax.sign_sgd(0.1)
  ref, _ = sign.update(g, sign.init(g))  # ℓ∞ ball is sign descent
  u = jaxopt_hw.steepest_step(g, 0.1, "linf", form="ball")
  assert u.dtype == ref.dtype
  np.testing.assert_allclose(np.asarray(u), np.asarray(ref), rtol=1e-12)
  # every norm: the update of an integer gradient is the update of its float promotion
  G = jnp.array([[3, -1, 0], [2, 5, -4], [1, 1, 2]])
  for _, kwargs in CONFIGS:
    for form in FORMS:
      got = _step(G, form, kwargs)
      want = _step(G.astype(ref.dtype), form, kwargs)
      assert got.dtype == ref.dtype and np.any(np.asarray(got) != 0)
      np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12)
  tx = jaxopt_hw.steepest_descent(0.1, "linf")
  u, _ = tx.update({"w": G}, tx.init({"w": G}))
  assert u["w"].dtype == ref.dtype and np.any(np.asarray(u["w"]) != 0)
