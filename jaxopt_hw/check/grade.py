"""Grading claimed answers: Q1 by objective and size, Q2 against the experiment, Q5 against compiled
programs.

* **Q1** (:func:`grade_update`). A claimed update is right when it *is a minimiser*. It is graded
  over a fixed list of small hand-readable cases followed by many random ones (dimensions 1 to 33,
  gradients on scales 1e-2 to 1e2, some with tied or zero coordinates, α from 1e-3 to 1e3, and for
  ``lp`` exponents p from 1.2 to 6), all in float64, on what every minimiser satisfies:

  - penalty form: the claim's objective gᵀu + (1/α)‖u‖² must equal the optimum −(α/4)‖g‖*², and
    its size ‖u‖ must equal (α/2)‖g‖* (true of every minimiser, so ties still pass);
  - ball form: the claim must be feasible, ‖u‖ ≤ α, and gᵀu must equal the optimum −α‖g‖*;
  - where the minimiser is unique (ℓ2, ℓp, Mahalanobis: strictly convex balls; spectral when g is
    well-conditioned, see :data:`SPECTRAL_RCOND`), u must also equal it: ‖u − u*‖ ≤ Q1_RTOL·‖u*‖.

  The objective alone is not enough: near the minimiser it grows with the *square* of the error, so
  an update 1e-4 off (``-alpha/2.0001*g``) would be within 1e-8 of the optimum. The size and the
  update itself move linearly with the error. Where minimisers tie (ℓ1, ℓ∞, rank-deficient
  spectral) the objective and the size are what is graded, so any true minimiser passes. All within
  the relative tolerance :data:`Q1_RTOL`. Norms, dual norms and the true update come from
  :mod:`jaxopt_hw.duality` (proved separately against numerical minimisers). A FAIL shows the first
  failing case in order of size: g, α, the claim's update and objective, the optimum and the true
  update.
* **Q2** (:func:`grade_theta`). The claimed θ is compared, coordinate by coordinate, with what the
  experiment converges to (:func:`jaxopt_hw.families.converged_thetas`, float64):
  ``|claim − θ| <= THETA_ATOL + THETA_RTOL·|θ|``. A FAIL shows both vectors.
* **Q5** (:func:`grade_messages`). The claimed ``messages`` and ``message_size`` (expressions in n
  and p) are compared exactly with :func:`jaxopt_hw.distributed.accounting.measure` at several
  (n, p) (the counts are whole numbers). A FAIL shows the (n, p) where they differ and both values.

An item whose answer cannot be read (a :class:`~jaxopt_hw.check.sheet.RefusedClaim`) or whose
evaluation would pass the language's work limit is REFUSED: not graded, its one-line reason
reported in its place, and the other items of the sheet are graded all the same.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_hw import duality
from jaxopt_hw.check.expr import ExpressionError, ExpressionTooCostly
from jaxopt_hw.check.sheet import (
  Claim,
  MessageClaim,
  RefusedClaim,
  Sheet,
  ThetaClaim,
  UpdateClaim,
)
from jaxopt_hw.distributed.accounting import measure
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.families import converged_thetas
from jaxopt_hw.problems import HOMEWORK_A
from jaxopt_hw.report import jsonable

#: Q1: relative tolerance on the objective, on the size ‖u‖ (penalty form), on feasibility
#: (‖u‖ <= α(1 + Q1_RTOL)) and on the update where the minimiser is unique
#: (‖u − u*‖ <= Q1_RTOL·‖u*‖).
#: Why 1e-8: a correct claim and the reference compute the same quantity in float64 from the same g,
#: α (p, M), so they differ only by rounding, a relative c·eps with eps = 2.2e-16
#: (numpy.finfo(float64).eps) and c the error growth of the computation:
#: - sums, norms and dual norms over <= 33 entries (<= 36 for 6x6 matrices): c <= ~1e2;
#: - ℓp: the exponent q - 1 (q <= 6) carries a rounding of ~q·eps, which |g_i|**(q - 1) multiplies
#:   by |ln|g_i|| <= ~20: c <= ~2e2;
#: - Mahalanobis: a solve with M is backward stable, c <= d·cond(M) with d <= 33 and cond(M) below
#:   ~1e2 in practice (λ_min(M) >= 0.1 by construction, see _spd): c <= ~1e4 even at cond(M) = 300;
#: - spectral: the polar factor moves by <= 2‖ΔG‖_F/(σ_min(G) + σ_min(G + ΔG)) (R.-C. Li, SIAM J.
#:   Matrix Anal. Appl. 16(1), 1995, Theorem 1), with ‖ΔG‖_F <= ~1e2·eps·‖G‖_F from a
#:   backward-stable SVD: c <= 2e2·√6·cond(G) <= 5e6 where it is compared (cond(G) <= 1e4).
#: So a correct claim is off by at most ~1e-9 (measured: <= 1e-14 over 2000 random cases per norm),
#: 1e-8 leaves a margin of ten or more, and a claim off by a relative 1e-8 in its update (unique
#: minimisers) or in its size (every norm, penalty form) fails.
Q1_RTOL = 1e-8
#: Q1 spectral: the minimiser is unique when g has full rank; the update is compared with it only
#: when σ_min(g) >= SPECTRAL_RCOND·σ_max(g), where rounding moves the polar factor by less than
#: Q1_RTOL (above). Below that, as for rank-deficient g, the objective and the size are graded.
SPECTRAL_RCOND = 1e-4
#: Q1: random cases per item (after the fixed small cases).
DEFAULT_TRIALS = 200
#: Q1: most random cases per item (a billion grew memory until the process was killed, issue
#: 12.12). The cases and their references are kept in memory, a few kB each: at 10000, Mahalanobis
#: (the largest) adds ~0.2 GB and grades in ~30 s, spectral (the slowest, ~17 ms a case) in ~3 min,
#: on a 2-core CPU.
MAX_TRIALS = 10_000
#: Q2: a claimed coordinate passes when |claim − θ| <= THETA_ATOL + THETA_RTOL·|θ|.
THETA_RTOL = 1e-4
THETA_ATOL = 1e-6
#: Q5: the (n, p) at which claims are compared with the compiled programs (p divisible by n).
Q5_POINTS = ((2, 12), (3, 12), (4, 24), (5, 40), (8, 64))

_VECTOR_DIMS = (1, 2, 3, 4, 5, 8, 16, 33)
_MATRIX_SHAPES = ((1, 1), (1, 3), (3, 1), (2, 2), (3, 5), (5, 3), (6, 6))


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class ItemResult:
  """The verdict on one item: PASS, FAIL or REFUSED (the answer could not be read or evaluated
  within the limits, so it was not graded), a one-line summary, and the evidence."""

  key: str
  passed: bool
  claim: str
  summary: str
  details: list[str] = field(default_factory=list)  # evidence, one line each, for people
  evidence: dict = field(default_factory=dict)  # the same, for machines (JSON-serialisable)
  refused: bool = False

  @property
  def status(self) -> str:
    return "REFUSED" if self.refused else ("PASS" if self.passed else "FAIL")

  def to_dict(self) -> dict:
    return {
      "item": self.key,
      "status": self.status,
      "claim": self.claim,
      "summary": self.summary,
      "evidence": _jsonable(self.evidence),
    }


def refused_result(key: str, claim: str, error: Exception) -> ItemResult:
  """The verdict on an item that cannot be graded: ``error``'s one line is the summary."""
  reason = str(error)
  return ItemResult(
    key, False, claim, f"refused, not graded: {reason}", evidence={"reason": reason}, refused=True
  )


