"""The closed forms of Q1 against independent float64 references.

For each norm the reference dual norm and norm value come from NumPy (``np.linalg.norm``, a linear
solve for Mahalanobis, the nuclear norm for spectral), and the minimisers from SciPy
(``linprog`` for the polyhedral ℓ1/ℓ∞ balls, SLSQP/BFGS for the smooth ones, and a search over
semi-orthogonal matrices for the spectral ball), never from the code under test.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
from optax.contrib import MuonDimensionNumbers

from jaxopt_hw import duality
from jaxopt_hw.errors import UserInputError

# ---------------------------------------------------------------------------------------------
# Independent NumPy references.


def _pd_matrix(rng, n):
  A = rng.standard_normal((n, n))
  return A @ A.T + 0.5 * np.eye(n)


def _ref_matrices(x, params):
  """x as a list of (fan_in, fan_out) matrices: itself if 2-D, else reshaped by the dimension
  numbers (reduction axes → rows, output axes → columns, other axes → one matrix each)."""
  dims = params.get("dimension_numbers")
  if dims is None:
    return [x]
  as_tuple = lambda a: (a,) if isinstance(a, int) else tuple(a)
  red = tuple(a % x.ndim for a in as_tuple(dims.reduction_axis))
  out = tuple(a % x.ndim for a in as_tuple(dims.output_axis))
  batch = tuple(a for a in range(x.ndim) if a not in red + out)
  fi = int(np.prod([x.shape[a] for a in red]))
  fo = int(np.prod([x.shape[a] for a in out]))
  return list(np.transpose(x, batch + red + out).reshape(-1, fi, fo))


def _d_in(x, params):
  if params.get("dimension_numbers") is not None:
    return _ref_matrices(x, params)[0].shape[0]
  return x.shape[0] if x.ndim == 2 else 1


# Textbook formulas for the layer norms on W (fan_in, fan_out), x ↦ xW: ‖W‖ (value) and its dual.
_LAYER_VALUE = {
  "rms_spectral": lambda W: np.sqrt(W.shape[0] / W.shape[1]) * np.linalg.norm(W, 2),
  "col_l2": lambda W: np.max(np.linalg.norm(W, axis=0)),
  "row_l2": lambda W: np.max(np.linalg.norm(W, axis=1)),
}
_LAYER_DUAL = {  # Cauchy–Schwarz per column / row; von Neumann's trace inequality
  "rms_spectral": lambda G: np.sqrt(G.shape[1] / G.shape[0]) * np.linalg.norm(G, "nuc"),
  "col_l2": lambda G: np.sum(np.linalg.norm(G, axis=0)),
  "row_l2": lambda G: np.sum(np.linalg.norm(G, axis=1)),
}


def ref_value(name, x, params):
  x = np.asarray(x, np.float64)
  if params.get("radius") is not None:  # ‖x‖/ρ
    return ref_value(name, x, {**params, "radius": None}) / params["radius"]
  if name == "spectral":
    return np.linalg.norm(x, 2)
  if name in _LAYER_VALUE:
    return max(_LAYER_VALUE[name](W) for W in _ref_matrices(x, params))
  if name == "rms":
    return np.linalg.norm(x.ravel()) / np.sqrt(x.size)
  if name == "sign":  # d_in·max|W_ij|
    return _d_in(x, params) * np.max(np.abs(x))
  v = x.ravel()
  if name == "l2":
    return np.linalg.norm(v)
  if name == "linf":
    return np.max(np.abs(v))
  if name == "l1":
    return np.sum(np.abs(v))
  if name == "lp":
    return np.sum(np.abs(v) ** params["p"]) ** (1 / params["p"])
  M = np.asarray(params["M"], np.float64)
  return np.sqrt(v @ (M * v if M.ndim == 1 else M @ v))


def ref_dual(name, g, params):
  """‖g‖* from its textbook formula (Hölder / Cauchy–Schwarz / von Neumann), not from duality.py."""
  g = np.asarray(g, np.float64)
  if params.get("radius") is not None:  # the dual of ‖x‖/ρ is ρ‖g‖*
    return params["radius"] * ref_dual(name, g, {**params, "radius": None})
  if name == "spectral":
    return np.linalg.norm(g, "nuc")
  if name in _LAYER_DUAL:  # the dual of a max over matrices is the sum of the duals
    return sum(_LAYER_DUAL[name](G) for G in _ref_matrices(g, params))
  if name == "rms":
    return np.sqrt(g.size) * np.linalg.norm(g.ravel())
  if name == "sign":  # Hölder: ⟨g, x⟩ ≤ ‖g‖₁ max|x| = ‖g‖₁ ν(x)/d_in
    return np.sum(np.abs(g)) / _d_in(g, params)
  v = g.ravel()
  if name == "l2":
    return np.linalg.norm(v)
  if name == "linf":
    return np.sum(np.abs(v))
  if name == "l1":
    return np.max(np.abs(v))
  if name == "lp":
    q = params["p"] / (params["p"] - 1)
    return np.sum(np.abs(v) ** q) ** (1 / q)
  M = np.asarray(params["M"], np.float64)
  return np.sqrt(v @ (v / M if M.ndim == 1 else np.linalg.solve(M, v)))


def make_cases():
  """(id, norm name, params, shape): vector norms on vectors and on a matrix (seen flattened)."""
  rng = np.random.default_rng(1234)
  cases = []
  for shape in [(1,), (3,), (7,), (2, 3)]:
    n = int(np.prod(shape))
    cases += [
      (f"l2{shape}", "l2", {}, shape),
      (f"linf{shape}", "linf", {}, shape),
      (f"l1{shape}", "l1", {}, shape),
      (f"lp1.5{shape}", "lp", {"p": 1.5}, shape),
      (f"lp3{shape}", "lp", {"p": 3.0}, shape),
      (f"mahal{shape}", "mahalanobis", {"M": _pd_matrix(rng, n)}, shape),
      (f"mahal_diag{shape}", "mahalanobis", {"M": rng.uniform(0.2, 5.0, n)}, shape),
    ]
  cases += [
    ("lp1.1(7,)", "lp", {"p": 1.1}, (7,)),
    ("lp30(7,)", "lp", {"p": 30.0}, (7,)),
  ]  # extreme p
  for shape in [(1, 1), (3, 3), (4, 2), (2, 5)]:
    cases.append((f"spectral{shape}", "spectral", {}, shape))
  # The layer norms (Scion, modula): on (fan_in, fan_out) matrices, with a radius, and on conv
  # kernels / stacked layers through dimension numbers.
  conv = MuonDimensionNumbers(reduction_axis=(0, 1, 2), output_axis=3)
  stacked = MuonDimensionNumbers(reduction_axis=1, output_axis=2)
  cases += [
    ("rms_spectral(4, 2)", "rms_spectral", {}, (4, 2)),
    ("rms_spectral(2, 1)", "rms_spectral", {}, (2, 1)),
    ("rms_spectral(2, 5)", "rms_spectral", {}, (2, 5)),
    ("rms_spectral_r2.5(3, 2)", "rms_spectral", {"radius": 2.5}, (3, 2)),
    ("rms_spectral_conv(2, 2, 2, 3)", "rms_spectral", {"dimension_numbers": conv}, (2, 2, 2, 3)),
    ("rms_spectral_stacked(3, 4, 2)", "rms_spectral", {"dimension_numbers": stacked}, (3, 4, 2)),
    ("col_l2(2, 3)", "col_l2", {}, (2, 3)),
    ("col_l2(4, 2)", "col_l2", {}, (4, 2)),
    ("col_l2_conv(2, 2, 2, 3)", "col_l2", {"dimension_numbers": conv}, (2, 2, 2, 3)),
    ("row_l2(2, 3)", "row_l2", {}, (2, 3)),
    ("row_l2_r0.5(4, 2)", "row_l2", {"radius": 0.5}, (4, 2)),
    ("rms(3,)", "rms", {}, (3,)),
    ("rms(2, 3)", "rms", {}, (2, 3)),
    ("sign(2, 3)", "sign", {}, (2, 3)),
    ("sign(3,)", "sign", {}, (3,)),
    ("sign_r3(4, 2)", "sign", {"radius": 3.0}, (4, 2)),
    ("sign_conv(2, 2, 2, 3)", "sign", {"dimension_numbers": conv}, (2, 2, 2, 3)),
  ]
  return cases


CASES = make_cases()
IDS = [c[0] for c in CASES]
ALPHAS = (0.05, 1.0, 7.0)


def _norm(name, params):
  return duality.get_norm(name, **params)


def _gradients(seed, shape, count):
  rng = np.random.default_rng(seed)
  scales = rng.choice([1e-3, 1.0, 1e3], size=count)
  return [rng.standard_normal(shape) * s for s in scales]


# ---------------------------------------------------------------------------------------------
# Norm values and dual norms.


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_and_dual_match_numpy_formulas(case):
  _, name, params, shape = case
  norm = _norm(name, params)
  for g in _gradients(0, shape, 8):
    gj = jnp.asarray(g, jnp.float64)
    np.testing.assert_allclose(float(norm.value(gj)), ref_value(name, g, params), rtol=1e-12)
    np.testing.assert_allclose(float(norm.dual(gj)), ref_dual(name, g, params), rtol=1e-12)
    d = norm.dual_map(gj)
    assert d.shape == gj.shape and d.dtype == jnp.float64
    # d(g) is feasible (‖d‖ = 1) and attains the dual norm: ⟨g, d⟩ = ‖g‖*.
    np.testing.assert_allclose(ref_value(name, np.asarray(d), params), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.sum(g * np.asarray(d)), ref_dual(name, g, params), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# The closed forms reach the analytic optimum, and nothing feasible does better.


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_penalty_step_attains_minus_alpha_over_4_dual_squared(case):
  _, name, params, shape = case
  norm = _norm(name, params)
  rng = np.random.default_rng(1)
  for g, alpha in zip(_gradients(1, shape, 9), itertools.cycle(ALPHAS)):
    u = np.asarray(duality.penalty_step(jnp.asarray(g), alpha, norm))
    objective = np.sum(g * u) + ref_value(name, u, params) ** 2 / alpha
    optimum = -(alpha / 4) * ref_dual(name, g, params) ** 2  # the dual-norm identity
    np.testing.assert_allclose(objective, optimum, rtol=1e-11)
    # Random perturbations at several scales and every coordinate ± ε: none improves.
    size = np.linalg.norm(u) or 1.0
    tol = 1e-12 * abs(optimum)
    for eps in (1e-6, 1e-3, 1e-1, 1.0):
      for _ in range(20):
        v = u + eps * size * rng.standard_normal(shape)
        assert np.sum(g * v) + ref_value(name, v, params) ** 2 / alpha >= optimum - tol
      for i in range(g.size):
        for sign in (1.0, -1.0):
          v = u.copy().ravel()
          v[i] += sign * eps * size
          v = v.reshape(shape)
          assert np.sum(g * v) + ref_value(name, v, params) ** 2 / alpha >= optimum - tol


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_ball_step_attains_minus_alpha_dual_and_is_feasible(case):
  _, name, params, shape = case
  norm = _norm(name, params)
  rng = np.random.default_rng(2)
  for g, alpha in zip(_gradients(2, shape, 9), itertools.cycle(ALPHAS)):
    u = np.asarray(duality.ball_step(jnp.asarray(g), alpha, norm))
    optimum = -alpha * ref_dual(name, g, params)
    assert ref_value(name, u, params) <= alpha * (1 + 1e-12)
    np.testing.assert_allclose(np.sum(g * u), optimum, rtol=1e-11)
    tol = 1e-12 * abs(optimum)

    def project(v, alpha=alpha):  # radial projection onto the ball: feasible by construction
      r = ref_value(name, v, params)
      return v if r <= alpha else v * (alpha / r)

    for _ in range(40):  # random feasible points: on the sphere and inside
      v = rng.standard_normal(shape)
      v = v * alpha * rng.uniform(0.5, 1.0) / ref_value(name, v, params)
      assert np.sum(g * v) >= optimum - tol
    for eps in (1e-6, 1e-3, 1e-1):
      for _ in range(10):
        assert np.sum(g * project(u + eps * alpha * rng.standard_normal(shape))) >= optimum - tol
      for i in range(g.size):
        for sign in (1.0, -1.0):
          v = u.copy().ravel()
          v[i] += sign * eps * alpha
          assert np.sum(g * project(v.reshape(shape))) >= optimum - tol


# -- an independent numerical minimiser (SciPy, float64) for every norm and form.


def _stiefel(z, shape, flip):
  """A point of the Stiefel manifold {Q : QᵀQ = I} (m ≥ n): the first n columns of expm(skew(z)),
  with the first column negated when ``flip`` (the square case has two components, det = ±1)."""
  m, n = shape
  A = np.zeros((m, m))
  A[np.triu_indices(m, 1)] = z
  Q = scipy.linalg.expm(A - A.T)
  if flip:
    Q[:, 0] *= -1
  return Q[:, :n]


def _spectral_min(g, objective, extra, rng):
  """min over (extra variables, Q semi-orthogonal) of objective(extra, ⟨g, Q⟩), from several starts.

  A linear function on the operator-norm ball is minimised at an extreme point, and the extreme
  points are the semi-orthogonal matrices, so searching over Q covers a minimiser.
  """
  gg = g.T if g.shape[0] < g.shape[1] else g  # ⟨g, Q⟩ = ⟨gᵀ, Qᵀ⟩: work with m ≥ n
  m = gg.shape[0]
  k = m * (m - 1) // 2
  best = np.inf
  for flip in (False, True):
    for _ in range(2):
      f = lambda z, flip=flip: objective(
        z[: len(extra)], np.sum(gg * _stiefel(z[len(extra) :], gg.shape, flip))
      )
      res = scipy.optimize.minimize(
        f,
        np.concatenate([extra, 0.5 * rng.standard_normal(k)]),
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-12},
      )
      best = min(best, res.fun)
  return best


def _vector_constraints(shape, axis, n):
  """(Δ, τ) ↦ τ² − ‖Δ's vectors along axis‖², one per column (axis 0) or row (axis 1)."""
  return [
    {
      "type": "ineq",
      "fun": lambda z, j=j: z[n] ** 2 - np.sum(np.take(z[:n].reshape(shape), j, 1 - axis) ** 2),
    }
    for j in range(shape[1 - axis])
  ]


