"""Command-line parsing shared by the benchmarks: bad options are one-line UserInputErrors."""

from __future__ import annotations

import argparse

from jaxopt_hw.errors import UserInputError


class Parser(argparse.ArgumentParser):
  """argparse whose errors are one-line UserInputErrors (exit 2, no usage dump)."""

  def error(self, message):
    raise UserInputError(message.removeprefix("argument "))


def positive_int(text: str) -> int:
  """An argparse ``type``: an integer (its range is checked after parsing, naming the flag)."""
  try:
    return int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not allowed; must be an integer >= 1") from None


def check_bounds(args, bounds: dict[str, int]) -> None:
  """Each ``args.<name>`` from 1 to ``bounds[name]``, or a UserInputError naming its flag."""
  for name, most in bounds.items():
    value = getattr(args, name)
    flag = f"--{name.replace('_', '-')}"
    if value < 1:
      raise UserInputError(f"{flag}: {value} is not allowed; must be >= 1")
    if value > most:
      raise UserInputError(f"{flag}: {value} is not allowed; must be <= {most}")
