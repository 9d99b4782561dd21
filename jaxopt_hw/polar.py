r"""The polar factor UVᵀ of a matrix G = UΣVᵀ ("orthogonalisation"): Newton–Schulz schedules and the
SVD.

UVᵀ is the dual map of the spectral norm (:class:`jaxopt_hw.duality.SpectralNorm`), the step of
Muon and of Scion's spectral layers. The SVD computes it exactly; Newton–Schulz iterations compute
it with matrix products only, which is what accelerators are fast at. One step is the odd quintic

.. math::

  X \leftarrow a X + b (XX^⊤) X + c (XX^⊤)^2 X,

which acts on every singular value alone: σ ↦ p(σ) = aσ + bσ³ + cσ⁵. After normalising G so that
σ ≤ 1, k steps with coefficients (a_t, b_t, c_t) map each σ to p_k∘…∘p_1(σ), and max|σᵢ − 1| after
k steps is the largest deviation of that scalar composition from 1 over the singular values' range.
:func:`schedule_bound` computes it exactly (interval images through each polynomial).

Presets (:data:`jaxopt_hw.names.NS_PRESETS`):

* ``"jordan"`` — (3.4445, −4.7750, 2.0315) every step, optax's default for ``muon`` (Jordan's
  modded-nanogpt quintic). Tuned for the slope at 0, it does not converge to UVᵀ: singular values
  end in roughly [0.7, 1.2].
* ``"cubic"`` — (1.5, −0.5, 0) every step: the classic Newton–Schulz iteration X ← X(3I − XᵀX)/2,
  which converges to UVᵀ for every σ in (0, √3), slowly while σ is small (×1.5 per step).
* ``"dion"`` — optax's five-step ``"dion"`` table (Ahn et al. 2025), last row repeated beyond 5.
* ``"polar_express"`` — a per-step schedule computed here by the construction of Polar Express
  (Amsel et al. 2025): each step is the odd quintic that is best in the minimax sense on the
  interval the previous steps left the singular values in (see
  :func:`polar_express_coefficients`).

References:
  Björck & Bowie, "An iterative algorithm for computing the best estimate of an orthogonal
  matrix", SIAM J. Numer. Anal. 8 (1971) — the cubic iteration.
  Jordan et al., "Muon: An optimizer for hidden layers in neural networks" (2024), and optax's
  ``optax/contrib/_muon.py`` — the "jordan" and "dion" coefficients.
  Amsel, Persson, Musco & Gower, "The Polar Express: Optimal Matrix Sign Methods and Their
  Application to the Muon Algorithm", arXiv:2505.16932 (2025).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_hw import numerics
from jaxopt_hw.errors import UserInputError, unknown_choice
from jaxopt_hw.names import NS_PRECONDITIONINGS, NS_PRESETS, SPECTRAL_METHODS
from jaxopt_hw.validation import check_count

#: optax/contrib/_muon.py, ``_DEFAULT_NS_COEFFS`` (Jordan's quintic).
JORDAN = (3.4445, -4.7750, 2.0315)
#: X ← X(3I − XᵀX)/2 (Björck & Bowie 1971) written as a quintic: a = 3/2, b = −1/2, c = 0.
CUBIC = (1.5, -0.5, 0.0)
#: optax/contrib/_muon.py, ``_DION_NS_COEFFS`` (Ahn et al., "Dion", arXiv:2504.05295).
DION = (
  (4.0848, -6.8946, 2.9270),
  (3.9505, -6.3029, 2.6377),
  (3.7418, -5.5913, 2.3037),
  (2.8769, -3.1427, 1.2046),
  (2.8366, -3.0525, 1.2012),
)

#: Steps each preset takes when ``steps`` is not given.
DEFAULT_STEPS = {"jordan": 5, "cubic": 30, "dion": 5, "polar_express": 8}

#: Smallest σ/σ_max the Polar Express schedule is designed for: singular values below 1e-3 of the
#: largest are treated as noise (they still grow every step, but are not promised to reach 1).
POLAR_EXPRESS_LOWER = 1e-3
#: Each polynomial is designed on [ℓ_t, u_t·(1 + cushion)], so that rounding that pushes a singular
#: value slightly above the interval the previous step promised keeps it inside the design range.
POLAR_EXPRESS_CUSHION = 1e-3


# ------------------------------------------------------------------------------------------------
# Coefficient schedules.


def _quintic(c, x):
  return c[0] * x + c[1] * x**3 + c[2] * x**5


def _image(c, lo, hi):
  """[min p, max p] over [lo, hi] for the odd quintic p with coefficients c: the extremes are at the
  ends or where p'(x) = c0 + 3c1x² + 5c2x⁴ = 0 (a quadratic in x²), so this is exact."""
  xs = [lo, hi]
  if c[2] != 0:
    ys = np.roots([5 * c[2], 3 * c[1], c[0]])
  elif c[1] != 0:
    ys = np.array([-c[0] / (3 * c[1])])
  else:
    ys = np.array([])
  for y in ys:
    if abs(y.imag) <= 1e-14 * max(1.0, abs(y)) and y.real > 0:
      x = math.sqrt(y.real)
      if lo < x < hi:
        xs.append(x)
  values = [_quintic(c, x) for x in xs]
  return min(values), max(values)


