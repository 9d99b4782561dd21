"""The checker's expression language: what it computes, and that hostile input is refused safely."""

import builtins
import time

import numpy as np
import pytest
import scipy.linalg

from jaxopt_hw.check import expr
from jaxopt_hw.check.expr import ExpressionError, evaluate, parse
from jaxopt_hw.errors import UserInputError

# A hang guard, not a speed claim: refusing any input must take far less than this.
HANG_GUARD_S = 2.0


@pytest.mark.parametrize(
  "text, expected",
  [
    # Expected values: Python's own precedence rules, worked by hand.
    ("1 + 2 * 3", 7.0),
    ("(1 + 2) * 3", 9.0),
    ("-2**2", -4.0),  # ** binds tighter than unary minus
    ("2**-1", 0.5),
    ("2**3**2", 512.0),  # right-associative
    ("10 / 4 / 5", 0.5),  # left-associative
    ("1 - 2 - 3", -4.0),
    ("+3 - -2", 5.0),
    ("1e-3 * 2E2", 0.2),
    (".5 + 1.", 1.5),
    ("1/3", 1.0 / 3.0),
  ],
)
def test_arithmetic_follows_the_usual_precedence(text, expected):
  assert float(evaluate(text)) == pytest.approx(expected, rel=1e-15)


def test_vector_functions_match_numpy_definitions():
  rng = np.random.default_rng(0)
  g = rng.normal(size=7)
  env = {"g": g}
  # References: numpy.linalg.norm with the matching `ord` (an independent implementation).
  assert float(evaluate("norm1(g)", env)) == pytest.approx(np.linalg.norm(g, 1), rel=1e-14)
  assert float(evaluate("norm2(g)", env)) == pytest.approx(np.linalg.norm(g, 2), rel=1e-14)
  assert float(evaluate("norminf(g)", env)) == pytest.approx(np.linalg.norm(g, np.inf), rel=1e-14)
  assert float(evaluate("normp(g, 3)", env)) == pytest.approx(np.linalg.norm(g, 3), rel=1e-14)
  assert float(evaluate("dot(g, g)", env)) == pytest.approx(np.linalg.norm(g) ** 2, rel=1e-14)
  np.testing.assert_array_equal(evaluate("sign(g)", env), np.sign(g))
  np.testing.assert_array_equal(
    evaluate("clip(g, -0.1, 0.1)", env), np.minimum(np.maximum(g, -0.1), 0.1)
  )
  np.testing.assert_array_equal(evaluate("max(g, 0)", env), np.where(g > 0, g, 0.0))
  assert float(evaluate("max(abs(g))", env)) == np.abs(g).max()
  onehot = evaluate("onehot_argmax(abs(g))", env)
  assert onehot.sum() == 1.0 and onehot[np.argmax(np.abs(g))] == 1.0


def test_onehot_argmax_picks_the_first_of_tied_entries():
  # With ties any one-hot vertex is a valid l1 dual map; the first index is documented.
  np.testing.assert_array_equal(
    evaluate("onehot_argmax(abs(g))", {"g": np.array([1.0, -3.0, 3.0])}), [0.0, 1.0, 0.0]
  )


def test_matrix_functions_match_scipy_and_numpy():
  rng = np.random.default_rng(1)
  g = rng.normal(size=(4, 3))
  env = {"g": g}
  # scipy.linalg.polar gives the orthogonal polar factor U V^T independently of our SVD code.
  np.testing.assert_allclose(evaluate("polar(g)", env), scipy.linalg.polar(g)[0], atol=1e-12)
  assert float(evaluate("nuclear(g)", env)) == pytest.approx(np.linalg.norm(g, "nuc"), rel=1e-13)
  assert float(evaluate("opnorm(g)", env)) == pytest.approx(np.linalg.norm(g, 2), rel=1e-13)
  assert evaluate("transpose(g) @ g", env).shape == (3, 3)
  np.testing.assert_allclose(evaluate("matmul(transpose(g), g)", env), g.T @ g, rtol=1e-14)
  m = g.T @ g + np.eye(3)
  v = rng.normal(size=3)
  np.testing.assert_allclose(
    evaluate("inv(M) @ v", {"M": m, "v": v}), np.linalg.solve(m, v), rtol=1e-10
  )
  np.testing.assert_allclose(
    evaluate("solve(M, v)", {"M": m, "v": v}), np.linalg.solve(m, v), rtol=1e-12
  )


