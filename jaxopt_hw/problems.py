"""Objectives the sweeps run on, and the exact solutions they are compared with.

A :class:`Problem` is a loss ``loss(params, data)``, its data (a pytree of arrays) and a way to draw
initial parameters ``init(key, data)``. Least squares, ``mean_i (x_iᵀθ − y_i)²``, covers the
homework's Q2 (one example ``a = [1, 0.1, 0.01]`` with target 1) and the over-parameterised studies.

The exact references of the implicit-bias study live here too, in float64:

* :func:`min_norm_interpolant` — argmin ‖θ‖₂ subject to Xθ = y, via the pseudo-inverse;
* :func:`weighted_min_norm_interpolant` — argmin Σ_j w_j θ_j² subject to Xθ = y, in closed form;
* :func:`min_linf_interpolant` — argmin ‖θ‖∞ subject to Xθ = y, a linear programme solved by
  SciPy's HiGHS, polished on its active set and checked against its LP dual.

Networks on data: a problem may carry a data set of examples and a ``batch_size`` (the sweep then
takes mini-batch steps, each grid point drawing its own order from its seed), held-out
``eval_data`` and per-example ``metrics`` evaluated at the logged steps. :func:`nnx_problem` builds
one from a flax ``nnx.Module`` class and its constructor arguments (initialised per seed);
:func:`classification` adds the cross-entropy loss and the accuracy.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxopt_hw.errors import UserInputError

#: Q2's single training point: f(θ) = (1 − aᵀθ)² with this a.
HOMEWORK_A = (1.0, 0.1, 0.01)


@dataclasses.dataclass(frozen=True)
class Problem:
  """An objective for :func:`jaxopt_hw.sweep`.

  Attributes:
    loss: ``loss(params, data) -> scalar``, the objective to minimise.
    init: ``init(key, data) -> params``, the starting point (``key`` is a JAX PRNG key).
    data: a pytree of arrays the loss reads. For a batch of problem instances (the sweep's
      ``batched_data=True``) every leaf has one more leading axis. With ``batch_size`` it is a data
      set: every leaf has a leading axis of n examples.
    example_losses: optional ``example_losses(params, data) -> (n,)``, the per-example losses whose
      mean is ``loss``; needed for per-example gradients (e.g. simplified Adam's epoch RMS) and for
      a data set (the logged loss is their mean over all of ``data``).
    name: shown in reports.
    batch_size: None (every step sees all of ``data``), or the examples per optimizer step: each
      grid point draws a fresh random permutation of the n examples every epoch, from its seed, and
      steps through it ``batch_size`` at a time (n // batch_size steps per epoch; the last
      n mod batch_size examples of each permutation are left out). ``loss`` then sees a mini-batch.
    eval_data: optional held-out data (leaves with a leading axis of examples) for ``metrics``.
    metrics: optional ``metrics(params, data) -> {name: (m,)}``, per-example values (e.g. loss,
      whether the prediction is right) averaged over ``eval_data`` at every logged step, inside the
      compiled program.
    eval_batch_size: examples per batch when the logged loss and the metrics are averaged over a
      data set (memory then does not grow with the data set); default ``batch_size``, or all of
      ``eval_data`` at once for a full-batch problem.

  The functions should be module-level (not fresh closures) so that sweeps of the same problem
  family reuse one compiled program.
  """

  loss: Callable[[Any, Any], jax.Array]
  init: Callable[[jax.Array, Any], Any]
  data: Any
  example_losses: Callable[[Any, Any], jax.Array] | None = None
  name: str = "problem"
  batch_size: int | None = None
  eval_data: Any = None
  metrics: Callable[[Any, Any], Mapping[str, jax.Array]] | None = None
  eval_batch_size: int | None = None

  @property
  def num_examples(self) -> int | None:
    """n, the examples in ``data`` (None unless the problem is a data set with ``batch_size``)."""
    if self.batch_size is None:
      return None
    return int(np.shape(jax.tree.leaves(self.data)[0])[0])

  @property
  def steps_per_epoch(self) -> int:
    """Optimizer steps per pass over the data: n // batch_size, or 1 for a full-batch problem."""
    if self.batch_size is None:
      return 1
    return self.num_examples // self.batch_size


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


def derived_thetas(a) -> dict[str, np.ndarray]:
  """Where each Q2 method converges on f(θ) = (1 − aᵀθ)² from θ₀ = 0, derived by hand (float64).

  * SGD: every gradient −2(1 − aᵀθ)a is parallel to a, so θ stays in span(a); the only interpolant
    there is a/‖a‖², the minimum-ℓ2-norm solution.
  * Simplified Adam with one example steps by −α_t·sign(∇f) = α_t·sign(r)·sign(a): θ stays on the
    line c·sign(a) and, with α_t → 0 and Σα_t = ∞, lands on sign(a)/‖a‖₁, the minimum-ℓ∞-norm
    interpolant.
  * Rescaled-feature SGD: the rescaled point is sign(a), SGD on w lands on sign(a)/d, and
    θ_j = w_j/|a_j| = 1/(d·a_j).
  """
  a = np.asarray(a, np.float64)
  return {
    "sgd": a / (a @ a),
    "simplified_adam": np.sign(a) / np.abs(a).sum(),
    "rescaled_sgd": 1.0 / (a.size * a),
  }


def stability_thresholds(a) -> dict[str, float]:
  """Largest stable constant step on f(θ) = (1 − aᵀθ)²: α < 2/λmax of the Hessian.

  SGD steps by −α∇f with Hessian 2aaᵀ (λmax = 2‖a‖²): stable iff α < 1/‖a‖². Rescaled SGD steps
  on the point sign(a) (λmax = 2d): stable iff α < 1/d.
  """
  a = np.asarray(a, np.float64)
  return {"sgd": 1.0 / (a @ a), "rescaled_sgd": 1.0 / a.size}


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
# Networks: flax nnx models on data sets.


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """An ``nnx.Module`` class and its constructor arguments, built per seed as
  ``cls(*args, **kwargs, rngs=nnx.Rngs(key))``.

  Hashable and compared by value, so two problems built from the same class and arguments share one
  compiled sweep program.
  """

  cls: type
  args: tuple = ()
  kwargs: tuple = ()  # (name, value) pairs, sorted by name

  def build(self, key) -> nnx.Module:
    return self.cls(*self.args, **dict(self.kwargs), rngs=nnx.Rngs(key))

  @property
  def graphdef(self):
    """The model's ``nnx.GraphDef`` (its structure without the arrays)."""
    return _graphdef(self)


@functools.lru_cache(maxsize=64)
def _graphdef(spec: ModelSpec):
  graphdef, _ = nnx.split(nnx.eval_shape(lambda: spec.build(jax.random.key(0))))
  return graphdef


@dataclasses.dataclass(frozen=True)
class _NNXInit:
  """``init(key, data)``: the model's ``nnx.Param`` state for one seed."""

  spec: ModelSpec

  def __call__(self, key, data):
    del data
    return nnx.state(self.spec.build(key), nnx.Param)


@dataclasses.dataclass(frozen=True)
class _NNXApply:
  """``fn(model, data)`` seen as ``fn(params, data)``: the model is merged from its parameters."""

  spec: ModelSpec
  fn: Callable

  def __call__(self, params, data):
    return self.fn(nnx.merge(self.spec.graphdef, params), data)


@dataclasses.dataclass(frozen=True)
class _MeanOf:
  """The mean of per-example losses: a problem's ``loss`` from its ``example_losses``."""

  example_losses: Callable

  def __call__(self, params, data):
    return jnp.mean(self.example_losses(params, data))


def _leading_size(field: str, data) -> int:
  leaves = jax.tree.leaves(data)
  sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
  if not leaves or None in sizes or len(sizes) != 1 or 0 in sizes:
    raise UserInputError(
      f"{field}: every leaf must have the same, non-zero leading axis of examples; got leading "
      f"sizes {sorted(sizes, key=str)}"
    )
  return sizes.pop()


def nnx_problem(
  model: type,
  data,
  example_loss: Callable,
  *,
  model_args: tuple = (),
  model_kwargs: Mapping | None = None,
  batch_size: int | None = None,
  eval_data=None,
  metrics: Callable | None = None,
  eval_batch_size: int | None = None,
  name: str | None = None,
) -> Problem:
  """Train a flax ``nnx`` model: a :class:`Problem` whose parameters are the model's ``nnx.Param``
  state, initialised per seed by ``model(*model_args, **model_kwargs, rngs=nnx.Rngs(key))``.

  Args:
    model: an ``nnx.Module`` subclass whose constructor takes ``rngs``. Every variable it holds
      must be an ``nnx.Param`` (batch statistics and RNG streams are not swept).
    data: the training set, a pytree of arrays with a leading axis of examples.
    example_loss: ``example_loss(model, batch) -> (B,)``, one loss per example (module-level, so
      sweeps of the same problem share one compiled program).
    model_args, model_kwargs: the constructor's other arguments (hashable: numbers, strings,
      tuples).
    batch_size: examples per optimizer step (None: full batch).
    eval_data: held-out data for ``metrics``.
    metrics: ``metrics(model, batch) -> {name: (B,)}``, per-example values averaged over
      ``eval_data`` at every logged step.
    eval_batch_size: see :class:`Problem`.
    name: shown in reports (default: the class name).

  Returns:
    A :class:`Problem`; :func:`nnx_model` rebuilds a trained model from a sweep's parameters.
  """
  if not (isinstance(model, type) and issubclass(model, nnx.Module)):
    raise UserInputError(f"model: {model!r} is not allowed; must be an nnx.Module subclass")
  kwargs = tuple(sorted(dict(model_kwargs or {}).items()))
  spec = ModelSpec(model, tuple(model_args), kwargs)
  try:
    hash(spec)
  except TypeError:
    raise UserInputError(
      f"model_args, model_kwargs: {tuple(model_args)!r}, {dict(kwargs)!r} are not allowed; the "
      "constructor arguments must be hashable (numbers, strings, tuples)"
    ) from None
  abstract = nnx.eval_shape(lambda: spec.build(jax.random.key(0)))
  _, _, rest = nnx.split(abstract, nnx.Param, ...)
  others = sorted({type(v).__name__ for v in jax.tree.leaves(rest, is_leaf=_is_variable)})
  if others:
    raise UserInputError(
      f"model: {model.__name__} holds variables of type {others}; a sweep trains models whose "
      "variables are all nnx.Param"
    )
  _leading_size("data", data)
  if eval_data is not None:
    _leading_size("eval_data", eval_data)
  example_losses = _NNXApply(spec, example_loss)
  return Problem(
    loss=_MeanOf(example_losses),
    init=_NNXInit(spec),
    data=data,
    example_losses=example_losses,
    name=name or model.__name__,
    batch_size=batch_size,
    eval_data=eval_data,
    metrics=None if metrics is None else _NNXApply(spec, metrics),
    eval_batch_size=eval_batch_size,
  )


def _is_variable(x) -> bool:
  return isinstance(x, nnx.Variable)


def cross_entropy(model, batch):
  """Softmax cross-entropy of ``model(batch["x"])`` against the integer labels ``batch["y"]``."""
  return optax.softmax_cross_entropy_with_integer_labels(model(batch["x"]), batch["y"])


def classification_metrics(model, batch):
  """Per-example ``loss`` (cross-entropy) and ``accuracy``: 1 when the true class's logit is
  strictly larger than every other (an exact tie, e.g. all logits equal, counts as wrong).

  (The same as ``argmax(logits) == y`` except on ties; a max and a gather compile several times
  faster than XLA:CPU's index-tracking arg-max under ``vmap``.)
  """
  logits = model(batch["x"])
  y = batch["y"]
  true = jnp.take_along_axis(logits, y[..., None], axis=-1)[..., 0]
  others = jnp.where(jax.nn.one_hot(y, logits.shape[-1], dtype=bool), -jnp.inf, logits)
  return {
    "loss": optax.softmax_cross_entropy_with_integer_labels(logits, y),
    "accuracy": (true > jnp.max(others, axis=-1)).astype(logits.dtype),
  }


def classification(
  model: type,
  train: Mapping,
  test: Mapping | None = None,
  *,
  batch_size: int | None,
  model_args: tuple = (),
  model_kwargs: Mapping | None = None,
  eval_batch_size: int | None = None,
  name: str | None = None,
) -> Problem:
  """Classify ``train["x"]`` into the integer labels ``train["y"]`` with an nnx model.

  The loss is the softmax cross-entropy; ``test`` (same keys), when given, is scored at every
  logged step: ``loss`` and ``accuracy``. Other arguments as :func:`nnx_problem`.
  """
  for field, d in (("train", train), ("test", test)):
    if d is None:
      continue
    if not isinstance(d, Mapping) or set(d) != {"x", "y"}:
      raise UserInputError(f"{field}: must be a mapping with keys 'x' and 'y'")
    if not np.issubdtype(np.asarray(d["y"]).dtype, np.integer):
      raise UserInputError(f"{field}.y: the labels must be integers (class indices)")
  return nnx_problem(
    model,
    dict(train),
    cross_entropy,
    model_args=model_args,
    model_kwargs=model_kwargs,
    batch_size=batch_size,
    eval_data=None if test is None else dict(test),
    metrics=None if test is None else classification_metrics,
    eval_batch_size=eval_batch_size,
    name=name,
  )


def nnx_model(problem: Problem, params) -> nnx.Module:
  """The trained model of an :func:`nnx_problem` from one grid point's parameters, e.g.
  ``nnx_model(problem, jax.tree.map(lambda p: p[i, j], result.params))``."""
  if not isinstance(problem.init, _NNXInit):
    raise UserInputError("problem: not built by nnx_problem or classification; it has no model")
  return nnx.merge(problem.init.spec.graphdef, params)


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
    iterations: the LP solver's iterations.
  """

  theta: np.ndarray
  value: float
  dual: np.ndarray
  duality_gap: float
  residual: float
  iterations: int


def min_linf_interpolant(X, y) -> LinfSolution:
  """argmin ‖θ‖∞ s.t. Xθ = y, solved exactly as a linear programme (SciPy's HiGHS, float64).

  The LP in the variables (θ, t)::

      minimise t   subject to   Xθ = y,   θ_j − t ≤ 0,   −θ_j − t ≤ 0,   t ≥ 0.

  HiGHS (``scipy.optimize.linprog(method="highs")``) finds an optimal vertex; θ is then re-solved
  on its active set in one linear solve (removing the solver's feasibility tolerance), and the dual
  λ of the rows Xθ = y is recomputed from the KKT conditions and checked: ‖Xᵀλ‖₁ ≤ 1 and
  yᵀλ = ‖θ‖∞ is a certificate of optimality (weak duality: yᵀλ = λᵀXθ ≤ ‖Xᵀλ‖₁‖θ‖∞).

  Raises:
    ValueError: when Xθ = y has no solution.
  """
  X = np.asarray(X, np.float64)
  y = np.asarray(y, np.float64)
  n, d = X.shape
  cost = np.zeros(d + 1)
  cost[d] = 1.0
  eye = np.eye(d)
  ones = np.ones((d, 1))
  import scipy.optimize  # here: importing it takes about 0.2 s, which every sweep would pay

  result = scipy.optimize.linprog(
    cost,
    A_ub=np.block([[eye, -ones], [-eye, -ones]]),
    b_ub=np.zeros(2 * d),
    A_eq=np.concatenate([X, np.zeros((n, 1))], axis=1),
    b_eq=y,
    bounds=[(None, None)] * d + [(0, None)],
    method="highs",
  )
  if result.status == 2:
    raise ValueError("min_linf_interpolant: X theta = y has no solution")
  if result.status != 0:
    raise RuntimeError(f"min_linf_interpolant: HiGHS stopped without an optimum: {result.message}")
  theta, t = result.x[:d], float(result.x[d])
  theta, t = _polish(X, y, theta, t)
  lam = _linf_dual(X, theta, t)
  lam_value = float(y @ lam)
  return LinfSolution(
    theta=theta,
    value=float(np.max(np.abs(theta))),
    dual=lam,
    duality_gap=float(np.max(np.abs(theta)) - lam_value),
    residual=float(np.max(np.abs(X @ theta - y))),
    iterations=int(result.nit),
  )


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