def schedule_bound(schedule, lower: float, upper: float = 1.0) -> tuple[float, float]:
  """[lo, hi] such that k steps of ``schedule`` (a (k, 3) array) map every σ in [lower, upper] into
  [lo, hi], computed exactly in float64 (interval images through each polynomial).

  With G normalised so that its singular values lie in [lower, upper], max|σᵢ − 1| after the k steps
  is at most max(1 − lo, hi − 1) in exact arithmetic.
  """
  lo, hi = float(lower), float(upper)
  for c in np.asarray(schedule, np.float64):
    lo, hi = _image(c, lo, hi)
  return lo, hi


def _minimax_odd_quintic(a: float, b: float, iterations: int = 200):
  """(c, E): the odd quintic p(x) = c0x + c1x³ + c2x⁵ minimising E = max_{x∈[a,b]} |1 − p(x)|,
  0 < a < b, by the Remez exchange algorithm in float64.

  {x, x³, x⁵} is a Chebyshev system on (0, ∞), so the best approximation is characterised by an
  error 1 − p that equioscillates (+E, −E, +E, −E) at four points of [a, b] (Chebyshev's
  alternation theorem); its extremes are the ends of [a, b] and the two roots of p' in between,
  found in closed form.
  """
  x = a + (b - a) * (1 - np.cos(np.pi * np.arange(4) / 3)) / 2  # Chebyshev points
  signs = (-1.0) ** np.arange(4)
  c, E = None, None
  for _ in range(iterations):
    A = np.stack([x, x**3, x**5, signs], axis=1)  # p(x_i) + (−1)^i E = 1
    solution = np.linalg.solve(A, np.ones(4))
    c, E = solution[:3], solution[3]
    inner = []
    for y in np.roots([5 * c[2], 3 * c[1], c[0]]):
      if abs(y.imag) <= 1e-12 * max(1.0, abs(y)) and a * a < y.real < b * b:
        inner.append(math.sqrt(y.real))
    if len(inner) != 2:  # not yet alternating: exchange on a dense grid instead
      grid = np.linspace(a, b, 20001)
      err = 1 - _quintic(c, grid)
      peaks = [
        i for i in range(1, len(grid) - 1) if (err[i] - err[i - 1]) * (err[i + 1] - err[i]) <= 0
      ]
      inner = sorted(grid[peaks], key=lambda t: -abs(1 - _quintic(c, t)))[:2]
      if len(inner) != 2:
        break
    new = np.array([a, *sorted(inner), b])
    errors = 1 - _quintic(c, new)
    worst = np.max(np.abs(errors))
    x = new
    if worst - abs(E) <= 1e-15 + 1e-13 * abs(E):
      return c, float(worst)
  grid = np.linspace(a, b, 200001)  # not converged in `iterations`: report the true error of c
  return c, float(np.max(np.abs(1 - _quintic(c, grid))))


