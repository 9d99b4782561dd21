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

Beside the homework's norms (ℓ2, ℓ∞, ℓ1, ℓp, Mahalanobis, spectral) there are the norms of one layer
of a network that Scion and modula use — RMS→RMS spectral, largest column / row ℓ2, RMS, and
d_in-scaled sign (:class:`MatrixNorm` and below) — any norm with a radius (:class:`ScaledNorm`),
and the per-parameter choice ``"auto"`` (:func:`auto_norm`).

Add a norm by subclassing :class:`Norm` and writing ``value``, ``dual`` and ``dual_map``; every step
and objective here, the optax transform :func:`jaxopt_hw.transforms.steepest_descent` and the Q1
study then work with it.

References:
  Bernstein & Newhouse, "Old Optimizer, New Norm: An Anthology", arXiv:2409.20325 (2024).
  Pethick et al., "Training Deep Learning Models with Norm-Constrained LMOs", arXiv:2502.07529.
  Bernstein et al., "Modular Duality in Deep Learning", arXiv:2410.21265 (2024) — modula.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from optax.contrib import MuonDimensionNumbers

from jaxopt_hw import numerics, polar
from jaxopt_hw.errors import UserInputError, unknown_choice
from jaxopt_hw.names import (  # noqa: F401 (NORMS: the homework's norms, imported from here too)
  ALL_NORMS,
  FORMS,
  NORMS,
  NS_PRECONDITIONINGS,
  SPECTRAL_METHODS,
)
from jaxopt_hw.validation import check_count, check_number

#: Classic cubic Newton–Schulz steps by default: enough to reach UVᵀ to float32 precision when the
#: smallest non-zero singular value is above ~1e-4 of the Frobenius norm (each step multiplies a
#: small singular value by ~1.5, then convergence is quadratic).
DEFAULT_NS_STEPS = 30


# Guarded arithmetic (see jaxopt_hw.numerics): an exact 0 is guarded, NaN and inf propagate.
float_dtype = numerics.float_dtype
_up = numerics.up
_out = numerics.out_dtype
_safe_sqrt = numerics.safe_sqrt
_safe_div = numerics.safe_div
_safe_pow = numerics.safe_pow
_max_abs = numerics.max_abs
_scaled = numerics.scaled


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
  #: True for norms of one layer (matrix norms, sign): they step a pytree leaf by leaf, never as
  #: one flattened vector.
  leafwise: bool = False

  def accepts(self, shape) -> bool:
    """Whether this norm can measure an array of ``shape`` (matrix norms need 2-D arrays)."""
    return True

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
  log₁.₅(‖G‖_F/σ_min) by a few. This is :func:`jaxopt_hw.orthogonalize` with the ``"cubic"`` preset;
  its ``"polar_express"`` schedule gets there in far fewer steps, and optax's quintic (``"jordan"``)
  does *not* converge to UVᵀ (singular values end roughly in [0.7, 1.2]).
  """
  return polar.orthogonalize(G, coefficients="cubic", steps=steps)


def _normalized_axes(ndim, dimension_numbers):
  def axes(spec):
    spec = (spec,) if isinstance(spec, int) else tuple(spec)
    out = []
    for a in spec:
      if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
        raise UserInputError(
          f"dimension_numbers: axis {a!r} is not allowed for an array of rank {ndim}; "
          f"allowed: integers in [{-ndim}, {ndim - 1}]"
        )
      out.append(int(a) % ndim)
    return tuple(out)

  reduction, output = axes(dimension_numbers.reduction_axis), axes(dimension_numbers.output_axis)
  if not reduction or not output or set(reduction) & set(output):
    raise UserInputError(
      f"dimension_numbers: reduction axes {reduction} and output axes {output} must be non-empty "
      "and disjoint"
    )
  return reduction, output


def fan_in_out(shape, dimension_numbers=None) -> tuple[int, int]:
  """(fan_in, fan_out) of a weight array applied as x ↦ xW (flax's and optax's layout): for a 2-D
  array its two axes; otherwise the products of ``dimension_numbers``' reduction and output axes."""
  shape = tuple(shape)
  if dimension_numbers is None:
    if len(shape) != 2:
      raise UserInputError(f"dimension_numbers: needed for an array of shape {shape}")
    return shape[0], shape[1]
  reduction, output = _normalized_axes(len(shape), dimension_numbers)
  return math.prod(shape[a] for a in reduction), math.prod(shape[a] for a in output)


