"""Grading: right answers pass, plausible wrong answers fail with a counterexample that is really
one.

Every expected answer below is derived in a comment beside it; counterexamples the grader reports
are re-checked here with NumPy closed forms, independently of jaxopt_hw.duality.
"""

import re

import numpy as np
import pytest
import scipy.linalg

from jaxopt_hw.check import grade, sheet
from jaxopt_hw.errors import UserInputError

# random cases per Q1 item (plus the fixed small ones): enough to catch every wrong answer below
TRIALS = 40

# --- Q1 ---------------------------------------------------------------------------------------
# Penalty form: min_u g.u + (1/a)||u||^2. Write u = -t d with ||d|| = 1 and g.d = ||g||_* (the dual
# map): g.u + t^2/a is minimised at t = (a/2)||g||_*, so u = -(a/2)||g||_* d(g),
# value -(a/4)||g||_*^2.
# Ball form: min g.u over ||u|| <= a is -a||g||_*, reached at u = -a d(g).
# Dual norms and maps: l2 -> l2, g/||g||; linf -> l1, sign(g); l1 -> linf, sign(g_i) e_i at
# i = argmax|g_i|; lp -> lq (q = p/(p-1)), sign(g)|g|^(q-1)/||g||_q^(q-1); ||x||_M = sqrt(x'Mx) ->
# ||g||_{M^-1}, M^-1 g/||g||_{M^-1}; spectral -> nuclear, U V' (thin SVD g = U S V').
CORRECT_Q1 = {
  ("penalty", "l2"): "-alpha/2 * g",
  ("penalty", "linf"): "-alpha/2 * norm1(g) * sign(g)",
  ("penalty", "l1"): "-alpha/2 * norminf(g) * sign(g) * onehot_argmax(abs(g))",
  ("penalty", "lp"): "-alpha/2 * normp(g, q)**(2 - q) * sign(g) * abs(g)**(q - 1)",
  ("penalty", "mahalanobis"): "-alpha/2 * inv(M) @ g",
  ("penalty", "spectral"): "-alpha/2 * nuclear(g) * polar(g)",
  ("ball", "l2"): "-alpha * g / norm2(g)",
  ("ball", "linf"): "-alpha * sign(g)",
  ("ball", "l1"): "-alpha * sign(g) * onehot_argmax(abs(g))",
  ("ball", "lp"): "-alpha * sign(g) * abs(g)**(q-1) / normp(g, q)**(q-1)",
  ("ball", "mahalanobis"): "-alpha * solve(M, g) / sqrt(dot(g, solve(M, g)))",
  ("ball", "spectral"): "-alpha * polar(g)",
}

# l1 with tied largest |g_i|: any convex combination of the tied vertices is a minimiser; this one
# takes all of them equally weighted (w = 1 + sign(|g| - ||g||_inf) is 1 exactly at the largest
# |g_i|, else 0), where onehot_argmax takes the first.
L1_ALL_TIED = (
  "-alpha/2 * norminf(g) * sign(g) * (1 + sign(abs(g) - norminf(g)))"
  " / sum(1 + sign(abs(g) - norminf(g)))"
)

# Other correct ways to write them, including a different minimiser where it is not unique.
EQUIVALENT_Q1 = [
  ("penalty", "l2", "-(alpha / 2) * norm2(g) * (g / norm2(g))"),
  ("penalty", "lp", "-alpha/2 * normp(g, p/(p-1))**(2 - p/(p-1)) * sign(g) * abs(g)**(1/(p-1))"),
  ("penalty", "mahalanobis", "-alpha/2 * solve(M, g)"),
  (
    "penalty",
    "spectral",
    "-alpha/2 * nuclear(g) * transpose(polar(transpose(g)))",
  ),  # (V U')' = U V'
  # linf ball with zero coordinates: any value in [-alpha, alpha] there is optimal; move them by
  # -alpha.
  ("ball", "linf", "-alpha * (sign(g) + 1 - abs(sign(g)))"),
  # linf penalty, the same tie: any value of size <= (alpha/2)||g||_1 at a zero coordinate.
  ("penalty", "linf", "-alpha/2 * norm1(g) * (sign(g) + 1 - abs(sign(g)))"),
  ("penalty", "l1", L1_ALL_TIED),
  # Rearranged arithmetic: the same minimiser up to rounding.
  ("penalty", "l2", "-alpha*g/2"),
  ("penalty", "l2", "-(alpha*g)/2 + 0*g"),
  ("ball", "l2", "-alpha * g / sqrt(dot(g, g))"),
  ("penalty", "lp", "-alpha/2 * normp(g, q)**(2 - q) * sign(g) * exp((q - 1) * log(abs(g)))"),
  ("ball", "lp", "-alpha * (sign(g) * abs(g)**(q-1)) / normp(abs(g)**(q-1), p)"),
  ("ball", "mahalanobis", "-alpha * inv(M) @ g / sqrt(dot(g, inv(M) @ g))"),
  ("ball", "spectral", "-alpha * transpose(polar(transpose(g)))"),
]