@dataclass
class Report:
  """The verdicts on a whole sheet."""

  results: list[ItemResult]
  source: str = "<sheet>"
  title: str = ""

  @property
  def passed(self) -> bool:
    return all(r.passed for r in self.results)

  @property
  def refused(self) -> list[ItemResult]:
    """The items that could not be graded."""
    return [r for r in self.results if r.refused]

  def to_dict(self) -> dict:
    n_pass = sum(r.passed for r in self.results)
    n_refused = len(self.refused)
    return {
      "sheet": self.source,
      "title": self.title,
      "passed": self.passed,
      "counts": {
        "pass": n_pass,
        "fail": len(self.results) - n_pass - n_refused,
        "refused": n_refused,
        "total": len(self.results),
      },
      "items": [r.to_dict() for r in self.results],
    }

  def format_text(self) -> str:
    lines = [format_header(self.source, self.title)]
    width = key_width(r.key for r in self.results)
    status = status_width(any(r.refused for r in self.results))
    lines += [format_item(r, width, status) for r in self.results]
    lines.append(format_footer(self.results))
    return "\n".join(lines)


def key_width(keys: Iterable[str]) -> int:
  return max([len(k) for k in keys] + [10])


def status_width(any_refused: bool) -> int:
  """The status column's width: room for REFUSED when a verdict may be one, else for PASS/FAIL."""
  return len("REFUSED") if any_refused else len("PASS")