def _check_dimension_numbers(dimension_numbers):
  if dimension_numbers is not None and not isinstance(dimension_numbers, MuonDimensionNumbers):
    raise UserInputError(
      f"dimension_numbers: {dimension_numbers!r} is not allowed; allowed: "
      "optax.contrib.MuonDimensionNumbers(reduction_axis=..., output_axis=...) or None"
    )
  return dimension_numbers


class MatrixNorm(Norm):
  r"""A norm on the weight matrix of one layer, W of shape (fan_in, fan_out), applied as x ↦ xW
  (the layout of flax's ``Linear``/``Conv`` kernels and optax's ``MuonDimensionNumbers``).

  Arrays of other ranks are measured through ``dimension_numbers``
  (:class:`optax.contrib.MuonDimensionNumbers`): its reduction axes are flattened into fan_in, its
  output axes into fan_out, and any other axes are a batch of independent matrices (stacked
  layers), measured by the largest of their norms — so the dual norm is the sum over the batch and
  the dual map is taken per matrix. Without ``dimension_numbers`` only 2-D arrays are accepted.
  Subclasses implement ``_values(X)`` and ``_duals_and_maps(X)`` on a batch X of shape
  (B, fan_in, fan_out) in float32 or wider.
  """

  leafwise = True

  def __init__(self, dimension_numbers: MuonDimensionNumbers | None = None):
    self.dimension_numbers = _check_dimension_numbers(dimension_numbers)

  def accepts(self, shape) -> bool:
    if self.dimension_numbers is None:
      return len(shape) == 2
    try:
      _normalized_axes(len(shape), self.dimension_numbers)
    except UserInputError:
      return False
    return True

  def _check(self, x):
    shape = tuple(jnp.shape(x))
    if self.dimension_numbers is None and len(shape) != 2:
      raise UserInputError(
        f"norm: {self.name!r} needs a 2-D array (a weight matrix); got shape {shape} "
        "(give dimension_numbers=optax.contrib.MuonDimensionNumbers(...) for other ranks)"
      )

  def _batch(self, x):
    """(X, inverse): x as a (B, fan_in, fan_out) batch, and the map back to x's layout."""
    self._check(x)
    if self.dimension_numbers is None:
      return x[None], lambda y: y[0]
    reduction, output = _normalized_axes(x.ndim, self.dimension_numbers)
    batch = tuple(a for a in range(x.ndim) if a not in reduction + output)
    order = batch + reduction + output
    inverse_order = tuple(int(i) for i in np.argsort(order))
    sizes = lambda axes: tuple(x.shape[a] for a in axes)
    flat = (math.prod(sizes(batch)), math.prod(sizes(reduction)), math.prod(sizes(output)))
    unflat = sizes(batch) + sizes(reduction) + sizes(output)
    X = jnp.transpose(x, order).reshape(flat)
    return X, lambda y: jnp.transpose(y.reshape(unflat), inverse_order)

  def _values(self, X):
    raise NotImplementedError

  def _duals_and_maps(self, X):
    raise NotImplementedError

  def value(self, x):
    x32 = _up(x)
    if x32.size == 0:
      return jnp.zeros((), _out(x))
    X, _ = self._batch(x32)
    return jnp.max(self._values(X)).astype(_out(x))

  def dual(self, g):
    return self.dual_and_map(g)[0].astype(_out(g))

  def dual_and_map(self, g):
    g32 = _up(g)
    if g32.size == 0:
      self._check(g32)
      return jnp.zeros((), g32.dtype), g32
    X, inverse = self._batch(g32)
    duals, maps = self._duals_and_maps(X)
    return jnp.sum(duals), inverse(maps)

  def dual_map(self, g):
    return self.dual_and_map(g)[1].astype(_out(g))

  def _dims_repr(self):
    return "" if self.dimension_numbers is None else f", dimension_numbers={self.dimension_numbers}"


def _spectral_values(X):
  """σ_max of each matrix of the batch X, guarded like :func:`jaxopt_hw.polar.orthogonalize`."""
  m = _max_abs(X, axis=(-2, -1), keepdims=True)
  ok = jnp.isfinite(m) & (m > 0)
  eye = jnp.eye(*X.shape[-2:], dtype=X.dtype)
  s = jnp.linalg.svd(jnp.where(ok, _safe_div(X, jnp.where(ok, m, 1)), eye), compute_uv=False)
  bad = jnp.where(m == 0, 0, jnp.nan).astype(X.dtype)
  return jnp.where(ok, m * s[..., :1, None], bad)[..., 0, 0]


