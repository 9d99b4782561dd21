"""Assertions for your own tests: "every grid point of this sweep converged to θ*".

Example::

    from jaxopt_hw import problems, sweep, testing
    import numpy as np, optax, jax.numpy as jnp

    a = np.array(problems.HOMEWORK_A)
    result = sweep(
        problems.homework_problem(), optax.sgd, [0.1, 0.5, 0.9], steps=2000, dtype=jnp.float64
    )
    # SGD from 0 stays in span(a), so it converges to the min-norm solution a/‖a‖².
    testing.assert_converged_to(result, a / (a @ a), atol=1e-10)

The helper's own frames are hidden from pytest's tracebacks (``__tracebackhide__``), so a failure
shows your test's line and the message. An ``expected`` whose pytree structure differs from the
parameters' (a dict against an array, other keys) is refused with a ``ValueError`` naming both.

A failure lists every grid point that missed, by how much and where (here with
``learning_rates=[0.001, 0.5, 1.2]`` and ``steps=50``; its first line is wrapped here)::

    AssertionError: 2 of 3 grid points did not converge to the expected parameters
        (|theta - expected| <= 1e-06 + 0*|expected|):
      learning_rate=0.001, seed=0: max |error| 0.89 at [0] (got 0.0952068, expected 0.990001)
      learning_rate=1.2, seed=0: diverged at step 27
    3 points checked; the 1 that passed are within 1.7e-18.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

__all__ = ["assert_converged_to", "max_errors"]


def _flatten(tree, grid_ndim: int):
  """(grid..., total) array of every leaf's entries, and a label per entry (e.g. ``[1]``,
  ``['w'][0, 2]``)."""
  __tracebackhide__ = True
  leaves_with_path = jax.tree_util.tree_flatten_with_path(tree)[0]
  flats, labels = [], []
  for path, leaf in leaves_with_path:
    leaf = np.asarray(leaf)
    grid, shape = leaf.shape[:grid_ndim], leaf.shape[grid_ndim:]
    flats.append(leaf.reshape(grid + (-1,)))
    prefix = jax.tree_util.keystr(path)
    for idx in np.ndindex(*shape) if shape else [()]:
      labels.append(prefix + (f"[{', '.join(map(str, idx))}]" if idx else ""))
  return np.concatenate(flats, axis=-1), labels


def _compare(params, expected, grid_ndim: int):
  """(|params − expected|, params, expected) as (grid..., entries) float64 arrays, and entry labels.

  ``expected`` is the parameters of one point (broadcast over the grid) or carries the grid axes.
  """
  __tracebackhide__ = True
  got, labels = _flatten(params, grid_ndim)
  par_leaves = jax.tree.leaves(params)
  if len(par_leaves) == 1 and _leaf_paths(params) == [""] and isinstance(expected, (list, tuple)):
    expected = np.asarray(expected, np.float64)  # a list of numbers for array parameters
  exp_leaves = jax.tree.leaves(expected)
  if _leaf_paths(expected) != _leaf_paths(params):
    raise ValueError(
      "expected does not have the pytree structure of the parameters; expected: "
      f"{_structure(expected)}; parameters: {_structure(params)}"
    )
  exp_flat = []
  for e, p in zip(exp_leaves, par_leaves):
    e = np.asarray(e, np.float64)
    point_shape = np.shape(p)[grid_ndim:]
    if point_shape and e.shape[-len(point_shape) :] != point_shape:
      raise ValueError(
        f"expected has shape {e.shape}; a grid point's parameters have shape {point_shape}"
      )
    try:
      e = np.broadcast_to(e, np.shape(p))
    except ValueError:
      raise ValueError(
        f"expected has shape {e.shape}; it does not broadcast to the grid's parameters "
        f"{np.shape(p)}"
      ) from None
    exp_flat.append(e.reshape(np.shape(p)[:grid_ndim] + (-1,)))
  exp = np.concatenate(exp_flat, axis=-1)
  return np.abs(got.astype(np.float64) - exp), got.astype(np.float64), exp, labels


def _leaf_paths(tree) -> list[str]:
  """The path of every leaf (``""`` for a tree that is one array), in order."""
  __tracebackhide__ = True
  return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _structure(tree) -> str:
  """A pytree's layout in words: "one array (ndarray)" or "a dict with leaves ['b'], ['w']"."""
  __tracebackhide__ = True
  paths = _leaf_paths(tree)
  if paths == [""]:
    return f"one array ({type(tree).__name__})"
  shown = ", ".join(paths[:8]) + (f", ... ({len(paths)} in all)" if len(paths) > 8 else "")
  return f"a {type(tree).__name__} with leaves {shown or '(none)'}"