def format_header(source: str, title: str = "") -> str:
  return f"jaxopt-hw check: {source}" + (f" ({title})" if title else "")


def format_item(result: ItemResult, width: int = 10, status: int = 4) -> str:
  """``PASS  key  claim`` (the status padded to ``status`` characters, the key to ``width``), the
  summary, and the evidence lines."""
  lines = [
    f"{result.status:<{status}}  {result.key:<{width}}  {_shorten(result.claim, 90)}",
    f"      {result.summary}",
  ]
  lines += [f"        {d}" for d in result.details]
  return "\n".join(lines)


def format_footer(results: Sequence[ItemResult]) -> str:
  n_pass = sum(r.passed for r in results)
  n_refused = sum(r.refused for r in results)
  n_fail = len(results) - n_pass - n_refused
  if n_pass == len(results):
    verdict = "all pass"
  else:
    verdict = ", ".join(
      ([f"{n_fail} fail"] if n_fail else []) + ([f"{n_refused} refused"] if n_refused else [])
    )
  return f"{n_pass} of {len(results)} items pass; {verdict}."


def _shorten(text: str, limit: int) -> str:
  text = " ".join(text.split())
  return text if len(text) <= limit else text[: limit - 3] + "..."


def _jsonable(value):
  return jsonable(value, nan="nan")


def _fmt(x, digits: int = 6) -> str:
  """A number or array for people: ``digits`` significant digits."""
  a = np.asarray(x, dtype=np.float64)
  if a.ndim == 0:
    return f"{float(a) + 0.0:.{digits}g}"
  if a.ndim == 1:
    return "[" + ", ".join(f"{float(v) + 0.0:.{digits}g}" for v in a) + "]"  # + 0.0: no "-0"
  return "[" + ", ".join(_fmt(row, digits) for row in a) + "]"


# ---------------------------------------------------------------------------------------------
# Q1


@dataclass(frozen=True)
class Q1Case:
  """One gradient at which a Q1 claim is evaluated."""

  g: np.ndarray
  alpha: float
  p: float | None = None
  M: np.ndarray | None = None

  def env(self) -> dict:
    env = {"g": self.g, "alpha": self.alpha}
    if self.p is not None:
      env["p"], env["q"] = self.p, self.p / (self.p - 1.0)
    if self.M is not None:
      env["M"] = self.M
    return env

  def describe(self) -> str:
    text = f"g = {_fmt(self.g)}, alpha = {self.alpha:.6g}"
    if self.p is not None:
      text += f", p = {self.p:.6g}"
    if self.M is not None:
      text += f", M = {_fmt(self.M)}"
    return text


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
  a = rng.normal(size=(d, d))
  return a @ a.T / d + 0.1 * np.eye(d)


_SIMPLE_VECTORS = ([1.0], [2.0], [1.0, -2.0], [3.0, -1.0, 2.0], [2.0, -2.0, 1.0], [0.0, 2.0, -1.0])
_SIMPLE_MATRICES = (
  [[2.0]],
  [[1.0, 2.0]],
  [[1.0, 0.0], [0.0, -2.0]],
  [[1.0, 2.0], [3.0, 4.0]],
  [[0.0, 1.0], [0.0, 1.0]],
)
_SIMPLE_M = {
  1: [[2.0]],
  2: [[2.0, 1.0], [1.0, 3.0]],
  3: [[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 4.0]],
}


def check_trials(trials, field: str = "trials") -> int:
  """``trials`` as an int in 0..MAX_TRIALS, or a :class:`UserInputError` naming ``field``."""
  if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)):
    ok = False
  else:
    ok = 0 <= trials <= MAX_TRIALS
  if not ok:
    raise UserInputError(
      f"{field}: {trials!r} is not allowed; allowed: a whole number from 0 to {MAX_TRIALS}"
    )
  return int(trials)