@functools.cache
def _polar_express(steps: int, lower: float, cushion: float) -> tuple[tuple[float, ...], ...]:
  rows = []
  lo, hi = lower, 1.0
  for _ in range(steps):
    c, E = _minimax_odd_quintic(lo, hi * (1 + cushion))
    rows.append(tuple(float(v) for v in c))
    lo, hi = 1 - E, 1 + E  # equioscillation: p maps [lo, hi·(1 + cushion)] onto [1 − E, 1 + E]
  return tuple(rows)


def polar_express_coefficients(
  steps: int, lower: float = POLAR_EXPRESS_LOWER, cushion: float = POLAR_EXPRESS_CUSHION
) -> np.ndarray:
  r"""The Polar Express schedule: ``steps`` rows (a_t, b_t, c_t), computed in float64.

  The construction of Amsel et al. (2025): start from the interval [ℓ, 1] that holds σ/‖G‖_F;
  step t is the odd quintic p_t minimising max |1 − p_t(x)| over the current interval [ℓ_t, u_t]
  (the Remez algorithm), after which the singular values lie in [1 − E_t, 1 + E_t], the next
  interval. This greedy choice gives the optimal composition of odd quintics (the paper's
  optimality theorem for the greedy construction). What this function adds of its own, and why:
  the design interval's upper end is widened by ``cushion`` (relative), so that rounding cannot
  push a singular value out of the range a polynomial was made for; and ℓ = 1e-3 by default.
  The first k rows do not depend on ``steps`` (greedy), so a (k, 3) prefix is the k-step schedule.

  Args:
    steps: number of rows.
    lower: ℓ, the smallest σ/σ_max the schedule must bring to 1.
    cushion: relative widening of each design interval's upper end.

  Returns:
    A (steps, 3) float64 array.
  """
  return np.asarray(_polar_express(int(steps), float(lower), float(cushion)), np.float64)


def _check_steps(steps) -> int:
  return check_count(
    "steps",
    steps,
    traced_hint="the iteration is unrolled; with optax.inject_hyperparams pass it in static_args",
  )


def coefficient_schedule(coefficients="jordan", steps=None) -> np.ndarray:
  """The (k, 3) float64 table of Newton–Schulz coefficients, one row per step.

  Args:
    coefficients: a preset name (:data:`jaxopt_hw.names.NS_PRESETS`), one row (a, b, c) used at
      every step, or a (k, 3) table (then ``steps`` is k, or omitted).
    steps: the number of steps; default :data:`DEFAULT_STEPS` for a preset, 5 for one row.

  Raises:
    UserInputError: unknown preset, a table that is not (3,) or (k, 3) or not finite, bad steps.
  """
  if isinstance(coefficients, str):
    if coefficients not in NS_PRESETS:
      raise unknown_choice("coefficients", coefficients, NS_PRESETS)
    k = DEFAULT_STEPS[coefficients] if steps is None else _check_steps(steps)
    if coefficients == "polar_express":
      return polar_express_coefficients(k)
    if coefficients == "dion":
      table = np.asarray(DION, np.float64)
      return np.concatenate([table, np.repeat(table[-1:], max(0, k - len(table)), 0)])[:k]
    return np.tile(np.asarray(JORDAN if coefficients == "jordan" else CUBIC, np.float64), (k, 1))
  try:
    table = np.asarray(coefficients, np.float64)
  except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
    raise UserInputError(
      "coefficients: must be a preset name or concrete numbers of shape (3,) or (k, 3)"
    ) from None
  if table.ndim == 1 and table.shape == (3,):
    table = np.tile(table, (5 if steps is None else _check_steps(steps), 1))
  elif table.ndim == 2 and table.shape[1] == 3 and table.shape[0] >= 1:
    if steps is not None and _check_steps(steps) != table.shape[0]:
      raise UserInputError(
        f"steps: {steps!r} does not match the {table.shape[0]} rows of the coefficient table"
      )
  else:
    raise UserInputError(
      f"coefficients: shape {table.shape} is not allowed; allowed: a preset "
      f"({', '.join(NS_PRESETS)}), (3,) or (k, 3)"
    )
  if not np.all(np.isfinite(table)):
    raise UserInputError("coefficients: must be finite numbers")
  return table