# Plausible wrong answers (what people and models write), each with why it is wrong.
WRONG_Q1 = [
  ("penalty", "l2", "-alpha * g", "the 1/(2 alpha) convention: a rescaled alpha"),
  ("penalty", "l2", "-2 * alpha * g", "rescaled alpha the other way"),
  (
    "penalty",
    "linf",
    "-alpha/2 * norminf(g) * sign(g)",
    "sign scaled by the infinity norm instead of the l1 norm",
  ),
  ("penalty", "linf", "-alpha/2 * sign(g)", "unscaled sign"),
  ("penalty", "linf", "-alpha/2 * clip(g, -1, 1)", "clipping"),
  (
    "penalty",
    "l1",
    "-alpha/2 * norminf(g) * sign(g)",
    "every coordinate moved: that is the linf geometry",
  ),
  (
    "penalty",
    "lp",
    "-alpha/2 * normp(g, p)**(2 - p) * sign(g) * abs(g)**(p - 1)",
    "p used where the dual exponent q belongs",
  ),
  ("penalty", "mahalanobis", "-alpha/2 * M @ g", "M instead of its inverse"),
  ("penalty", "spectral", "-alpha/2 * g", "the gradient, not orthogonalised"),
  (
    "penalty",
    "spectral",
    "-alpha/2 * opnorm(g) * polar(g)",
    "spectral norm where its dual (nuclear) belongs",
  ),
  ("ball", "linf", "-alpha * g / norm2(g)", "the l2 ball's answer for the linf ball"),
  ("ball", "linf", "-alpha * clip(g, -1, 1)", "clipping instead of sign"),
  ("ball", "l2", "-alpha * sign(g)", "sign for the l2 ball: infeasible"),
  ("ball", "l2", "-alpha/2 * g", "the penalty answer given for the ball"),
  ("ball", "spectral", "-alpha * g / opnorm(g)", "scaled, not orthogonalised"),
]


# Near misses: answers within about 1e-5 of a minimiser. The objective grows with the *square* of
# the error near its minimum, so these are within 1e-8 of the optimum and passed when Q1 was graded
# by the objective alone (issue 11.9). Every minimiser has ||u|| = (alpha/2)||g||_* (penalty
# form), and where the minimiser is unique the update itself is compared: both move linearly with
# the error.
# (form, norm, text, why, scale): scale=True when it is the size that is off, False when only the
# direction is (the size, and for the ball form feasibility, are exact).
NEAR_MISS_Q1 = [
  ("penalty", "l2", "-alpha/2.0001*g", "alpha/2 written as alpha/2.0001: 5e-5 short", True),
  ("penalty", "l2", "-0.5*alpha*g*(1+1e-5)", "1e-5 too long", True),
  (
    "penalty",
    "lp",
    "-alpha/2 * normp(g, q)**(2 - q) * sign(g) * abs(g)**(q - 1) * 1.00005",
    "the right lp answer times 1.00005",
    True,
  ),
  ("penalty", "mahalanobis", "-alpha/2 * solve(M, g) * (1 + 1e-5)", "1e-5 too long", True),
  ("penalty", "spectral", "-alpha/2 * nuclear(g) * polar(g) * 1.00005", "5e-5 too long", True),
  # Norms whose minimisers tie are graded by the objective, but their size is still unique.
  ("penalty", "linf", "-alpha/2 * norm1(g) * sign(g) * 1.00005", "5e-5 too long", True),
  (
    "penalty",
    "l1",
    "-alpha/2 * norminf(g) * sign(g) * onehot_argmax(abs(g)) / 1.00005",
    "5e-5 short",
    True,
  ),
  # The right size in a direction 1e-5 off (normalised by the norm itself: exactly feasible).
  (
    "ball",
    "l2",
    "-alpha * (g + 1e-5*norm2(g)*ones(g)) / norm2(g + 1e-5*norm2(g)*ones(g))",
    "the direction of g tilted by 1e-5",
    False,
  ),
  (
    "ball",
    "lp",
    "-alpha * sign(g) * abs(g)**(q - 1 + 1e-5) / normp(abs(g)**(q - 1 + 1e-5), p)",
    "the exponent q - 1 off by 1e-5",
    False,
  ),
  (
    "ball",
    "mahalanobis",
    "-alpha * solve(M, g + 1e-5*norm2(g)*ones(g))"
    " / sqrt(dot(g + 1e-5*norm2(g)*ones(g), solve(M, g + 1e-5*norm2(g)*ones(g))))",
    "M^-1 g for a gradient tilted by 1e-5",
    False,
  ),
  (
    "penalty",
    "l2",
    "-alpha/2 * norm2(g) * (g + 1e-5*norm2(g)*ones(g)) / norm2(g + 1e-5*norm2(g)*ones(g))",
    "the right size in a direction tilted by 1e-5",
    False,
  ),
]


