"""Small real data sets that ship inside installed packages: nothing is downloaded.

:func:`digits` is scikit-learn's copy of the UCI optical recognition of handwritten digits test set
(1,797 grey-scale 8×8 images of the digits 0–9, 16 grey levels; ``sklearn.datasets.load_digits``
reads it from the files installed with scikit-learn), split into training and test sets the same
way on every machine.
"""

from __future__ import annotations

import numbers

import numpy as np

from jaxopt_hw.errors import UserInputError

#: Grey levels of the digits images: pixel values are integers 0 … 16.
DIGITS_MAX = 16.0


def _stratified_split(labels: np.ndarray, test_fraction: float, seed: int):
  """(train indices, test indices): per class, a ``seed``-ed permutation of its examples, the first
  round(test_fraction · count) of them for testing; both sorted."""
  rng = np.random.default_rng(seed)
  train, test = [], []
  for c in np.unique(labels):
    idx = rng.permutation(np.flatnonzero(labels == c))
    k = int(round(test_fraction * idx.size))
    test.append(idx[:k])
    train.append(idx[k:])
  return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def digits(
  *, test_fraction: float = 0.2, seed: int = 0, images: bool = False, dtype=np.float32
) -> tuple[dict, dict]:
  """scikit-learn's 8×8 handwritten digits as ``(train, test)``, each ``{"x": ..., "y": ...}``.

  Args:
    test_fraction: the share of each class held out for testing (stratified, so the classes keep
      their proportions).
    seed: the split's seed (NumPy's ``default_rng``): the same split on every machine.
    images: ``x`` as (n, 8, 8, 1) images (for a CNN) instead of (n, 64) vectors.
    dtype: the floating dtype of ``x``; pixels are scaled to [0, 1].

  Returns:
    ``(train, test)``: ``x`` float, ``y`` int32 class labels 0–9. With the defaults 1,438 training
    and 359 test examples.
  """
  if not (isinstance(test_fraction, numbers.Real) and 0 < test_fraction < 1):
    raise UserInputError(
      f"test_fraction: {test_fraction!r} is not allowed; must be a number strictly between 0 and 1"
    )
  if not (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0):
    raise UserInputError(f"seed: {seed!r} is not allowed; must be an integer >= 0")
  # imported here: scikit-learn takes about a second to import, which a refused configuration or
  # `--help` of a command that merely can use the digits should not wait for
  import sklearn.datasets

  bunch = sklearn.datasets.load_digits()
  x = (np.asarray(bunch.data, np.float64) / DIGITS_MAX).astype(dtype)
  if images:
    x = x.reshape(-1, 8, 8, 1)
  y = np.asarray(bunch.target, np.int32)
  train, test = _stratified_split(y, float(test_fraction), int(seed))
  return {"x": x[train], "y": y[train]}, {"x": x[test], "y": y[test]}
