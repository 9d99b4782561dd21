"""Checks of the numbers a user gives a transform or a norm, that let traced values through.

Under ``optax.inject_hyperparams`` (and ``vmap`` over hyper-parameters) a learning rate, an
exponent or a step count arrives as a traced array: its value is unknown when the transform is
built, and nothing inside ``jit`` can raise on data, so a traced value is trusted. A concrete value
is checked, and a bad one is a :class:`~jaxopt_hw.errors.UserInputError` naming the field, the
value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax

from jaxopt_hw.errors import UserInputError


def concrete(value) -> float | None:
  """``float(value)``, or None when ``value`` is traced.

  Raises:
    TypeError, ValueError: ``value`` is not a number (or an array of one element).
  """
  try:
    return float(value)
  except jax.errors.ConcretizationTypeError:
    return None


def check_number(
  field: str,
  value,
  ok: Callable[[float], bool],
  allowed: str,
  *,
  where: str = "",
  hint: Callable[[float], str] = lambda v: "",
) -> float | None:
  """``value`` as a float after checking ``ok(value)``; None when it is traced (trusted).

  Args:
    field: the argument's name, as the message shows it.
    value: what the user gave.
    ok: the condition on a concrete (non-NaN) value.
    allowed: what is allowed, in words (``"a finite number > 0"``).
    where: context after the value (``" for norm 'lp'"``).
    hint: an optional suffix for the message, given the bad value.

  Raises:
    UserInputError: ``"{field}: {value!r} is not allowed{where}; allowed: {allowed}"`` for a bool,
      a non-number, NaN, or a value failing ``ok``.
  """
  message = f"{field}: {value!r} is not allowed{where}; allowed: {allowed}"
  if isinstance(value, bool):
    raise UserInputError(message)
  try:
    number = concrete(value)
  except (TypeError, ValueError):
    raise UserInputError(message) from None
  if number is None:
    return None
  if math.isnan(number) or not ok(number):
    raise UserInputError(message + hint(number))
  return number


def is_count(v: float) -> bool:
  """A whole number >= 1 (a step count)."""
  return math.isfinite(v) and v == int(v) and v >= 1


def check_count(field: str, value, *, traced_hint: str | None = None) -> int | None:
  """``value`` as an int >= 1; a traced value gives None, or with ``traced_hint`` (a count that
  must be concrete, e.g. the length of an unrolled iteration) a UserInputError saying how to
  make it static: ``"{field}: must be a concrete integer; {traced_hint}"``."""
  number = check_number(field, value, is_count, "an integer >= 1")
  if number is None:
    if traced_hint is not None:
      raise UserInputError(f"{field}: must be a concrete integer; {traced_hint}")
    return None
  return int(number)


def check_learning_rate(learning_rate, field: str = "learning_rate") -> None:
  """A learning rate is an optax schedule (any callable), or a finite number > 0."""
  if callable(learning_rate):
    return
  check_number(
    field,
    learning_rate,
    lambda v: math.isfinite(v) and v > 0,
    "a finite number > 0 or an optax schedule",
  )