def test_vectors_ones_and_the_q2_forms():
  a = np.array([1.0, 0.1, 0.01])
  np.testing.assert_allclose(evaluate("[1/3, 10/3, 100/3]"), [1 / 3, 10 / 3, 100 / 3], rtol=1e-15)
  np.testing.assert_allclose(evaluate("ones(3) / 1.11"), np.full(3, 1 / 1.11), rtol=1e-15)
  np.testing.assert_allclose(
    evaluate("ones(a) / sum(a)", {"a": a}), np.full(3, 1 / 1.11), rtol=1e-15
  )
  np.testing.assert_allclose(evaluate("a / dot(a, a)", {"a": a}), a / 1.0101, rtol=1e-14)
  np.testing.assert_array_equal(evaluate("[[1, 2], [3, 4]]"), [[1.0, 2.0], [3.0, 4.0]])
  assert (
    float(evaluate("ones(alpha)", {"alpha": 0.3})) == 1.0
  )  # a variable argument: ones shaped like it


def test_division_by_zero_gives_inf_or_nan_without_raising():
  assert np.isinf(evaluate("1/0"))
  assert np.isnan(evaluate("g/norm2(g)", {"g": np.zeros(2)})).all()


def test_expression_records_the_variables_it_uses():
  e = parse("-alpha/2 * g", variables=("g", "alpha", "p"))
  assert e.variables == {"g", "alpha"} and not e.is_constant
  assert parse("1/3").is_constant


def test_expression_error_is_a_user_input_error_with_the_field_in_front():
  with pytest.raises(UserInputError, match=r"^q1\.penalty\.l2: unknown name 'h' at position 8"):
    parse("-alpha*h", variables=("g", "alpha"), field="q1.penalty.l2")


# --- hostile or malformed input: refused, with the token and its position, quickly,
# no side effect ---

HOSTILE = [
  ("__import__('os').system('touch PWNED')", r"'__import__' at position 1"),
  ("g.__class__.__mro__", r"attribute access \('\.'\) at position 2"),
  ("().__class__", r"attribute access \('\.'\) at position 3"),
  ("(lambda: 1)()", r"'lambda' at position 2 is a Python keyword"),
  ("[x for x in g]", r"'for' at position 4 is a Python keyword"),
  ("9**9**9**9", r"exponent .* of '\*\*' at position 5 is refused"),
  ("9**9**9", r"exponent .* of '\*\*' at position 2 is refused"),
  ("2**(10*10)", r"exponent 100 of '\*\*' at position 2"),
  ("x" * 10**6, r"1000000 characters long; the limit is 2000"),
  ("(" * 10**5 + "1" + ")" * 10**5, r"characters long; the limit is 2000"),
  ("(" * 500 + "1" + ")" * 500, r"nesting deeper than 32 levels at position 33"),
  ("-" * 500 + "1", r"nesting deeper than 32 levels at position 33"),
  ("2**" * 400 + "2", r"nesting deeper than 32 levels"),
  ("g[0]", r"subscript '\[' at position 2"),
  ("sign(g)[0]", r"subscript '\[' at position 8"),
  ("open('PWNED', 'w')", r"string quote \"'\" at position 6"),
  ("exec(g)", r"unknown function 'exec' at position 1"),
  ("eval(g)", r"unknown function 'eval' at position 1"),
  ("globals", r"unknown name 'globals' at position 1"),
  ("np.sign(g)", r"attribute access \('\.'\) at position 3 .*sign\(g\) rather than np\.sign\(g\)"),
  ("g if g else g", r"'if' at position 3 is a Python keyword"),
  ("g; import os", r"character ';' at position 2"),
  ("sign(g)(1)", r"call '\(' at position 8 is not allowed"),
  ("(sign)(g)", r"'sign' at position 2 is a function"),
  ("g(1)", r"'g' at position 1 is a variable, not a function"),
  ("{1: 2}", r"character '\{' at position 1"),
  ("1 2", r"unexpected '2' at position 3"),
  ("2 ^ 3", r"'\^' at position 3 .* write \*\*"),
  ("u = -alpha*g", r"'=' at position 3"),
  ("\u2212alpha*g", r"U\+2212\) at position 1 .*write '-'"),
  ("1e999", r"number '1e999' at position 1 is too large"),
  ("ones(10**5)", r"k must be a whole number from 1 to 4096"),
  (
    "ones(4096) * [" + ",".join(["[1]"] * 300) + "]",
    r"would have shape \(300, 4096\); at most 1000000",
  ),
  ("[[[1]]]", r"3 dimensions; at most 2"),
  ("norm1(g, g)", r"norm1\(\) at position 1 takes 1 argument, got 2"),
  ("", r"the expression is empty"),
  ("(g", r"expected '\)' to close '\(' from position 1, got the end"),
  ("1 // 2", r"unexpected '/' at position 4 \(floor division"),
  ("_x", r"'_x' at position 1 is not allowed"),
  ("g @ 2", r"matrix product at position 3 needs vectors or matrices"),
]