def max_errors(result, expected, *, grid_ndim: int | None = None) -> np.ndarray:
  """The largest |θ − expected| of each grid point (float64, grid-shaped; NaN if θ has a NaN).

  ``result`` is a :class:`~jaxopt_hw.sweep.SweepResult` or a pytree with ``grid_ndim`` leading axes.
  """
  __tracebackhide__ = True
  if hasattr(result, "params") and hasattr(result, "axes"):
    params, grid_ndim = result.params, len(result.axes)
  else:
    params = result
  err = _compare(params, expected, grid_ndim)[0]
  return np.where(np.isnan(err).any(axis=-1), np.nan, np.max(err, axis=-1))


def _point_name(index, axes, coords) -> str:
  __tracebackhide__ = True
  parts = []
  for axis, i in zip(axes, index):
    values = coords.get(axis)
    parts.append(
      f"{axis}={values[i]:.6g}"
      if values is not None and axis == "learning_rate"
      else f"{axis}={values[i] if values is not None else i}"
    )
  return ", ".join(parts)


def assert_converged_to(
  result,
  expected,
  *,
  atol: float = 1e-6,
  rtol: float = 0.0,
  axes: Sequence[str] | None = None,
  max_lines: int = 20,
  what: str = "the expected parameters",
) -> None:
  """Assert that every grid point's final parameters equal ``expected`` within tolerance.

  A point passes when it did not diverge and, entry by entry,
  ``|theta − expected| <= atol + rtol·|expected|`` (as ``numpy.isclose``), with no NaN.

  Args:
    result: a :class:`jaxopt_hw.sweep.SweepResult`, or a parameters pytree whose leaves have the
      grid axes first (then pass ``axes``).
    expected: the parameters one point should reach (broadcast over the grid), or arrays that
      broadcast against the grid axes too (e.g. shape (P, 1, 1, d): one θ per problem instance).
    atol, rtol: absolute and relative tolerance.
    axes: names of the grid axes when ``result`` is a plain pytree (default: ``("point",)``).
    max_lines: how many failing points to list (all are counted).
    what: how the message names ``expected``.

  Raises:
    AssertionError: listing each failing point (its learning rate / seed / problem), the largest
      error, at which entry, and the values there; or that it diverged, and at which step.
    ValueError: ``expected`` does not have the parameters' pytree structure or shapes.
  """
  __tracebackhide__ = True  # pytest shows the caller's line, not this helper's source
  if hasattr(result, "params") and hasattr(result, "diverged"):
    params = result.params
    axes = tuple(result.axes)
    diverged = np.asarray(result.diverged)
    diverged_at = np.asarray(result.diverged_at)
    coords = {"learning_rate": np.asarray(result.learning_rates), "seed": np.asarray(result.seeds)}
  else:
    params = result
    axes = tuple(axes or ("point",))
    diverged = None
    diverged_at = None
    coords = {}
  grid_ndim = len(axes)
  err, got, exp, labels = _compare(params, expected, grid_ndim)
  allowed = atol + rtol * np.abs(exp)
  ok_entries = err <= allowed  # NaN compares False
  ok = ok_entries.all(axis=-1)
  if diverged is not None:
    ok &= ~diverged
  if ok.all():
    return
  grid_shape = ok.shape
  total = int(np.prod(grid_shape)) if grid_shape else 1
  bad = [idx for idx in np.ndindex(*grid_shape) if not ok[idx]]
  lines = [
    f"{len(bad)} of {total} grid points did not converge to {what} "
    f"(|theta - expected| <= {atol:g} + {rtol:g}*|expected|):"
  ]
  for idx in bad[:max_lines]:
    name = _point_name(idx, axes, coords)
    if diverged is not None and diverged[idx]:
      lines.append(f"  {name}: diverged at step {int(diverged_at[idx])}")
      continue
    e = err[idx]
    over = np.where(np.isnan(e), np.inf, e - allowed[idx])
    j = int(np.argmax(over))
    worst = "NaN" if np.isnan(e[j]) else f"{e[j]:.2g}"
    lines.append(
      f"  {name}: max |error| {worst} at {labels[j] or 'theta'} "
      f"(got {got[idx][j]:.6g}, expected {exp[idx][j]:.6g})"
    )
  if len(bad) > max_lines:
    lines.append(f"  ... and {len(bad) - max_lines} more")
  passed = total - len(bad)
  if passed:
    worst_pass = float(np.max(err[ok])) if np.any(ok) else 0.0
    lines.append(f"{total} points checked; the {passed} that passed are within {worst_pass:.2g}.")
  else:
    lines.append(f"{total} points checked; none passed.")
  raise AssertionError("\n".join(lines))
