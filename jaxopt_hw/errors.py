"""Errors a user can cause, reported as one line that names the field, the value and what is
allowed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserInputError(ValueError):
  """Bad input from a user (a config typo, an unknown norm, a non-positive learning rate, ...).

  The message is one line: the field, the value and what is allowed. The CLI prints it as
  ``error: <message>`` and exits with status 2, without a traceback.
  """


def suggest(value: str, allowed: Iterable[str]) -> str | None:
  """The allowed name closest to ``value`` (the same name in another case first), or None when
  nothing is close."""
  allowed = [str(a) for a in allowed]
  same_case = [a for a in allowed if a.lower() == str(value).lower()]
  matches = same_case or difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.6)
  return matches[0] if matches else None


def did_you_mean(value: str, allowed: Iterable[str]) -> str:
  """``" (did you mean 'x'?)"`` for the closest allowed name, or ``""`` when nothing is close."""
  hint = suggest(value, allowed)
  return f" (did you mean {hint!r}?)" if hint else ""


def unknown_choice(
  field: str, value, allowed: Iterable[str], what: str = "allowed"
) -> UserInputError:
  """A ``UserInputError`` for a name outside ``allowed``, with a "did you mean" when one is
  close."""
  allowed = [str(a) for a in allowed]
  return UserInputError(
    f"{field}: {value!r} is not valid{did_you_mean(value, allowed)}; {what}: {', '.join(allowed)}"
  )