def _closed_form_update(norm, form, g, alpha, p=None, M=None):
  """The unique minimiser from NumPy/SciPy closed forms (derivation at the top of this section)."""
  if norm == "l2":
    dual, d = np.linalg.norm(g), g / np.linalg.norm(g)
  elif norm == "lp":
    q = p / (p - 1)
    dual = (np.abs(g) ** q).sum() ** (1 / q)
    d = np.sign(g) * np.abs(g) ** (q - 1) / dual ** (q - 1)
  elif norm == "mahalanobis":
    dual = np.sqrt(g @ np.linalg.solve(M, g))
    d = np.linalg.solve(M, g) / dual
  else:  # spectral: scipy.linalg.polar's orthogonal factor U V' (independent of our SVD code)
    dual, d = np.linalg.norm(g, "nuc"), scipy.linalg.polar(g)[0]
  return -alpha / 2 * dual * d if form == "penalty" else -alpha * d


def _closed_form(norm, form, g, alpha, p=None, M=None):
  """(objective of u, feasibility of u) evaluator and the optimum, from NumPy closed forms."""
  if norm == "l2":
    value, dual = (lambda x: np.linalg.norm(x.ravel())), np.linalg.norm(g)
  elif norm == "linf":
    value, dual = (lambda x: np.abs(x).max()), np.abs(g).sum()
  elif norm == "l1":
    value, dual = (lambda x: np.abs(x).sum()), np.abs(g).max()
  elif norm == "lp":
    q = p / (p - 1)
    value, dual = (lambda x: (np.abs(x) ** p).sum() ** (1 / p)), (np.abs(g) ** q).sum() ** (1 / q)
  elif norm == "mahalanobis":
    value, dual = (lambda x: np.sqrt(x @ M @ x)), np.sqrt(g @ np.linalg.solve(M, g))
  else:  # spectral: operator norm; its dual is the nuclear norm
    value, dual = (lambda x: np.linalg.norm(x, 2)), np.linalg.norm(g, "nuc")
  if form == "penalty":
    return (lambda u: np.sum(g * u) + value(u) ** 2 / alpha), -alpha / 4 * dual**2, value
  return (lambda u: np.sum(g * u)), -alpha * dual, value


@pytest.mark.parametrize("form, norm", sorted(CORRECT_Q1))
def test_correct_q1_answers_pass(form, norm):
  claim = sheet.update_claim(norm, form, CORRECT_Q1[form, norm])
  result = grade.grade_update(claim, trials=TRIALS)
  assert result.passed, (result.summary, result.details)
  assert result.evidence["failed"] == 0 and result.evidence["max_relative_gap"] <= grade.Q1_RTOL


@pytest.mark.parametrize("form, norm, text", EQUIVALENT_Q1)
def test_other_true_minimisers_pass(form, norm, text):
  result = grade.grade_update(sheet.update_claim(norm, form, text), trials=TRIALS)
  assert result.passed, (result.summary, result.details)


@pytest.mark.parametrize(
  "form, norm, text, why", WRONG_Q1, ids=[f"{w[0]}-{w[1]}-{w[3][:25]}" for w in WRONG_Q1]
)
def test_wrong_q1_answers_fail_with_a_true_counterexample(form, norm, text, why):
  result = grade.grade_update(sheet.update_claim(norm, form, text), trials=TRIALS)
  assert not result.passed, why
  cx = result.evidence["counterexample"]
  g, alpha = np.asarray(cx["g"]), cx["alpha"]
  u = np.asarray(cx["claim_update"])
  objective, optimum, value = _closed_form(
    norm, form, g, alpha, cx.get("p"), None if "M" not in cx else np.asarray(cx["M"])
  )
  # Independently of the grader: the claim really is infeasible or worse than the optimum here ...
  infeasible = form == "ball" and value(u) > alpha * (1 + 1e-6)
  assert infeasible or objective(u) > optimum + 1e-6 * abs(optimum), (why, cx)
  # ... and the true update shown really reaches the optimum.
  assert objective(np.asarray(cx["true_update"])) == pytest.approx(optimum, rel=1e-9)
  assert cx["optimum"] == pytest.approx(optimum, rel=1e-9)
  assert "g = " in result.details[0] and "optimum:" in result.details[-1]


