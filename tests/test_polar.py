"""`jaxopt_hw.orthogonalize`: Newton–Schulz presets against the SVD, and the Polar Express schedule.

References, all independent of the code under test: NumPy's SVD in float64 (the polar factor UVᵀ);
the scalar composition p_k∘…∘p_1 evaluated on a dense grid in float64 (Newton–Schulz acts on each
singular value alone, so this is what the matrix iteration must do); Chebyshev's alternation
theorem (a best minimax approximation equioscillates) as the certificate that each Polar Express
step is optimal; and optax's own ``orthogonalize_via_newton_schulz``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optax.contrib import _muon as optax_muon

import jaxopt_hw
from jaxopt_hw import polar
from jaxopt_hw.errors import UserInputError

LOWER = 1e-3  # the smallest σ/σ_max the presets are judged on (Polar Express's design range)
GRID = np.geomspace(LOWER, 1.0, 200_001)


def _compose(schedule, x):
  """p_k∘…∘p_1(x) for the rows (a, b, c) of ``schedule``, in float64."""
  for a, b, c in np.asarray(schedule, np.float64):
    x = a * x + b * x**3 + c * x**5
  return x


def _grid_error(schedule):
  """max |p_k∘…∘p_1(σ) − 1| over σ in [1e-3, 1], on a dense grid."""
  return float(np.max(np.abs(_compose(schedule, GRID) - 1)))


PRESET_STEPS = [("jordan", 5), ("jordan", 8), ("dion", 5), ("cubic", 30)]
PRESET_STEPS += [("polar_express", 5), ("polar_express", 8)]


# ------------------------------------------------------------------------------------------------
# The Polar Express schedule.


def test_each_polar_express_step_equioscillates_on_its_interval():
  # Chebyshev's alternation theorem: an odd quintic (3 coefficients) is the best minimax
  # approximation of 1 on [lo, hi] iff 1 − p reaches ±E with alternating signs at 4 points. The
  # interval of step t+1 is the range of p_t over step t's interval, read off the grid here.
  schedule = polar.polar_express_coefficients(6)
  lo, hi = LOWER, 1.0
  for a, b, c in schedule:
    x = np.linspace(lo, hi * (1 + polar.POLAR_EXPRESS_CUSHION), 400_001)
    error = 1 - (a * x + b * x**3 + c * x**5)
    E = np.max(np.abs(error))
    near = np.abs(error) >= E * (1 - 1e-6)
    signs = np.sign(error[near])
    alternations = 1 + np.count_nonzero(np.diff(signs) != 0)  # runs of equal sign at |e| ≈ E
    assert alternations >= 4, (a, b, c, alternations)
    p = 1 - error
    lo, hi = float(p.min()), float(p.max())
    np.testing.assert_allclose([lo, hi], [1 - E, 1 + E], rtol=1e-9)  # p maps onto [1 − E, 1 + E]


def test_the_greedy_schedule_of_k_steps_is_the_prefix_of_the_longer_one():
  np.testing.assert_array_equal(
    polar.polar_express_coefficients(5), polar.polar_express_coefficients(8)[:5]
  )


@pytest.mark.parametrize("preset,steps", PRESET_STEPS, ids=[f"{p}-{k}" for p, k in PRESET_STEPS])
def test_schedule_bound_is_exact_against_a_dense_grid(preset, steps):
  schedule = polar.coefficient_schedule(preset, steps)
  lo, hi = polar.schedule_bound(schedule, LOWER)
  bound = max(1 - lo, hi - 1)
  grid = _grid_error(schedule)
  assert bound >= grid - 1e-12  # an upper bound ...
  np.testing.assert_allclose(bound, grid, rtol=1e-6, atol=1e-12)  # ... and attained


def test_polar_express_beats_the_fixed_quintic_at_equal_steps():
  # the point of Polar Express (Amsel et al. 2025): the grid errors, not numbers from the code
  for steps in (5, 8):
    pe = _grid_error(polar.coefficient_schedule("polar_express", steps))
    jordan = _grid_error(polar.coefficient_schedule("jordan", steps))
    assert pe < jordan
  assert _grid_error(polar.coefficient_schedule("polar_express", 8)) < 1e-6


# ------------------------------------------------------------------------------------------------
# The matrix iteration against the SVD.


def _matrix(rng, shape, top=7.0, spread=1e-2):
  """G = U diag(s) Vᵀ with s from top down to top·spread, and its factors (float64)."""
  m, n = shape
  k = min(m, n)
  U, _ = np.linalg.qr(rng.standard_normal((m, k)))
  V, _ = np.linalg.qr(rng.standard_normal((n, k)))
  s = top * np.geomspace(1.0, spread, k)
  return U @ np.diag(s) @ V.T, U, s, V


@pytest.mark.parametrize(
  "dtype,shape", [(jnp.float32, (8, 6)), (jnp.bfloat16, (5, 9))], ids=["f32-tall", "bf16-wide"]
)
@pytest.mark.parametrize("preset,steps", PRESET_STEPS, ids=[f"{p}-{k}" for p, k in PRESET_STEPS])
def test_singular_values_after_k_steps_are_within_the_preset_bound(shape, preset, steps, dtype):
  G = jnp.asarray(_matrix(np.random.default_rng(0), shape)[0], dtype)
  Q = np.asarray(jaxopt_hw.orthogonalize(G, coefficients=preset, steps=steps)).astype(np.float64)
  assert Q.shape == G.shape
  # every σ of the input (as rounded to its dtype; NumPy's float64 SVD) follows the scalar
  # composition from σ/‖G‖_F: Q = U diag(p_k∘…∘p_1(σ/‖G‖_F)) Vᵀ
  U, s, Vt = np.linalg.svd(np.asarray(G, np.float64), full_matrices=False)
  p = _compose(polar.coefficient_schedule(preset, steps), s / np.linalg.norm(s))
  expected = U @ np.diag(p) @ Vt
  tol = {jnp.float32: 2e-5, jnp.bfloat16: 2e-2}[dtype]  # float32 rounding; bfloat16 output rounding
  np.testing.assert_allclose(Q, expected, atol=tol)
  # and the preset's bound over [1e-3, 1] (σ/‖G‖_F lies there) holds for max|σᵢ(Q) − 1|
  sigma = np.linalg.svd(Q, compute_uv=False)
  assert np.max(np.abs(sigma - 1)) <= _grid_error(polar.coefficient_schedule(preset, steps)) + tol


def test_svd_method_is_the_numpy_polar_factor_also_for_rank_deficient_matrices():
  rng = np.random.default_rng(1)
  G, U, _, V = _matrix(rng, (6, 4))
  np.testing.assert_allclose(
    np.asarray(jaxopt_hw.orthogonalize(jnp.asarray(G), method="svd")), U @ V.T, atol=1e-12
  )
  a, b = np.array([1.0, 2.0, 2.0]), np.array([3.0, 4.0])
  R = jaxopt_hw.orthogonalize(jnp.asarray(np.outer(a, b)), method="svd")  # rank 1: u vᵀ
  np.testing.assert_allclose(np.asarray(R), np.outer(a / 3, b / 5), atol=1e-14)


def test_leading_axes_are_a_batch_of_matrices():
  rng = np.random.default_rng(2)
  G = rng.standard_normal((2, 2, 5, 4))
  for kwargs in (dict(coefficients="polar_express"), dict(method="svd")):
    batched = np.asarray(jaxopt_hw.orthogonalize(jnp.asarray(G), **kwargs))
    for i in range(2):
      for j in range(2):
        alone = np.asarray(jaxopt_hw.orthogonalize(jnp.asarray(G[i, j]), **kwargs))
        np.testing.assert_allclose(batched[i, j], alone, atol=1e-12)


@pytest.mark.parametrize("preconditioning", ["frobenius", "spectral", "aol", "schatten"])
@pytest.mark.parametrize("coefficients", ["standard", "dion"])
def test_jordan_and_dion_with_eps_match_optax_newton_schulz(coefficients, preconditioning):
  rng = np.random.default_rng(3)
  table = optax_muon._NS_COEFFS_PRESET_DICT[coefficients]
  for shape in [(6, 4), (4, 6)]:
    G = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    ref = optax_muon.orthogonalize_via_newton_schulz(G, jnp.asarray(table), 5, preconditioning)
    ours = jaxopt_hw.orthogonalize(
      G,
      coefficients=table,
      steps=5 if coefficients == "standard" else None,
      eps=1e-8,
      preconditioning=preconditioning,
    )
    # float32 rounding: the same products in the same order, after a division by max|G|
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), atol=5e-6)


def test_zero_tiny_nan_and_inf():
  z = jaxopt_hw.orthogonalize(jnp.zeros((3, 2), jnp.float32))
  assert z.dtype == jnp.float32 and np.all(np.asarray(z) == 0)
  G, U, _, V = _matrix(np.random.default_rng(4), (4, 3), top=3e-20, spread=0.3)
  Q = jaxopt_hw.orthogonalize(jnp.asarray(G, jnp.float32), coefficients="polar_express")
  np.testing.assert_allclose(np.asarray(Q, np.float64), U @ V.T, atol=1e-5)  # not 0: UVᵀ
  for method in ("newton_schulz", "svd"):
    for bad in (jnp.nan, jnp.inf):
      G = jnp.ones((3, 3), jnp.float32).at[1, 1].set(bad)
      assert np.all(np.isnan(np.asarray(jaxopt_hw.orthogonalize(G, method=method))))
  # a batch with one bad matrix: only that one is NaN
  B = jnp.stack([jnp.eye(3), jnp.eye(3).at[0, 0].set(jnp.inf)])
  out = np.asarray(jax.jit(lambda b: jaxopt_hw.orthogonalize(b, method="svd"))(B))
  np.testing.assert_allclose(out[0], np.eye(3), atol=1e-12)
  assert np.all(np.isnan(out[1]))


def test_dion_beyond_its_five_rows_repeats_the_last_and_tables_are_used_as_given():
  table = polar.coefficient_schedule("dion", 7)
  np.testing.assert_array_equal(table[:5], np.asarray(polar.DION))
  np.testing.assert_array_equal(table[5:], np.asarray([polar.DION[-1]] * 2))
  custom = np.array([[1.5, -0.5, 0.0], [2.0, -1.5, 0.5]])
  np.testing.assert_array_equal(polar.coefficient_schedule(custom), custom)


@pytest.mark.parametrize(
  "kwargs,match",
  [
    (dict(coefficients="jordn"), r"coefficients: 'jordn' is not valid \(did you mean 'jordan'\?\)"),
    (dict(coefficients=(1.0, 2.0)), r"coefficients: shape \(2,\) is not allowed"),
    (dict(coefficients=np.ones((2, 4))), r"coefficients: shape \(2, 4\) is not allowed"),
    (dict(coefficients=np.ones((2, 3)), steps=3), r"steps: 3 does not match the 2 rows"),
    (dict(steps=0), r"steps: 0 is not allowed; allowed: an integer >= 1"),
    (dict(method="qr"), r"method: 'qr' is not valid"),
    (dict(preconditioning="none"), r"preconditioning: 'none' is not valid"),
    (dict(coefficients=(1.0, np.nan, 0.0)), r"coefficients: must be finite"),
  ],
)
def test_bad_arguments_are_one_line_user_errors(kwargs, match):
  with pytest.raises(UserInputError, match=match) as info:
    jaxopt_hw.orthogonalize(jnp.ones((2, 2)), **kwargs)
  assert "\n" not in str(info.value)
  with pytest.raises(UserInputError, match=r"G: orthogonalize needs an array of shape"):
    jaxopt_hw.orthogonalize(jnp.ones(3))
