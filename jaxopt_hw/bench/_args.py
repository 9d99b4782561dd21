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