@pytest.mark.parametrize("text, message", HOSTILE, ids=[h[0][:30] for h in HOSTILE])
def test_hostile_input_is_refused_quickly_without_side_effects(
  text, message, tmp_path, monkeypatch
):
  monkeypatch.chdir(tmp_path)
  start = time.perf_counter()
  with pytest.raises(ExpressionError, match=message):
    evaluate(text, {"g": np.array([1.0, -2.0, 3.0]), "alpha": 0.5})
  assert time.perf_counter() - start < HANG_GUARD_S
  assert list(tmp_path.iterdir()) == []  # nothing created (e.g. no PWNED)


# A 240 x 4096 matrix (983,040 entries, under MAX_ELEMENTS) built from a short literal, then reused.
COSTLY = "sum([" + ",".join(["[1]"] * 240) + "] * ones(4096) * 1 * 1)"


def test_expensive_expression_is_stopped_by_the_work_budget_before_it_runs_long():
  assert len(COSTLY) < expr.MAX_LENGTH
  start = time.perf_counter()
  with pytest.raises(expr.ExpressionTooCostly, match=r"takes more than 2000000 operations"):
    evaluate(COSTLY)
  assert time.perf_counter() - start < HANG_GUARD_S


def test_refusal_names_the_token_and_its_position():
  with pytest.raises(ExpressionError) as info:
    parse("-alpha * g.T", variables=("g", "alpha"))
  assert (info.value.position, info.value.token) == (11, ".")


def test_python_eval_exec_compile_are_never_called(monkeypatch):
  def forbidden(*args, **kwargs):
    raise AssertionError("the expression language called Python's eval/exec/compile")

  for name in ("eval", "exec", "compile", "__import__"):
    original = getattr(builtins, name)
    if name == "__import__":
      # Imports already done stay usable; a new import during parse/evaluate would be caught.
      def guarded(n, *a, _orig=original, **k):
        if n not in ("numpy", "math", "re", "difflib"):
          forbidden()
        return _orig(n, *a, **k)

      monkeypatch.setattr(builtins, name, guarded)
    else:
      monkeypatch.setattr(builtins, name, forbidden)
  g = np.array([3.0, -1.0])
  assert evaluate("-alpha/2 * norm1(g) * sign(g)", {"g": g, "alpha": 2.0}).tolist() == [-4.0, 4.0]
  with pytest.raises(ExpressionError):
    evaluate("__import__('os')", {"g": g})


def test_module_source_has_no_dynamic_code_execution():
  import inspect
  import re

  source = inspect.getsource(expr)
  for pattern in (
    r"\beval\(",
    r"\bexec\(",
    r"(?<!re\.)\bcompile\(",
    r"\bimport ast\b",
    r"\bgetattr\(",
    r"__import__\(",
  ):
    assert not re.search(pattern, source), pattern