# ------------------------------------------------------------------------------------------------
# The polar factor.


def _mT(x):
  return jnp.swapaxes(x, -1, -2)


def _ns_step(x, row, quintic=True):
  """a X + (b A + c A²) X with A = XXᵀ (optax's ``_base_newton_schulz_iteration`` order)."""
  a = x @ _mT(x)
  b = row[1] * a + row[2] * (a @ a) if quintic else row[1] * a
  return row[0] * x + b @ x


def _svd_polar(G):
  """(Σσ, U_rV_rᵀ) of each trailing matrix of G (m ≤ n or not), guarded: 0 for G = 0, NaN for a G
  holding NaN or inf (LAPACK's SVD spins forever on an inf), σ below σ_max·max(m, n)·eps dropped."""
  m = numerics.max_abs(G, axis=(-2, -1), keepdims=True)
  ok = jnp.isfinite(m) & (m > 0)
  eye = jnp.eye(*G.shape[-2:], dtype=G.dtype) * jnp.arange(1, G.shape[-1] + 1, dtype=G.dtype)
  X = jnp.where(ok, numerics.safe_div(G, jnp.where(ok, m, 1)), eye)
  U, s, Vt = jnp.linalg.svd(X, full_matrices=False)
  tol = s[..., :1] * max(G.shape[-2:]) * jnp.finfo(G.dtype).eps
  keep = (s > tol).astype(G.dtype)
  Q = (U * keep[..., None, :]) @ Vt
  bad = jnp.where(m == 0, 0, jnp.nan).astype(G.dtype)
  nuclear = jnp.where(ok[..., 0, 0], m[..., 0, 0] * jnp.sum(s, axis=-1), bad[..., 0, 0])
  return nuclear, jnp.where(ok, Q, bad)


def _newton_schulz(X, schedule, eps, preconditioning):
  transpose = X.shape[-2] > X.shape[-1]  # iterate on the smaller Gram matrix XXᵀ
  if transpose:
    X = _mT(X)
  m, Xs = numerics.scaled(X, axis=(-2, -1))  # divide by max|X| before squaring (issue 12.11)
  epsm = numerics.safe_div(jnp.asarray(eps, X.dtype), m)  # X/(‖X‖ + eps) = (X/m)/(‖X/m‖ + eps/m)
  if preconditioning == "frobenius":
    X = numerics.safe_div(Xs, numerics.safe_sqrt(jnp.sum(Xs * Xs, (-2, -1), keepdims=True)) + epsm)
  elif preconditioning == "spectral":
    ok = jnp.all(jnp.isfinite(Xs), axis=(-2, -1), keepdims=True)
    top = jnp.linalg.norm(jnp.where(ok, Xs, 0), ord=2, axis=(-2, -1), keepdims=True)
    X = numerics.safe_div(Xs, jnp.where(ok, top, jnp.nan) + epsm)
  rows = np.asarray(schedule, np.float64)
  first = tuple(float(v) for v in rows[0])
  if preconditioning in ("aol", "schatten"):
    # optax/contrib/_muon.py: the first step rescales X (AOL: by the rows' absolute Gram sums,
    # Boissin et al. arXiv:2512.04632; Schatten-4: by ‖XXᵀ‖_F^½, Grishina et al.
    # arXiv:2506.10935) instead of the Frobenius normalisation.
    a = X @ _mT(X)
    if preconditioning == "aol":
      s = jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.abs(a), axis=-1), eps))[..., None]
      X, a = X * s, a * s * _mT(s)
    else:
      s = jax.lax.rsqrt(jnp.maximum(jnp.sqrt(jnp.sum(a * a, axis=(-2, -1), keepdims=True)), eps))
      X, a = X * s, a * s * s
    X = first[0] * X + (first[1] * a + first[2] * (a @ a)) @ X
  else:
    X = _ns_step(X, first, first[2] != 0)
  rest = rows[1:]
  if len(rest):
    quintic = bool(np.any(rest[:, 2] != 0))  # the cubic preset skips the product A·A
    coefficients = jnp.asarray(rest, X.dtype)  # rounded to X's dtype, as optax rounds them
    X, _ = jax.lax.scan(
      lambda X, row: (_ns_step(X, row, quintic), None),
      X,
      coefficients,
      unroll=len(rest) if len(rest) <= 8 else 1,
    )
  return _mT(X) if transpose else X


