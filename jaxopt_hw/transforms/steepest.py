r"""Steepest descent under a norm, as an optax ``GradientTransformation``.

One rule covers gradient descent (ℓ2), sign descent (ℓ∞), greedy coordinate descent (ℓ1), ℓp
descent, preconditioned gradient descent (Mahalanobis) and orthogonalised, Muon-like updates
(spectral): the update is the minimiser of the linearised loss plus a price on the step's size, with
the price measured in the chosen norm. The norms come from :mod:`jaxopt_hw.duality`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxopt_hw import duality
from jaxopt_hw.errors import UserInputError, unknown_choice
from jaxopt_hw.names import ALL_NORMS, AUTO, FORMS, NON_MATRIX_NORMS
from jaxopt_hw.validation import check_learning_rate


def _paths(tree) -> list[tuple[str, Any]]:
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return [(jax.tree_util.keystr(path) or "<root>", leaf) for path, leaf in leaves]


def _is_spec(x) -> bool:
  return isinstance(x, (str, duality.Norm))


class NormsOf:
  """Per-leaf norms given as a function of the whole pytree: ``fn(tree)`` returns a pytree of
  :class:`jaxopt_hw.duality.Norm` with ``tree``'s structure (empty nodes such as optax's
  ``MaskedNode`` where ``tree`` has them). The aliases use it where the norm of a leaf depends on
  a tree-level choice (``muon``'s dimension numbers)."""

  def __init__(self, fn):
    self.fn = fn


class _Plan:
  """How one update is computed: which norm measures which part of the pytree.

  Two modes: ``flat`` (one vector norm on the whole pytree, flattened) and per-leaf (a norm for
  every leaf; the pytree is measured by the largest of the leaves' norms — the modular norm with
  unit weights — unless ``per_leaf=True`` makes every leaf its own problem).
  """

  def __init__(
    self,
    norm,
    *,
    form,
    per_leaf,
    p,
    M,
    spectral_method,
    ns_steps,
    ns_coefficients="cubic",
    non_matrix=None,
  ):
    if form not in FORMS:
      raise unknown_choice("form", form, FORMS)
    if not isinstance(per_leaf, bool):
      raise UserInputError(f"per_leaf: {per_leaf!r} is not allowed; allowed: true or false")
    self.form = form
    self.per_leaf = per_leaf
    self.p = p
    self.spectral = dict(
      spectral_method=spectral_method, ns_steps=ns_steps, ns_coefficients=ns_coefficients
    )
    self.non_matrix = None
    self.norm = None  # one norm for every leaf (or for the flattened pytree)
    self.norm_tree = None  # per_leaf Mahalanobis: one norm per leaf
    self.specs = None  # "auto", a callable (path, leaf) -> spec, a pytree of specs, or NormsOf
    if (
      isinstance(norm, NormsOf)
      or (isinstance(norm, str) and norm == AUTO)
      or (
        norm is not None
        and not isinstance(norm, (str, duality.Norm))
        and (callable(norm) or _is_pytree(norm))
      )
    ):
      if non_matrix is not None:
        raise UserInputError(
          "non_matrix: not used with a norm per leaf (give every leaf its norm, or 'auto')"
        )
      if M is not None:
        raise UserInputError(
          "M: give a per-leaf Mahalanobis norm as get_norm('mahalanobis', M=...)"
        )
      if isinstance(norm, str):
        # check the spectral settings once, here, rather than at the first update
        duality.get_norm("spectral", **self.spectral)
      self.specs = norm
      return
    if isinstance(norm, duality.Norm):
      if p is not None or M is not None:
        raise UserInputError("p, M: give them to get_norm, not alongside a Norm object")
      self.norm = norm
    else:
      if not isinstance(norm, str) or norm not in ALL_NORMS:
        raise unknown_choice("norm", norm, ALL_NORMS + (AUTO,))
      if (
        norm == "mahalanobis"
        and per_leaf
        and M is not None
        and not isinstance(M, (np.ndarray, jax.Array))
      ):
        # per_leaf: a pytree of M's, one per parameter leaf
        self.norm_tree = jax.tree.map(duality.MahalanobisNorm, M)
        self.norm = next(
          iter(jax.tree.leaves(self.norm_tree, is_leaf=lambda x: isinstance(x, duality.Norm)))
        )
      else:
        self.norm = duality.get_norm(
          norm,
          p=None if non_matrix is not None and norm != "lp" else p,
          M=M,
          **(self.spectral if norm in _SPECTRAL else {}),
        )
    matrix = isinstance(self.norm, duality.MatrixNorm) or (
      isinstance(self.norm, duality.ScaledNorm) and isinstance(self.norm.norm, duality.MatrixNorm)
    )
    if non_matrix is not None:
      if not matrix:
        raise UserInputError(
          f"non_matrix: only norm 'spectral' (or another matrix norm: rms_spectral, col_l2, "
          f"row_l2) takes non_matrix (norm is {self.norm.name!r})"
        )
      if non_matrix not in NON_MATRIX_NORMS:
        raise unknown_choice("non_matrix", non_matrix, NON_MATRIX_NORMS)
      if non_matrix == "lp" and p is None:
        raise UserInputError("p: non_matrix='lp' needs p with 1 < p < inf")
      self.non_matrix = duality.get_norm(non_matrix, p=p if non_matrix == "lp" else None)
    elif matrix and p is not None:
      raise UserInputError(f"p: norm {self.norm.name!r} uses p only with non_matrix='lp'")
    self.leafwise = self.norm.leafwise or per_leaf or self.norm_tree is not None

  # -- which norm measures which leaf
  def _resolve(self, spec, path, leaf) -> duality.Norm:
    if isinstance(spec, duality.Norm):
      return spec
    if isinstance(spec, str) and spec == AUTO:
      return duality.auto_norm(path, leaf, **self.spectral)
    if isinstance(spec, str) and spec in ALL_NORMS:
      return duality.get_norm(
        spec, p=self.p if spec == "lp" else None, **(self.spectral if spec in _SPECTRAL else {})
      )
    where = jax.tree_util.keystr(tuple(path)) or "<root>"
    raise UserInputError(
      f"norm: the norm of leaf {where} is {spec!r}; allowed: a norm name "
      f"({', '.join(ALL_NORMS)}), {AUTO!r} or a jaxopt_hw.duality.Norm"
    )

  def leaf_norms(self, tree) -> list[duality.Norm]:
    """One norm per leaf of ``tree``, in ``jax.tree.leaves`` order."""
    with_paths = jax.tree_util.tree_flatten_with_path(tree)[0]
    if self.specs is None:
      if self.norm_tree is not None:
        return jax.tree.leaves(self.norm_tree, is_leaf=lambda x: isinstance(x, duality.Norm))
      return [
        self.non_matrix
        if self.non_matrix is not None and not self.norm.accepts(jnp.shape(leaf))
        else self.norm
        for _, leaf in with_paths
      ]
    if isinstance(self.specs, NormsOf):
      norms = jax.tree.leaves(self.specs.fn(tree), is_leaf=lambda x: isinstance(x, duality.Norm))
      return norms
    if isinstance(self.specs, str):
      return [self._resolve(self.specs, path, leaf) for path, leaf in with_paths]
    if callable(self.specs):
      return [self._resolve(self.specs(path, leaf), path, leaf) for path, leaf in with_paths]
    # a pytree of specs, matched to the leaves by key path (a spec on a prefix of a leaf's path
    # covers it), so a dict of specs fits a flax nnx.State and its Variables' ".value" nodes
    specs = [
      (_keys(path), spec)
      for path, spec in jax.tree_util.tree_flatten_with_path(self.specs, is_leaf=_is_spec)[0]
    ]
    used = set()
    out = []
    for path, leaf in with_paths:
      keys = _keys(path)
      matches = [(len(k), i) for i, (k, _) in enumerate(specs) if keys[: len(k)] == k]
      if not matches:
        raise UserInputError(
          f"norm: no norm given for leaf {jax.tree_util.keystr(tuple(path)) or '<root>'}; the "
          "pytree of norms must cover every parameter (or give a callable or 'auto')"
        )
      i = max(matches)[1]
      used.add(i)
      out.append(self._resolve(specs[i][1], path, leaf))
    unused = [k for i, (k, _) in enumerate(specs) if i not in used]
    if unused and with_paths:
      raise UserInputError(
        f"norm: the pytree of norms names {'/'.join(map(str, unused[0]))}, which is not a parameter"
      )
    return out

  # -- checks that need the parameters' shapes (run at init and again at trace time of update)
  def check(self, tree) -> None:
    if self.specs is not None:
      for (path, leaf), norm in zip(_paths(tree), self.leaf_norms(tree)):
        if not norm.accepts(jnp.shape(leaf)):
          raise UserInputError(
            f"norm: leaf {path} has shape {tuple(jnp.shape(leaf))}, which norm {norm.name!r} "
            "cannot measure (matrix norms need 2-D arrays or dimension_numbers)"
          )
      return
    if self.norm.leafwise and self.non_matrix is None:
      for path, leaf in _paths(tree):
        if not self.norm.accepts(jnp.shape(leaf)):
          raise UserInputError(
            f"norm: {self.norm.name!r} steps 2-D leaves, but leaf {path} has shape "
            f"{tuple(jnp.shape(leaf))}; pass non_matrix='l2' "
            "(or 'linf', 'l1', 'lp') to step such leaves in that norm, "
            "or send them to another optimizer with optax.partition"
          )
    if isinstance(self.norm, duality.MahalanobisNorm):
      if self.norm_tree is not None:
        if jax.tree.structure(tree) != jax.tree.structure(
          self.norm_tree, is_leaf=lambda x: isinstance(x, duality.Norm)
        ):
          raise UserInputError(
            "M: with per_leaf=True, M must be a pytree with the parameters' structure "
            "(one M per leaf)"
          )
        for (path, leaf), n in zip(
          _paths(tree),
          jax.tree.leaves(self.norm_tree, is_leaf=lambda x: isinstance(x, duality.Norm)),
        ):
          if jnp.size(leaf) != n.size:
            raise UserInputError(
              f"M: the M of leaf {path} has size {n.size} but the leaf has {jnp.size(leaf)} entries"
            )
      elif self.per_leaf:
        for path, leaf in _paths(tree):
          if jnp.size(leaf) != self.norm.size:
            raise UserInputError(
              f"M: has size {self.norm.size} but leaf {path} has {jnp.size(leaf)} entries; "
              "with per_leaf=True give one M per leaf (a pytree like the parameters)"
            )
      else:
        total = sum(int(jnp.size(leaf)) for leaf in jax.tree.leaves(tree))
        if total != self.norm.size:
          raise UserInputError(
            f"M: has size {self.norm.size} but the parameters have {total} entries in all; "
            "M applies to the flattened parameter vector"
          )

  # -- the step
  def direction(self, grads):
    """The step for α = 1 with the sign flipped (:func:`jaxopt_hw.duality.unit_step`), per leaf
    dtype: ½‖g‖*·d(g) for the penalty form, d(g) for the ball."""
    self.check(grads)
    # integer gradients are promoted as optax promotes them (ravel_pytree would cast back to int)
    grads = jax.tree.map(lambda g: jnp.asarray(g, duality.float_dtype(jnp.result_type(g))), grads)
    if self.specs is not None or self.leafwise:
      leaves, treedef = jax.tree.flatten(grads)
      if not leaves:
        return grads
      pairs = [n.dual_and_map(g) for n, g in zip(self.leaf_norms(grads), leaves)]
      if self.per_leaf:
        steps = [duality.unit_step(d, m, self.form) for d, m in pairs]
      else:
        # The pytree as one point of the product space with norm max_l ‖W_l‖_l (Bernstein &
        # Newhouse's modular norm with unit weights): dual = Σ_l ‖G_l‖*_l, map = per-leaf maps.
        dual = sum(d for d, _ in pairs)
        steps = [duality.unit_step(dual.astype(m.dtype), m, self.form) for _, m in pairs]
      return jax.tree.unflatten(treedef, [s.astype(g.dtype) for s, g in zip(steps, leaves)])
    flat, unravel = ravel_pytree(grads)
    if flat.size == 0:
      return grads
    dual, direction = self.norm.dual_and_map(flat)
    return unravel(duality.unit_step(dual, direction, self.form).astype(flat.dtype))


_SPECTRAL = ("spectral", "rms_spectral")


def _keys(path) -> tuple:
  """A key path as plain names and indices, without the ``.value`` of flax Variables."""
  out = []
  for key in path:
    if isinstance(key, jax.tree_util.DictKey):
      out.append(key.key)
    elif isinstance(key, jax.tree_util.GetAttrKey):
      if key.name not in ("value", "raw_value"):
        out.append(key.name)
    elif isinstance(key, jax.tree_util.SequenceKey):
      out.append(key.idx)
    elif isinstance(key, jax.tree_util.FlattenedIndexKey):
      out.append(key.key)
    else:
      out.append(str(key))
  return tuple(out)


def _is_pytree(x) -> bool:
  """A container JAX flattens (dict, list, tuple, flax State, ...), not a bare leaf."""
  leaves, treedef = jax.tree.flatten(x, is_leaf=_is_spec)
  return not (treedef.num_leaves == 1 and treedef.num_nodes == 1)


def scale_by_steepest_descent(
  norm: str | duality.Norm | Any,
  *,
  form: str = "penalty",
  per_leaf: bool = False,
  p: float | None = None,
  M: Any = None,
  spectral_method: str = "svd",
  ns_steps: int = duality.DEFAULT_NS_STEPS,
  non_matrix: str | None = None,
  ns_coefficients="cubic",
) -> optax.GradientTransformationExtraArgs:
  r"""Rescale updates to the steepest-descent direction under a norm (no learning rate).

  With g the incoming updates, the output is the steepest-descent step for α = 1 with its sign
  flipped, the way optax's ``scale_by_*`` transforms return a direction that
  ``optax.scale_by_learning_rate`` turns into a step:

  .. math::

    \tfrac12\,\|g\|_*\, d(g) \quad\text{(penalty)}, \qquad d(g) \quad\text{(ball)},

  so that chaining with ``optax.scale_by_learning_rate(α)`` gives exactly the steps of
  :func:`steepest_descent`: −(α/2)‖g‖*·d(g) = argmin_Δ gᵀΔ + (1/α)‖Δ‖² and −α·d(g) =
  argmin_{‖Δ‖≤α} gᵀΔ. Arguments are those of :func:`steepest_descent` without the learning rate.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs` (stateless; ``update`` accepts and ignores
    extra keyword arguments).

  Example:
    >>> import jax.numpy as jnp, optax
    >>> tx = optax.chain(scale_by_steepest_descent("linf", form="ball"),
    ...                  optax.scale_by_learning_rate(0.1))
    >>> g = jnp.array([2.0, -0.5, 0.0], jnp.float32)
    >>> tx.update(g, tx.init(g))[0]  # -0.1 * sign(g)
    Array([-0.1,  0.1, -0. ], dtype=float32)
  """
  plan = _Plan(
    norm,
    form=form,
    per_leaf=per_leaf,
    p=p,
    M=M,
    spectral_method=spectral_method,
    ns_steps=ns_steps,
    non_matrix=non_matrix,
    ns_coefficients=ns_coefficients,
  )

  def init_fn(params):
    plan.check(params)
    return optax.EmptyState()

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    return plan.direction(updates), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def steepest_descent(
  learning_rate: optax.ScalarOrSchedule,
  norm: str | duality.Norm | Any,
  *,
  form: str = "penalty",
  per_leaf: bool = False,
  p: float | None = None,
  M: Any = None,
  spectral_method: str = "svd",
  ns_steps: int = duality.DEFAULT_NS_STEPS,
  non_matrix: str | None = None,
  ns_coefficients="cubic",
) -> optax.GradientTransformationExtraArgs:
  r"""Steepest descent under a norm: the step that best improves the linearised loss.

  With g the incoming updates (the gradient) and α the learning rate, the update is, for
  ``form="penalty"`` (homework Q1, α kept exactly: the penalty is (1/α)‖Δ‖², not 1/(2α)),

  .. math::

    u = \operatorname{argmin}_Δ\; g^⊤Δ + \tfrac{1}{α}\|Δ\|^2 = -\tfrac{α}{2}\,\|g\|_*\,d(g),

  and for ``form="ball"``

  .. math::

    u = \operatorname{argmin}_{\|Δ\| ≤ α}\; g^⊤Δ = -α\, d(g),

  where ‖·‖* is the dual norm and d(g) = argmax_{‖t‖≤1} ⟨g, t⟩ the dual map
  (:mod:`jaxopt_hw.duality`). The updates *are* the step: apply them with
  ``optax.apply_updates`` (no extra ``optax.scale(-lr)``). What the rule becomes:

  ============  =====================================  ===========================================
  norm          penalty                                ball
  ============  =====================================  ===========================================
  l2            −(α/2)·g: gradient descent             −α·g/‖g‖₂: normalised gradient descent
  linf          −(α/2)·‖g‖₁·sign(g)                    −α·sign(g): sign descent
  l1            −(α/2)·‖g‖∞·sign(g_i)e_i, i=argmax|g|  −α·sign(g_i)e_i: greedy coordinate descent
  lp            −(α/2)·‖g‖_q^{2−q}·sign(g)|g|^{q−1}    −α·sign(g)|g|^{q−1}/‖g‖_q^{q−1}
  mahalanobis   −(α/2)·M⁻¹g: preconditioned GD         −α·M⁻¹g/‖g‖_{M⁻¹}
  spectral      −(α/2)·‖G‖_nuc·UVᵀ                     −α·UVᵀ: orthogonalised (Muon-like) update
  ============  =====================================  ===========================================

  **A norm per leaf.** ``norm`` may also be a pytree of norms shaped like the parameters (or a
  prefix of them), a callable ``(path, leaf) -> norm`` (``path`` a JAX key path), or ``"auto"``
  (:func:`jaxopt_hw.duality.auto_norm`: RMS→RMS spectral for dense and conv kernels, row-wise ℓ2
  for flax embeddings, RMS for biases and scales); each norm is a name (the homework's or a layer
  norm: ``"rms_spectral"``, ``"col_l2"``, ``"row_l2"``, ``"rms"``, ``"sign"``), ``"auto"``, or a
  :class:`jaxopt_hw.duality.Norm` — build one with ``get_norm(name, radius=ρ)`` to give the leaf
  a ball of radius ρ. The pytree is then measured by the largest of its leaves' norms
  (``per_leaf=False``: the ball step is −α·ρ_l·d_l(g_l) on every leaf, the penalty step is scaled
  by Σ_l ρ_l‖g_l‖*_l), or every leaf is its own problem (``per_leaf=True``).

  **Pytrees.** Vector norms (l2, linf, l1, lp, mahalanobis) see the whole pytree as one flat vector
  (``jax.flatten_util.ravel_pytree``; each leaf keeps its dtype) unless ``per_leaf=True``, when
  every leaf takes its own step in its own norm. Mahalanobis: ``M`` acts on the flattened parameter
  vector (size = total number of entries); with ``per_leaf=True`` give a pytree of M's, one per
  leaf. The spectral norm works per 2-D leaf: with ``per_leaf=False`` the pytree is measured by the
  largest of the leaves' norms (the modular norm with unit weights), so the ball step is −α·U_lV_lᵀ
  on every matrix and the penalty step is scaled by the sum of the leaves' nuclear norms; with
  ``per_leaf=True`` each matrix is its own problem, −(α/2)‖G_l‖_nuc·U_lV_lᵀ. As in
  ``optax.contrib.muon``, leaves that are not 2-D (biases, scalars, conv kernels) are not
  orthogonalised: by default they raise a ``UserInputError`` at ``init``; with ``non_matrix="l2"``
  (or ``"linf"``, ``"l1"``, ``"lp"``) they are stepped in that vector norm, each leaf as one block.
  To give them a different optimizer altogether, use ``optax.partition``.

  **Non-unique minimisers** (documented in :mod:`jaxopt_hw.duality`): ℓ1 splits the step equally
  among coordinates tied for the largest |g_i|; ℓ∞ leaves coordinates with g_i = 0 at 0; spectral
  uses U_rV_rᵀ over the non-zero singular values. A zero gradient gives a zero update, never NaN;
  a NaN or inf in the gradient gives NaN in the update (as optax's rules propagate NaN), at once.

  **Dtypes.** Updates have the dtype of each gradient leaf; bfloat16/float16 are computed in
  float32.

  Args:
    learning_rate: α > 0, a float or an optax schedule (then the state counts steps). Under
      ``optax.inject_hyperparams`` it may be a traced array (e.g. vmapped over learning rates).
    norm: one of ``"l2"``, ``"linf"``, ``"l1"``, ``"lp"``, ``"mahalanobis"``, ``"spectral"``, a
      layer norm (``"rms_spectral"``, ``"col_l2"``, ``"row_l2"``, ``"rms"``, ``"sign"``), a
      :class:`jaxopt_hw.duality.Norm` object (a user-defined norm), or a norm per leaf (above).
    form: ``"penalty"`` (default) or ``"ball"``.
    per_leaf: step every leaf separately instead of the pytree as one vector.
    p: the exponent for ``norm="lp"`` (or ``non_matrix="lp"``), 1 < p < ∞.
    M: for ``norm="mahalanobis"``: a symmetric positive-definite matrix or a positive diagonal.
    spectral_method: ``"svd"`` (exact UVᵀ, default) or ``"newton_schulz"`` (matrix products only;
      see :func:`jaxopt_hw.orthogonalize`).
    ns_steps: Newton–Schulz steps.
    non_matrix: with ``norm="spectral"`` (or another matrix norm), the vector norm for leaves
      that are not 2-D.
    ns_coefficients: the Newton–Schulz schedule: ``"cubic"`` (default, the classic iteration,
      which converges to UVᵀ), ``"polar_express"``, ``"jordan"``, ``"dion"``, one row (a, b, c)
      or a (k, 3) table (:func:`jaxopt_hw.orthogonalize`).

  Built as optax builds its aliases: ``optax.chain(scale_by_steepest_descent(norm, ...),
  optax.scale_by_learning_rate(learning_rate))``.

  Returns:
    An :class:`optax.GradientTransformationExtraArgs`. Under ``optax.inject_hyperparams`` the
    string arguments stay static by themselves; with ``spectral_method="newton_schulz"`` pass
    ``static_args=("ns_steps",)``.

  Raises:
    UserInputError: unknown norm or form, non-positive constant learning rate, p outside (1, ∞),
      M not positive definite; at ``init``: shapes that do not fit the norm.

  Example:
    >>> import jax.numpy as jnp, optax
    >>> from jaxopt_hw.transforms import steepest_descent
    >>> tx = optax.chain(optax.clip_by_global_norm(1.0),
    ...                  steepest_descent(optax.cosine_decay_schedule(0.1, 100), "linf",
    ...                                   form="ball"))
    >>> params = {"w": jnp.ones((2, 3), jnp.float32)}
    >>> state = tx.init(params)
    >>> grads = {"w": jnp.array([[1., -2., 0.], [3., 0., -1.]], jnp.float32)}
    >>> updates, state = tx.update(grads, state)
    >>> optax.apply_updates(params, updates)["w"]
    Array([[0.9, 1.1, 1. ],
           [0.9, 1. , 1.1]], dtype=float32)

  References:
    Bernstein & Newhouse, "Old Optimizer, New Norm: An Anthology", arXiv:2409.20325 (2024).
  """
  check_learning_rate(learning_rate)
  return optax.chain(
    scale_by_steepest_descent(
      norm,
      form=form,
      per_leaf=per_leaf,
      p=p,
      M=M,
      spectral_method=spectral_method,
      ns_steps=ns_steps,
      non_matrix=non_matrix,
      ns_coefficients=ns_coefficients,
    ),
    optax.scale_by_learning_rate(learning_rate),
  )


def steepest_step(grads, learning_rate, norm, **kwargs):
  """One update of :func:`steepest_descent` without optax state: same arguments, any pytree."""
  if callable(learning_rate):
    raise UserInputError(
      "learning_rate: steepest_step takes a number; use steepest_descent for schedules"
    )
  check_learning_rate(learning_rate)
  tx = scale_by_steepest_descent(norm, **kwargs)
  direction, _ = tx.update(grads, optax.EmptyState())
  return jax.tree.map(lambda d: (-learning_rate * d).astype(d.dtype), direction)
