"""A small, safe expression language for claimed answers.

Answers to grade come from untrusted places (pasted model output, a classmate's file), so they are
never handed to Python: no ``eval``, ``exec``, ``compile`` or ``ast``. A hand-written tokenizer and
recursive-descent parser accept only this grammar::

    expr    := term (('+' | '-') term)*
    term    := unary (('*' | '/' | '@') unary)*
    unary   := ('-' | '+') unary | power
    power   := primary ('**' unary)?              # right-associative, -x**2 == -(x**2)
    primary := NUMBER | VARIABLE | FUNCTION '(' expr (',' expr)* ')' | '(' expr ')'
             | '[' expr (',' expr)* ']'           # a vector (or, nested once, a matrix) literal

Numbers are decimal (``2``, ``0.5``, ``.5``, ``1e-3``); the variables are the ones the caller
allows (e.g. ``g`` and ``alpha``); the functions are listed in :data:`FUNCTIONS`. Everything else
(attribute access, subscripts, strings, keywords, lambdas, comprehensions, unknown names, names
starting with ``_``) is refused with an :class:`ExpressionError` that names the offending token and
its 1-based position. Work is bounded: at most :data:`MAX_LENGTH` characters, nesting at most
:data:`MAX_DEPTH` deep, a constant exponent at most :data:`MAX_EXPONENT` in magnitude (so
``9**9**9`` is refused while parsing, not computed), arrays of at most 2 dimensions and
:data:`MAX_ELEMENTS` entries, and at most :data:`MAX_WORK` operations per evaluation (each charged
before it is done).

Values are NumPy float64 arrays (0-d for scalars): evaluation is deterministic, needs no compilation
and does not depend on JAX's x64 flag. Division by zero and the like give inf/nan (no warning); the
grader treats a non-finite answer as wrong.

Example::

    >>> claim = parse("-alpha/2 * norm1(g) * sign(g)", variables=("g", "alpha"))
    >>> claim.evaluate({"g": np.array([1.0, -2.0]), "alpha": 1.0})
    array([-1.5,  1.5])
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from jaxopt_hw.errors import UserInputError, did_you_mean

#: Longest accepted expression, in characters.
MAX_LENGTH = 2000
#: Deepest accepted nesting of parentheses, calls, brackets, unary signs and powers.
MAX_DEPTH = 32
#: Largest magnitude of an exponent that does not depend on a variable.
MAX_EXPONENT = 64
#: Largest number of entries of any value (checked before it is computed).
MAX_ELEMENTS = 1_000_000
#: Most operations (entries produced, multiply-adds) one evaluation may do; answers need < 10**4.
MAX_WORK = 2_000_000
#: Longest vector ``ones(k)`` makes.
MAX_ONES = 4096

_KEYWORDS = frozenset(
  "False None True and as assert async await break class continue def del elif else except "
  "finally for from global if import in is lambda nonlocal not or pass raise return try while "
  "with yield".split()
)
_MODULE_NAMES = frozenset({"np", "jnp", "numpy", "jax", "math", "torch", "scipy", "la", "linalg"})
_UNICODE_HINTS = {
  "\u2212": "write '-'",  # minus sign
  "\u2013": "write '-'",
  "\u00b7": "write '*'",
  "\u22c5": "write '*'",
  "\u00d7": "write '*'",
  "\u2217": "write '*'",
  "\u00f7": "write '/'",
  "\u03b1": "write alpha",
  "\u2016": "write norm1(...), norm2(...) or norminf(...)",
  "\u00b2": "write **2",
  "\u221a": "write sqrt(...)",
  "\u1d40": "write transpose(...)",
}
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("**", "+", "-", "*", "/", "@", "(", ")", "[", "]", ",")


class ExpressionError(UserInputError):
  """An expression that is refused (it is outside the language) or cannot be evaluated.

  ``position`` is the 1-based character position of the offending token (None when the problem
  is the expression as a whole) and ``token`` its text.
  """

  def __init__(
    self,
    message: str,
    position: int | None = None,
    token: str | None = None,
    field: str | None = None,
  ):
    self.reason, self.position, self.token, self.field = message, position, token, field
    super().__init__(f"{field}: {message}" if field else message)

  def for_field(self, field: str) -> ExpressionError:
    """The same error, its message starting with ``field`` (e.g. ``q1.penalty.l2``)."""
    return ExpressionError(self.reason, self.position, self.token, field)


class ExpressionTooCostly(ExpressionError):
  """An expression whose evaluation would exceed :data:`MAX_WORK`: refused as a whole, not
  graded."""

  def for_field(self, field: str) -> ExpressionTooCostly:
    return ExpressionTooCostly(self.reason, self.position, self.token, field)


# ---------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class Token:
  kind: str  # "number", "name", "op" or "end"
  text: str
  position: int  # 1-based


def _at(token: Token) -> str:
  return "at the end" if token.kind == "end" else f"at position {token.position}"


def tokenize(text: str) -> list[Token]:
  """Split ``text`` into tokens, refusing any character that is not part of the language."""
  if not isinstance(text, str):
    raise ExpressionError(f"expected an expression as text, got {type(text).__name__}")
  if len(text) > MAX_LENGTH:
    raise ExpressionError(
      f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}"
    )
  tokens: list[Token] = []
  i, n = 0, len(text)
  while i < n:
    c = text[i]
    pos = i + 1
    if c in " \t\r\n":
      i += 1
      continue
    if c.isascii() and (c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit())):
      m = _NUMBER.match(text, i)
      tokens.append(Token("number", m.group(), pos))
      i = m.end()
      continue
    if c.isascii() and (c.isalpha() or c == "_"):
      m = _NAME.match(text, i)
      name = m.group()
      if name.startswith("_"):
        raise ExpressionError(
          f"name {name!r} at position {pos} is not allowed (names starting with '_' are refused)",
          pos,
          name,
        )
      if name in _KEYWORDS:
        raise ExpressionError(
          f"{name!r} at position {pos} is a Python keyword; the expression language has no "
          "keywords, lambdas, comprehensions, conditionals or imports",
          pos,
          name,
        )
      tokens.append(Token("name", name, pos))
      i = m.end()
      continue
    op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
    if op is not None:
      tokens.append(Token("op", op, pos))
      i += len(op)
      continue
    raise _bad_character(text, i, tokens)
  tokens.append(Token("end", "", n + 1))
  return tokens


def _bad_character(text: str, i: int, tokens: list[Token]) -> ExpressionError:
  c, pos = text[i], i + 1
  if c == ".":
    before = tokens[-1].text if tokens else ""
    hint = (
      f"; write the function directly, e.g. sign(g) rather than {before}.sign(g)"
      if before in _MODULE_NAMES
      else ""
    )
    return ExpressionError(f"attribute access ('.') at position {pos} is not allowed{hint}", pos, c)
  if c in "'\"":
    return ExpressionError(
      f"string quote {c!r} at position {pos} is not allowed (the language has no strings)", pos, c
    )
  if c == "^":
    return ExpressionError(f"'^' at position {pos} is not allowed; write ** for a power", pos, c)
  if c == "=":
    return ExpressionError(
      f"'=' at position {pos} is not allowed; give only the right-hand side, e.g. -alpha/2 * g",
      pos,
      c,
    )
  if c in _UNICODE_HINTS:
    return ExpressionError(
      f"character {c!r} (U+{ord(c):04X}) at position {pos} is not allowed; {_UNICODE_HINTS[c]}",
      pos,
      c,
    )
  if not c.isascii() or not c.isprintable():
    return ExpressionError(
      f"character {c!r} (U+{ord(c):04X}) at position {pos} is not allowed", pos, c
    )
  return ExpressionError(
    f"character {c!r} at position {pos} is not allowed; the language has numbers, names, + - * / "
    "** @, parentheses, [ ] vector literals and commas between function arguments",
    pos,
    c,
  )


# ---------------------------------------------------------------------------------------------
# Syntax tree


# Trees are walked with explicit stacks, never by recursion: a legal 2000-character expression such
# as "g+g+...+g" is a chain 1000 nodes deep, past Python's recursion limit (issue 12.4). For the
# same reason nodes compare by identity (eq=False): dataclass equality and hashing would recurse.


@dataclass(frozen=True, eq=False)
class Node:
  position: int


@dataclass(frozen=True, eq=False)
class Number(Node):
  value: float
  text: str


@dataclass(frozen=True, eq=False)
class Variable(Node):
  name: str


@dataclass(frozen=True, eq=False)
class Unary(Node):
  op: str
  operand: Node


@dataclass(frozen=True, eq=False)
class Binary(Node):
  op: str
  left: Node
  right: Node


@dataclass(frozen=True, eq=False)
class Call(Node):
  name: str
  args: tuple[Node, ...]


@dataclass(frozen=True, eq=False)
class Literal(Node):
  items: tuple[Node, ...]


def _children(node: Node) -> tuple[Node, ...]:
  if isinstance(node, Unary):
    return (node.operand,)
  if isinstance(node, Binary):
    return (node.left, node.right)
  if isinstance(node, Call):
    return node.args
  if isinstance(node, Literal):
    return node.items
  return ()


def _walk(node: Node) -> Iterator[Node]:
  """Every node of the tree under ``node`` (an explicit stack: no recursion)."""
  stack = [node]
  while stack:
    current = stack.pop()
    yield current
    stack.extend(_children(current))


def _uses_variables(node: Node) -> bool:
  return any(isinstance(n, Variable) for n in _walk(node))


def _names(node: Node) -> set[str]:
  return {n.name for n in _walk(node) if isinstance(n, Variable)}


# ---------------------------------------------------------------------------------------------
# Functions


@dataclass(frozen=True)
class Function:
  min_args: int
  max_args: int
  fn: Callable
  doc: str


def _need_matrix(name: str, x: np.ndarray) -> None:
  if x.ndim != 2:
    raise ValueError(f"{name}() needs a matrix, got shape {x.shape}")


# The linear-algebra functions call LAPACK, which must never see inf or NaN: its SVD spins forever
# on a matrix holding an inf (seen with NumPy 2.4's OpenBLAS: np.linalg.svd([[inf, 1], [1, 1]])
# never returns, and Ctrl-C cannot stop it inside the call), and it raises on NaN. So non-finite
# input gives NaN of the right shape without calling LAPACK (NaN in, NaN out, as elsewhere in the
# language); the grader then fails the claim as not finite.


def _all_finite(*arrays: np.ndarray) -> bool:
  return all(bool(np.isfinite(a).all()) for a in arrays)


def _polar(x):
  _need_matrix("polar", x)
  if not _all_finite(x):
    return np.full(x.shape, np.nan)
  u, _, vt = np.linalg.svd(x, full_matrices=False)
  return u @ vt


def _nuclear(x):
  _need_matrix("nuclear", x)
  if not _all_finite(x):
    return np.asarray(np.nan)
  return np.sum(np.linalg.svd(x, compute_uv=False))


def _opnorm(x):
  _need_matrix("opnorm", x)
  if not _all_finite(x):
    return np.asarray(np.nan)
  return np.max(np.linalg.svd(x, compute_uv=False))


def _inv(x):
  if x.ndim != 2 or x.shape[0] != x.shape[1]:
    raise ValueError(f"inv() needs a square matrix, got shape {x.shape}")
  if not _all_finite(x):
    return np.full(x.shape, np.nan)
  return np.linalg.inv(x)


def _solve(a, b):
  if a.ndim != 2 or a.shape[0] != a.shape[1]:
    raise ValueError(f"solve() needs a square matrix first, got shape {a.shape}")
  if not _all_finite(a, b):  # the shapes were checked by the evaluator: the result has b's shape
    return np.full(b.shape, np.nan)
  return np.linalg.solve(a, b)


def _onehot_argmax(x):
  flat = x.reshape(-1)
  out = np.zeros_like(flat)
  if flat.size:
    out[int(np.argmax(flat))] = 1.0
  return out.reshape(x.shape)


def _same_shape(name: str, x, y):
  if x.shape != y.shape:
    raise ValueError(f"{name}() needs two arguments of the same shape, got {x.shape} and {y.shape}")


def _dot(x, y):
  _same_shape("dot", x, y)
  return np.sum(x * y)


def _normp(x, r):
  if r.ndim != 0:
    raise ValueError(f"normp() takes a scalar exponent, got shape {r.shape}")
  return np.sum(np.abs(x) ** r) ** (1.0 / r)


def _max(x, y=None):
  return np.max(x) if y is None else np.maximum(x, y)


def _min(x, y=None):
  return np.min(x) if y is None else np.minimum(x, y)


def _transpose(x):
  return x.T


#: The functions an expression may call. Vector functions treat a matrix as the vector of its
#: entries (so ``norm2`` of a matrix is its Frobenius norm and ``dot`` the sum of entrywise
#: products).
FUNCTIONS: dict[str, Function] = {
  "sign": Function(1, 1, np.sign, "sign of each entry (0 at 0)"),
  "abs": Function(1, 1, np.abs, "absolute value of each entry"),
  "sqrt": Function(1, 1, np.sqrt, "square root of each entry"),
  "exp": Function(1, 1, np.exp, "exponential of each entry"),
  "log": Function(1, 1, np.log, "natural logarithm of each entry"),
  "sum": Function(1, 1, np.sum, "sum of all entries"),
  "mean": Function(1, 1, np.mean, "mean of all entries"),
  "max": Function(1, 2, _max, "max(x): largest entry; max(x, y): entrywise maximum"),
  "min": Function(1, 2, _min, "min(x): smallest entry; min(x, y): entrywise minimum"),
  "clip": Function(3, 3, np.clip, "clip(x, lo, hi): each entry clipped to [lo, hi]"),
  "norm1": Function(1, 1, lambda x: np.sum(np.abs(x)), "sum of |entries|"),
  "norm2": Function(1, 1, lambda x: np.sqrt(np.sum(x * x)), "Euclidean (Frobenius) norm"),
  "norminf": Function(1, 1, lambda x: np.max(np.abs(x)), "largest |entry|"),
  "normp": Function(2, 2, _normp, "normp(x, r) = (sum |x_i|**r)**(1/r)"),
  "dot": Function(2, 2, _dot, "dot(x, y) = sum of x*y (same shapes)"),
  "matmul": Function(2, 2, np.matmul, "matrix product, also written x @ y"),
  "transpose": Function(1, 1, _transpose, "matrix transpose (a vector is unchanged)"),
  "ones": Function(
    1, 1, np.ones_like, "ones(x): ones shaped like x; ones(k) for a whole number k: k ones"
  ),
  "ones_like": Function(1, 1, np.ones_like, "ones shaped like x"),
  "zeros_like": Function(1, 1, np.zeros_like, "zeros shaped like x"),
  "size": Function(1, 1, lambda x: np.asarray(float(x.size)), "number of entries"),
  "onehot_argmax": Function(1, 1, _onehot_argmax, "1 at the first largest entry of x, 0 elsewhere"),
  "polar": Function(
    1, 1, _polar, "U V^T from the thin SVD x = U S V^T (the orthogonal polar factor)"
  ),
  "nuclear": Function(1, 1, _nuclear, "nuclear norm: sum of singular values"),
  "opnorm": Function(1, 1, _opnorm, "spectral (operator) norm: largest singular value"),
  "inv": Function(1, 1, _inv, "inverse of a square matrix"),
  "solve": Function(2, 2, _solve, "solve(A, b) = inv(A) @ b"),
}

_ELEMENTWISE = frozenset({"max", "min", "clip"})


# ---------------------------------------------------------------------------------------------
# Parser


class _Parser:
  def __init__(self, text: str, variables: frozenset[str]):
    self.tokens = tokenize(text)
    self.i = 0
    self.depth = 0
    self.variables = variables

  @property
  def tok(self) -> Token:
    return self.tokens[self.i]

  def _next(self) -> Token:
    tok = self.tokens[self.i]
    self.i += 1
    return tok

  def _enter(self, tok: Token) -> None:
    self.depth += 1
    if self.depth > MAX_DEPTH:
      raise ExpressionError(
        f"nesting deeper than {MAX_DEPTH} levels at position {tok.position}", tok.position, tok.text
      )

  def _expect(self, text: str, opened: Token) -> Token:
    tok = self.tok
    if tok.kind == "op" and tok.text == text:
      return self._next()
    got = (
      "the end of the expression"
      if tok.kind == "end"
      else f"{tok.text!r} at position {tok.position}"
    )
    raise ExpressionError(
      f"expected {text!r} to close {opened.text!r} from position {opened.position}, got {got}",
      tok.position,
      tok.text,
    )

  def _unexpected(self, tok: Token, what: str = "") -> ExpressionError:
    if tok.kind == "end":
      return ExpressionError(f"the expression ends too early{what}", tok.position, "")
    return ExpressionError(
      f"unexpected {tok.text!r} at position {tok.position}{what}", tok.position, tok.text
    )

  def parse(self) -> Node:
    if self.tok.kind == "end":
      raise ExpressionError("the expression is empty", 1, "")
    node = self.expr()
    if self.tok.kind != "end":
      tok = self.tok
      if tok.kind == "op" and tok.text == ",":
        raise ExpressionError(
          f"unexpected ',' at position {tok.position} (tuples are not allowed; write a vector as "
          "[x, y, z])",
          tok.position,
          tok.text,
        )
      raise self._unexpected(
        tok, " (missing an operator?)" if tok.kind in ("number", "name") or tok.text in "([" else ""
      )
    return node

  def expr(self) -> Node:
    node = self.term()
    while self.tok.kind == "op" and self.tok.text in "+-":
      op = self._next()
      node = Binary(op.position, op.text, node, self.term())
    return node

  def term(self) -> Node:
    node = self.unary()
    while self.tok.kind == "op" and self.tok.text in ("*", "/", "@"):
      op = self._next()
      if self.tok.kind == "op" and self.tok.text in ("*", "/") and op.text == "/":
        raise self._unexpected(self.tok, " (floor division is not allowed)")
      node = Binary(op.position, op.text, node, self.unary())
    return node

  def unary(self) -> Node:
    if self.tok.kind == "op" and self.tok.text in "+-":
      op = self._next()
      self._enter(op)
      operand = self.unary()
      self.depth -= 1
      return Unary(op.position, op.text, operand)
    return self.power()

  def power(self) -> Node:
    base = self.primary()
    if self.tok.kind == "op" and self.tok.text == "**":
      op = self._next()
      self._enter(op)
      exponent = self.unary()
      self.depth -= 1
      if not _uses_variables(exponent):
        with np.errstate(all="ignore"):
          value = _evaluate(exponent, {})
        if value.ndim != 0 or not np.isfinite(value) or abs(float(value)) > MAX_EXPONENT:
          shown = "a non-scalar" if value.ndim else f"{float(value):.6g}"
          raise ExpressionError(
            f"exponent {shown} of '**' at position {op.position} is refused; a constant exponent "
            f"must be a number between -{MAX_EXPONENT} and {MAX_EXPONENT}",
            op.position,
            op.text,
          )
      return Binary(op.position, "**", base, exponent)
    return base

  def primary(self) -> Node:
    tok = self.tok
    if tok.kind == "number":
      self._next()
      value = float(tok.text)
      if not math.isfinite(value):
        raise ExpressionError(
          f"number {tok.text[:20]!r} at position {tok.position} is too large",
          tok.position,
          tok.text,
        )
      node: Node = Number(tok.position, value, tok.text)
    elif tok.kind == "name":
      node = self.name()
    elif tok.kind == "op" and tok.text == "(":
      self._next()
      self._enter(tok)
      if self.tok.kind == "op" and self.tok.text == ")":
        raise ExpressionError(
          f"empty parentheses at position {tok.position} are not allowed", tok.position, tok.text
        )
      node = self.expr()
      if self.tok.kind == "op" and self.tok.text == ",":
        bad = self.tok
        raise ExpressionError(
          f"unexpected ',' at position {bad.position} (tuples are not allowed; write a vector as "
          "[x, y, z])",
          bad.position,
          bad.text,
        )
      self._expect(")", tok)
      self.depth -= 1
    elif tok.kind == "op" and tok.text == "[":
      node = self.literal()
    else:
      raise self._unexpected(tok)
    # Postfix forms Python would accept and this language refuses.
    after = self.tok
    if after.kind == "op" and after.text == "[":
      raise ExpressionError(
        f"subscript '[' at position {after.position} is not allowed (no indexing or slicing)",
        after.position,
        after.text,
      )
    if after.kind == "op" and after.text == "(":
      raise ExpressionError(
        f"call '(' at position {after.position} is not allowed here: only named functions "
        "can be called",
        after.position,
        after.text,
      )
    return node

  def name(self) -> Node:
    tok = self._next()
    name = tok.text
    is_call = self.tok.kind == "op" and self.tok.text == "("
    if name in FUNCTIONS:
      if not is_call:
        raise ExpressionError(
          f"{name!r} at position {tok.position} is a function; call it as {name}(...)",
          tok.position,
          name,
        )
      return self.call(tok)
    if name in self.variables:
      if is_call:
        raise ExpressionError(
          f"{name!r} at position {tok.position} is a variable, not a function", tok.position, name
        )
      return Variable(tok.position, name)
    if is_call:
      hint = did_you_mean(name, FUNCTIONS)
      raise ExpressionError(
        f"unknown function {name!r} at position {tok.position}{hint}; functions: "
        f"{', '.join(FUNCTIONS)}",
        tok.position,
        name,
      )
    allowed = sorted(self.variables, key=str.lower)
    hint = did_you_mean(name, allowed)
    shown = ", ".join(allowed) if allowed else "none"
    raise ExpressionError(
      f"unknown name {name!r} at position {tok.position}{hint}; variables here: {shown}",
      tok.position,
      name,
    )

  def call(self, name_tok: Token) -> Node:
    opened = self._next()
    self._enter(opened)
    args: list[Node] = []
    if not (self.tok.kind == "op" and self.tok.text == ")"):
      args.append(self.expr())
      while self.tok.kind == "op" and self.tok.text == ",":
        self._next()
        args.append(self.expr())
    self._expect(")", opened)
    self.depth -= 1
    spec = FUNCTIONS[name_tok.text]
    if not spec.min_args <= len(args) <= spec.max_args:
      wanted = (
        str(spec.min_args)
        if spec.min_args == spec.max_args
        else f"{spec.min_args} or {spec.max_args}"
      )
      plural = "" if wanted == "1" else "s"
      raise ExpressionError(
        f"{name_tok.text}() at position {name_tok.position} takes {wanted} argument{plural}, got "
        f"{len(args)}",
        name_tok.position,
        name_tok.text,
      )
    return Call(name_tok.position, name_tok.text, tuple(args))

  def literal(self) -> Node:
    opened = self._next()
    self._enter(opened)
    if self.tok.kind == "op" and self.tok.text == "]":
      raise ExpressionError(
        f"empty vector '[]' at position {opened.position} is not allowed", opened.position, "["
      )
    items = [self.expr()]
    while self.tok.kind == "op" and self.tok.text == ",":
      self._next()
      items.append(self.expr())
    self._expect("]", opened)
    self.depth -= 1
    return Literal(opened.position, tuple(items))


# ---------------------------------------------------------------------------------------------
# Evaluation


def _check_size(shape: tuple[int, ...], node: Node, what: str) -> None:
  if len(shape) > 2:
    raise ExpressionError(
      f"{what} at position {node.position} would have {len(shape)} dimensions; "
      "at most 2 are allowed",
      node.position,
    )
  if math.prod(shape) > MAX_ELEMENTS:
    raise ExpressionError(
      f"{what} at position {node.position} would have shape {shape}; at most {MAX_ELEMENTS} "
      "entries are allowed",
      node.position,
    )


_LINEAR_ALGEBRA = frozenset({"polar", "nuclear", "opnorm", "inv", "solve"})


class _Evaluator:
  """Walks the tree; charges every operation (entries produced, multiply-adds) against MAX_WORK
  before doing it, so no expression can make evaluation slow."""

  def __init__(self, env: Mapping[str, np.ndarray]):
    self.env = env
    self.work = 0

  def charge(self, amount: int, node: Node) -> None:
    self.work += amount
    if self.work > MAX_WORK:
      raise ExpressionTooCostly(
        f"evaluating the expression takes more than {MAX_WORK} operations (at position "
        f"{node.position}); answers need far less",
        node.position,
      )

  def broadcast(self, node: Node, what: str, *shapes) -> None:
    try:
      shape = np.broadcast_shapes(*shapes)
    except ValueError:
      raise ExpressionError(
        f"shapes {' and '.join(str(s) for s in shapes)} do not match for {what} at position "
        f"{node.position}",
        node.position,
      ) from None
    _check_size(shape, node, what)
    self.charge(math.prod(shape), node)

  def matmul(self, node: Node, left, right, compute: bool = True):
    if left.ndim == 0 or right.ndim == 0:
      raise ExpressionError(
        f"matrix product at position {node.position} needs vectors or matrices, got shapes "
        f"{left.shape} and {right.shape}",
        node.position,
      )
    if left.shape[-1] != right.shape[0]:
      raise ExpressionError(
        f"shapes {left.shape} and {right.shape} do not match for the matrix product at position "
        f"{node.position}",
        node.position,
      )
    out_shape = left.shape[:-1] + right.shape[1:]
    _check_size(out_shape, node, "the matrix product")
    self.charge(math.prod(out_shape) * left.shape[-1], node)
    return left @ right if compute else None

  def __call__(self, root: Node) -> np.ndarray:
    """The value of ``root``: children left to right, then the node (a post-order walk with an
    explicit stack, so a chain of any depth is evaluated without recursion)."""
    values: list[np.ndarray] = []
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
      node, children_done = stack.pop()
      children = _children(node)
      if children and not children_done:
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(children))
        continue
      args = values[len(values) - len(children) :]
      del values[len(values) - len(children) :]
      values.append(self.apply(node, args))
    return values[0]

  def apply(self, node: Node, args: list[np.ndarray]) -> np.ndarray:
    """The value of ``node`` from the values of its children."""
    if isinstance(node, Number):
      return np.asarray(node.value, dtype=np.float64)
    if isinstance(node, Variable):
      return self.env[node.name]
    if isinstance(node, Unary):
      (value,) = args
      self.charge(value.size, node)
      return -value if node.op == "-" else value
    if isinstance(node, Binary):
      left, right = args
      if node.op == "@":
        return self.matmul(node, left, right)
      self.broadcast(node, f"'{node.op}'", left.shape, right.shape)
      if node.op == "+":
        return left + right
      if node.op == "-":
        return left - right
      if node.op == "*":
        return left * right
      if node.op == "/":
        return left / right
      return left**right
    if isinstance(node, Literal):
      shapes = {item.shape for item in args}
      if len(shapes) != 1:
        raise ExpressionError(
          f"the entries of the vector at position {node.position} have different shapes "
          f"{sorted(shapes)}",
          node.position,
        )
      shape = (len(args), *args[0].shape)
      _check_size(shape, node, "the vector")
      self.charge(math.prod(shape), node)
      return np.stack(args).astype(np.float64)
    assert isinstance(node, Call)
    if node.name == "ones" and not _uses_variables(node.args[0]) and args[0].ndim == 0:
      k = float(args[0])
      if not (math.isfinite(k) and k == int(k) and 1 <= k <= MAX_ONES):  # inf, nan: refused too
        raise ExpressionError(
          f"ones({k:g}) at position {node.position}: k must be a whole number from 1 to {MAX_ONES}",
          node.position,
          "ones",
        )
      self.charge(int(k), node)
      return np.ones(int(k), dtype=np.float64)
    if node.name in _ELEMENTWISE and len(args) > 1:
      self.broadcast(node, f"{node.name}()", *(a.shape for a in args))
    if node.name in ("matmul", "solve"):
      self.matmul(node, *args, compute=False)
    if node.name in _LINEAR_ALGEBRA:
      self.charge(args[0].size * min(args[0].shape or (1,)), node)  # an SVD or LU: m*n*min(m, n)
    self.charge(sum(a.size for a in args), node)
    try:
      out = FUNCTIONS[node.name].fn(*args)
    except (ValueError, np.linalg.LinAlgError) as e:
      raise ExpressionError(
        f"{node.name}() at position {node.position} failed: {e}", node.position, node.name
      ) from None
    return np.asarray(out, dtype=np.float64)


def _evaluate(node: Node, env: Mapping[str, np.ndarray]) -> np.ndarray:
  """Evaluate the tree; only :class:`ExpressionError` comes out.

  The checks above catch what an expression can do wrong; this is the last line for a case they
  miss, so that one hostile claim is reported as not evaluable rather than crashing the whole sheet.
  """
  try:
    return _Evaluator(env)(node)
  except ExpressionError:
    raise
  except (ArithmeticError, ValueError, TypeError, MemoryError, RecursionError) as e:
    raise ExpressionError(f"evaluation failed: {type(e).__name__}: {e}") from None


@dataclass(frozen=True)
class Expression:
  """A parsed expression: ``text`` as given, its syntax tree, and the variables it uses."""

  text: str
  root: Node = dataclasses.field(repr=False, compare=False)  # compared and shown by its text
  variables: frozenset[str] = frozenset()

  @property
  def is_constant(self) -> bool:
    return not self.variables

  def evaluate(self, env: Mapping[str, object] | None = None) -> np.ndarray:
    """The value (a float64 NumPy array) with the variables set from ``env``."""
    env = dict(env or {})
    missing = sorted(self.variables - set(env))
    if missing:
      raise ExpressionError(f"no value given for {', '.join(missing)}")
    values = {k: np.asarray(v, dtype=np.float64) for k, v in env.items() if k in self.variables}
    with np.errstate(all="ignore"):
      return _evaluate(self.root, values)


def parse(text: str, variables: Iterable[str] = (), *, field: str | None = None) -> Expression:
  """Parse ``text`` over the allowed ``variables``; raise :class:`ExpressionError` if it is refused.

  ``field`` (e.g. ``"q1.penalty.l2"``) is put at the start of the error message.
  """
  allowed = frozenset(variables)
  bad = sorted(v for v in allowed if v in FUNCTIONS or not _NAME.fullmatch(v) or v.startswith("_"))
  if bad:
    raise ValueError(f"variables {bad} cannot be used as variable names")
  try:
    root = _Parser(text, allowed).parse()
  except ExpressionError as e:
    raise (e.for_field(field) if field else e) from None
  return Expression(text, root, frozenset(_names(root)))


def evaluate(
  text: str, env: Mapping[str, object] | None = None, *, field: str | None = None
) -> np.ndarray:
  """Parse ``text`` with the variables of ``env`` and evaluate it."""
  env = dict(env or {})
  expression = parse(text, env, field=field)
  try:
    return expression.evaluate(env)
  except ExpressionError as e:
    raise (e.for_field(field) if field else e) from None


def describe_language(variables: Iterable[str] = ()) -> str:
  """A few lines for ``--help``: the variables, operators and functions."""
  lines = []
  variables = list(variables)
  if variables:
    lines.append(f"variables: {', '.join(variables)}")
  lines.append("operators: + - * / ** @ and parentheses; [x, y, z] is a vector")
  lines.append("functions:")
  for name, spec in FUNCTIONS.items():
    lines.append(f"  {name:<14} {spec.doc}")
  return "\n".join(lines)