def scipy_penalty_min(name, params, g, alpha, rng):
  """min_Δ gᵀΔ + ‖Δ‖²/α by SciPy, with a smooth reformulation where the norm is not smooth."""
  if params.get("radius") is not None:  # ‖Δ‖²/(ρ²α): the same problem with α·ρ²
    return scipy_penalty_min(
      name, {**params, "radius": None}, g, alpha * params["radius"] ** 2, rng
    )
  n = g.size
  v = g.ravel()
  if name == "sign":  # variables (Δ, τ): min gᵀΔ + (d_in·τ)²/α  s.t. |Δ_i| ≤ τ
    d_in = _d_in(g, params)
    f = lambda z: v @ z[:n] + (d_in * z[n]) ** 2 / alpha
    cons = [
      {"type": "ineq", "fun": lambda z: z[n] - z[:n]},
      {"type": "ineq", "fun": lambda z: z[n] + z[:n]},
    ]
    res = scipy.optimize.minimize(
      f, np.zeros(n + 1), method="SLSQP", constraints=cons, options={"ftol": 1e-15, "maxiter": 500}
    )
    delta = res.x[:n].reshape(g.shape)  # the objective at SciPy's Δ itself
    return np.sum(g * delta) + ref_value(name, delta, params) ** 2 / alpha
  if name in ("col_l2", "row_l2"):  # variables (Δ, τ): min gᵀΔ + τ²/α  s.t. ‖Δ_j‖₂ ≤ τ
    cons = _vector_constraints(g.shape, 0 if name == "col_l2" else 1, n)
    cons.append({"type": "ineq", "fun": lambda z: z[n]})
    best = min(
      (
        scipy.optimize.minimize(
          lambda z: v @ z[:n] + z[n] ** 2 / alpha,
          np.concatenate([rng.standard_normal(n) * 0.1 * alpha, [alpha]]),
          method="SLSQP",
          constraints=cons,
          options={"ftol": 1e-15, "maxiter": 1000},
        )
        for _ in range(2)
      ),
      key=lambda r: r.fun,
    )
    # the objective at SciPy's Δ itself (SLSQP may leave τ a hair below max‖Δ_j‖)
    delta = best.x[:n].reshape(g.shape)
    return np.sum(g * delta) + ref_value(name, delta, params) ** 2 / alpha
  if name == "rms_spectral":  # Δ = t·Q, ‖Δ‖ = t·√(fan_in/fan_out) (see _spectral_min)
    c = np.sqrt(g.shape[0] / g.shape[1])
    return _spectral_min(
      g, lambda t, inner: t[0] * inner + (c * t[0]) ** 2 / alpha, np.array([alpha / 2]), rng
    )
  if name in ("l2", "lp", "mahalanobis", "rms"):
    f = lambda x: v @ x + ref_value(name, x, params) ** 2 / alpha
    best = min(
      (
        scipy.optimize.minimize(
          f,
          rng.standard_normal(n) * alpha * np.abs(v).max(),
          method="BFGS",
          options={"gtol": 1e-12 * max(1, np.abs(v).max())},
        )
        for _ in range(2)
      ),
      key=lambda r: r.fun,
    )
    return best.fun
  if name == "linf":  # variables (Δ, τ): min gᵀΔ + τ²/α  s.t. |Δ_i| ≤ τ
    f = lambda z: v @ z[:n] + z[n] ** 2 / alpha
    cons = [
      {"type": "ineq", "fun": lambda z: z[n] - z[:n]},
      {"type": "ineq", "fun": lambda z: z[n] + z[:n]},
    ]
    res = scipy.optimize.minimize(
      f, np.zeros(n + 1), method="SLSQP", constraints=cons, options={"ftol": 1e-15, "maxiter": 500}
    )
    return res.fun
  if name == "l1":  # Δ = a − b with a, b ≥ 0: min gᵀ(a − b) + (Σ a + b)²/α
    f = lambda z: v @ (z[:n] - z[n:]) + np.sum(z) ** 2 / alpha
    res = scipy.optimize.minimize(
      f,
      np.full(2 * n, 0.1 * alpha),
      method="L-BFGS-B",
      bounds=[(0, None)] * (2 * n),
      options={"ftol": 1e-15, "gtol": 1e-14},
    )
    return res.fun
  # spectral: Δ = t·Q with Q semi-orthogonal covers a minimiser (see _spectral_min).
  return _spectral_min(
    g, lambda t, inner: t[0] * inner + t[0] ** 2 / alpha, np.array([alpha / 2]), rng
  )