class SpectralNorm(MatrixNorm):
  r"""The spectral (operator) norm of a 2-D array, its largest singular value; dual: the nuclear
  norm Σσ_i.

  .. math:: d(G) = U V^⊤, \qquad G = U Σ V^⊤ \text{ (reduced SVD)}.

  For rank-deficient G the maximiser is not unique (any completion on the null spaces with operator
  norm ≤ 1 is optimal): this returns U_r V_rᵀ over the singular values above
  σ_max·max(m, n)·eps, the maximiser of least Frobenius norm, and 0 for G = 0. ``method="svd"``
  (default) is exact; ``method="newton_schulz"`` runs :func:`jaxopt_hw.orthogonalize` with
  ``ns_coefficients`` (default the classic ``"cubic"`` iteration) for ``ns_steps`` steps (an
  approximation; the dual value is then ⟨G, d(G)⟩); ``eps`` and ``preconditioning`` are passed to
  it (optax's ``muon`` uses eps = 1e-8). Steepest descent in this norm is the orthogonalised update
  of Muon (without momentum or shape scaling) and of Shampoo without accumulation. Other ranks:
  see :class:`MatrixNorm`.
  """

  name = "spectral"

  def __init__(
    self,
    method: str = "svd",
    ns_steps: int = DEFAULT_NS_STEPS,
    *,
    ns_coefficients="cubic",
    eps: float = 0.0,
    preconditioning: str = "frobenius",
    dimension_numbers: MuonDimensionNumbers | None = None,
  ):
    super().__init__(dimension_numbers)
    if method not in SPECTRAL_METHODS:
      raise unknown_choice("spectral_method", method, SPECTRAL_METHODS)
    if preconditioning not in NS_PRECONDITIONINGS:
      raise unknown_choice("preconditioning", preconditioning, NS_PRECONDITIONINGS)
    # traced under optax.inject_hyperparams, which turns every numeric default into an array: the
    # SVD does not use it, Newton–Schulz needs it concrete
    value = check_count(
      "ns_steps",
      ns_steps,
      traced_hint="with optax.inject_hyperparams pass static_args=('ns_steps',)"
      if method == "newton_schulz"
      else None,
    )
    self.method = method
    self.ns_steps = DEFAULT_NS_STEPS if value is None else value
    self.ns_coefficients = ns_coefficients
    self.eps = eps
    self.preconditioning = preconditioning
    self.schedule = (
      polar.coefficient_schedule(ns_coefficients, self.ns_steps)
      if method == "newton_schulz"
      else None
    )

  def __repr__(self) -> str:
    if self.method != "newton_schulz":
      return f"{type(self).__name__}(method={self.method!r}{self._dims_repr()})"
    coefficients = (
      ""
      if isinstance(self.ns_coefficients, str) and self.ns_coefficients == "cubic"
      else f", ns_coefficients={self.ns_coefficients!r}"
    )
    return (
      f"{type(self).__name__}(method='newton_schulz', ns_steps={self.ns_steps}{coefficients}"
      f"{self._dims_repr()})"
    )

  def _scale(self, X):
    """The factor s of the norm ‖W‖ = σ_max(W)/s (1 here; √(fan_out/fan_in) for RMS→RMS)."""
    return 1.0

  def _values(self, X):
    return _spectral_values(X) / self._scale(X)

  def _duals_and_maps(self, X):
    s = self._scale(X)
    if self.method == "newton_schulz":
      Q = polar._newton_schulz(X, self.schedule, self.eps, self.preconditioning)
      return s * jnp.sum(X * Q, axis=(-2, -1)), s * Q
    nuclear, Q = polar._svd_polar(X)
    return s * nuclear, s * Q