def check_seed(seed, field: str = "seed") -> int:
  """``seed`` as an int >= 0, or a :class:`UserInputError` naming ``field``."""
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
    raise UserInputError(f"{field}: {seed!r} is not allowed; allowed: a whole number >= 0")
  return int(seed)


def q1_cases(norm: str, trials: int = DEFAULT_TRIALS, seed: int = 0) -> tuple[Q1Case, ...]:
  """The cases a Q1 claim under ``norm`` is graded on: small fixed ones, then ``trials`` random
  ones (0 to :data:`MAX_TRIALS`).

  Cases come in order of size, so the first failing one is the smallest counterexample found.
  """
  return _q1_cases(norm, check_trials(trials), check_seed(seed))


@functools.lru_cache(maxsize=32)
def _q1_cases(norm: str, trials: int, seed: int) -> tuple[Q1Case, ...]:
  matrix = norm == "spectral"
  simple_gs = _SIMPLE_MATRICES if matrix else _SIMPLE_VECTORS
  cases: list[Q1Case] = []
  for g in simple_gs:
    g = np.asarray(g, dtype=np.float64)
    for alpha in (1.0, 2.0):
      if norm == "lp":
        cases += [Q1Case(g, alpha, p=p) for p in (3.0, 1.5)]
      elif norm == "mahalanobis":
        cases.append(Q1Case(g, alpha, M=np.asarray(_SIMPLE_M[g.size], dtype=np.float64)))
      else:
        cases.append(Q1Case(g, alpha))
  rng = np.random.default_rng([seed, sum(map(ord, norm))])
  shapes = [(s,) if not matrix else s for s in (_MATRIX_SHAPES if matrix else _VECTOR_DIMS)]
  random_cases = []
  for t in range(trials):
    shape = shapes[t % len(shapes)]
    g = rng.normal(size=shape) * 10.0 ** rng.uniform(-2, 2)
    if not matrix and g.size >= 2:
      kind = t // len(shapes) % 4
      i, j = rng.choice(g.size, size=2, replace=False)
      if kind == 1:  # a tie in magnitude: several minimisers for l1/linf
        g[j] = g[i] * rng.choice([-1.0, 1.0])
      elif kind == 2:  # a zero coordinate: sign(0) = 0 is one of many minimisers
        g[j] = 0.0
    alpha = float(10.0 ** rng.uniform(-3, 3))
    p = float(rng.uniform(1.2, 6.0)) if norm == "lp" else None
    M = _spd(rng, g.size) if norm == "mahalanobis" else None
    random_cases.append(Q1Case(g, alpha, p=p, M=M))
  random_cases.sort(key=lambda c: c.g.size)  # stable: keeps the seed order within a size
  return tuple(cases + random_cases)


@dataclass(frozen=True)
class _Reference:
  norm: object  # a jaxopt_hw.duality.Norm
  dual: float
  penalty_step: np.ndarray
  ball_step: np.ndarray
  unique: bool  # the minimiser is unique (and well-determined in float64): compare the update


def _has_unique_minimiser(norm_name: str, g: np.ndarray) -> bool:
  """Whether both forms have one minimiser at ``g`` that rounding determines to within Q1_RTOL."""
  if not np.any(g != 0):
    return False  # g = 0: every feasible u minimises the ball form
  if norm_name in ("l2", "lp", "mahalanobis"):
    return True  # strictly convex balls: one point of the ball maximises g.t
  if norm_name == "spectral":  # unique iff full rank (U V^T is then fixed on all of the range)
    s = np.linalg.svd(g, compute_uv=False)  # g is one of ours: finite
    return bool(s[-1] >= SPECTRAL_RCOND * s[0])
  return False  # l1, linf: polyhedral balls; a tie or a zero coordinate gives a face of minimisers


def _reference(norm_name: str, case: Q1Case) -> _Reference:
  M = None if case.M is None else jnp.asarray(case.M, dtype=jnp.float64)
  norm = duality.get_norm(norm_name, p=case.p, M=M)
  g = jnp.asarray(case.g, dtype=jnp.float64)
  return _Reference(
    norm,
    float(norm.dual(g)),
    np.asarray(duality.penalty_step(g, case.alpha, norm), dtype=np.float64),
    np.asarray(duality.ball_step(g, case.alpha, norm), dtype=np.float64),
    _has_unique_minimiser(norm_name, case.g),
  )