def _slsqp_min(v, alpha, cons, rng):
  """The best of two SLSQP runs minimising vᵀx under ``cons`` (independent of the library)."""
  n = v.shape[0]
  return min(
    (
      scipy.optimize.minimize(
        lambda x: v @ x,
        rng.standard_normal(n) * alpha / (4 * np.sqrt(n)),
        method="SLSQP",
        constraints=cons,
        options={"ftol": 1e-15, "maxiter": 1000},
      )
      for _ in range(2)
    ),
    key=lambda r: r.fun,
  )


def scipy_ball_min(name, params, g, alpha, rng):
  """min gᵀΔ s.t. ‖Δ‖ ≤ α by SciPy: linprog for ℓ1/ℓ∞, SLSQP for smooth balls, Stiefel search for
  spectral."""
  if params.get("radius") is not None:  # ‖Δ‖/ρ ≤ α is ‖Δ‖ ≤ αρ
    return scipy_ball_min(name, {**params, "radius": None}, g, alpha * params["radius"], rng)
  n = g.size
  v = g.ravel()
  if name == "sign":  # d_in·max|Δ_i| ≤ α: a box
    d = alpha / _d_in(g, params)
    return scipy.optimize.linprog(v, bounds=[(-d, d)] * n, method="highs").fun
  if name in ("col_l2", "row_l2"):  # every column (row) in the ℓ2 ball of radius α
    axis = 0 if name == "col_l2" else 1
    cons = [
      {
        "type": "ineq",
        "fun": lambda x, j=j: alpha**2 - np.sum(np.take(x.reshape(g.shape), j, 1 - axis) ** 2),
      }
      for j in range(g.shape[1 - axis])
    ]
    best = _slsqp_min(v, alpha, cons, rng)
    delta = best.x.reshape(g.shape)  # projected onto the ball: SLSQP may end a hair outside it
    return np.sum(g * delta) * min(1.0, alpha / ref_value(name, delta, params))
  if name == "rms_spectral":  # ‖Δ‖ ≤ α is σ_max(Δ) ≤ α/√(fan_in/fan_out)
    return (
      alpha
      / np.sqrt(g.shape[0] / g.shape[1])
      * _spectral_min(g, lambda _, inner: inner, np.zeros(0), rng)
    )
  if name == "linf":
    return scipy.optimize.linprog(v, bounds=[(-alpha, alpha)] * n, method="highs").fun
  if name == "l1":
    res = scipy.optimize.linprog(
      np.concatenate([v, -v]),
      A_ub=np.ones((1, 2 * n)),
      b_ub=[alpha],
      bounds=[(0, None)] * (2 * n),
      method="highs",
    )
    return res.fun
  if name in ("l2", "lp", "mahalanobis", "rms"):
    power = params.get("p", 2.0)
    cons = [{"type": "ineq", "fun": lambda x: alpha**power - ref_value(name, x, params) ** power}]
    best = _slsqp_min(v, alpha, cons, rng)
    return best.fun
  return alpha * _spectral_min(g, lambda _, inner: inner, np.zeros(0), rng)