@pytest.mark.parametrize(
  "form, norm, text, why, scale",
  NEAR_MISS_Q1,
  ids=[f"{w[0]}-{w[1]}-{w[3][:30]}" for w in NEAR_MISS_Q1],
)
def test_near_misses_fail_though_their_objective_is_within_tolerance(form, norm, text, why, scale):
  result = grade.grade_update(sheet.update_claim(norm, form, text), trials=TRIALS)
  assert not result.passed, why
  cx = result.evidence["counterexample"]
  g, alpha, p = np.asarray(cx["g"]), cx["alpha"], cx.get("p")
  M = None if "M" not in cx else np.asarray(cx["M"])
  u = np.asarray(cx["claim_update"])
  objective, optimum, value = _closed_form(norm, form, g, alpha, p, M)
  # Independently of the grader: at this case the objective is within 1e-8 of the optimum, so
  # objective-only grading passed it (the loophole) ...
  assert abs(objective(u) - optimum) <= 1e-8 * abs(optimum), (why, cx)
  # ... yet the claim is off by much more than rounding, in its size or in its direction.
  if scale:
    size, dual = value(u), -4 * optimum / alpha if form == "penalty" else None
    assert abs(size - alpha / 2 * np.sqrt(dual)) > 1e-7 * alpha / 2 * np.sqrt(dual), (why, cx)
    assert "every minimiser has ||u|| = (alpha/2)*||g||_*" in result.summary
  else:
    star = _closed_form_update(norm, form, g, alpha, p, M)
    assert np.linalg.norm(u - star) > 1e-7 * np.linalg.norm(star), (why, cx)
    assert "u differs from the unique minimiser" in result.summary
    if form == "ball":
      assert value(u) <= alpha * (1 + 1e-12)  # feasible: only the direction is off


def test_different_minimisers_both_pass_where_they_tie():
  # l1 keeps objective (and size) grading where minimisers tie: these two answers differ at every
  # case with a tied largest |g_i|, and both pass; none is compared with one closed form.
  cases = grade.q1_cases("l1", TRIALS)
  env = next(c.env() for c in cases if np.sum(np.abs(c.g) == np.abs(c.g).max()) > 1)
  first, spread = (
    sheet.update_claim("l1", "penalty", t) for t in (CORRECT_Q1["penalty", "l1"], L1_ALL_TIED)
  )
  assert not np.allclose(first.expression.evaluate(env), spread.expression.evaluate(env))
  for claim in (first, spread):
    result = grade.grade_update(claim, trials=TRIALS)
    assert result.passed and result.evidence["compared_with_unique_minimiser"] == 0


def test_unique_minimisers_are_compared_on_every_case_except_ill_conditioned_spectral_ones():
  for norm in ("l2", "lp", "mahalanobis"):
    result = grade.grade_update(
      sheet.update_claim(norm, "ball", CORRECT_Q1["ball", norm]), trials=8
    )
    assert result.evidence["compared_with_unique_minimiser"] == result.evidence["cases"]
  spectral = grade.grade_update(
    sheet.update_claim("spectral", "ball", CORRECT_Q1["ball", "spectral"]), trials=TRIALS
  )
  cases = grade.q1_cases("spectral", TRIALS)
  # sigma_min >= 1e-4 sigma_max by NumPy's SVD; the fixed [[0, 1], [0, 1]] (rank 1) is not compared.
  well = sum(np.linalg.cond(c.g) <= 1e4 for c in cases)
  assert spectral.evidence["compared_with_unique_minimiser"] == well < len(cases)


def test_trials_are_bounded():
  with pytest.raises(UserInputError, match=r"^trials: 10001 is not allowed; allowed: a whole "):
    grade.q1_cases("l2", trials=grade.MAX_TRIALS + 1)
  with pytest.raises(UserInputError, match=r"^trials: -1 is not allowed"):
    grade.grade_update(sheet.update_claim("l2", "penalty", "-alpha/2*g"), trials=-1)
  with pytest.raises(UserInputError, match=r"^seed: -1 is not allowed; allowed: a whole number"):
    grade.grade_sheet(sheet.loads("[q1.penalty]\nl2 = '-alpha/2*g'\n"), seed=-1)