@functools.lru_cache(maxsize=32)
def _references(norm_name: str, trials: int, seed: int) -> tuple[_Reference, ...]:
  with jax.enable_x64(True):
    return tuple(_reference(norm_name, c) for c in _q1_cases(norm_name, trials, seed))


def _norm_value(norm, u: np.ndarray) -> float:
  return float(norm.value(jnp.asarray(u, dtype=jnp.float64)))


def _relative(value: float, target: float) -> float:
  return (value - target) / abs(target) if target != 0 else value - target


def _q1_verdict(claim: UpdateClaim, case: Q1Case, ref: _Reference) -> dict:
  """Evaluate the claim at one case: a dict with 'ok' and the numbers a FAIL would show.

  Raises ExpressionTooCostly (the claim is refused as a whole)."""
  out: dict = {"case": case}
  try:
    u = claim.expression.evaluate(case.env())
  except ExpressionTooCostly:
    raise
  except ExpressionError as e:
    out.update(ok=False, reason=f"could not be evaluated: {e.reason}")
    return out
  out["u"] = u
  if u.shape != case.g.shape:
    out.update(
      ok=False,
      reason=f"the claim has shape {u.shape}; the update must have the shape of g, {case.g.shape}",
    )
    return out
  if not np.all(np.isfinite(u)):
    out.update(ok=False, reason="the claim is not finite (inf or nan)")
    return out
  alpha = case.alpha
  with jax.enable_x64(True):
    size = _norm_value(ref.norm, u)
  with np.errstate(all="ignore"):  # a finite claim may still overflow here: caught just below
    inner = float(np.sum(case.g * u))
  if claim.form == "penalty":
    # size * size, not size**2: a Python float's ** raises OverflowError where * gives inf.
    objective = inner + size * size / alpha
    optimum = -alpha / 4.0 * ref.dual**2
    true_u = ref.penalty_step
    feasible = True
    # Every minimiser has this size: gᵀu >= -‖g‖*‖u‖ makes the objective >= -‖g‖*r + r²/α at
    # r = ‖u‖, least only at r = (α/2)‖g‖*. The objective is quadratic in an error of r, this is
    # linear.
    size_gap = _relative(size, alpha / 2.0 * ref.dual)
  else:
    objective = inner
    optimum = -alpha * ref.dual
    true_u = ref.ball_step
    feasible = size <= alpha * (1.0 + Q1_RTOL)
    size_gap = 0.0  # the objective of the ball form is already linear in the size
  gap = _relative(objective, optimum)
  # The distance to the unique minimiser, in the Frobenius norm, relative to its size.
  with np.errstate(all="ignore"):
    distance = float(np.linalg.norm(u - true_u) / np.linalg.norm(true_u)) if ref.unique else None
  out.update(
    objective=objective,
    optimum=optimum,
    true_u=true_u,
    norm_u=size,
    gap=gap,
    size_gap=size_gap,
    distance=distance,
    feasible=feasible,
  )
  if not feasible:
    out.update(ok=False, reason=f"infeasible: ||u|| = {size:.6g} > alpha = {alpha:.6g}")
  elif not math.isfinite(objective):
    # inf - inf is NaN, and NaN compares false with every bound below: never let it through.
    out.update(ok=False, reason=f"the objective overflows ({objective:.6g}; ||u|| = {size:.6g})")
  elif gap > Q1_RTOL:
    out.update(ok=False, reason=f"the objective is above the optimum (relative gap {gap:.3g})")
  elif gap < -Q1_RTOL:
    # Impossible for a correct reference: say so rather than pass or blame the claim silently.
    out.update(
      ok=False,
      reason=f"the objective is BELOW the reference optimum (relative gap {gap:.3g}): the "
      "reference in jaxopt_hw.duality may be wrong",
    )
  elif abs(size_gap) > Q1_RTOL:
    out.update(
      ok=False,
      reason=f"||u|| = {size:.10g}, but every minimiser has ||u|| = (alpha/2)*||g||_* = "
      f"{alpha / 2.0 * ref.dual:.10g} (relative difference {size_gap:.3g})",
    )
  elif distance is not None and distance > Q1_RTOL:
    out.update(
      ok=False,
      reason=f"u differs from the unique minimiser u* (||u - u*|| / ||u*|| = {distance:.3g}, "
      "Frobenius norm)",
    )
  else:
    out["ok"] = True
  return out