@pytest.mark.parametrize("form", ["penalty", "ball"])
@pytest.mark.parametrize(
  "case",
  [
    c
    for c in CASES
    # (the Stiefel search is slow: the RMS→RMS spectral norm is checked on (2, 1) only)
    if (c[3] in ((3,), (2, 3), (3, 3), (4, 2)) and c[1] != "rms_spectral")
    or c[0] == "rms_spectral(2, 1)"
  ],
  ids=lambda c: c[0],
)
def test_no_independent_scipy_minimiser_beats_the_closed_form(case, form):
  _, name, params, shape = case
  norm = _norm(name, params)
  rng = np.random.default_rng(3)
  for g, alpha in zip(_gradients(3, shape, 3), (0.05, 1.0, 7.0)):
    g = g / np.abs(g).max()  # SciPy's tolerances are absolute: keep the scale near 1
    if form == "penalty":
      u = np.asarray(duality.penalty_step(jnp.asarray(g), alpha, norm))
      closed = np.sum(g * u) + ref_value(name, u, params) ** 2 / alpha
      numerical = scipy_penalty_min(name, params, g, alpha, rng)
    else:
      u = np.asarray(duality.ball_step(jnp.asarray(g), alpha, norm))
      closed = np.sum(g * u)
      numerical = scipy_ball_min(name, params, g, alpha, rng)
    # SciPy never does better than the closed form (beyond its own rounding) ...
    assert numerical >= closed - 1e-9 * abs(closed), (numerical, closed)
    # ... and it does converge to it, so the comparison above is not vacuous.
    assert numerical <= closed + 1e-5 * abs(closed), (numerical, closed)