def test_counterexample_is_the_smallest_case():
  # -alpha*g/norm2(g) is right in one dimension (it is the sign there) and wrong from two on: the
  # reported case must be two-dimensional, one of the small hand-readable ones.
  result = grade.grade_update(
    sheet.update_claim("linf", "ball", "-alpha * g / norm2(g)"), trials=TRIALS
  )
  cx = result.evidence["counterexample"]
  assert np.asarray(cx["g"]).size == 2 and cx["alpha"] in (1.0, 2.0)


def test_infeasible_ball_answer_is_reported_as_infeasible():
  result = grade.grade_update(sheet.update_claim("l2", "ball", "-alpha * sign(g)"), trials=TRIALS)
  assert "infeasible" in result.summary


def test_q1_claim_of_the_wrong_shape_or_not_finite_fails_with_the_reason():
  scalar = grade.grade_update(sheet.update_claim("l2", "penalty", "-alpha/2 * norm2(g)"), trials=2)
  assert not scalar.passed and "shape" in scalar.summary
  nan = grade.grade_update(sheet.update_claim("l2", "penalty", "g * log(-1)"), trials=2)
  assert not nan.passed and "not finite" in nan.summary
  broken = grade.grade_update(sheet.update_claim("l2", "penalty", "polar(g)"), trials=2)
  assert not broken.passed and "could not be evaluated: polar() at position 1" in broken.summary


def test_q1_cases_cover_ties_zeros_dimensions_and_alphas():
  cases = grade.q1_cases("linf", trials=64, seed=0)
  sizes = [c.g.size for c in cases]
  assert sizes[:12] == sorted(sizes[:12]) and min(sizes) == 1 and max(sizes) == 33
  assert any((c.g == 0).any() and c.g.size > 1 for c in cases)  # zero coordinates
  assert any(len(np.unique(np.abs(c.g))) < c.g.size and c.g.size > 1 for c in cases)  # ties
  alphas = [c.alpha for c in cases]
  assert min(alphas) < 1e-1 and max(alphas) > 1e1
  assert all(not np.all(c.g == 0) for c in cases)  # a zero gradient has every u as ball minimiser


# --- Q2 ---------------------------------------------------------------------------------------
# f(theta) = (1 - a.theta)^2, theta_0 = 0, a = [1, 0.1, 0.01].
# SGD: the gradient is a multiple of a, so theta stays in span(a) and ends on a.theta = 1: a/|a|^2.
# Simplified Adam (one point): M g = sign(g) = -sign(a)*(same sign every coordinate), every
#   coordinate moves by the same amount: theta = c(1,1,1), c*sum(a) = 1, c = 1/1.11.
# Rescaling x_i -> x_i/|a_i| (unit second moment): SGD gives (1,1,1)/3, i.e. theta_i = 1/(3 a_i).
A = np.array([1.0, 0.1, 0.01])
DERIVED_THETAS = {
  "sgd": A / A.dot(A),
  "simplified_adam": np.ones(3) / A.sum(),
  "rescaled_sgd": 1 / (3 * A),
}

CORRECT_Q2 = [
  ("sgd", "a / dot(a, a)"),
  ("sgd", "[1, 0.1, 0.01] / 1.0101"),
  ("sgd", [0.990000990001, 0.0990000990001, 0.00990000990001]),
  ("simplified_adam", "ones(3) / 1.11"),
  ("simplified_adam", ["1/1.11", "1/1.11", "1/1.11"]),
  ("rescaled_sgd", ["1/3", "10/3", "100/3"]),
  ("rescaled_sgd", "1 / (3*a)"),
]
WRONG_Q2 = [
  ("simplified_adam", "a / dot(a, a)", "the SGD answer given for Adam"),
  ("simplified_adam", [0.9, 0.9, 0.9], "rounded to one digit"),
  ("rescaled_sgd", "a / dot(a, a)", "the minimum-norm answer given for rescaling"),
  ("rescaled_sgd", "ones(3) / 3", "not converted back to the original units"),
  ("sgd", "ones(3) / 1.11", "the Adam answer given for SGD"),
  ("sgd", "a", "not normalised"),
]


@pytest.mark.parametrize("method, value", CORRECT_Q2)
def test_q2_grading_logic_passes_right_thetas(method, value):
  result = grade.grade_theta(sheet.theta_claim(method, value), thetas=DERIVED_THETAS, a=A)
  assert result.passed, result.summary


