"""Objectives the sweeps run on, and the exact solutions they are compared with.

A :class:`Problem` is a loss ``loss(params, data)``, its data (a pytree of arrays) and a way to draw
initial parameters ``init(key, data)``. Least squares, ``mean_i (x_iᵀθ − y_i)²``, covers the
homework's Q2 (one example ``a = [1, 0.1, 0.01]`` with target 1) and the over-parameterised studies.

The exact references of the implicit-bias study live here too, in NumPy float64 (no SciPy):

* :func:`min_norm_interpolant` — argmin ‖θ‖₂ subject to Xθ = y, via the pseudo-inverse;
* :func:`weighted_min_norm_interpolant` — argmin Σ_j w_j θ_j² subject to Xθ = y, in closed form;
* :func:`min_linf_interpolant` — argmin ‖θ‖∞ subject to Xθ = y, a linear programme solved exactly
  by a dense two-phase simplex method (Bland's rule) and checked against its LP dual.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

#: Q2's single training point: f(θ) = (1 − aᵀθ)² with this a.
HOMEWORK_A = (1.0, 0.1, 0.01)


@dataclasses.dataclass(frozen=True)
class Problem:
  """An objective for :func:`jaxopt_hw.sweep`.

  Attributes:
    loss: ``loss(params, data) -> scalar``, the objective to minimise.
    init: ``init(key, data) -> params``, the starting point (``key`` is a JAX PRNG key).
    data: a pytree of arrays the loss reads. For a batch of problem instances (the sweep's
      ``batched_data=True``) every leaf has one more leading axis.
    example_losses: optional ``example_losses(params, data) -> (n,)``, the per-example losses whose
      mean is ``loss``; needed for per-example gradients (e.g. simplified Adam's epoch RMS).
    name: shown in reports.

  The functions should be module-level (not fresh closures) so that sweeps of the same problem
  family reuse one compiled program.
  """

  loss: Callable[[Any, Any], jax.Array]
  init: Callable[[jax.Array, Any], Any]
  data: Any
  example_losses: Callable[[Any, Any], jax.Array] | None = None
  name: str = "problem"


# ---------------------------------------------------------------------------------------------
# Least squares.


def least_squares_example_losses(theta, data):
  """(x_iᵀθ − y_i)² for every row of ``data["X"]``."""
  # θ·Xᵀ rather than X·θ: vmapped over a grid of θ, this contracts θ's last (contiguous) axis, so
  # XLA needs no transpose of the stacked parameters at every step
  return (theta @ data["X"].T - data["y"]) ** 2


def least_squares_loss(theta, data):
  """mean_i (x_iᵀθ − y_i)²; for one example this is the homework's (1 − aᵀθ)²."""
  return jnp.mean(least_squares_example_losses(theta, data))


def zeros_init(key, data):
  """θ₀ = 0 (the homework's start), shaped like one row of ``data["X"]``."""
  del key
  return jnp.zeros(data["X"].shape[-1], data["X"].dtype)


def normal_init(key, data):
  """θ₀ ~ N(0, σ²I) with σ = ``data["init_scale"]``."""
  X = data["X"]
  return data["init_scale"] * jax.random.normal(key, (X.shape[-1],), X.dtype)


def least_squares(X, y, *, init_scale: float | None = None, name: str = "least squares") -> Problem:
  """The problem mean_i (x_iᵀθ − y_i)² with θ₀ = 0, or θ₀ ~ N(0, init_scale²) when given.

  ``X`` is (n, d) and ``y`` is (n,), or (P, n, d) and (P,) n for P instances swept at once.
  """
  X = np.asarray(X)
  y = np.asarray(y)
  data = {"X": X, "y": y}
  if init_scale is None:
    return Problem(least_squares_loss, zeros_init, data, least_squares_example_losses, name)
  data["init_scale"] = np.full(X.shape[:-2], init_scale, dtype=X.dtype)
  return Problem(least_squares_loss, normal_init, data, least_squares_example_losses, name)


def homework_problem(a=HOMEWORK_A, *, init_scale: float | None = None) -> Problem:
  """Q2: f(θ) = (1 − aᵀθ)², θ₀ = 0 (or random with ``init_scale``)."""
  a = np.asarray(a, dtype=np.float64)
  return least_squares(a[None, :], np.ones(1), init_scale=init_scale, name="(1 - a.theta)^2")


def random_overparameterized(
  seeds, n: int, d: int, *, scale_min: float = 1e-2, scale_max: float = 1.0, normalize: bool = True
) -> Problem:
  """Random least squares with more parameters than examples, one instance per seed.

  Feature j has scale ``s_j``, geometrically spaced from ``scale_max`` down to ``scale_min``
  (so features live on very different scales, as in the homework's a); X_ij = s_j·z_ij and
  y_i = z'_i with z, z' standard normal. With ``normalize`` each instance is divided (X and y by the
  same factor) so that the Hessian of the mean squared loss, 2XᵀX/n, has largest eigenvalue 1:
  one learning rate then suits every seed, and neither the set of interpolants nor any of the
  reference interpolants changes (they are invariant under X, y → cX, cy).

  Returns a batched :class:`Problem` (``data`` leaves have a leading axis of len(seeds)).
  """
  if n >= d:
    raise ValueError(f"n={n} must be smaller than d={d} for an over-parameterised problem")
  scales = np.geomspace(scale_max, scale_min, d)
  Xs, ys = [], []
  for seed in seeds:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * scales
    y = rng.standard_normal(n)
    if normalize:
      c = np.sqrt(2.0 / n) * np.linalg.norm(X, 2)
      X, y = X / c, y / c
    Xs.append(X)
    ys.append(y)
  return least_squares(np.stack(Xs), np.stack(ys), name=f"random least squares n={n} d={d}")


def select(problem: Problem, index: int) -> Problem:
  """Instance ``index`` of a batched problem."""
  return dataclasses.replace(
    problem, data=jax.tree.map(lambda x: np.asarray(x)[index], problem.data)
  )


# ---------------------------------------------------------------------------------------------
# Exact interpolants (NumPy float64).


def min_norm_interpolant(X, y) -> np.ndarray:
  """argmin ‖θ‖₂ s.t. Xθ = y, i.e. X⁺y (X of full row rank): where GD/SGD from 0 converges."""
  return np.linalg.pinv(np.asarray(X, np.float64)) @ np.asarray(y, np.float64)


def weighted_min_norm_interpolant(X, y, weights) -> np.ndarray:
  """argmin Σ_j w_j θ_j² s.t. Xθ = y, in closed form θ = W⁻¹Xᵀ(XW⁻¹Xᵀ)⁻¹y with W = diag(w).

  With w_j = E[x_j²] this is where SGD on unit-second-moment features lands, once converted back:
  it is the min-‖w‖₂ solution in the rescaled variables w = θ/s, s = 1/sqrt(E[x²]).
  """
  X = np.asarray(X, np.float64)
  winv = 1.0 / np.asarray(weights, np.float64)
  return winv * (X.T @ np.linalg.solve((X * winv) @ X.T, np.asarray(y, np.float64)))


def feature_second_moments(X) -> np.ndarray:
  """E[x_j²] over the rows of X (float64)."""
  return np.mean(np.asarray(X, np.float64) ** 2, axis=-2)


@dataclasses.dataclass(frozen=True)
class LinfSolution:
  """The minimum-ℓ∞-norm interpolant and its certificate.

  Attributes:
    theta: argmin ‖θ‖∞ subject to Xθ = y.
    value: ‖θ‖∞.
    dual: λ with ‖Xᵀλ‖₁ ≤ 1 and yᵀλ = value (the LP dual; it proves optimality).
    duality_gap: value − yᵀλ (≈ 0 up to rounding).
    residual: ‖Xθ − y‖∞.
    pivots: simplex pivots used.
  """

  theta: np.ndarray
  value: float
  dual: np.ndarray
  duality_gap: float
  residual: float
  pivots: int


def min_linf_interpolant(X, y, *, tol: float = 1e-10, max_pivots: int = 100_000) -> LinfSolution:
  """argmin ‖θ‖∞ s.t. Xθ = y, solved exactly as a linear programme (dense simplex, float64).

  The LP, in standard form with u = θ + t·1 ≥ 0 (so −t ≤ θ_j) and slacks s_j = 2t − u_j ≥ 0
  (so θ_j ≤ t)::

      minimise t   subject to   X u − (X1) t = y,   u + s − 2t·1 = 0,   u, s, t ≥ 0.

  A two-phase tableau simplex with Bland's rule (which cannot cycle) finds an optimal vertex; the
  dual λ of the equality rows Xθ = y is read off the final tableau and checked: ‖Xᵀλ‖₁ ≤ 1 and
  yᵀλ = ‖θ‖∞ is a certificate of optimality (weak duality: yᵀλ = λᵀXθ ≤ ‖Xᵀλ‖₁‖θ‖∞).
  Dense and O((n + d)·d) memory per pivot: meant for the small problems of the studies (d up to a
  few hundred).

  Raises:
    ValueError: when Xθ = y has no solution.
  """
  X = np.asarray(X, np.float64)
  y = np.asarray(y, np.float64)
  n, d = X.shape
  # Columns: u (d), t (1), s (d).  Rows: n data rows, then d rows u_j + s_j − 2t = 0.
  A = np.zeros((n + d, 2 * d + 1))
  A[:n, :d] = X
  A[:n, d] = -X.sum(axis=1)
  A[n:, :d] = np.eye(d)
  A[n:, d] = -2.0
  A[n:, d + 1 :] = np.eye(d)
  b = np.concatenate([y, np.zeros(d)])
  flip = b[:n] < 0  # phase 1 needs b >= 0
  A[:n][flip] *= -1
  b[:n][flip] *= -1
  cost = np.zeros(2 * d + 1)
  cost[d] = 1.0

  # Phase 1: artificials for the n data rows; the slacks s start basic in the other rows.
  m, k = A.shape
  T = np.zeros((m + 1, k + n + 1))
  T[:m, :k] = A
  T[:n, k : k + n] = np.eye(n)
  T[:m, -1] = b
  basis = list(range(k, k + n)) + list(range(d + 1, 2 * d + 1))
  T[m, :] = 0.0
  T[m, k : k + n] = 1.0
  for i in range(n):  # reduced costs of phase 1: subtract the artificial rows
    T[m] -= T[i]
  pivots = _simplex(T, basis, tol, max_pivots, allowed=k + n)
  if T[m, -1] < -1e-8 * max(1.0, np.abs(b).max()):
    raise ValueError("min_linf_interpolant: X theta = y has no solution")
  # Drive artificials out of the basis (degenerate rows); drop rows that are redundant.
  for row in range(m):
    if basis[row] >= k:
      cols = [j for j in range(k) if abs(T[row, j]) > tol]
      if cols:
        _pivot(T, basis, row, cols[0])
        pivots += 1
  keep = [r for r in range(m) if basis[r] < k]
  T2 = np.zeros((len(keep) + 1, k + 1))
  T2[:-1, :k] = T[keep, :k]
  T2[:-1, -1] = T[keep, -1]
  basis2 = [basis[r] for r in keep]
  T2[-1, :k] = cost
  for r, j in enumerate(basis2):
    T2[-1] -= cost[j] * T2[r]
  pivots += _simplex(T2, basis2, tol, max_pivots - pivots, allowed=k)

  x = np.zeros(k)
  for r, j in enumerate(basis2):
    x[j] = T2[r, -1]
  t = x[d]
  theta = x[:d] - t
  # Polish: θ on its active set solves a square linear system; solve it again in one go, which
  # removes the rounding the pivots accumulated.
  theta, t = _polish(X, y, theta, t)
  lam = _linf_dual(X, theta, t)
  lam_value = float(y @ lam)
  return LinfSolution(
    theta=theta,
    value=float(np.max(np.abs(theta))),
    dual=lam,
    duality_gap=float(np.max(np.abs(theta)) - lam_value),
    residual=float(np.max(np.abs(X @ theta - y))),
    pivots=pivots,
  )


def _pivot(T, basis, row, col):
  T[row] /= T[row, col]
  others = np.arange(T.shape[0]) != row
  T[others] -= np.outer(T[others, col], T[row])
  basis[row] = col


def _simplex(T, basis, tol, max_pivots, allowed):
  """Minimise the tableau's last row over columns < ``allowed`` with Bland's rule; returns
  pivots."""
  m = T.shape[0] - 1
  for count in range(max_pivots):
    reduced = T[m, :allowed]
    entering = np.flatnonzero(reduced < -tol)
    if entering.size == 0:
      return count
    col = int(entering[0])  # Bland: smallest index
    column = T[:m, col]
    positive = column > tol
    if not positive.any():
      raise ValueError("min_linf_interpolant: the LP is unbounded (this cannot happen for ‖θ‖∞)")
    ratios = np.full(m, np.inf)
    ratios[positive] = T[:m, -1][positive] / column[positive]
    best = ratios.min()
    ties = np.flatnonzero(ratios <= best + tol * max(1.0, abs(best)))
    row = int(min(ties, key=lambda r: basis[r]))  # Bland: leaving variable of smallest index
    _pivot(T, basis, row, col)
  raise RuntimeError(f"min_linf_interpolant: no optimum after {max_pivots} pivots")


def _polish(X, y, theta, t):
  """Re-solve the optimal vertex exactly: θ_j = ±t on the active set, Xθ = y on the rest."""
  scale = max(t, 1e-300)
  active = np.abs(np.abs(theta) - t) <= 1e-9 * scale
  free = ~active
  sigma = np.sign(theta[active])
  # Unknowns: θ_free and t.  Equations: X_free θ_free + t X_active σ = y.
  M = np.concatenate([X[:, free], (X[:, active] @ sigma)[:, None]], axis=1)
  if M.shape[1] > M.shape[0]:
    return theta, t  # not a vertex we can pin down; keep the simplex answer
  sol, *_ = np.linalg.lstsq(M, y, rcond=None)
  polished = theta.copy()
  polished[free] = sol[:-1]
  polished[active] = sol[-1] * sigma
  ok = np.max(np.abs(X @ polished - y)) <= np.max(np.abs(X @ theta - y)) + 1e-12 * max(
    1.0, np.abs(y).max()
  )
  if ok and sol[-1] >= 0 and np.all(np.abs(sol[:-1]) <= sol[-1] * (1 + 1e-9)):
    return polished, sol[-1]
  return theta, t


def _linf_dual(X, theta, t):
  """λ with Xᵀλ ∈ t·∂‖θ‖∞-direction: supported on the active set with signs σ, zero on free j.

  KKT of min ‖θ‖∞ s.t. Xθ = y: Xᵀλ ∈ ∂‖θ‖∞, i.e. (Xᵀλ)_j = 0 where |θ_j| < t, sign(θ_j)(Xᵀλ)_j ≥ 0
  on the active set, and ‖Xᵀλ‖₁ = 1. Solved as a small least-squares + normalisation problem.
  """
  n, d = X.shape
  if t == 0:
    return np.zeros(n)
  scale = t
  active = np.abs(np.abs(theta) - t) <= 1e-9 * scale
  free = ~active
  sigma = np.sign(theta)
  # λ ⟂ columns X_free (so (Xᵀλ)_free = 0) and σ_Aᵀ X_Aᵀ λ = 1 (so ‖Xᵀλ‖₁ = 1 if signs agree).
  M = np.concatenate([X[:, free].T, (X[:, active] @ sigma[active])[None, :]], axis=0)
  rhs = np.zeros(M.shape[0])
  rhs[-1] = 1.0
  lam, *_ = np.linalg.lstsq(M, rhs, rcond=None)
  norm1 = np.abs(X.T @ lam).sum()
  return lam / norm1 if norm1 > 0 else lam