# ---------------------------------------------------------------------------------------------
# Non-unique minimisers, zero gradients, dtypes.


def test_l1_dual_map_splits_ties_equally_and_linf_keeps_zero_coordinates_at_zero():
  g = jnp.array([3.0, -3.0, 1.0, 0.0], jnp.float64)
  # The documented choice for ℓ1: equal split among the coordinates tied for max |g_i|.
  np.testing.assert_array_equal(
    np.asarray(duality.get_norm("l1").dual_map(g)), [0.5, -0.5, 0.0, 0.0]
  )
  # ℓ∞: sign(0) = 0 for the zero coordinate.
  np.testing.assert_array_equal(
    np.asarray(duality.get_norm("linf").dual_map(g)), [1.0, -1.0, 1.0, 0.0]
  )
  # Without ties ℓ1 puts all the mass on the first-largest coordinate (greedy coordinate descent).
  np.testing.assert_array_equal(
    np.asarray(duality.ball_step(jnp.array([1.0, -4.0, 2.0]), 0.5, "l1")), [0.0, 0.5, 0.0]
  )


def test_spectral_dual_map_of_rank_one_gradient_is_the_partial_isometry():
  a, b = np.array([1.0, 2.0, 2.0]), np.array([3.0, 4.0])
  G = jnp.asarray(np.outer(a, b))
  expected = np.outer(a / 3.0, b / 5.0)  # u vᵀ with unit u, v: the least-norm maximiser
  np.testing.assert_allclose(
    np.asarray(duality.get_norm("spectral").dual_map(G)), expected, atol=1e-14
  )