@pytest.mark.parametrize("method, value, why", WRONG_Q2)
def test_q2_grading_logic_fails_wrong_thetas_and_shows_both(method, value, why):
  result = grade.grade_theta(sheet.theta_claim(method, value), thetas=DERIVED_THETAS, a=A)
  assert not result.passed, why
  assert result.details[0].startswith("claim:") and result.details[1].startswith("experiment:")
  np.testing.assert_allclose(result.evidence["experiment"], DERIVED_THETAS[method])


@pytest.mark.parametrize("method, value", CORRECT_Q2)
def test_right_thetas_pass_against_the_real_experiment(method, value):
  result = grade.grade_theta(
    sheet.theta_claim(method, value)
  )  # runs jaxopt_hw.studies.q2 (float64), once
  assert result.passed, (result.summary, result.details)
  np.testing.assert_allclose(result.evidence["experiment"], DERIVED_THETAS[method], rtol=1e-9)


@pytest.mark.parametrize("method, value, why", WRONG_Q2)
def test_wrong_thetas_fail_against_the_real_experiment(method, value, why):
  result = grade.grade_theta(sheet.theta_claim(method, value))
  assert not result.passed, why


def test_q2_claim_of_the_wrong_length_fails():
  result = grade.grade_theta(sheet.theta_claim("sgd", "[1, 2]"), thetas=DERIVED_THETAS, a=A)
  assert not result.passed and "shape (2,)" in result.summary


