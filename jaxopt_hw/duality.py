r"""Norms, dual norms and dual maps: the pieces of steepest descent under a norm.

Steepest descent under a norm ‖·‖ (homework Q1) needs three things from the norm, for a gradient g:

* the norm itself, ‖x‖;
* the dual norm, ‖g‖* = max_{‖t‖ ≤ 1} ⟨g, t⟩;
* the dual map, d(g) = argmax_{‖t‖ ≤ 1} ⟨g, t⟩, so that ⟨g, d(g)⟩ = ‖g‖* and ‖d(g)‖ = 1 (g ≠ 0).

With them, keeping the homework's α exactly (penalty (1/α)‖Δ‖², not 1/(2α)):

.. math::

  \operatorname{argmin}_Δ\; g^⊤Δ + \tfrac{1}{α}\|Δ\|^2 = -\tfrac{α}{2}\,\|g\|_*\, d(g),
  \qquad \min = -\tfrac{α}{4}\,\|g\|_*^2,

  \operatorname{argmin}_{\|Δ\| ≤ α}\; g^⊤Δ = -α\, d(g), \qquad \min = -α\,\|g\|_*.

Proof of the first: gᵀΔ ≥ −‖g‖*‖Δ‖ (definition of the dual norm), so the objective is at least
−‖g‖*·s + s²/α with s = ‖Δ‖, whose minimum over s ≥ 0 is −(α/4)‖g‖*² at s = (α/2)‖g‖*; the step
−s·d(g) attains it. The second is the definition of the dual norm scaled by α.

Every function here is pure ``jax.numpy`` on a single array of any shape (vector norms see the array
as one flat vector; the spectral norm needs a 2-D array), works under ``jit``, ``vmap`` and
``grad``, and returns arrays in the dtype of its input (bfloat16 and float16 are computed in float32
and cast back; integer gradients are promoted to the default float, as optax promotes them). A zero
gradient gives a zero dual map and a zero step, never NaN; a gradient with a NaN or an inf entry
gives a step that is NaN there (and everywhere the norm couples the entries), at once, never a
silent 0 or a hang. Norms scale by max|g| before squaring, so float32 gradients of 1e-20 or 1e20
give the right step.

Add a norm by subclassing :class:`Norm` and writing ``value``, ``dual`` and ``dual_map``; every step
and objective here, the optax transform :func:`jaxopt_hw.transforms.steepest_descent` and the Q1
study then work with it.

References:
  Bernstein & Newhouse, "Old Optimizer, New Norm: An Anthology", arXiv:2409.20325 (2024).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_hw.errors import UserInputError, unknown_choice
from jaxopt_hw.names import FORMS, NORMS, SPECTRAL_METHODS
from jaxopt_hw.validation import check_number

#: Classic cubic Newton–Schulz steps by default: enough to reach UVᵀ to float32 precision when the
#: smallest non-zero singular value is above ~1e-4 of the Frobenius norm (each step multiplies a
#: small singular value by ~1.5, then convergence is quadratic).
DEFAULT_NS_STEPS = 30


def float_dtype(dtype):
  """The dtype an update of a ``dtype`` gradient has: ``dtype`` itself when it is a float, else the
  default float (float32, or float64 with ``jax_enable_x64``) — integer and boolean gradients are
  promoted the way optax promotes them (its ``sgd`` multiplies them by a weakly typed learning
  rate), never cast back to integers (which truncated every step to 0)."""
  dtype = jnp.dtype(dtype)
  if jnp.issubdtype(dtype, jnp.floating):
    return dtype
  return jnp.result_type(dtype, 1.0)


def _compute_dtype(dtype):
  """float32 for bfloat16/float16 inputs (sums in 8 bits of mantissa are too coarse), else the
  update dtype."""
  return jnp.promote_types(float_dtype(dtype), jnp.float32)


def _up(x):
  x = jnp.asarray(x)
  return x.astype(_compute_dtype(x.dtype))


def _out(x):
  """The dtype of the result for an input ``x`` (see :func:`float_dtype`)."""
  return float_dtype(jnp.asarray(x).dtype)


# The guarded operations below guard an exact 0 only: a NaN or an inf goes through them and comes
# out as NaN (NaN in, NaN out), so a faulty gradient shows in the update instead of vanishing.


def _safe_sqrt(s):
  """sqrt with a zero (not NaN) gradient at 0; NaN stays NaN."""
  zero = s == 0
  return jnp.where(zero, 0, jnp.sqrt(jnp.where(zero, 1, s)))


def _safe_div(num, den):
  """num / den, and 0 where den == 0 exactly (used where num is 0 whenever den is)."""
  zero = den == 0
  return jnp.where(zero, 0, num / jnp.where(zero, 1, den))


def _max_abs(x):
  """max|x_i| (0 for an empty array); NaN when any entry is NaN, inf when one is infinite."""
  return jnp.max(jnp.abs(x), initial=0)


def _scaled(x):
  """(m, x/m) with m = max|x_i|: squares of x/m neither underflow nor overflow (1e-20² is 0 and
  1e20² is inf in float32). x = 0 gives (0, 0); a NaN or inf entry makes x/m NaN."""
  m = _max_abs(x)
  return m, _safe_div(x, m)


def inner(g, u):
  """⟨g, u⟩ = Σ g·u over all entries (the Frobenius inner product for matrices)."""
  g, u = _up(g), _up(u)
  cd = jnp.promote_types(g.dtype, u.dtype)
  return jnp.sum(g.astype(cd) * u.astype(cd))


class Norm:
  """A norm on arrays: its value ‖x‖, dual value ‖g‖* and dual map d(g) = argmax_{‖t‖≤1} ⟨g, t⟩.

  Subclasses implement :meth:`value`, :meth:`dual` and :meth:`dual_map` (results in the input's
  dtype; d(g) has g's shape) and may override :meth:`dual_and_map` to share work between the two.
  ``dual_map(0)`` must be 0.
  """

  name: str = "norm"

  def value(self, x) -> jax.Array:
    """‖x‖."""
    raise NotImplementedError

  def dual(self, g) -> jax.Array:
    """‖g‖* = max_{‖t‖≤1} ⟨g, t⟩."""
    raise NotImplementedError

  def dual_map(self, g) -> jax.Array:
    """d(g) = argmax_{‖t‖≤1} ⟨g, t⟩ (same shape and dtype as g; 0 when g = 0)."""
    raise NotImplementedError

  def dual_and_map(self, g) -> tuple[jax.Array, jax.Array]:
    """(‖g‖*, d(g)), computed in float32 or wider; steps use this to avoid doing the work twice."""
    return _up(self.dual(g)), _up(self.dual_map(g))

  def __repr__(self) -> str:
    return f"{type(self).__name__}()"


class L2Norm(Norm):
  """The Euclidean norm ‖x‖₂; self-dual; d(g) = g/‖g‖₂ (unique for g ≠ 0, 0 for g = 0)."""

  name = "l2"

  def value(self, x):
    m, b = _scaled(_up(x))
    return (m * _safe_sqrt(jnp.sum(b * b))).astype(_out(x))

  def dual(self, g):
    return self.value(g)

  def dual_and_map(self, g):
    m, b = _scaled(_up(g))
    r = _safe_sqrt(jnp.sum(b * b))  # ‖g‖₂/max|g| in [1, √n] (0 for g = 0)
    return m * r, _safe_div(b, r)

  def dual_map(self, g):
    return self.dual_and_map(g)[1].astype(_out(g))


class LinfNorm(Norm):
  """The max norm ‖x‖∞ = max_i |x_i|; dual ‖g‖₁; d(g) = sign(g).

  The maximiser is not unique when g has zero coordinates (any t_i in [−1, 1] there is optimal):
  this returns sign(0) = 0 for them, the maximiser of least Euclidean norm.
  """

  name = "linf"

  def value(self, x):
    return _max_abs(_up(x)).astype(_out(x))

  def dual(self, g):
    return jnp.sum(jnp.abs(_up(g))).astype(_out(g))

  def dual_and_map(self, g):
    g32 = _up(g)
    # sign(±inf) = ±1 would hide an overflowed gradient: a non-finite entry steps by NaN
    return jnp.sum(jnp.abs(g32)), jnp.where(jnp.isfinite(g32), jnp.sign(g32), jnp.nan)

  def dual_map(self, g):
    return self.dual_and_map(g)[1].astype(_out(g))


class L1Norm(Norm):
  """The ℓ1 norm ‖x‖₁ = Σ|x_i|; dual ‖g‖∞; d(g) puts all its mass on a coordinate of largest |g_i|.

  Ties: when several coordinates share the largest |g_i|, every convex combination of their signed
  unit vectors is a maximiser; this returns the one that splits the mass *equally* among them
  (the maximiser of least Euclidean norm; symmetric in the coordinates). Ties are exact equality of
  |g_i|, so random gradients almost surely put all the mass on one coordinate. g = 0 gives 0.
  """

  name = "l1"

  def value(self, x):
    return jnp.sum(jnp.abs(_up(x))).astype(_out(x))

  def dual(self, g):
    return _max_abs(_up(g)).astype(_out(g))

  def dual_and_map(self, g):
    g32 = _up(g)
    a = jnp.abs(g32)
    m = _max_abs(g32)
    top = (a == m) & (m > 0)
    count = jnp.sum(top)
    direction = jnp.where(top, jnp.sign(g32) / jnp.maximum(count, 1).astype(g32.dtype), 0)
    # a NaN or inf anywhere decides the argmax: the whole step is NaN, never a finite guess
    return m, jnp.where(jnp.isfinite(m), direction, jnp.nan)

  def dual_map(self, g):
    return self.dual_and_map(g)[1].astype(_out(g))


def _check_p(p):
  """p as given (a float, or a traced array, which is trusted) after checking 1 < p < inf."""
  if p is None:
    raise UserInputError(
      "p: norm 'lp' needs p with 1 < p < inf (use 'l1' for p = 1 and 'linf' for p = inf)"
    )
  value = check_number(
    "p",
    p,
    lambda v: 1 < v < math.inf,
    "1 < p < inf",
    where=" for norm 'lp'",
    hint=lambda v: " (use norm 'l1')" if v == 1 else " (use norm 'linf')" if v == math.inf else "",
  )
  return p if value is None else value  # a traced p (a vmapped hyper-parameter) is trusted


class LpNorm(Norm):
  r"""The ℓp norm ‖x‖_p = (Σ|x_i|^p)^{1/p}, 1 < p < ∞; dual ‖g‖_q with q = p/(p−1).

  .. math:: d(g) = \operatorname{sign}(g) ⊙ |g|^{q-1} / \|g\|_q^{q-1}

  (unique for g ≠ 0; 0 for g = 0). Computed after dividing by max|g|, so large q neither overflows
  nor loses the largest entries.
  """

  name = "lp"

  def __init__(self, p):
    self.p = _check_p(p)
    self.q = self.p / (self.p - 1)

  def __repr__(self) -> str:
    return f"LpNorm(p={self.p!r})"

  @staticmethod
  def _norm(x32, r):
    m, b = _scaled(jnp.abs(x32))
    s = jnp.sum(_safe_pow(b, r))
    zero = s == 0
    return m * jnp.where(zero, 0, jnp.where(zero, 1, s) ** (1 / r))

  def value(self, x):
    return self._norm(_up(x), self.p).astype(_out(x))

  def dual(self, g):
    return self._norm(_up(g), self.q).astype(_out(g))

  def dual_and_map(self, g):
    g32 = _up(g)
    m, b = _scaled(jnp.abs(g32))  # b in [0, 1], max 1 when g != 0
    s = jnp.sum(_safe_pow(b, self.q))  # (‖g‖_q / m)^q, >= 1 when g != 0
    zero = s == 0
    s_safe = jnp.where(zero, 1, s)
    dual = jnp.where(zero, 0, m * s_safe ** (1 / self.q))
    direction = jnp.sign(g32) * _safe_pow(b, self.q - 1) / s_safe ** ((self.q - 1) / self.q)
    return dual, direction

  def dual_map(self, g):
    return self.dual_and_map(g)[1].astype(_out(g))


def _safe_pow(b, r):
  """b**r for b >= 0, with 0**r = 0 and a finite gradient at 0; NaN stays NaN."""
  zero = b == 0
  return jnp.where(zero, 0, jnp.where(zero, 1, b) ** r)


class MahalanobisNorm(Norm):
  r"""The Mahalanobis norm ‖x‖_M = sqrt(xᵀMx) of a positive-definite M; dual ‖g‖_{M⁻¹}.

  .. math:: d(g) = M^{-1} g / \sqrt{g^⊤ M^{-1} g}

  (unique for g ≠ 0). ``M`` is an (n, n) symmetric positive-definite matrix or a length-n vector of
  positive diagonal entries; x is used flattened (so it must have n entries). A concrete ``M`` is
  checked (symmetric to ~100 ulps, Cholesky succeeds) and factored once; a traced ``M`` is trusted
  and factored at each call. Steepest descent under this norm is preconditioned gradient descent
  with preconditioner M⁻¹ (Newton's method when M is the Hessian).
  """

  name = "mahalanobis"

  def __init__(self, M):
    if M is None:
      raise UserInputError(
        "M: norm 'mahalanobis' needs M, a positive-definite (n, n) matrix or a length-n vector "
        "of positive diagonal entries"
      )
    try:
      m = np.asarray(M)
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
      m = None  # traced
    if m is not None and not (
      np.issubdtype(m.dtype, np.floating) or np.issubdtype(m.dtype, np.integer)
    ):
      raise UserInputError(
        f"M: {type(M).__name__} is not allowed; allowed: a positive-definite (n, n) matrix or a "
        "length-n vector of positive diagonal entries"
      )
    shape = tuple(np.shape(m)) if m is not None else tuple(jnp.shape(M))
    self.diagonal = len(shape) == 1
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[0] != shape[1]) or 0 in shape:
      raise UserInputError(
        f"M: shape {shape} is not allowed; allowed: a square (n, n) positive-definite matrix or a "
        "length-n vector of positive diagonal entries"
      )
    self.size = int(shape[0])
    if m is not None:
      m64 = m.astype(np.float64)
      if not np.all(np.isfinite(m64)):
        raise UserInputError(
          "M: has non-finite entries; allowed: a positive-definite matrix or positive diagonal"
        )
      if self.diagonal:
        if not np.all(m64 > 0):
          raise UserInputError(
            f"M: diagonal entries must all be > 0 (smallest is {m64.min():.3g}); "
            "allowed: a positive diagonal"
          )
        self._M = m64
        self._L = None
      else:
        scale = np.max(np.abs(m64)) if m64.size else 1.0
        tol = (
          100 * np.finfo(m.dtype if np.issubdtype(m.dtype, np.floating) else np.float64).eps * scale
        )
        if np.max(np.abs(m64 - m64.T), initial=0) > tol:
          raise UserInputError("M: is not symmetric; allowed: a symmetric positive-definite matrix")
        m64 = (m64 + m64.T) / 2
        try:
          L = np.linalg.cholesky(m64)
        except np.linalg.LinAlgError:
          raise UserInputError(
            "M: is not positive definite "
            f"(smallest eigenvalue {np.linalg.eigvalsh(m64).min():.3g}); "
            "allowed: a symmetric positive-definite matrix"
          ) from None
        if not np.all(np.diag(L) > 0):
          raise UserInputError(
            "M: is not positive definite; allowed: a symmetric positive-definite matrix"
          )
        self._M, self._L = m64, L
    else:
      self._M, self._L = M, None

  def __repr__(self) -> str:
    kind = "diagonal" if self.diagonal else "matrix"
    return f"MahalanobisNorm({kind}, n={self.size})"

  def _check_size(self, x):
    if x.size != self.size:
      raise UserInputError(
        f"M: has size {self.size} but the array it measures has {x.size} entries "
        f"(shape {tuple(x.shape)}); M must match the flattened parameters"
      )

  def _mat(self, dtype):
    return jnp.asarray(self._M, dtype=dtype)

  def _apply(self, v):
    """M v for a flat v."""
    M = self._mat(v.dtype)
    return M * v if self.diagonal else M @ v

  def _solve(self, v):
    """M⁻¹ v for a flat v."""
    if self.diagonal:
      return v / self._mat(v.dtype)
    if self._L is not None:
      L = jnp.asarray(self._L, dtype=v.dtype)
    else:
      L = jnp.linalg.cholesky(self._mat(v.dtype))
    return jax.scipy.linalg.cho_solve((L, True), v)

  def value(self, x):
    x = jnp.asarray(x)
    self._check_size(x)
    m, v = _scaled(_up(x).ravel())  # ‖x‖_M = m·‖x/m‖_M: no squares of tiny or huge entries
    return (m * _safe_sqrt(jnp.maximum(v @ self._apply(v), 0))).astype(_out(x))

  def dual(self, g):
    return self.dual_and_map(g)[0].astype(_out(g))

  def dual_and_map(self, g):
    g = jnp.asarray(g)
    self._check_size(g)
    m, v = _scaled(_up(g).ravel())
    w = self._solve(v)
    n = _safe_sqrt(jnp.maximum(v @ w, 0))  # ‖g‖_{M⁻¹}/m; M⁻¹g/‖g‖_{M⁻¹} = w/n
    return m * n, _safe_div(w, n).reshape(g.shape)

  def dual_map(self, g):
    return self.dual_and_map(g)[1].astype(_out(g))


def newton_schulz_polar(G, steps: int = DEFAULT_NS_STEPS):
  r"""The polar factor UVᵀ of G = UΣVᵀ by the classic cubic Newton–Schulz iteration.

  .. math:: X_0 = G/\|G\|_F, \qquad X_{k+1} = \tfrac{3}{2} X_k - \tfrac{1}{2} X_k X_k^⊤ X_k.

  Each singular value follows σ ↦ (3σ − σ³)/2, which converges to 1 for every σ in (0, √3) and
  keeps 0 at 0, so the limit is U_r V_rᵀ over the non-zero singular values (0 for G = 0). Small
  singular values grow by ~1.5× per step before converging quadratically: ``steps`` must exceed
  log₁.₅(‖G‖_F/σ_min) by a few. (optax's ``orthogonalize_via_newton_schulz`` uses a tuned quintic
  whose fixed point is *not* UVᵀ — singular values end roughly in [0.5, 1.5] — so it is not reused.)
  """
  G = jnp.asarray(G)
  X = _up(G)
  transpose = X.shape[0] > X.shape[1]
  if transpose:
    X = X.T
  _, X = _scaled(X)  # divide by max|G| before squaring: 1e-20² underflows to 0 in float32
  X = _safe_div(X, _safe_sqrt(jnp.sum(X * X)))

  def step(_, X):
    return 1.5 * X - 0.5 * (X @ X.T) @ X

  X = jax.lax.fori_loop(0, steps, step, X)
  return X.T if transpose else X


class SpectralNorm(Norm):
  r"""The spectral (operator) norm of a 2-D array, its largest singular value; dual: the nuclear
  norm Σσ_i.

  .. math:: d(G) = U V^⊤, \qquad G = U Σ V^⊤ \text{ (reduced SVD)}.

  For rank-deficient G the maximiser is not unique (any completion on the null spaces with operator
  norm ≤ 1 is optimal): this returns U_r V_rᵀ over the singular values above
  σ_max·max(m, n)·eps, the maximiser of least Frobenius norm, and 0 for G = 0. ``method="svd"``
  (default) is exact; ``method="newton_schulz"`` uses :func:`newton_schulz_polar` with ``ns_steps``
  matmul steps (an approximation; the dual value is then ⟨G, d(G)⟩). Steepest descent in this norm
  is the orthogonalised update of Muon (without momentum or shape scaling) and of Shampoo without
  accumulation.
  """

  name = "spectral"

  def __init__(self, method: str = "svd", ns_steps: int = DEFAULT_NS_STEPS):
    if method not in SPECTRAL_METHODS:
      raise unknown_choice("spectral_method", method, SPECTRAL_METHODS)
    value = check_number(
      "ns_steps", ns_steps, lambda v: math.isfinite(v) and v == int(v) and v >= 1, "an integer >= 1"
    )
    if value is None:
      # traced: optax.inject_hyperparams turns every numeric default into an array
      if method == "newton_schulz":
        raise UserInputError(
          "ns_steps: must be a concrete integer; "
          "with optax.inject_hyperparams pass static_args=('ns_steps',)"
        )
      value = DEFAULT_NS_STEPS  # unused by the SVD
    self.method = method
    self.ns_steps = int(value)

  def __repr__(self) -> str:
    return f"SpectralNorm(method={self.method!r}" + (
      f", ns_steps={self.ns_steps})" if self.method == "newton_schulz" else ")"
    )

  @staticmethod
  def _check_2d(x):
    if jnp.ndim(x) != 2:
      raise UserInputError(
        f"norm: 'spectral' needs a 2-D array (a weight matrix); got shape {tuple(jnp.shape(x))}"
      )

  def value(self, x):
    self._check_2d(x)
    x32 = _up(x)
    if x32.size == 0:
      return jnp.zeros((), _out(x))
    m, X, ok = _svd_input(x32)
    s = jnp.linalg.svd(X, compute_uv=False)
    return _svd_result(m, m * s[0], ok).astype(_out(x))

  def dual(self, g):
    return self.dual_and_map(g)[0].astype(_out(g))

  def dual_and_map(self, g):
    self._check_2d(g)
    g32 = _up(g)
    if g32.size == 0:
      return jnp.zeros((), g32.dtype), g32
    if self.method == "newton_schulz":
      Q = newton_schulz_polar(g32, self.ns_steps)
      return jnp.sum(g32 * Q), Q
    m, X, ok = _svd_input(g32)
    U, s, Vt = jnp.linalg.svd(X, full_matrices=False)
    tol = s[0] * max(g32.shape) * jnp.finfo(g32.dtype).eps
    keep = (s > tol).astype(g32.dtype)
    return _svd_result(m, m * jnp.sum(s), ok), _svd_result(m, (U * keep) @ Vt, ok)

  def dual_map(self, g):
    return self.dual_and_map(g)[1].astype(_out(g))


def _svd_input(g32):
  """(m, X, ok): what to hand LAPACK's SVD for the matrix g32, with m = max|g32|.

  X = g32/m (singular values in [1/√n, √n]: no underflow or overflow inside the SVD) when ``ok``
  (g32 is finite and non-zero), else a harmless stand-in: G = 0 would give SVD derivatives 0/0,
  and a matrix holding an inf makes LAPACK's SVD spin forever (issue 12.1). :func:`_svd_result`
  then returns 0 for G = 0 and NaN for a non-finite G.
  """
  m = _max_abs(g32)
  ok = jnp.isfinite(m) & (m > 0)
  stand_in = jnp.eye(*g32.shape, dtype=g32.dtype) * jnp.arange(1, g32.shape[1] + 1, dtype=g32.dtype)
  return m, jnp.where(ok, _safe_div(g32, jnp.where(ok, m, 1)), stand_in), ok


def _svd_result(m, value, ok):
  """``value`` where the SVD saw the real matrix; 0 for G = 0; NaN for a G with NaN or inf."""
  return jnp.where(ok, value, jnp.where(m == 0, 0, jnp.nan).astype(value.dtype))


def get_norm(
  name: str, *, p=None, M=None, spectral_method: str = "svd", ns_steps: int = DEFAULT_NS_STEPS
) -> Norm:
  """The :class:`Norm` called ``name`` (one of :data:`NORMS`).

  Args:
    name: ``"l2"``, ``"linf"``, ``"l1"``, ``"lp"``, ``"mahalanobis"`` or ``"spectral"``.
    p: the exponent of ``"lp"``, 1 < p < ∞ (only for ``"lp"``).
    M: for ``"mahalanobis"`` (only): a symmetric positive-definite (n, n) matrix or a length-n
      vector of positive diagonal entries.
    spectral_method: ``"svd"`` (exact) or ``"newton_schulz"``, for ``"spectral"``.
    ns_steps: Newton–Schulz steps, for ``spectral_method="newton_schulz"``.

  Returns:
    The norm.

  Raises:
    UserInputError: unknown name, p missing or outside (1, ∞), M missing or not positive definite,
      or p/M given to a norm that does not use them.
  """
  if not isinstance(name, str) or name not in NORMS:
    raise unknown_choice("norm", name, NORMS)
  if p is not None and name != "lp":
    raise UserInputError(f"p: only norm 'lp' takes p (norm is {name!r})")
  if M is not None and name != "mahalanobis":
    raise UserInputError(f"M: only norm 'mahalanobis' takes M (norm is {name!r})")
  if name == "l2":
    return L2Norm()
  if name == "linf":
    return LinfNorm()
  if name == "l1":
    return L1Norm()
  if name == "lp":
    return LpNorm(p)
  if name == "mahalanobis":
    return MahalanobisNorm(M)
  return SpectralNorm(spectral_method, ns_steps)


def as_norm(norm, **kwargs) -> Norm:
  """``norm`` itself if it is a :class:`Norm`, else :func:`get_norm` of it."""
  return norm if isinstance(norm, Norm) else get_norm(norm, **kwargs)


# ---------------------------------------------------------------------------------------------
# Steps and objectives.


def unit_step(dual, direction, form: str) -> jax.Array:
  r"""The steepest-descent step for α = 1, sign flipped: ½‖g‖*·d(g) (penalty) or d(g) (ball).

  Both forms are u = −α·unit_step(‖g‖*, d(g)): the one formula every step in the package is built
  from (:func:`penalty_step`, :func:`ball_step`, :func:`jaxopt_hw.scale_by_steepest_descent`).
  """
  if form not in FORMS:
    raise unknown_choice("form", form, FORMS)
  if form == "penalty":
    return 0.5 * dual * direction
  return direction


def penalty_step(g, alpha, norm) -> jax.Array:
  r"""The minimiser of the homework's penalised linearisation, u = argmin_Δ gᵀΔ + (1/α)‖Δ‖².

  .. math::

    u = -\tfrac{α}{2}\,\|g\|_*\, d(g), \qquad g^⊤u + \tfrac1α\|u\|^2 = -\tfrac{α}{4}\|g\|_*^2.

  Unique for strictly convex norms (ℓ2, ℓp, Mahalanobis); for ℓ1, ℓ∞ and spectral it is the
  minimiser picked by the norm's :meth:`Norm.dual_map`. g = 0 gives 0.

  Args:
    g: the gradient (any shape; 2-D for the spectral norm).
    alpha: α > 0 (a float or a scalar array, may be traced).
    norm: a :class:`Norm` or a name from :data:`NORMS` (without parameters).

  Returns:
    u, with g's shape and dtype.
  """
  g = jnp.asarray(g)
  dual, direction = as_norm(norm).dual_and_map(g)
  return (-jnp.asarray(alpha, dual.dtype) * unit_step(dual, direction, "penalty")).astype(_out(g))


def ball_step(g, alpha, norm) -> jax.Array:
  r"""The minimiser of the constrained linearisation, u = argmin_{‖Δ‖ ≤ α} gᵀΔ = −α·d(g).

  The optimum is −α‖g‖*. g = 0 gives 0 (every feasible Δ is then optimal). Args as
  :func:`penalty_step`; returns u with g's shape and dtype.
  """
  g = jnp.asarray(g)
  dual, direction = as_norm(norm).dual_and_map(g)
  return (-jnp.asarray(alpha, direction.dtype) * unit_step(dual, direction, "ball")).astype(_out(g))


def penalty_objective(g, u, alpha, norm) -> jax.Array:
  """gᵀu + (1/α)‖u‖², in float32 or wider."""
  norm = as_norm(norm)
  n = _up(norm.value(_up(u)))
  return inner(g, u) + n * n / alpha


def ball_objective(g, u) -> jax.Array:
  """gᵀu (the constraint ‖u‖ ≤ α is checked separately), in float32 or wider."""
  return inner(g, u)


def penalty_optimum(g, alpha, norm) -> jax.Array:
  """−(α/4)‖g‖*², the minimum of :func:`penalty_objective`."""
  d = _up(as_norm(norm).dual(_up(g)))
  return -(alpha / 4) * d * d


def ball_optimum(g, alpha, norm) -> jax.Array:
  """−α‖g‖*, the minimum of gᵀΔ over ‖Δ‖ ≤ α."""
  return -alpha * _up(as_norm(norm).dual(_up(g)))


class UnsquaredPenaltySolution(NamedTuple):
  """The answer for the un-squared penalty, see :func:`unsquared_penalty_step`."""

  has_minimiser: jax.Array  # bool: ‖g‖* ≤ 1/α
  minimum: jax.Array  # 0 when bounded, −inf otherwise
  update: jax.Array  # 0 (the least-norm minimiser) when one exists, NaN otherwise
  ray: jax.Array  # −d(g): along −t·d(g) the objective is t·(1/α − ‖g‖*)


def unsquared_penalty_step(g, alpha, norm) -> UnsquaredPenaltySolution:
  r"""argmin_Δ gᵀΔ + (1/α)‖Δ‖ — the homework's un-squared penalty — when it exists.

  The objective is positively homogeneous (doubling Δ doubles it), so its infimum is 0 or −∞:

  * gᵀΔ + ‖Δ‖/α ≥ (1/α − ‖g‖*)·‖Δ‖, with equality along Δ = −t·d(g), t ≥ 0.
  * If ‖g‖* < 1/α: the minimum is 0, attained only at Δ = 0 (no step at all).
  * If ‖g‖* = 1/α: the minimum is 0, attained at Δ = 0 and along the whole ray Δ = −t·d(g), t ≥ 0
    (and at every Δ with gᵀΔ = −‖g‖*‖Δ‖); the step length is not determined.
  * If ‖g‖* > 1/α: the objective → −∞ along −t·d(g); there is no minimiser.

  So the un-squared penalty never yields a useful finite step: it either does not move or
  is unbounded. The squared penalty's quadratic growth is what fixes the step length. For the ℓ∞
  norm of Q1(b): a minimiser exists iff ‖g‖₁ ≤ 1/α.

  Returns:
    :class:`UnsquaredPenaltySolution`: ``has_minimiser``; ``minimum`` (0 or −inf); ``update``, the
    least-norm minimiser 0 when one exists and NaN (no finite minimiser) otherwise; ``ray`` = −d(g).
  """
  g = jnp.asarray(g)
  dual, direction = as_norm(norm).dual_and_map(g)
  # ‖g‖* = 1/α is a tie decided in floating point: accept it within a few ulps.
  bounded = dual * jnp.asarray(alpha, dual.dtype) <= 1 + 8 * jnp.finfo(dual.dtype).eps
  minimum = jnp.where(bounded, 0.0, -jnp.inf).astype(dual.dtype)
  update = jnp.where(bounded, jnp.zeros(g.shape, _out(g)), jnp.full(g.shape, jnp.nan, _out(g)))
  return UnsquaredPenaltySolution(bounded, minimum, update, (-direction).astype(_out(g)))


def unsquared_penalty_objective(g, u, alpha, norm) -> jax.Array:
  """gᵀu + (1/α)‖u‖, in float32 or wider."""
  return inner(g, u) + _up(as_norm(norm).value(_up(u))) / alpha