@pytest.mark.parametrize("shape", [(3, 3), (5, 2), (2, 6)])
def test_newton_schulz_converges_to_the_svd_polar_factor(shape):
  rng = np.random.default_rng(4)
  U, _ = np.linalg.qr(rng.standard_normal((shape[0], min(shape))))
  V, _ = np.linalg.qr(rng.standard_normal((shape[1], min(shape))))
  s = np.linspace(1.0, 0.05, min(shape))  # condition number 20
  G = U @ np.diag(s) @ V.T
  Q = np.asarray(duality.newton_schulz_polar(jnp.asarray(G), 30))
  np.testing.assert_allclose(Q, U @ V.T, atol=1e-12)  # UVᵀ from the SVD we built G with
  ns = duality.get_norm("spectral", spectral_method="newton_schulz")
  np.testing.assert_allclose(float(ns.dual(jnp.asarray(G))), s.sum(), rtol=1e-12)


NORM_OBJECTS = [
  duality.get_norm("l2"),
  duality.get_norm("linf"),
  duality.get_norm("l1"),
  duality.get_norm("lp", p=1.5),
  duality.get_norm("lp", p=4.0),
  duality.get_norm("mahalanobis", M=np.diag([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
  duality.get_norm("mahalanobis", M=np.arange(1.0, 7.0)),
  duality.get_norm("spectral"),
  duality.get_norm("spectral", spectral_method="newton_schulz"),
  duality.get_norm("rms_spectral"),  # (its Newton–Schulz schedules: tests/test_polar.py)
  duality.get_norm("col_l2"),
  duality.get_norm("row_l2", radius=2.0),
  duality.get_norm("rms"),
  duality.get_norm("sign"),
]


@pytest.mark.parametrize("norm", NORM_OBJECTS, ids=repr)
def test_zero_gradient_gives_zero_step_and_finite_gradients(norm):
  g = jnp.zeros((2, 3), jnp.float64)
  for step in (duality.penalty_step, duality.ball_step):
    u = step(g, 0.7, norm)
    assert np.all(np.asarray(u) == 0)
    grad = jax.grad(
      lambda g, step=step: jnp.sum(step(g, 0.7, norm) * jnp.arange(6.0).reshape(2, 3))
    )(g)
    assert np.all(np.isfinite(np.asarray(grad)))
  assert float(norm.value(g)) == 0 and float(norm.dual(g)) == 0


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32, jnp.float64])
@pytest.mark.parametrize("norm", NORM_OBJECTS, ids=repr)
def test_dtype_is_preserved(norm, dtype):
  g64 = np.random.default_rng(5).standard_normal((2, 3))
  g = jnp.asarray(g64, dtype)
  for out in (
    duality.penalty_step(g, 0.5, norm),
    duality.ball_step(g, 0.5, norm),
    norm.dual_map(g),
  ):
    assert out.dtype == dtype and out.shape == g.shape
  assert norm.value(g).dtype == dtype and norm.dual(g).dtype == dtype
  # and the low-precision result is the float64 one, rounded (computed in float32 inside)
  rtol = {jnp.bfloat16: 2e-2, jnp.float32: 1e-5, jnp.float64: 1e-12}[dtype]
  ref = np.asarray(duality.penalty_step(jnp.asarray(np.asarray(g, np.float64)), 0.5, norm))
  np.testing.assert_allclose(
    np.asarray(duality.penalty_step(g, 0.5, norm), np.float64),
    ref,
    rtol=rtol,
    atol=rtol * np.abs(ref).max(),
  )


@pytest.mark.parametrize("norm", NORM_OBJECTS, ids=repr)
def test_jit_and_vmap_agree_with_a_python_loop(norm):
  gs = jnp.asarray(np.random.default_rng(6).standard_normal((4, 2, 3)))
  alphas = jnp.array([0.1, 0.5, 1.0, 2.0])
  batched = jax.jit(jax.vmap(lambda g, a: duality.penalty_step(g, a, norm)))(gs, alphas)
  for i in range(4):
    np.testing.assert_allclose(
      np.asarray(batched[i]),
      np.asarray(duality.penalty_step(gs[i], float(alphas[i]), norm)),
      rtol=1e-10,
      atol=1e-13,
    )


def test_grad_through_the_lp_step_matches_finite_differences():
  norm = duality.get_norm("lp", p=3.0)
  g0 = np.random.default_rng(7).standard_normal(5)
  w = np.arange(1.0, 6.0)
  f = lambda g: jnp.sum(duality.penalty_step(g, 0.3, norm) * w)
  grad = np.asarray(jax.grad(f)(jnp.asarray(g0)))
  h = 1e-6
  fd = [
    (float(f(jnp.asarray(g0 + h * e))) - float(f(jnp.asarray(g0 - h * e)))) / (2 * h)
    for e in np.eye(5)
  ]
  np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# The un-squared penalty (1/α)‖Δ‖.


@pytest.mark.parametrize("name,params", [("linf", {}), ("l2", {}), ("l1", {}), ("lp", {"p": 3.0})])
def test_unsquared_penalty_has_a_minimiser_iff_dual_norm_at_most_one_over_alpha(name, params):
  norm = _norm(name, params)
  g = np.random.default_rng(8).standard_normal(4)
  alpha = 0.5
  for ratio in (0.5, 1.0, 2.0):  # ‖g‖* · α (1.0 up to rounding: the tie is decided within ulps)
    gs = g * ratio / (alpha * ref_dual(name, g, params))
    sol = duality.unsquared_penalty_step(jnp.asarray(gs), alpha, norm)
    assert bool(sol.has_minimiser) == (ratio <= 1.0)
    # Along Δ = t·ray the objective is t·(1/α − ‖g‖*): check with NumPy at growing t.
    ray = np.asarray(sol.ray)
    values = [
      np.sum(gs * t * ray) + ref_value(name, t * ray, params) / alpha for t in (1.0, 10.0, 100.0)
    ]
    np.testing.assert_allclose(
      values, [t * (1 - ratio) / alpha for t in (1.0, 10.0, 100.0)], rtol=1e-12, atol=1e-12
    )
    if ratio <= 1.0:
      assert float(sol.minimum) == 0.0 and np.all(np.asarray(sol.update) == 0)
      rng = np.random.default_rng(9)
      for _ in range(50):  # nothing goes below 0
        v = rng.standard_normal(4) * rng.uniform(0.01, 100)
        assert np.sum(gs * v) + ref_value(name, v, params) / alpha >= -1e-12 * np.abs(v).max()
    else:
      assert float(sol.minimum) == -np.inf and np.all(np.isnan(np.asarray(sol.update)))


# ---------------------------------------------------------------------------------------------
# Errors a user can cause.


@pytest.mark.parametrize(
  "kwargs,match",
  [
    ({"name": "l3"}, r"norm: 'l3' is not valid.*allowed: l2, linf, l1, lp, mahalanobis, spectral"),
    ({"name": "lp"}, r"p: norm 'lp' needs p"),
    ({"name": "lp", "p": 1.0}, r"p: 1.0 is not allowed.*1 < p < inf.*'l1'"),
    ({"name": "lp", "p": 0.5}, r"p: 0.5 is not allowed"),
    ({"name": "lp", "p": float("inf")}, r"p: inf is not allowed.*'linf'"),
    ({"name": "l2", "p": 3.0}, r"p: only norm 'lp' takes p"),
    ({"name": "mahalanobis"}, r"M: norm 'mahalanobis' needs M"),
    (
      {"name": "mahalanobis", "M": np.array([[1.0, 2.0], [2.0, 1.0]])},
      r"M: is not positive definite",
    ),
    ({"name": "mahalanobis", "M": np.array([[1.0, 0.5], [0.0, 1.0]])}, r"M: is not symmetric"),
    ({"name": "mahalanobis", "M": np.array([1.0, 0.0])}, r"M: diagonal entries must all be > 0"),
    ({"name": "mahalanobis", "M": np.ones((2, 3))}, r"M: shape \(2, 3\) is not allowed"),
    ({"name": "spectral", "spectral_method": "qr"}, r"spectral_method: 'qr' is not valid"),
  ],
)
def test_bad_norm_arguments_raise_one_line_user_errors(kwargs, match):
  with pytest.raises(UserInputError, match=match) as info:
    duality.get_norm(**kwargs)
  assert "\n" not in str(info.value)


def test_shape_errors_name_the_problem():
  with pytest.raises(UserInputError, match=r"'spectral' needs a 2-D array.*shape \(3,\)"):
    duality.penalty_step(jnp.ones(3), 0.1, "spectral")
  with pytest.raises(
    UserInputError, match=r"M: has size 2 but the array it measures has 3 entries"
  ):
    duality.penalty_step(jnp.ones(3), 0.1, duality.get_norm("mahalanobis", M=np.ones(2)))