def grade_update(claim: UpdateClaim, *, trials: int = DEFAULT_TRIALS, seed: int = 0) -> ItemResult:
  """Grade a Q1 claim over the cases of :func:`q1_cases` (see the module's docstring)."""
  cases = q1_cases(claim.norm, trials, seed)
  refs = _references(claim.norm, trials, seed)
  try:
    verdicts = [_q1_verdict(claim, c, r) for c, r in zip(cases, refs)]
  except ExpressionTooCostly as e:
    return refused_result(claim.key, claim.claim, e.for_field(claim.key))
  failed = [v for v in verdicts if not v["ok"]]
  compared = sum(r.unique for r in refs)
  sizes = [c.g.size for c in cases]
  if claim.form == "penalty":
    what = "objective = optimum and ||u|| = (alpha/2)||g||_*"
  else:
    what = "feasible and objective = optimum"
  if claim.norm == "spectral":
    shapes = sorted({c.g.shape for c in cases}, key=lambda s: (s[0] * s[1], s))
    where = f"matrices {shapes[0][0]}x{shapes[0][1]} to {shapes[-1][0]}x{shapes[-1][1]}"
  else:
    where = f"dimensions {min(sizes)} to {max(sizes)}"
  if claim.norm == "lp":
    where += ", p from 1.2 to 6"
  scope = f"{len(cases)} cases ({where}, alpha from 1e-3 to 1e3)"
  evidence: dict = {
    "norm": claim.norm,
    "form": claim.form,
    "cases": len(cases),
    "failed": len(failed),
    "compared_with_unique_minimiser": compared,
    "rtol": Q1_RTOL,
  }
  if not failed:
    worst = max(abs(v["gap"]) for v in verdicts)
    worst_size = max(abs(v["size_gap"]) for v in verdicts)
    distances = [v["distance"] for v in verdicts if v["distance"] is not None]
    evidence["max_relative_gap"] = worst
    evidence["max_relative_size_difference"] = worst_size
    largest = f"largest relative gap {worst:.2g}"
    if claim.form == "penalty":
      largest += f", size difference {worst_size:.2g}"
    if distances:
      evidence["max_relative_distance"] = max(distances)
      largest += f", distance to u* {max(distances):.2g}"
    unique = ""
    if compared:
      where_unique = (
        "each"
        if compared == len(cases)
        else f"the {compared} where g is well-conditioned (sigma_min >= "
        f"{SPECTRAL_RCOND:g}*sigma_max)"
      )
      unique = f", and u = the unique minimiser on {where_unique}"
    summary = f"{what} on all {scope}{unique}; {largest} (tolerance {Q1_RTOL:g})"
    return ItemResult(claim.key, True, claim.claim, summary, [], evidence)
  first = failed[0]
  case = first["case"]
  summary = f"fails on {len(failed)} of {scope}; smallest counterexample: {first['reason']}"
  details = [case.describe()]
  counterexample = {"g": case.g, "alpha": case.alpha, "reason": first["reason"]}
  if case.p is not None:
    counterexample["p"] = case.p
  if case.M is not None:
    counterexample["M"] = case.M
  # A near miss (objective within tolerance) needs more digits to show the difference.
  digits = 12 if abs(first.get("gap", 1.0)) <= Q1_RTOL else 6
  if "u" in first:
    counterexample["claim_update"] = first["u"]
    details.append(f"claim:   u = {_fmt(first['u'], digits)}")
  if "objective" in first:
    counterexample.update(
      claim_objective=first["objective"],
      optimum=first["optimum"],
      true_update=first["true_u"],
      relative_gap=first["gap"],
      claim_norm=first["norm_u"],
    )
    if first["distance"] is not None:
      counterexample["relative_distance"] = first["distance"]
    details[-1] += f", objective {first['objective']:.6g}, ||u|| = {first['norm_u']:.6g}"
    details.append(f"optimum: {first['optimum']:.6g} at u* = {_fmt(first['true_u'], digits)}")
  evidence["counterexample"] = counterexample
  return ItemResult(claim.key, False, claim.claim, summary, details, evidence)


# ---------------------------------------------------------------------------------------------
# Q2