class RMSSpectralNorm(SpectralNorm):
  r"""The RMS→RMS operator norm of a layer x ↦ xW, W of shape (fan_in, fan_out):

  .. math::

    \|W\|_{RMS→RMS} = \sup_x \frac{\|xW\|_2/\sqrt{n_{out}}}{\|x\|_2/\sqrt{n_{in}}}
    = \sqrt{n_{in}/n_{out}}\;σ_{\max}(W),

  with ‖x‖_RMS = ‖x‖₂/√n: the norm under which a layer's output has the size of its input whatever
  the widths (modula's "well-normed" linear layer, Bernstein et al.; Scion's spectral layers,
  Pethick et al. 2025). Dual √(fan_out/fan_in)·‖G‖_nuc, dual map √(fan_out/fan_in)·UVᵀ (the
  spectral norm's, scaled). Arguments as :class:`SpectralNorm`; for conv kernels give
  ``dimension_numbers`` (fan_in = k·k·in, fan_out = out).
  """

  name = "rms_spectral"

  def _scale(self, X):
    return math.sqrt(X.shape[-1] / X.shape[-2])


class _VectorsOfMatrix(MatrixNorm):
  """max over the columns (axis -2 vectors) or rows (axis -1) of their ℓ2 norms."""

  axis = -2

  def _values(self, X):
    m, b = _scaled(X, axis=self.axis)
    return jnp.max(m * _safe_sqrt(jnp.sum(b * b, axis=self.axis, keepdims=True)), axis=(-2, -1))

  def _duals_and_maps(self, X):
    m, b = _scaled(X, axis=self.axis)
    r = _safe_sqrt(jnp.sum(b * b, axis=self.axis, keepdims=True))  # ‖v‖₂/max|v| per vector
    return jnp.sum(m * r, axis=(-2, -1)), _safe_div(b, r)

  def __repr__(self) -> str:
    return f"{type(self).__name__}({self._dims_repr()[2:]})"


class ColL2Norm(_VectorsOfMatrix):
  r"""The largest ℓ2 norm of a column of W (fan_in, fan_out): max_j ‖W[:, j]‖₂, the weights into
  output unit j. Dual Σ_j ‖G[:, j]‖₂ (Cauchy–Schwarz column by column); dual map: every column
  divided by its ℓ2 norm (a zero column stays 0). Scion's column-wise norm (Pethick et al. 2025).
  """

  name = "col_l2"
  axis = -2


class RowL2Norm(_VectorsOfMatrix):
  r"""The largest ℓ2 norm of a row of W (fan_in, fan_out): max_i ‖W[i, :]‖₂, the weights out of
  input i — for an embedding table (num_embeddings, features), one token's vector. Dual
  Σ_i ‖G[i, :]‖₂; dual map: every row divided by its ℓ2 norm. Scion's row-wise norm.
  """

  name = "row_l2"
  axis = -1


class RMSNorm(Norm):
  r"""The RMS norm ‖x‖_RMS = ‖x‖₂/√n of an array of n entries (Scion's bias-RMS norm for biases and
  scales); dual √n·‖g‖₂; dual map √n·g/‖g‖₂, whose entries have RMS 1."""

  name = "rms"

  def value(self, x):
    n = max(int(np.size(x)), 1)
    return (_up(L2Norm().value(x)) / math.sqrt(n)).astype(_out(x))

  def dual(self, g):
    return self.dual_and_map(g)[0].astype(_out(g))

  def dual_and_map(self, g):
    root = math.sqrt(max(int(np.size(g)), 1))
    dual, direction = L2Norm().dual_and_map(g)
    return root * dual, root * direction

  def dual_map(self, g):
    return self.dual_and_map(g)[1].astype(_out(g))


class SignNorm(Norm):
  r"""d_in·max|W_ij| for a layer with d_in inputs; dual ‖G‖₁/d_in; dual map sign(G)/d_in.

  A sign matrix scaled by 1/d_in maps inputs with entries in [−1, 1] to outputs with entries in
  [−1, 1] (|Σ_j W_ij x_j| ≤ d_in·max|W_ij|): the ℓ∞→ℓ∞ geometry of Scion's sign layers (Pethick
  et al. 2025), used for output heads. d_in is fan_in (``dimension_numbers``' reduction axes, the
  first axis of a 2-D array) and 1 for arrays of rank 0 or 1, where this is the ℓ∞ norm.
  """

  name = "sign"
  leafwise = True

  def __init__(self, dimension_numbers: MuonDimensionNumbers | None = None):
    self.dimension_numbers = _check_dimension_numbers(dimension_numbers)

  def accepts(self, shape) -> bool:
    return len(shape) <= 2 or self.dimension_numbers is not None

  def _d_in(self, x):
    shape = tuple(jnp.shape(x))
    if self.dimension_numbers is not None:
      return fan_in_out(shape, self.dimension_numbers)[0]
    if len(shape) > 2:
      raise UserInputError(
        f"norm: 'sign' needs an array of rank <= 2 or dimension_numbers; got shape {shape}"
      )
    return shape[0] if len(shape) == 2 else 1

  def value(self, x):
    return (self._d_in(x) * _up(LinfNorm().value(x))).astype(_out(x))

  def dual(self, g):
    return self.dual_and_map(g)[0].astype(_out(g))

  def dual_and_map(self, g):
    d_in = self._d_in(g)
    dual, direction = LinfNorm().dual_and_map(g)
    return dual / d_in, direction / d_in

  def dual_map(self, g):
    return self.dual_and_map(g)[1].astype(_out(g))

  def __repr__(self) -> str:
    dims = "" if self.dimension_numbers is None else f"dimension_numbers={self.dimension_numbers}"
    return f"SignNorm({dims})"


