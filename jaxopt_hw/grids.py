"""Hyperparameter grids for :func:`jaxopt_hw.sweep`: Cartesian products and lists of points.

A :class:`Grid` names float hyperparameters (``learning_rate``, ``momentum``, ``weight_decay``, a
radius, ...) and the values they take at each of its points. The sweep runs every point × seed in
one compiled program, passing the values to the optimizer family through
``optax.inject_hyperparams`` as traced scalars, so a second grid of the same shape with new values
compiles nothing new.

* :func:`product` — every combination: one grid axis per hyperparameter;
* :func:`axis` — one hyperparameter's values (a product of one);
* :func:`points` — an explicit list of points (one grid axis, ``"point"``);
* :func:`quasi_random` — ``n`` points of a scrambled Halton sequence over given ranges, the way
  AlgoPerf samples its tuning trials.

Example::

    from jaxopt_hw import grids

    grids.product(learning_rate=[0.01, 0.1], momentum=[0.0, 0.9])  # axes (learning_rate, momentum)
    grids.points(learning_rate=[0.01, 0.1], weight_decay=[0.0, 1e-4])  # 2 points, axis "point"
    grids.quasi_random(16, learning_rate=(1e-4, 1e-1, "log"), b1=(0.8, 0.99))
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from jaxopt_hw.errors import UserInputError

#: The axis of a grid given as a list of points.
POINT_AXIS = "point"

#: Scalings of a :func:`quasi_random` range.
SCALINGS = ("linear", "log")

#: Most points one grid may hold (a bound against typos such as 10**12 points).
MAX_POINTS = 2**24


@dataclasses.dataclass(frozen=True)
class Grid:
  """Points in the space of float hyperparameters.

  Attributes:
    axes: the grid's axes: one per hyperparameter for a product, ``("point",)`` for a list.
    shape: the number of values along each axis.
    values: ``{name: 1-D float64 array}``, the values of each hyperparameter along its axis.
    axis_of: ``{name: axis}``: the axis along which each hyperparameter varies.
  """

  axes: tuple[str, ...]
  shape: tuple[int, ...]
  values: dict
  axis_of: dict

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(self.values)

  @property
  def size(self) -> int:
    return math.prod(self.shape)

  def flat(self) -> dict[str, np.ndarray]:
    """``{name: (size,) values}``: each hyperparameter at every point, in row-major order."""
    if len(self.axes) == 1:
      return dict(self.values)
    out = {}
    for name, v in self.values.items():
      axis = self.axes.index(self.axis_of[name])
      shape = [1] * len(self.axes)
      shape[axis] = len(v)
      out[name] = np.broadcast_to(v.reshape(shape), self.shape).reshape(-1)
    return out

  def times(self, other: Grid) -> Grid:
    """The Cartesian product of two grids (this grid's axes first)."""
    clash = (set(self.names) & set(other.names)) | (set(self.axes) & set(other.axes))
    if clash:
      raise UserInputError(
        f"hyperparams: {sorted(clash)} given twice; each hyperparameter and axis may appear once"
      )
    _check_size(self.size * other.size)
    return Grid(
      axes=self.axes + other.axes,
      shape=self.shape + other.shape,
      values={**self.values, **other.values},
      axis_of={**self.axis_of, **other.axis_of},
    )


def _check_size(size: int) -> None:
  if size > MAX_POINTS:
    raise UserInputError(
      f"hyperparams: {size} points is not allowed; a grid may hold at most {MAX_POINTS}"
    )


def _is_real(x) -> bool:
  return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _check_name(name) -> None:
  if not (isinstance(name, str) and name.isidentifier()):
    raise UserInputError(
      f"hyperparams: {name!r} is not allowed as a name; names are the optimizer's keyword "
      "arguments (e.g. learning_rate, momentum)"
    )


def as_values(name: str, values, *, positive: bool = False) -> np.ndarray:
  """``values`` as a 1-D float64 array of finite numbers, or a :class:`UserInputError` naming
  ``name``."""
  allowed = "must be a non-empty list of finite numbers" + (" > 0" if positive else "")
  if isinstance(values, np.ndarray) and values.dtype.kind in "fiu" and values.size:
    out = values.astype(np.float64).reshape(-1)  # the fast path: already an array of numbers
    if np.all(np.isfinite(out)) and (not positive or np.all(out > 0)):
      return out
  if isinstance(values, (str, bytes)) or values is None:
    raise UserInputError(f"{name}: {values!r} is not allowed; {allowed}")
  try:
    items = list(np.asarray(values, dtype=object).reshape(-1)) if np.ndim(values) else [values]
  except (TypeError, ValueError):
    raise UserInputError(f"{name}: {values!r} is not allowed; {allowed}") from None
  shown = [x.item() if isinstance(x, np.generic) else x for x in items]
  if not items or not all(_is_real(x) for x in items):
    raise UserInputError(f"{name}: {shown!r} is not allowed; {allowed}")
  out = np.asarray([float(x) for x in items], dtype=np.float64)
  if not np.all(np.isfinite(out)) or (positive and not np.all(out > 0)):
    raise UserInputError(f"{name}: {shown!r} is not allowed; {allowed}")
  return out


def _values(name: str, values, field: str | None = None) -> np.ndarray:
  """Hyperparameter ``name``'s values, errors naming ``field`` (default ``hyperparams.<name>``);
  a learning rate must be positive wherever it is swept."""
  return as_values(field or f"hyperparams.{name}", values, positive=name == "learning_rate")


def axis(name: str, values, *, field: str | None = None) -> Grid:
  """``product(name=values)``: a grid of one hyperparameter, its errors naming ``field`` (default
  ``hyperparams.<name>``)."""
  _check_name(name)
  return _product({name: _values(name, values, field)})


def product(**values) -> Grid:
  """Every combination of the given values: one grid axis per hyperparameter, in argument order.

  Example: ``product(learning_rate=[0.01, 0.1, 1.0], momentum=[0.0, 0.9])`` has shape (3, 2).
  """
  if not values:
    raise UserInputError("hyperparams: an empty grid is not allowed; name at least one")
  for name in values:
    _check_name(name)
  return _product({name: _values(name, v) for name, v in values.items()})


def _product(arrays: dict[str, np.ndarray]) -> Grid:
  shape = tuple(len(v) for v in arrays.values())
  _check_size(math.prod(shape))
  return Grid(axes=tuple(arrays), shape=shape, values=arrays, axis_of={n: n for n in arrays})


def points(**columns) -> Grid:
  """An explicit list of points: ``columns[name][i]`` is the value of ``name`` at point ``i``.

  Example: ``points(learning_rate=[0.01, 0.1], weight_decay=[1e-4, 0.0])`` is two points.
  """
  if not columns:
    raise UserInputError("hyperparams: an empty grid is not allowed; name at least one")
  for name in columns:
    _check_name(name)
  arrays = {name: _values(name, v) for name, v in columns.items()}
  lengths = {name: len(v) for name, v in arrays.items()}
  if len(set(lengths.values())) != 1:
    raise UserInputError(
      f"hyperparams: columns of different lengths {lengths} are not allowed; every hyperparameter "
      "needs one value per point"
    )
  n = next(iter(lengths.values()))
  _check_size(n)
  return Grid(
    axes=(POINT_AXIS,), shape=(n,), values=arrays, axis_of={name: POINT_AXIS for name in arrays}
  )


def quasi_random(n: int, *, seed: int = 0, **ranges) -> Grid:
  """``n`` points of a scrambled Halton sequence over the given ranges (a list of points).

  Each range is ``(low, high)`` (uniform) or ``(low, high, "log")`` (log-uniform, low > 0). The
  sequence covers the box more evenly than independent random draws; this is how AlgoPerf samples
  its tuning trials (mlcommons/algorithmic-efficiency, ``algoperf/halton.py``, after Bousquet et
  al., "Critical Hyper-Parameters: No Random, No Cry", arXiv:1706.03200). The Halton sequence is
  SciPy's (``scipy.stats.qmc.Halton``, scrambled with ``seed``), so a seed reproduces the points.
  """
  if not (isinstance(n, numbers.Integral) and not isinstance(n, bool) and 1 <= n <= MAX_POINTS):
    raise UserInputError(f"n: {n!r} is not allowed; must be an integer from 1 to {MAX_POINTS}")
  if not (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0):
    raise UserInputError(f"seed: {seed!r} is not allowed; must be an integer >= 0")
  if not ranges:
    raise UserInputError("hyperparams: an empty grid is not allowed; name at least one range")
  bounds = {}
  for name, r in ranges.items():
    _check_name(name)
    field = f"hyperparams.{name}"
    form = "(low, high) or (low, high, 'log')"
    if isinstance(r, (str, bytes)) or not isinstance(r, (tuple, list)) or len(r) not in (2, 3):
      raise UserInputError(f"{field}: {r!r} is not allowed; must be {form}")
    scaling = r[2] if len(r) == 3 else "linear"
    if scaling not in SCALINGS:
      raise UserInputError(f"{field}: scaling {scaling!r} is not allowed; allowed: linear, log")
    low, high = as_values(field, list(r[:2]))
    if not low < high or (scaling == "log" and low <= 0):
      rule = "0 < low < high" if scaling == "log" else "low < high"
      raise UserInputError(f"{field}: {r!r} is not allowed; must be {form} with {rule}")
    bounds[name] = (low, high, scaling)
  import scipy.stats  # here: importing it takes about 0.6 s, which every sweep would pay

  u = scipy.stats.qmc.Halton(d=len(bounds), scramble=True, seed=int(seed)).random(int(n))
  columns = {}
  for j, (name, (low, high, scaling)) in enumerate(bounds.items()):
    if scaling == "log":  # low·exp(u·log(high/low)), as AlgoPerf's halton.py scales log ranges
      v = low * np.exp(u[:, j] * math.log(high / low))
    else:
      v = low + u[:, j] * (high - low)
    columns[name] = v
  return points(**columns)
