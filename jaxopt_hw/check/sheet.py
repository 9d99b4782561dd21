"""The answer sheet: a TOML file of claimed answers, checked for shape before anything is graded.

A sheet holds any subset of these items; only those present are graded::

    title = "my answers"          # optional

    [q1.penalty]                  # u = argmin_D  g.D + (1/alpha)*||D||^2
    l2 = "-alpha/2 * g"           # norms: l2, linf, l1, lp, mahalanobis, spectral
    [q1.ball]                     # u = argmin_D  g.D  subject to ||D|| <= alpha
    linf = "-alpha * sign(g)"

    [q2]                          # the converged theta; `a` = [1, 0.1, 0.01]
    sgd = "a / dot(a, a)"         # an expression giving the vector ...
    rescaled_sgd = ["1/3", "10/3", "100/3"]   # ... or a list of numbers / expressions

    [q5.ring_allreduce]           # also all_to_all, parameter_server; both keys required
    messages = "2*n*(n-1)"
    message_size = "p/n"

Variables: Q1 ``g`` (a vector; a matrix for ``spectral``) and ``alpha``, plus ``p`` and its dual
exponent ``q = p/(p-1)`` for ``lp``, and the positive-definite ``M`` for ``mahalanobis``; Q2 ``a``;
Q5 ``n`` (workers) and ``p`` (parameters). Every expression is parsed when the sheet is loaded.
A sheet whose structure is wrong (not TOML, an unknown question, form, norm, method, paradigm or
key, a paradigm missing a key) is refused as a whole (a :class:`~jaxopt_hw.errors.UserInputError`
naming the place) before any grading starts. An item whose *answer* cannot be read (outside the
expression language, the wrong type, a θ of the wrong length) becomes a :class:`RefusedClaim`
carrying that one-line error: it is reported as refused, and the other items are still graded.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from jaxopt_hw.check.expr import Expression, ExpressionError, parse
from jaxopt_hw.config import packaged_dir
from jaxopt_hw.errors import UserInputError, unknown_choice
from jaxopt_hw.names import FORMS, METHODS, NORMS, PARADIGMS

QUESTIONS = ("q1", "q2", "q5")
MESSAGE_KEYS = ("messages", "message_size")
THETA_SIZE = 3
#: Largest sheet file read, in bytes (a sheet is a few hundred bytes; this only stops a runaway
#: file).
MAX_SHEET_BYTES = 1_000_000

_Q1_VARIABLES = {"lp": ("g", "alpha", "p", "q"), "mahalanobis": ("g", "alpha", "M")}
_Q2_VARIABLES = ("a",)
_Q5_VARIABLES = ("n", "p")


def q1_variables(norm: str) -> tuple[str, ...]:
  """The variables a Q1 claim under ``norm`` may use."""
  return _Q1_VARIABLES.get(norm, ("g", "alpha"))


@dataclass(frozen=True)
class UpdateClaim:
  """Q1: the claimed update under ``norm`` in the penalty or the ball ``form``."""

  norm: str
  form: str
  expression: Expression

  @property
  def key(self) -> str:
    return f"q1.{self.form}.{self.norm}"

  @property
  def claim(self) -> str:
    return self.expression.text


@dataclass(frozen=True)
class ThetaClaim:
  """Q2: the claimed converged theta of ``method``: one vector expression, or one per coordinate."""

  method: str
  expressions: tuple[Expression, ...]
  is_list: bool

  @property
  def key(self) -> str:
    return f"q2.{self.method}"

  @property
  def claim(self) -> str:
    if self.is_list:
      return "[" + ", ".join(e.text for e in self.expressions) + "]"
    return self.expressions[0].text


@dataclass(frozen=True)
class MessageClaim:
  """Q5: the claimed messages per iteration and size of each message of ``paradigm``."""

  paradigm: str
  messages: Expression
  message_size: Expression

  @property
  def key(self) -> str:
    return f"q5.{self.paradigm}"

  @property
  def claim(self) -> str:
    return f"messages = {self.messages.text}; message_size = {self.message_size.text}"


@dataclass(frozen=True)
class RefusedClaim:
  """An item whose answer could not be read: ``reason`` is the one-line error (it starts with the
  item's field, e.g. ``q1.penalty.l2: unknown name 'h' at position 8 ...``)."""

  key: str
  claim: str
  reason: str


Claim = UpdateClaim | ThetaClaim | MessageClaim | RefusedClaim


@dataclass(frozen=True)
class Sheet:
  """The claims of one answer sheet, in the order Q1 (penalty, ball), Q2, Q5."""

  claims: tuple[Claim, ...]
  source: str = "<sheet>"
  title: str = ""

  @property
  def refused(self) -> tuple[RefusedClaim, ...]:
    """The items whose answer could not be read."""
    return tuple(c for c in self.claims if isinstance(c, RefusedClaim))


def _type_name(value) -> str:
  if isinstance(value, bool):
    return "a boolean"
  if isinstance(value, int):
    return "an integer"
  if isinstance(value, float):
    return "a float"
  if isinstance(value, str):
    return "a string"
  if isinstance(value, list):
    return "a list"
  if isinstance(value, dict):
    return "a table"
  return f"a {type(value).__name__}"


def _table(value, field: str, what: str) -> Mapping:
  if not isinstance(value, dict):
    raise UserInputError(f"{field}: expected a table ({what}), got {_type_name(value)} {value!r}")
  return value


def _number_text(value) -> str | None:
  """A TOML number as expression text; None for anything else (booleans are not numbers)."""
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    return None
  return repr(value) if isinstance(value, int) else repr(float(value))


def _expression(value, field: str, variables, example: str, numbers: bool) -> Expression:
  if isinstance(value, str):
    text = value
  elif numbers and _number_text(value) is not None:
    text = _number_text(value)
  else:
    kind = "an expression (a string) or a number" if numbers else "an expression (a string)"
    raise UserInputError(
      f"{field}: expected {kind}, e.g. {example}; got {_type_name(value)} {value!r}"
    )
  return parse(text, variables, field=field)


def update_claim(norm: str, form: str, text, field: str | None = None) -> UpdateClaim:
  """Check and parse one Q1 claim (also used by ``jaxopt-hw check update``)."""
  if form not in FORMS:
    raise unknown_choice("form", form, FORMS)
  if norm not in NORMS:
    raise unknown_choice("norm", norm, NORMS)
  field = field or f"q1.{form}.{norm}"
  example = '"-alpha/2 * g"' if form == "penalty" else '"-alpha * g / norm2(g)"'
  return UpdateClaim(
    norm, form, _expression(text, field, q1_variables(norm), example, numbers=False)
  )


def theta_claim(method: str, value, field: str | None = None) -> ThetaClaim:
  """Check and parse one Q2 claim: an expression string or a list of numbers / expressions."""
  if method not in METHODS:
    raise unknown_choice("method", method, METHODS)
  field = field or f"q2.{method}"
  if isinstance(value, list):
    if len(value) != THETA_SIZE:
      raise UserInputError(
        f"{field}: theta has {THETA_SIZE} coordinates; the list has {len(value)}"
      )
    exprs = tuple(
      _expression(v, f"{field}[{i}]", _Q2_VARIABLES, '"1/3"', numbers=True)
      for i, v in enumerate(value)
    )
    return ThetaClaim(method, exprs, is_list=True)
  if isinstance(value, str):
    return ThetaClaim(method, (parse(value, _Q2_VARIABLES, field=field),), is_list=False)
  raise UserInputError(
    f'{field}: expected an expression (a string such as "a / dot(a, a)") or a list of '
    f'{THETA_SIZE} numbers or number strings (such as ["1/3", "10/3", "100/3"]); '
    f"got {_type_name(value)} {value!r}"
  )


def message_claim(paradigm: str, messages, message_size, field: str | None = None) -> MessageClaim:
  """Check and parse one Q5 claim (two expressions in ``n`` and ``p``)."""
  if paradigm not in PARADIGMS:
    raise unknown_choice("paradigm", paradigm, PARADIGMS)
  field = field or f"q5.{paradigm}"
  return MessageClaim(
    paradigm,
    _expression(messages, f"{field}.messages", _Q5_VARIABLES, '"n*(n-1)"', numbers=True),
    _expression(message_size, f"{field}.message_size", _Q5_VARIABLES, '"p"', numbers=True),
  )


def _shown(value) -> str:
  """An answer as it was written, for the report."""
  if isinstance(value, str):
    return value
  if isinstance(value, list):
    return "[" + ", ".join(v if isinstance(v, str) else repr(v) for v in value) + "]"
  return repr(value)


def _item(key: str, shown: str, build: Callable[[], Claim]) -> Claim:
  """``build()``, or a :class:`RefusedClaim` when the item's answer cannot be read."""
  try:
    return build()
  except UserInputError as e:
    return RefusedClaim(key, shown, str(e))


def parse_sheet(data: Mapping, source: str = "<sheet>") -> Sheet:
  """Check a sheet read from TOML and parse every claim in it."""
  data = _table(data, source, "the answer sheet")
  title = data.get("title", "")
  if not isinstance(title, str):
    raise UserInputError(f"{source}: title must be a string, got {_type_name(title)}")
  for key in data:
    if key not in QUESTIONS and key != "title":
      raise unknown_choice(source, key, QUESTIONS, what="questions a sheet may hold (and 'title')")
  claims: list[Claim] = []
  if "q1" in data:
    q1 = _table(data["q1"], "q1", "[q1.penalty] and/or [q1.ball]")
    for form in q1:
      if form not in FORMS:
        raise unknown_choice("q1", form, FORMS, what="forms (tables [q1.penalty], [q1.ball])")
    for form in FORMS:
      if form in q1:
        table = _table(q1[form], f"q1.{form}", 'norm = "expression"')
        for norm in table:
          if norm not in NORMS:
            raise unknown_choice(f"q1.{form}", norm, NORMS, what="norms")
        claims += [
          _item(
            f"q1.{form}.{norm}",
            _shown(table[norm]),
            functools.partial(update_claim, norm, form, table[norm]),
          )
          for norm in NORMS
          if norm in table
        ]
  if "q2" in data:
    q2 = _table(data["q2"], "q2", "method = theta")
    for method in q2:
      if method not in METHODS:
        raise unknown_choice("q2", method, METHODS, what="methods")
    claims += [
      _item(f"q2.{method}", _shown(q2[method]), functools.partial(theta_claim, method, q2[method]))
      for method in METHODS
      if method in q2
    ]
  if "q5" in data:
    q5 = _table(data["q5"], "q5", "tables [q5.<paradigm>]")
    for paradigm in q5:
      if paradigm not in PARADIGMS:
        raise unknown_choice("q5", paradigm, PARADIGMS, what="paradigms (tables [q5.<paradigm>])")
    for paradigm in PARADIGMS:
      if paradigm not in q5:
        continue
      field = f"q5.{paradigm}"
      table = _table(q5[paradigm], field, "messages = ..., message_size = ...")
      for key in table:
        if key not in MESSAGE_KEYS:
          raise unknown_choice(field, key, MESSAGE_KEYS, what="keys")
      missing = [k for k in MESSAGE_KEYS if k not in table]
      if missing:
        raise UserInputError(
          f"{field}: missing {', '.join(missing)}; a paradigm needs both messages and message_size"
        )
      messages, size = table["messages"], table["message_size"]
      claims.append(
        _item(
          field,
          f"messages = {_shown(messages)}; message_size = {_shown(size)}",
          functools.partial(message_claim, paradigm, messages, size),
        )
      )
  if not claims:
    raise UserInputError(
      f"{source}: no answers to grade; give at least one of [q1.penalty], [q1.ball], [q2], "
      "[q5.<paradigm>]"
    )
  return Sheet(tuple(claims), source, title)


def loads(text: str, source: str = "<sheet>") -> Sheet:
  """Parse a sheet from TOML text."""
  try:
    data = tomllib.loads(text)
  except tomllib.TOMLDecodeError as e:
    raise UserInputError(f"{source}: not valid TOML ({e})") from None
  except RecursionError:  # tomllib recurses into nested arrays and inline tables
    raise UserInputError(f"{source}: arrays or tables nested too deeply to read") from None
  return parse_sheet(data, source)


def _packaged(name: str) -> Path | None:
  """A sheet shipped in the package's configs (e.g. ``answers_example``), or None."""
  name = name if name.endswith(".toml") else name + ".toml"
  candidate = packaged_dir() / name
  return Path(str(candidate)) if candidate.is_file() else None


def load(path) -> Sheet:
  """Read and parse the sheet at ``path`` (a file, or the name of a sheet shipped in the package,
  such as ``answers_example``)."""
  path = Path(path)
  if not path.is_file() and path.name == str(path) and _packaged(path.name) is not None:
    path = _packaged(path.name)
  if not path.is_file():
    raise UserInputError(f"answers: {str(path)!r} is not a file")
  if path.stat().st_size > MAX_SHEET_BYTES:
    raise UserInputError(
      f"answers: {str(path)!r} is {path.stat().st_size} bytes; a sheet may have at most "
      f"{MAX_SHEET_BYTES}"
    )
  try:
    text = path.read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    raise UserInputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
  return loads(text, str(path))


__all__ = [
  "Claim",
  "ExpressionError",
  "FORMS",
  "METHODS",
  "MessageClaim",
  "NORMS",
  "PARADIGMS",
  "QUESTIONS",
  "RefusedClaim",
  "Sheet",
  "ThetaClaim",
  "UpdateClaim",
  "load",
  "loads",
  "message_claim",
  "parse_sheet",
  "q1_variables",
  "theta_claim",
  "update_claim",
]