def orthogonalize(
  G,
  *,
  method: str = "newton_schulz",
  steps: int | None = None,
  coefficients="jordan",
  eps: float = 0.0,
  preconditioning: str = "frobenius",
) -> jax.Array:
  r"""The polar factor UVᵀ of G = UΣVᵀ, of every trailing (m, n) matrix of G.

  .. math:: X_0 = G / (\|G\|_F + ε), \qquad X_{t+1} = a_t X_t + b_t (X_tX_t^⊤) X_t
    + c_t (X_tX_t^⊤)^2 X_t.

  Args:
    G: an array of shape (..., m, n); leading axes are a batch (stacked layers), each matrix is
      orthogonalised on its own.
    method: ``"newton_schulz"`` (matrix products only; approximate) or ``"svd"`` (exact U_rVᵣᵀ over
      the singular values above σ_max·max(m, n)·eps).
    steps: Newton–Schulz steps; default per preset (:data:`DEFAULT_STEPS`).
    coefficients: a preset (``"jordan"``, ``"cubic"``, ``"polar_express"``, ``"dion"``), one row
      (a, b, c) for every step, or a (k, 3) table, one row per step
      (:func:`coefficient_schedule`).
    eps: added to ‖G‖_F before dividing, as optax's ``muon`` does (its default there is 1e-8, which
      sends gradients far below 1e-8 to ~0). The default 0 keeps the step scale-free: any G ≠ 0,
      however small, is orthogonalised (the norm is taken after dividing by max|G|, so float32
      gradients of 1e-20 do not underflow).
    preconditioning: how X₀ is scaled, as in optax's ``muon``: ``"frobenius"`` (above),
      ``"spectral"`` (by σ_max + ε, exact), ``"aol"`` or ``"schatten"`` (a rescaled first step).

  Returns:
    An array like G (its dtype; bfloat16/float16 are computed in float32). G = 0 gives 0; a G with
    a NaN or inf gives NaN, at once.

  Example:
    >>> import jax.numpy as jnp
    >>> Q = orthogonalize(jnp.array([[3.0, 0.0], [0.0, 0.5]]), coefficients="polar_express")
    >>> bool(jnp.allclose(Q, jnp.eye(2), atol=1e-3))
    True
  """
  G = jnp.asarray(G)
  if G.ndim < 2:
    raise UserInputError(f"G: orthogonalize needs an array of shape (..., m, n); got {G.shape}")
  if method not in SPECTRAL_METHODS:
    raise unknown_choice("method", method, SPECTRAL_METHODS)
  if preconditioning not in NS_PRECONDITIONINGS:
    raise unknown_choice("preconditioning", preconditioning, NS_PRECONDITIONINGS)
  X = numerics.up(G)
  if X.size == 0:
    return X.astype(numerics.out_dtype(G))
  if method == "svd":
    return _svd_polar(X)[1].astype(numerics.out_dtype(G))
  schedule = coefficient_schedule(coefficients, steps)
  return _newton_schulz(X, schedule, eps, preconditioning).astype(numerics.out_dtype(G))