def homework_a() -> np.ndarray:
  """a = [1, 0.1, 0.01] of Q2, from :data:`jaxopt_hw.problems.HOMEWORK_A`."""
  return np.asarray(HOMEWORK_A, dtype=np.float64)


@functools.lru_cache(maxsize=1)
def experiment_thetas() -> dict[str, np.ndarray]:
  """What the Q2 experiment converges to, per method (run once per process, float64)."""
  with jax.enable_x64(True):
    thetas = converged_thetas()
  return {k: np.asarray(v, dtype=np.float64) for k, v in thetas.items()}


def grade_theta(claim: ThetaClaim, *, thetas: dict | None = None, a=None) -> ItemResult:
  """Grade a Q2 claim against the experiment's converged θ (``thetas`` overrides, for tests)."""
  thetas = experiment_thetas() if thetas is None else thetas
  a = homework_a() if a is None else np.asarray(a, dtype=np.float64)
  measured = np.asarray(thetas[claim.method], dtype=np.float64)
  evidence: dict = {
    "method": claim.method,
    "experiment": measured,
    "rtol": THETA_RTOL,
    "atol": THETA_ATOL,
  }
  tolerance = f"|claim - theta| <= {THETA_ATOL:g} + {THETA_RTOL:g}*|theta|"
  try:
    if claim.is_list:
      parts = [e.evaluate({"a": a}) for e in claim.expressions]
      bad = next((i for i, v in enumerate(parts) if v.ndim != 0), None)
      if bad is not None:
        raise ExpressionError(f"entry {bad} is not a number (shape {parts[bad].shape})")
      value = np.array([float(v) for v in parts])
    else:
      value = claim.expressions[0].evaluate({"a": a})
  except ExpressionTooCostly as e:
    return refused_result(claim.key, claim.claim, e.for_field(claim.key))
  except ExpressionError as e:
    summary = f"could not be evaluated: {e.reason}"
    return ItemResult(
      claim.key, False, claim.claim, summary, [f"experiment: theta = {_fmt(measured)}"], evidence
    )
  evidence["claim_value"] = value
  details = [f"claim:      theta = {_fmt(value)}", f"experiment: theta = {_fmt(measured)}"]
  if value.shape != measured.shape:
    summary = f"the claim has shape {value.shape}; theta has shape {measured.shape}"
    return ItemResult(claim.key, False, claim.claim, summary, details, evidence)
  diff = np.abs(value - measured)
  ok = np.isfinite(value) & (diff <= THETA_ATOL + THETA_RTOL * np.abs(measured))
  evidence["max_abs_difference"] = float(np.max(diff))
  if ok.all():
    summary = (
      f"equals the experiment's converged theta {_fmt(measured)} ({tolerance}; largest "
      f"difference {np.max(diff):.2g})"
    )
    return ItemResult(claim.key, True, claim.claim, summary, [], evidence)
  wrong = [int(i) for i in np.flatnonzero(~ok)]
  evidence["wrong_coordinates"] = wrong
  summary = (
    f"differs from the experiment in coordinate{'s' if len(wrong) > 1 else ''} "
    f"{', '.join(map(str, wrong))} ({tolerance})"
  )
  return ItemResult(claim.key, False, claim.claim, summary, details, evidence)


# ---------------------------------------------------------------------------------------------
# Q5


@functools.lru_cache(maxsize=64)
def _measure(paradigm: str, n: int, p: int) -> tuple[int, int]:
  count = measure(paradigm, n, p)
  return int(count.messages), int(count.message_size)


def q5_points(
  paradigm: str, points: Sequence[tuple[int, int]] = Q5_POINTS
) -> list[tuple[int, int]]:
  """The (n, p) of ``points`` this process has devices for (n workers, plus 1 for the server)."""
  # measure() runs on the default backend when it has enough devices, else on (emulated) CPU ones.
  try:
    cpu = len(jax.devices("cpu"))
  except RuntimeError:
    cpu = 0
  devices = max(len(jax.devices()), cpu)
  extra = 1 if paradigm == "parameter_server" else 0
  usable = [(n, p) for n, p in points if n + extra <= devices]
  if not usable:
    need = min(n for n, _ in points) + extra
    raise UserInputError(
      f"q5.{paradigm}: grading needs at least {need} devices, this process has {devices}; "
      "`jaxopt-hw check` emulates 16 CPU devices, or call jaxopt_hw.platform.configure() before "
      "JAX starts"
    )
  return usable