class ScaledNorm(Norm):
  r"""``norm`` with radius ρ: the norm ‖x‖/ρ, whose unit ball is the ball of radius ρ of ``norm``.

  Dual ρ·‖g‖*, dual map ρ·d(g): the ball step is −α·ρ·d(g) (Scion's LMO over a ball of radius ρ),
  the penalty step −(α/2)·ρ²·‖g‖*·d(g). ρ may be a traced array (a vmapped hyper-parameter).
  """

  def __init__(self, norm: Norm, radius):
    if not isinstance(norm, Norm):
      raise UserInputError(f"norm: {norm!r} is not a jaxopt_hw.duality.Norm")
    check_number("radius", radius, lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
    self.norm, self.radius = norm, radius
    self.name = norm.name
    self.leafwise = norm.leafwise

  def accepts(self, shape) -> bool:
    return self.norm.accepts(shape)

  def value(self, x):
    return (_up(self.norm.value(x)) / self.radius).astype(_out(x))

  def dual(self, g):
    return self.dual_and_map(g)[0].astype(_out(g))

  def dual_and_map(self, g):
    dual, direction = self.norm.dual_and_map(g)
    radius = jnp.asarray(self.radius, dual.dtype)
    return radius * dual, radius * direction

  def dual_map(self, g):
    return self.dual_and_map(g)[1].astype(_out(g))

  def __repr__(self) -> str:
    return f"ScaledNorm({self.norm!r}, radius={self.radius!r})"


_MATRIX_NORMS = ("spectral", "rms_spectral", "col_l2", "row_l2")
_SPECTRAL_NORMS = ("spectral", "rms_spectral")


def get_norm(
  name: str,
  *,
  p=None,
  M=None,
  spectral_method: str = "svd",
  ns_steps: int = DEFAULT_NS_STEPS,
  ns_coefficients="cubic",
  radius=None,
  dimension_numbers: MuonDimensionNumbers | None = None,
) -> Norm:
  """The :class:`Norm` called ``name`` (one of :data:`jaxopt_hw.names.ALL_NORMS`).

  Args:
    name: the homework's ``"l2"``, ``"linf"``, ``"l1"``, ``"lp"``, ``"mahalanobis"``,
      ``"spectral"``, or a layer norm: ``"rms_spectral"`` (RMS→RMS operator norm), ``"col_l2"``,
      ``"row_l2"`` (largest column / row ℓ2 norm), ``"rms"`` (RMS of the entries), ``"sign"``
      (d_in·max|W_ij|).
    p: the exponent of ``"lp"``, 1 < p < ∞ (only for ``"lp"``).
    M: for ``"mahalanobis"`` (only): a symmetric positive-definite (n, n) matrix or a length-n
      vector of positive diagonal entries.
    spectral_method: ``"svd"`` (exact) or ``"newton_schulz"``, for the spectral norms.
    ns_steps: Newton–Schulz steps, for ``spectral_method="newton_schulz"``.
    ns_coefficients: the Newton–Schulz schedule (a preset of :func:`jaxopt_hw.orthogonalize`, a
      row, or a (k, 3) table); default the classic ``"cubic"`` iteration.
    radius: ρ > 0: the norm ‖·‖/ρ, whose unit ball has radius ρ (:class:`ScaledNorm`).
    dimension_numbers: for the matrix norms and ``"sign"``, an
      :class:`optax.contrib.MuonDimensionNumbers` to measure arrays that are not 2-D.

  Returns:
    The norm.

  Raises:
    UserInputError: unknown name, p missing or outside (1, ∞), M missing or not positive definite,
      or an argument given to a norm that does not use it.
  """
  if not isinstance(name, str) or name not in ALL_NORMS:
    raise unknown_choice("norm", name, ALL_NORMS)
  if p is not None and name != "lp":
    raise UserInputError(f"p: only norm 'lp' takes p (norm is {name!r})")
  if M is not None and name != "mahalanobis":
    raise UserInputError(f"M: only norm 'mahalanobis' takes M (norm is {name!r})")
  if dimension_numbers is not None and name not in _MATRIX_NORMS + ("sign",):
    raise UserInputError(
      f"dimension_numbers: only the matrix norms ({', '.join(_MATRIX_NORMS)}) and 'sign' take "
      f"dimension_numbers (norm is {name!r})"
    )
  if name == "l2":
    norm = L2Norm()
  elif name == "linf":
    norm = LinfNorm()
  elif name == "l1":
    norm = L1Norm()
  elif name == "lp":
    norm = LpNorm(p)
  elif name == "mahalanobis":
    norm = MahalanobisNorm(M)
  elif name in _SPECTRAL_NORMS:
    cls = SpectralNorm if name == "spectral" else RMSSpectralNorm
    norm = cls(
      spectral_method,
      ns_steps,
      ns_coefficients=ns_coefficients,
      dimension_numbers=dimension_numbers,
    )
  elif name == "col_l2":
    norm = ColL2Norm(dimension_numbers)
  elif name == "row_l2":
    norm = RowL2Norm(dimension_numbers)
  elif name == "rms":
    norm = RMSNorm()
  else:
    norm = SignNorm(dimension_numbers)
  return norm if radius is None else ScaledNorm(norm, radius)


def as_norm(norm, **kwargs) -> Norm:
  """``norm`` itself if it is a :class:`Norm`, else :func:`get_norm` of it."""
  return norm if isinstance(norm, Norm) else get_norm(norm, **kwargs)


def leaf_name(path) -> str:
  """The name of a parameter from its JAX key path: the last dictionary key or attribute, skipping
  the ``.value`` that flax ``nnx.Variable`` nodes add (``['layers'][0]['kernel'].value`` →
  ``'kernel'``); ``''`` when there is none."""
  for key in reversed(tuple(path)):
    if isinstance(key, jax.tree_util.GetAttrKey):
      if key.name in ("value", "raw_value"):
        continue
      return key.name
    if isinstance(key, jax.tree_util.DictKey):
      return str(key.key)
  return ""


def auto_norm(
  path,
  leaf,
  *,
  spectral_method: str = "svd",
  ns_steps: int = DEFAULT_NS_STEPS,
  ns_coefficients="cubic",
) -> Norm:
  r"""The norm ``"auto"`` gives one parameter, by its shape and (for flax) its name.

  =============================================  ============================================
  parameter                                      norm
  =============================================  ============================================
  named ``embedding``, 2-D (flax ``Embed``)      ``row_l2`` with radius √features: every
                                                 token's vector steps to RMS 1
  rank ≥ 3 (a conv kernel, (*window, in, out))   ``rms_spectral`` of the (k·k·in, out) matrix
  2-D (a dense kernel, (in, out))                ``rms_spectral``
  rank 0 or 1 (bias, LayerNorm/BatchNorm scale)  ``rms``
  =============================================  ============================================

  Scion's own "auto" (Pethick et al. 2025) makes the same choices for dense layers and biases; for
  conv kernels it scales by √(out/in)/k² where the RMS→RMS norm of the reshaped kernel gives
  √(out/(k²·in)). It cannot know which dense layer reads the inputs or writes the outputs; Scion
  suggests ``col_l2`` or ``"spectral"`` for the first and ``"sign"`` for the last: pass a callable
  that picks those and ``"auto"`` for the rest.
  """
  shape = tuple(jnp.shape(leaf))
  spectral = dict(
    spectral_method=spectral_method, ns_steps=ns_steps, ns_coefficients=ns_coefficients
  )
  if leaf_name(path) == "embedding" and len(shape) == 2:
    return get_norm("row_l2", radius=math.sqrt(shape[1]))
  if len(shape) >= 3:
    dims = MuonDimensionNumbers(tuple(range(len(shape) - 1)), len(shape) - 1)
    return get_norm("rms_spectral", dimension_numbers=dims, **spectral)
  if len(shape) == 2:
    return get_norm("rms_spectral", **spectral)
  return get_norm("rms")


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
