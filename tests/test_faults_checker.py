"""Issue 12, the checker's part: hostile or unlucky answers must be graded or refused in one line,
quickly, and never take the rest of the sheet down with them.

Hangs are tested in a subprocess with a timeout (LAPACK spinning inside one call cannot be stopped
from Python, so an in-process test would hang the suite instead of failing).
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jaxopt_hw.check import cli, grade, sheet
from jaxopt_hw.check.expr import FUNCTIONS, ExpressionError, evaluate, parse

# A hang guard, not a speed claim: each subprocess below finishes in seconds (most of it importing
# JAX); one that runs into this limit hangs.
HANG_GUARD_S = 120

# The matrix of issue 12.2: LAPACK's SVD never returns on it.
INF_MATRIX = "[[1/0,1,1],[1,1,1],[1,1,1]]"
POISON = f"0*sum(polar({INF_MATRIX}))"


def _run(args, cwd, timeout=HANG_GUARD_S):
  return subprocess.run(
    [sys.executable, "-m", "jaxopt_hw", *args],
    capture_output=True,
    text=True,
    timeout=timeout,
    cwd=cwd,
  )


# --- 12.2: non-finite input to the linear-algebra functions ------------------------------------

# One call of every function of the language, with X (and w) holding the bad value. A function
# added to the language must be added here (the test checks the keys), so none escapes the check.
CALLS = {
  "sign": "sign(X)",
  "abs": "abs(X)",
  "sqrt": "sqrt(X)",
  "exp": "exp(X)",
  "log": "log(X)",
  "sum": "sum(X)",
  "mean": "mean(X)",
  "max": "max(X)",
  "min": "min(X, X)",
  "clip": "clip(X, 0, 1)",
  "norm1": "norm1(X)",
  "norm2": "norm2(X)",
  "norminf": "norminf(X)",
  "normp": "normp(X, 3)",
  "dot": "dot(X, X)",
  "matmul": "matmul(X, X) + X @ X",
  "transpose": "transpose(X)",
  "ones": "ones(X)",
  "ones_like": "ones_like(X)",
  "zeros_like": "zeros_like(X)",
  "size": "size(X)",
  "onehot_argmax": "onehot_argmax(X)",
  "polar": "polar(X)",
  "nuclear": "nuclear(X)",
  "opnorm": "opnorm(X)",
  "inv": "inv(X)",
  "solve": "solve(X, ones(3)) + solve(A, w)",
}
# The ones that call LAPACK: non-finite in, NaN out (of the result's shape), without calling it.
LINEAR_ALGEBRA = {"polar": (3, 3), "nuclear": (), "opnorm": (), "inv": (3, 3), "solve": (3,)}

_PROBE = textwrap.dedent(
  """
  import json, sys
  import numpy as np
  from jaxopt_hw.check.expr import evaluate, ExpressionError
  calls = json.loads(sys.argv[1])
  out = {}
  for bad in ("1/0", "-1/0", "0/0"):
    X = f"[[{bad}, 1, 2], [1, 3, 1], [2, 1, 4]]"
    env = {"A": np.array([[2.0, 1, 0], [1, 3, 1], [0, 1, 4]])}
    for name, call in calls.items():
      text = call.replace("X", X).replace("w", f"[1, {bad}, 1]")
      try:
        v = evaluate(text, env)
        out[f"{name} {bad}"] = [list(v.shape), bool(np.isnan(v).all())]
      except ExpressionError as e:
        out[f"{name} {bad}"] = str(e)
  print(json.dumps(out))
  """
)


def test_every_function_of_the_language_returns_at_once_on_inf_and_nan(tmp_path):
  assert set(CALLS) == set(FUNCTIONS)
  done = subprocess.run(
    [sys.executable, "-c", _PROBE, json.dumps(CALLS)],
    capture_output=True,
    text=True,
    timeout=HANG_GUARD_S,
    cwd=tmp_path,
  )
  assert done.returncode == 0, done.stderr
  out = json.loads(done.stdout)
  for name, shape in LINEAR_ALGEBRA.items():
    for bad in ("1/0", "-1/0", "0/0"):
      # NaN of the result's shape: inf has no meaningful SVD, inverse or solution here.
      assert out[f"{name} {bad}"] == [list(shape), True], (name, bad, out[f"{name} {bad}"])


def test_every_function_that_calls_lapack_is_guarded():
  import inspect

  calls_lapack = {
    name
    for name, f in FUNCTIONS.items()
    if inspect.isfunction(f.fn) and "np.linalg" in inspect.getsource(f.fn)
  }
  assert calls_lapack == set(LINEAR_ALGEBRA)


def test_the_hanging_update_of_the_issue_is_graded_fail_at_once(tmp_path):
  done = _run(
    ["check", "update", "--norm", "l2", "--trials", "0", f"-alpha/2*g + {POISON}"], tmp_path
  )
  assert done.returncode == 1, done.stderr
  assert "FAIL  q1.penalty.l2" in done.stdout and "the claim is not finite" in done.stdout
  assert "Traceback" not in done.stderr


def test_a_sheet_with_the_hanging_claim_in_q1_q2_and_q5_is_graded(tmp_path):
  answers = tmp_path / "answers.toml"
  answers.write_text(
    f'[q1.penalty]\nl2 = "-alpha/2*g + {POISON}"\n'
    '[q1.ball]\nlinf = "-alpha * sign(g)"\n'
    f'[q2]\nsgd = "a / dot(a, a) + {POISON}"\n'
    f'[q5.all_to_all]\nmessages = "n*(n-1) + {POISON}"\nmessage_size = "p"\n'
  )
  done = _run(["check", str(answers), "--json", "--trials", "0"], tmp_path)
  assert done.returncode == 1, done.stderr
  status = {i["item"]: i["status"] for i in json.loads(done.stdout)["items"]}
  assert status == {
    "q1.penalty.l2": "FAIL",
    "q1.ball.linf": "PASS",
    "q2.sgd": "FAIL",
    "q5.all_to_all": "FAIL",
  }


# --- 12.4: a long but legal expression; one item never aborts the sheet --------------------------


def test_a_long_legal_expression_is_evaluated_without_recursion():
  g = np.array([1.0, -2.0])
  # 1 + 500 terms: 501 g (arithmetic); 999 subtractions: g - 999 g = -998 g.
  np.testing.assert_array_equal(evaluate("g" + "+g" * 500, {"g": g}), 501 * g)
  np.testing.assert_array_equal(evaluate("g" + "-g" * 999, {"g": g}), -998 * g)
  expression = parse("g" + "*1" * 999, ["g"])
  assert expression == parse(expression.text, ["g"]) and "g*1*1" in repr(expression)
  hash(expression)


def test_a_long_claim_in_a_sheet_is_graded_and_the_other_items_too(tmp_path, capsys):
  wrong = "g" + "+g" * 500  # the issue's expression (1001 characters): 501 g, wrong
  right = "-alpha/2*g" + "+0*g" * 400  # 1610 characters, and right
  answers = tmp_path / "answers.toml"
  answers.write_text(
    f'[q1.penalty]\nl2 = "{wrong}"\nlinf = "-alpha/2 * norm1(g) * sign(g)"\n'
    f'[q1.ball]\nl2 = "{right.replace("alpha/2", "alpha").replace("*g", "*g/norm2(g)", 1)}"\n'
  )
  assert cli.main([str(answers), "--json", "--trials", "2"]) == 1
  items = {i["item"]: i["status"] for i in json.loads(capsys.readouterr().out)["items"]}
  assert items == {"q1.penalty.l2": "FAIL", "q1.penalty.linf": "PASS", "q1.ball.l2": "PASS"}
  assert cli.main(["update", "--norm", "l2", "--trials", "2", right]) == 0
  capsys.readouterr()


# A 240 x 4096 matrix (under the size limit) built from a short literal, then reused: past the work
# limit.
COSTLY = "sum([" + ",".join(["[1]"] * 240) + "] * ones(4096) * 1 * 1)"


def test_one_unreadable_or_too_costly_item_is_refused_and_the_others_graded(tmp_path, capsys):
  answers = tmp_path / "answers.toml"
  answers.write_text(
    '[q1.penalty]\nl2 = "np.multiply(-alpha/2, g)"\n'  # outside the language
    f'linf = "-alpha/2 * norm1(g) * sign(g) + 0*{COSTLY}"\n'  # past the work limit
    '[q1.ball]\nlinf = "-alpha * sign(g)"\n'  # right
    '[q2]\nsgd = "a / dot(a, a"\n'  # unclosed
  )
  assert cli.main([str(answers), "--json", "--trials", "2"]) == 2
  captured = capsys.readouterr()
  data = json.loads(captured.out)
  status = {i["item"]: i["status"] for i in data["items"]}
  assert status == {
    "q1.penalty.l2": "REFUSED",
    "q1.penalty.linf": "REFUSED",
    "q1.ball.linf": "PASS",
    "q2.sgd": "REFUSED",
  }
  assert data["counts"] == {"pass": 1, "fail": 0, "refused": 3, "total": 4}
  # One line on stderr: the first reason, naming the item, and how many more.
  assert captured.err == (
    "error: q1.penalty.l2: attribute access ('.') at position 3 is not allowed; write the "
    "function directly, e.g. sign(g) rather than np.sign(g) (and 2 more refused; see the report)\n"
  )
  # The same sheet as text: every item has its line, the right one passes.
  assert cli.main([str(answers), "--trials", "2"]) == 2
  out = capsys.readouterr().out
  # ... the keys in one column, the statuses padded to REFUSED's width
  assert "PASS     q1.ball.linf" in out and "REFUSED  q1.penalty.linf" in out
  assert "evaluating the expression takes more than 2000000 operations" in out
  assert out.rstrip().endswith("1 of 4 items pass; 3 refused.")


@pytest.mark.parametrize("text", ["ones(1/0) * g", "ones(0/0) * g"])
def test_an_evaluation_that_used_to_crash_is_graded_fail(text):
  result = grade.grade_update(sheet.update_claim("l2", "penalty", text), trials=0)
  assert result.status == "FAIL"
  assert "could not be evaluated: ones(" in result.summary
  assert "k must be a whole number from 1 to 4096" in result.summary


def test_a_crashing_constant_exponent_is_refused_while_parsing():
  with pytest.raises(ExpressionError, match=r"ones\(inf\) at position 4: k must be a whole"):
    parse("2**ones(1/0)")


# --- 12.12: --trials is bounded ----------------------------------------------------------------


@pytest.mark.parametrize(
  "argv, trials",
  [
    (["update", "--norm", "l2", "--trials", "1000000000", "-alpha/2*g"], 1000000000),
    (["answers_example", "--trials", "1000000000"], 1000000000),
    (["answers_example", "--json", "--trials", "10001"], 10001),
  ],
  ids=["update", "sheet", "sheet-json"],
)
def test_too_many_trials_are_refused_before_any_case_is_made(argv, trials, capsys, monkeypatch):
  def no_cases(*args, **kwargs):
    raise AssertionError("Q1 cases were generated")

  monkeypatch.setattr(grade, "q1_cases", no_cases)
  assert cli.main(argv) == 2
  captured = capsys.readouterr()
  assert captured.out == ""
  assert captured.err == (
    f"error: --trials: {trials} is not allowed; allowed: a whole number from 0 to 10000\n"
  )


def test_a_negative_seed_is_refused_in_one_line(capsys):
  assert cli.main(["update", "--norm", "l2", "--seed", "-1", "-alpha/2*g"]) == 2
  assert capsys.readouterr().err == (
    "error: --seed: -1 is not allowed; allowed: a whole number >= 0\n"
  )


# --- 12.14: an error names the item by its real key ----------------------------------------------


@pytest.mark.parametrize(
  "argv, start",
  [
    (
      ["messages", "--paradigm", "ring_allreduce", "--messages", "9**9**9", "--message-size", "p"],
      "error: q5.ring_allreduce.messages: exponent ",
    ),
    (
      ["messages", "--paradigm", "all_to_all", "--messages", "n", "--message-size", "g"],
      "error: q5.all_to_all.message_size: unknown name 'g'",
    ),
    (
      ["update", "--norm", "linf", "--form", "ball", "g.T"],
      "error: q1.ball.linf: attribute access",
    ),
    (["theta", "--method", "rescaled_sgd", "a["], "error: q2.rescaled_sgd: subscript '['"),
  ],
  ids=["messages", "message_size", "update", "theta"],
)
def test_an_inline_claim_error_names_the_item_by_its_key(argv, start, capsys):
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith(start) and err.count("\n") == 1


# --- found while probing the above: claims that overflow ------------------------------------------


def test_a_claim_whose_objective_overflows_is_graded_fail_not_a_crash():
  # max|u| = 1e200 exactly, so ||u||^2 overflows: a Python float's ** raised OverflowError.
  result = grade.grade_update(sheet.update_claim("linf", "penalty", "-1e200*sign(g)"), trials=4)
  assert result.status == "FAIL" and "the objective overflows" in result.summary


def test_an_objective_of_inf_minus_inf_fails_on_every_case_where_it_happens():
  # Right for dimensions <= 3, astronomically wrong from 4 on: there g.u = -inf and ||u||^2 = inf,
  # so the objective is NaN, which compares false with every bound and used to pass.
  claim = sheet.update_claim("l2", "penalty", "-alpha/2*g - 1e308*sign(g)*max(size(g) - 3, 0)")
  result = grade.grade_update(claim, trials=50)
  wrong = sum(c.g.size >= 4 for c in grade.q1_cases("l2", trials=50))
  assert result.evidence["failed"] == wrong > 0