def grade_messages(
  claim: MessageClaim,
  *,
  points: Sequence[tuple[int, int]] | None = None,
  measure: Callable[[str, int, int], tuple[int, int]] | None = None,
) -> ItemResult:
  """Grade a Q5 claim against the message counts measured from the compiled paradigm.

  ``measure(paradigm, n, p) -> (messages, message_size)`` overrides the measurement (for tests).
  """
  measure = measure or _measure
  points = q5_points(claim.paradigm) if points is None else list(points)
  rows = []
  first_bad = None
  for n, p in points:
    measured = measure(claim.paradigm, n, p)
    row: dict = {
      "n": n,
      "p": p,
      "measured_messages": measured[0],
      "measured_message_size": measured[1],
    }
    for key, expression, truth in (
      ("messages", claim.messages, measured[0]),
      ("message_size", claim.message_size, measured[1]),
    ):
      try:
        value = expression.evaluate({"n": float(n), "p": float(p)})
        value = float(value) if value.ndim == 0 else value
      except ExpressionTooCostly as e:
        return refused_result(claim.key, claim.claim, e.for_field(f"{claim.key}.{key}"))
      except ExpressionError as e:
        value = f"error: {e.reason}"
      row[f"claim_{key}"] = value
      ok = (
        isinstance(value, float)
        and math.isfinite(value)
        and abs(value - truth) <= 1e-9 * max(1.0, abs(truth))
      )
      if not ok and first_bad is None:
        first_bad = (key, n, p, value, truth)
    rows.append(row)
  shown = ", ".join(f"(n={n}, p={p})" for n, p in points)
  evidence = {"paradigm": claim.paradigm, "points": rows}
  if first_bad is None:
    summary = (
      f"messages and message_size equal the counts measured from the compiled program at {shown}"
    )
    return ItemResult(claim.key, True, claim.claim, summary, [], evidence)
  key, n, p, value, truth = first_bad
  evidence["counterexample"] = {"item": key, "n": n, "p": p, "claim": value, "measured": truth}
  claim_text = (
    f"{value:.6g}"
    if isinstance(value, float)
    else (f"shape {np.shape(value)}" if isinstance(value, np.ndarray) else str(value))
  )
  summary = f"{key} differs at n={n}, p={p}: claim {claim_text}, measured {truth}"
  details = [
    f"n={r['n']:<2} p={r['p']:<3} messages: claim {_cell(r['claim_messages'])}, measured "
    f"{r['measured_messages']}; message_size: claim {_cell(r['claim_message_size'])}, measured "
    f"{r['measured_message_size']}"
    for r in rows
  ]
  return ItemResult(claim.key, False, claim.claim, summary, details, evidence)


def _cell(value) -> str:
  if isinstance(value, float):
    return f"{value:.6g}"
  if isinstance(value, np.ndarray):
    return f"shape {value.shape}"
  return str(value)


# ---------------------------------------------------------------------------------------------
# Sheets


def grade_claim(claim: Claim, *, trials: int = DEFAULT_TRIALS, seed: int = 0) -> ItemResult:
  """Grade one claim of any question (a :class:`RefusedClaim` gives a REFUSED verdict)."""
  if isinstance(claim, RefusedClaim):
    return refused_result(claim.key, claim.claim, UserInputError(claim.reason))
  if isinstance(claim, UpdateClaim):
    return grade_update(claim, trials=trials, seed=seed)
  if isinstance(claim, ThetaClaim):
    return grade_theta(claim)
  return grade_messages(claim)


def grade_sheet(
  sheet: Sheet,
  *,
  trials: int = DEFAULT_TRIALS,
  seed: int = 0,
  claims: Iterable[Claim] | None = None,
  on_result: Callable[[ItemResult], None] | None = None,
) -> Report:
  """Grade every claim of ``sheet`` (or only ``claims``); ``on_result`` sees each verdict as it
  comes."""
  claims = sheet.claims if claims is None else tuple(claims)
  trials, seed = check_trials(trials), check_seed(seed)  # before any item is graded
  results = []
  for claim in claims:
    results.append(grade_claim(claim, trials=trials, seed=seed))
    if on_result is not None:
      on_result(results[-1])
  return Report(results, sheet.source, sheet.title)