# --- Q5 ---------------------------------------------------------------------------------------
# All-to-all: each of n workers sends its p-vector to n-1 others: n(n-1) messages of size p.
# Parameter server: n gradients in, n weight copies out: 2n messages of size p.
# Ring all-reduce: 2(n-1) steps (reduce-scatter then all-gather), each worker sends one p/n chunk
#   per step: 2n(n-1) messages of size p/n.
CORRECT_Q5 = {
  "all_to_all": ("n*(n-1)", "p"),
  "parameter_server": ("2*n", "p"),
  "ring_allreduce": ("2*n*(n-1)", "p/n"),
}
CLOSED_FORM_Q5 = {  # the same, as Python functions: (messages, message_size)
  "all_to_all": (lambda n, p: n * (n - 1), lambda n, p: p),
  "parameter_server": (lambda n, p: 2 * n, lambda n, p: p),
  "ring_allreduce": (lambda n, p: 2 * n * (n - 1), lambda n, p: p // n),
}
WRONG_Q5 = [
  ("ring_allreduce", "2*n*(n-1)", "p", "message_size", "swapped message size: p instead of p/n"),
  ("all_to_all", "n*(n-1)", "p/n", "message_size", "the ring's chunk size"),
  ("ring_allreduce", "2*(n-1)", "p/n", "messages", "per worker, not total"),
  ("parameter_server", "n", "p", "messages", "only the gradients, not the weights sent back"),
  ("all_to_all", "n**2", "p", "messages", "counts sending to oneself"),
]


@pytest.mark.parametrize("paradigm", sorted(CORRECT_Q5))
def test_correct_q5_answers_pass_against_the_compiled_programs(paradigm):
  result = grade.grade_messages(sheet.message_claim(paradigm, *CORRECT_Q5[paradigm]))
  assert result.passed, (result.summary, result.details)
  assert len(result.evidence["points"]) == len(grade.Q5_POINTS)


@pytest.mark.parametrize("paradigm, messages, size, wrong_key, why", WRONG_Q5)
def test_wrong_q5_answers_fail_at_a_named_point(paradigm, messages, size, wrong_key, why):
  result = grade.grade_messages(sheet.message_claim(paradigm, messages, size))
  assert not result.passed, why
  cx = result.evidence["counterexample"]
  assert cx["item"] == wrong_key
  n, p = cx["n"], cx["p"]
  # The measured value equals the closed form at that point, and the claim does not.
  assert cx["measured"] == CLOSED_FORM_Q5[paradigm][("messages", "message_size").index(wrong_key)](
    n, p
  )
  assert cx["claim"] != cx["measured"]
  assert f"n={n}, p={p}" in result.summary


def test_q5_grading_uses_the_given_measurement():
  calls = []

  def fake(paradigm, n, p):
    calls.append((paradigm, n, p))
    return (n * (n - 1), p)

  claim = sheet.message_claim("all_to_all", "n*(n-1)", "p")
  assert grade.grade_messages(claim, points=[(2, 4), (3, 9)], measure=fake).passed
  assert calls == [("all_to_all", 2, 4), ("all_to_all", 3, 9)]


# A 240 x 4096 matrix (under the size limit) built from a short literal, then reused twice.
COSTLY = "sum([" + ",".join(["[1]"] * 240) + "] * ones(4096) * 1 * 1)"


def test_too_costly_claim_is_refused_not_graded():
  claim = sheet.message_claim("all_to_all", COSTLY, "p")
  result = grade.grade_messages(claim, points=[(2, 4)], measure=lambda *a: (2, 4))
  assert result.refused and result.status == "REFUSED" and not result.passed
  assert result.evidence["reason"].startswith(
    "q5.all_to_all.messages: evaluating the expression takes more than"
  )
  q1 = grade.grade_update(sheet.update_claim("l2", "penalty", f"g * {COSTLY}"), trials=2)
  assert q1.refused and q1.evidence["reason"].startswith("q1.penalty.l2: evaluating the")
  q2 = grade.grade_theta(sheet.theta_claim("sgd", f"a * {COSTLY}"), thetas=DERIVED_THETAS, a=A)
  assert q2.refused and q2.evidence["reason"].startswith("q2.sgd: evaluating the")


def test_q5_needs_enough_devices(monkeypatch):
  import jax

  monkeypatch.setattr(jax, "devices", lambda *a: [object()] * 2)
  with pytest.raises(
    UserInputError,
    match=r"q5\.parameter_server: grading needs at least 3 devices, this process has 2",
  ):
    grade.q5_points("parameter_server")


# --- the sheet ----------------------------------------------------------------------------------


def test_the_packaged_example_sheet_parses_into_every_item():
  from pathlib import Path

  example = sheet.load(Path(__file__).resolve().parent.parent / "configs" / "answers_example.toml")
  keys = [c.key for c in example.claims]
  assert keys == [f"q1.{f}.{n}" for f in sheet.FORMS for n in sheet.NORMS] + [
    f"q2.{m}" for m in sheet.METHODS
  ] + [f"q5.{p}" for p in sheet.PARADIGMS]
  # The sheet's Q1 answers are the ones derived above (same minimisers, possibly written
  # differently).
  for claim in example.claims:
    if isinstance(claim, sheet.ThetaClaim):
      np.testing.assert_allclose(
        grade.grade_theta(claim, thetas=DERIVED_THETAS, a=A).evidence["claim_value"],
        DERIVED_THETAS[claim.method],
        rtol=1e-12,
      )
    elif isinstance(claim, sheet.MessageClaim):
      assert (claim.messages.text, claim.message_size.text) == CORRECT_Q5[claim.paradigm]


# A sheet whose structure is wrong is refused as a whole, before anything is graded.
MALFORMED = [
  (
    "[q3]\nx = 1\n",
    r"^s\.toml: 'q3' is not valid; questions a sheet may hold \(and 'title'\): q1, q2, q5$",
  ),
  (
    "[q1.penalty]\nl3 = '-g'\n",
    r"^q1\.penalty: 'l3' is not valid.*norms: l2, linf, l1, lp, mahalanobis, spectral$",
  ),
  ("[q1.pealty]\nl2 = '-g'\n", r"^q1: 'pealty' is not valid \(did you mean 'penalty'\?\)"),
  ("[q1]\nl2 = '-g'\n", r"^q1: 'l2' is not valid; forms"),
  ("q1 = 'x'\n", r"^q1: expected a table"),
  ("[q2]\nadam = '1'\n", r"^q2: 'adam' is not valid.*methods: sgd, simplified_adam, rescaled_sgd$"),
  (
    "[q5.ring_allreduce]\nmessages = '2*n*(n-1)'\n",
    r"^q5\.ring_allreduce: missing message_size; a paradigm needs both",
  ),
  ("[q5.ring]\nmessages = '1'\nmessage_size = '1'\n", r"^q5: 'ring' is not valid.*paradigms"),
  (
    "[q5.all_to_all]\nmessages = 'n*(n-1)'\nmessage_size = 'p'\nbytes = 1\n",
    r"^q5\.all_to_all: 'bytes' is not valid; keys: messages, message_size$",
  ),
  ("title = 'x'\n", r"^s\.toml: no answers to grade"),
  ("title = 3\n[q2]\nsgd='a'\n", r"^s\.toml: title must be a string"),
  ("[q1.penalty\n", r"^s\.toml: not valid TOML"),
  (
    "x = " + "[" * 100_000 + "]" * 100_000,
    r"^s\.toml: arrays or tables nested too deeply to read$",
  ),
]


@pytest.mark.parametrize("text, message", MALFORMED, ids=[m[0][:30] for m in MALFORMED])
def test_malformed_sheet_is_refused_with_the_place_and_what_is_allowed(text, message):
  with pytest.raises(UserInputError, match=message):
    sheet.loads(text, "s.toml")


# An item whose answer cannot be read is refused on its own (issue 12.4: one item must never abort
# the sheet); the reason names the item and what is allowed.
UNREADABLE_ITEMS = [
  (
    "[q1.penalty]\nl2 = 3\n",
    "q1.penalty.l2",
    r"^q1\.penalty\.l2: expected an expression \(a string\), e\.g\. \"-alpha/2 \* g\"; got an "
    r"integer 3$",
  ),
  (
    '[q1.penalty]\nl2 = "-alpha/2 * M @ g"\n',
    "q1.penalty.l2",
    r"^q1\.penalty\.l2: unknown name 'M' at position 12; variables here: alpha, g$",
  ),
  (
    "[q1.penalty]\nl2 = \"__import__('os').system('touch PWNED')\"\n",
    "q1.penalty.l2",
    r"^q1\.penalty\.l2: name '__import__' at position 1 is not allowed",
  ),
  ("[q2]\nsgd = [1, 2]\n", "q2.sgd", r"^q2\.sgd: theta has 3 coordinates; the list has 2$"),
  (
    "[q2]\nsgd = [1, true, 2]\n",
    "q2.sgd",
    r"^q2\.sgd\[1\]: expected an expression \(a string\) or a number.*got a boolean True$",
  ),
  ("[q2]\nsgd = 0.5\n", "q2.sgd", r"^q2\.sgd: expected an expression .* or a list of 3 numbers"),
  (
    '[q2]\nsgd = ["1/3", "1/", "1"]\n',
    "q2.sgd",
    r"^q2\.sgd\[1\]: the expression ends too early",
  ),
  (
    "[q5.all_to_all]\nmessages = 'n*(n-1)'\nmessage_size = 'g'\n",
    "q5.all_to_all",
    r"^q5\.all_to_all\.message_size: unknown name 'g' at position 1.*variables here: n, p$",
  ),
]
# A correct item of another question, added to each sheet above: it must still be read.
_OTHER = {"q1": "[q2]\nsgd = 'a / dot(a, a)'\n", "q2": "[q1.ball]\nlinf = '-alpha * sign(g)'\n"}


@pytest.mark.parametrize(
  "text, key, message", UNREADABLE_ITEMS, ids=[m[0][:30] for m in UNREADABLE_ITEMS]
)
def test_an_unreadable_item_is_refused_alone_and_the_rest_is_read(text, key, message):
  other = _OTHER["q2"] if text.startswith("[q2]") else _OTHER["q1"]
  parsed = sheet.loads(text + other, "s.toml")
  (refused,) = parsed.refused
  assert refused.key == key and re.match(message, refused.reason), refused.reason
  assert len(parsed.claims) == 2  # the other item is there, parsed
  result = grade.grade_claim(refused)
  assert result.status == "REFUSED" and result.evidence["reason"] == refused.reason


def test_a_sheet_may_hold_any_subset():
  only = sheet.loads("[q5.parameter_server]\nmessages = 8\nmessage_size = 'p'\n")
  assert [c.key for c in only.claims] == ["q5.parameter_server"]
  assert only.claims[0].messages.text == "8"  # a plain number is a constant expression


def test_report_formats_and_serialises():
  claim = sheet.message_claim("all_to_all", "n*(n-1)", "p/n")
  result = grade.grade_messages(claim, points=[(2, 4)], measure=lambda *a: (2, 4))
  report = grade.Report([result], "s.toml", "t")
  assert not report.passed
  text = report.format_text()
  assert (
    "FAIL  q5.all_to_all" in text
    and "message_size differs at n=2, p=4: claim 2, measured 4" in text
  )
  assert text.endswith("0 of 1 items pass; 1 fail.")
  import json

  data = json.loads(json.dumps(report.to_dict()))
  assert (
    data["counts"] == {"pass": 0, "fail": 1, "refused": 0, "total": 1}
    and data["items"][0]["status"] == "FAIL"
  )


def test_report_counts_refused_items_apart_from_failures():
  refused = grade.grade_claim(sheet.loads("[q2]\nsgd = 'a.T'\n").claims[0])
  failed = grade.grade_messages(
    sheet.message_claim("all_to_all", "n*n", "p"), points=[(2, 4)], measure=lambda *a: (2, 4)
  )
  report = grade.Report([refused, failed])
  assert report.refused == [refused] and not report.passed
  assert report.format_text().endswith("0 of 2 items pass; 1 fail, 1 refused.")
  assert "REFUSED  q2.sgd" in report.format_text()
  assert report.to_dict()["counts"] == {"pass": 0, "fail": 1, "refused": 1, "total": 2}
