"""Implicit bias: where SGD, simplified Adam and rescaled SGD land on over-parameterised least
squares.

Random problems with n < d (features on scales from 1 down to ``scale_min``), many seeds at once
(the seeds are the sweep's problem axis), θ₀ = 0. Every method that drives the loss to 0 lands on
*some* interpolant of Xθ = y; which one is the method's implicit bias. The landing points are
compared with three exact references (:mod:`jaxopt_hw.problems`):

* the minimum-ℓ2-norm interpolant X⁺y — gradient descent from 0 never leaves the row space of X,
  and X⁺y is the only interpolant there, so GD must land on it;
* the weighted minimum-norm interpolant argmin Σ_j E[x_j²]·θ_j² — the same argument in the rescaled
  variables w = θ/s (s_j = 1/sqrt(E[x_j²])) makes it the landing point of rescaled-feature SGD;
* the minimum-ℓ∞-norm interpolant (an LP, solved exactly by a simplex method) — the natural
  candidate for sign-like methods. With one example (n = 1) simplified Adam is sign descent along
  sign(x) and lands exactly on it (θ = y·sign(x)/‖x‖₁); with n > 1 there is no such argument, and
  the study measures how far it lands.

"SGD" here takes full-batch gradient steps (one step per epoch); from 0 stochastic per-example steps
stay in the row space as well and land on the same point. Simplified Adam uses the per-example RMS
over the epoch (:func:`jaxopt_hw.transforms.simplified_adam.simplified_adam` with
``per_example=True``) and a decaying step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from jaxopt_hw import config as cfg
from jaxopt_hw import problems
from jaxopt_hw.engine import sweep
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.families import sgd_family, simplified_adam_family
from jaxopt_hw.names import METHODS, SCHEDULES
from jaxopt_hw.report import markdown_table
from jaxopt_hw.studies import STUDIES, StudyResult, SummaryLine, sweep_progress

NAME = "implicit_bias"
TITLE = STUDIES[NAME].title

LABELS = {
  "sgd": "SGD (full batch)",
  "simplified_adam": "simplified Adam",
  "rescaled_sgd": "rescaled-feature SGD",
}
REFERENCES = ("min_l2", "weighted_min_norm", "min_linf")
REFERENCE_LABELS = {
  "min_l2": "min ‖θ‖₂",
  "weighted_min_norm": "min Σ E[x_j²]θ_j²",
  "min_linf": "min ‖θ‖∞",
}
#: Where each method must land (the row-space argument), and nothing for simplified Adam (n > 1).
EXPECTED_LANDING = {"sgd": "min_l2", "rescaled_sgd": "weighted_min_norm"}


@dataclass(frozen=True)
class Config:
  n: int = field(default=8, metadata=cfg.positive())
  d: int = field(default=64, metadata=cfg.positive())
  seeds: int = field(default=32, metadata=cfg.positive())
  first_seed: int = field(default=0, metadata=cfg.at_least(0))
  scale_min: float = field(default=1e-2, metadata=cfg.positive())
  scale_max: float = field(default=1.0, metadata=cfg.positive())
  dtype: str = field(default="float64", metadata=cfg.one_of("float32", "float64"))
  #: Each instance is scaled so the Hessian's largest eigenvalue is 1: GD is stable for α < 2.
  sgd_learning_rate: float = field(
    default=1.0,
    metadata=cfg.check(lambda v: 0 < v < 2, "must be strictly between 0 and 2 (λmax = 1)"),
  )
  sgd_steps: int = field(default=4000, metadata=cfg.positive())
  rescaled_learning_rate: float = field(
    default=1.0,
    metadata=cfg.check(lambda v: 0 < v < 2, "must be strictly between 0 and 2 (λmax = 1)"),
  )
  rescaled_steps: int = field(default=4000, metadata=cfg.positive())
  adam_schedule: str = field(default="harmonic", metadata=cfg.one_of(*SCHEDULES))
  adam_learning_rate: float = field(default=1.0, metadata=cfg.positive())
  adam_decay_rate: float = field(
    default=0.5, metadata=cfg.check(lambda v: 0 < v < 1, "must be strictly between 0 and 1")
  )
  adam_steps: int = field(default=20000, metadata=cfg.positive())
  #: Also run every method on one-example problems (n = 1), where simplified Adam has a closed form.
  single_example_check: bool = True

  def validate(self) -> None:
    """The checks between fields, run before any study starts (config.load)."""
    _check_config(self)


#: Most entries of the data of all seeds (seeds × n × d), which the study holds at once (2**25:
#: 256 MiB in float64).
MAX_DATA_ENTRIES = 2**25


def _check_config(config: Config) -> None:
  entries = config.seeds * config.n * config.d
  if entries > MAX_DATA_ENTRIES:
    raise UserInputError(
      f"{NAME}.d: {config.d} is not allowed with n = {config.n} and seeds = {config.seeds}; "
      f"seeds × n × d = {entries:,} must be at most {MAX_DATA_ENTRIES:,} (every seed's data is "
      "held at once)"
    )
  if config.n >= config.d:
    raise UserInputError(
      f"{NAME}.n: {config.n} is not allowed; must be smaller than d = {config.d} "
      "(over-parameterised)"
    )
  if config.scale_min > config.scale_max:
    raise UserInputError(
      f"{NAME}.scale_min: {config.scale_min} is not allowed; must be <= scale_max = "
      f"{config.scale_max}"
    )


# ---------------------------------------------------------------------------------------------
# References and runs.


def references(X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
  """The three exact interpolants for every instance: arrays (P, d), float64."""
  X = np.asarray(X, np.float64)
  y = np.asarray(y, np.float64)
  weights = problems.feature_second_moments(X)
  return {
    "min_l2": np.stack([problems.min_norm_interpolant(X[i], y[i]) for i in range(len(X))]),
    "weighted_min_norm": np.stack(
      [problems.weighted_min_norm_interpolant(X[i], y[i], weights[i]) for i in range(len(X))]
    ),
    "min_linf": np.stack([problems.min_linf_interpolant(X[i], y[i]).theta for i in range(len(X))]),
  }


def _normalized(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Scale each instance (X and y alike) so that λmax(2XᵀX/n) = 1; the interpolants do not
  change."""
  n = X.shape[-2]
  c = np.sqrt(2.0 / n) * np.linalg.norm(X, ord=2, axis=(-2, -1))
  return X / c[:, None, None], y / c[:, None]


def run_methods(X, y, config: Config, *, progress: bool | None = None) -> dict:
  """Land every method on every instance (X: (P, n, d), y: (P, n)); θ in the original units.

  Returns {method: {"theta": (P, d), "loss": (P,), "diverged": (P,)}}.
  """
  dtype = {"float32": jnp.float32, "float64": jnp.float64}[config.dtype]
  X = np.asarray(X, np.float64)
  y = np.asarray(y, np.float64)
  Xn, yn = _normalized(X, y)
  batch = problems.least_squares(Xn, yn)
  out = {}

  r = sweep(
    batch,
    sgd_family(),
    [config.sgd_learning_rate],
    steps=config.sgd_steps,
    batched_data=True,
    dtype=dtype,
    log_points=2,
    progress=progress,
    desc="implicit bias: sgd",
  )
  out["sgd"] = r

  family = simplified_adam_family(config.adam_schedule, config.adam_decay_rate, per_example=True)
  r = sweep(
    batch,
    family,
    [config.adam_learning_rate],
    steps=config.adam_steps,
    batched_data=True,
    dtype=dtype,
    log_points=2,
    per_example_grads=True,
    progress=progress,
    desc="implicit bias: simplified adam",
  )
  out["simplified_adam"] = r

  s = 1.0 / np.sqrt(problems.feature_second_moments(X))  # (P, d)
  Xs, ys = _normalized(X * s[:, None, :], y)
  r = sweep(
    problems.least_squares(Xs, ys),
    sgd_family(),
    [config.rescaled_learning_rate],
    steps=config.rescaled_steps,
    batched_data=True,
    dtype=dtype,
    log_points=2,
    progress=progress,
    desc="implicit bias: rescaled sgd",
  )
  out["rescaled_sgd"] = dataclasses.replace(
    r, params=r.params * jnp.asarray(s[:, None, None, :], r.params.dtype)
  )

  landed = {}
  for method, r in out.items():
    theta = np.asarray(r.params, np.float64)[:, 0, 0]
    residual = np.einsum("pnd,pd->pn", X, theta) - y
    landed[method] = {
      "theta": theta,
      "loss": np.mean(residual**2, axis=-1),
      "diverged": np.asarray(r.diverged)[:, 0, 0],
    }
  return landed


def relative_distances(theta: np.ndarray, refs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """‖θ − ref‖₂ / ‖ref‖₂ per instance, for every reference."""
  return {
    k: np.linalg.norm(theta - v, axis=-1) / np.linalg.norm(v, axis=-1) for k, v in refs.items()
  }


# ---------------------------------------------------------------------------------------------
# The study.


def _summary(landed, refs):
  out = {}
  for method, res in landed.items():
    dist = relative_distances(res["theta"], refs)
    nearest = np.argmin(np.stack([dist[k] for k in REFERENCES]), axis=0)
    out[method] = {
      "relative_distance": {
        k: {
          "median": float(np.median(v)),
          "min": float(np.min(v)),
          "max": float(np.max(v)),
          "per_seed": v.tolist(),
        }
        for k, v in dist.items()
      },
      "nearest_counts": {k: int(np.sum(nearest == i)) for i, k in enumerate(REFERENCES)},
      "linf_norm_ratio": float(
        np.median(np.max(np.abs(res["theta"]), -1) / np.max(np.abs(refs["min_linf"]), -1))
      ),
      "l2_norm_ratio": float(
        np.median(np.linalg.norm(res["theta"], axis=-1) / np.linalg.norm(refs["min_l2"], axis=-1))
      ),
      "final_loss": {"median": float(np.median(res["loss"])), "max": float(np.max(res["loss"]))},
      "diverged": int(np.sum(res["diverged"])),
    }
  return out


def _generate(config: Config, n: int):
  seeds = list(range(config.first_seed, config.first_seed + config.seeds))
  batch = problems.random_overparameterized(
    seeds, n=n, d=config.d, scale_min=config.scale_min, scale_max=config.scale_max, normalize=False
  )
  return seeds, np.asarray(batch.data["X"]), np.asarray(batch.data["y"])


def _fmt(x: float) -> str:
  return f"{x:.2e}" if (x < 1e-3 or x >= 1e3) and x != 0 else f"{x:.3g}"


def run(config: Config, ctx):
  _check_config(config)
  seeds, X, y = _generate(config, config.n)
  refs = references(X, y)
  landed = run_methods(X, y, config, progress=sweep_progress(ctx))
  summary = _summary(landed, refs)
  ref_gap = {
    "min_l2_vs_weighted": float(
      np.median(relative_distances(refs["weighted_min_norm"], {"r": refs["min_l2"]})["r"])
    ),
    "min_l2_vs_min_linf": float(
      np.median(relative_distances(refs["min_linf"], {"r": refs["min_l2"]})["r"])
    ),
  }
  results = {
    "n": config.n,
    "d": config.d,
    "seeds": seeds,
    "methods": summary,
    "reference_separation": ref_gap,
  }
  single = None
  if config.single_example_check:
    _, X1, y1 = _generate(config, 1)
    refs1 = references(X1, y1)
    landed1 = run_methods(X1, y1, config, progress=sweep_progress(ctx))
    single = _summary(landed1, refs1)
    closed = (
      y1[:, 0:1] * np.sign(X1[:, 0, :]) / np.abs(X1[:, 0, :]).sum(-1, keepdims=True)
    )  # y·sign(x)/‖x‖₁
    single_gap = float(np.max(np.abs(landed1["simplified_adam"]["theta"] - closed)))
    results["single_example"] = {
      "methods": single,
      "simplified_adam_max_abs_error_vs_closed_form": single_gap,
      "linf_solver_max_abs_error_vs_closed_form": float(np.max(np.abs(refs1["min_linf"] - closed))),
    }

  rows = []
  for method in METHODS:
    s = summary[method]
    cells = [LABELS[method]]
    for ref in REFERENCES:
      r = s["relative_distance"][ref]
      cells.append(f"{_fmt(r['median'])} (max {_fmt(r['max'])})")
    counts = ", ".join(f"{REFERENCE_LABELS[k]}: {v}" for k, v in s["nearest_counts"].items() if v)
    cells += [counts, f"{s['linf_norm_ratio']:.3g}", _fmt(s["final_loss"]["max"])]
    rows.append(cells)
  table = markdown_table(
    [
      "method",
      *(f"to {REFERENCE_LABELS[r]} (median, max)" for r in REFERENCES),
      f"nearest, of {config.seeds} seeds",
      "‖θ‖∞ ÷ min ‖θ‖∞ (median)",
      "largest final loss",
    ],
    rows,
  )
  schedule = {
    "harmonic": "α/(t+1)",
    "inverse_sqrt": "α/√(t+1)",
    "exponential": f"α·{config.adam_decay_rate:g}ᵗ",
    "constant": "α",
  }[config.adam_schedule]
  parts = [
    f"## {TITLE}",
    f"{config.seeds} random problems (seeds {seeds[0]}…{seeds[-1]}), n = {config.n} examples, "
    f"d = {config.d} parameters, feature j of scale "
    f"{config.scale_max:g}·({config.scale_min:g}/{config.scale_max:g})^(j/(d−1)), θ₀ = 0, "
    f"{config.dtype}; all seeds in one compiled sweep per method. SGD: α = "
    f"{config.sgd_learning_rate:g}, {config.sgd_steps} full-batch steps; rescaled SGD: α = "
    f"{config.rescaled_learning_rate:g}, {config.rescaled_steps} steps (each instance scaled so "
    "λmax of the Hessian is 1); simplified Adam: per-example RMS over the epoch, step "
    f"{schedule} with α = {config.adam_learning_rate:g}, {config.adam_steps} steps. Distances "
    "are ‖θ − θ_ref‖₂/‖θ_ref‖₂; the references are exact (pseudo-inverse, closed-form weighted "
    "solution, simplex LP with a dual certificate).",
    table,
    "How far apart the references themselves are (median relative distance): min-ℓ2 vs weighted "
    f"{_fmt(ref_gap['min_l2_vs_weighted'])}, min-ℓ2 vs min-ℓ∞ "
    f"{_fmt(ref_gap['min_l2_vs_min_linf'])}.",
  ]
  sa = summary["simplified_adam"]
  parts.append(
    "Reading: SGD lands on the minimum-ℓ2-norm interpolant and rescaled SGD on the weighted "
    "one, to rounding (both forced by the row-space argument). Simplified Adam lands on neither "
    "of those and not on the minimum-ℓ∞ interpolant either: it is nearest to min-ℓ∞ for "
    f"{sa['nearest_counts']['min_linf']} of {config.seeds} seeds, at a median relative distance "
    f"of {_fmt(sa['relative_distance']['min_linf']['median'])}, with an ℓ∞ norm "
    f"{sa['linf_norm_ratio']:.3g}× the minimum. Its landing point also depends on the step "
    "schedule (no closed form for n > 1)."
  )
  if single is not None:
    s1 = results["single_example"]
    adam_bound = (
      _fmt(config.adam_learning_rate / config.adam_steps)
      if config.adam_schedule == "harmonic"
      else "of its schedule"
    )
    parts.append(
      "With one example (n = 1, same seeds and scales) simplified Adam is sign descent along "
      "sign(x): it lands on y·sign(x)/‖x‖₁, the minimum-ℓ∞-norm interpolant (largest error over "
      f"{config.seeds} seeds: {_fmt(s1['simplified_adam_max_abs_error_vs_closed_form'])}, within "
      f"the bound α/T = {adam_bound}; the LP solver agrees with that closed form to "
      f"{_fmt(s1['linf_solver_max_abs_error_vs_closed_form'])}) — the homework's (1,1,1)/1.11 is "
      "the case x = a."
    )
  parts.append("![relative distance to each interpolant](implicit_bias_distances.png)")
  return StudyResult(
    results=results,
    markdown="\n\n".join(parts),
    seeds=seeds,
    summary=_summary_lines(config, results),
    arrays={"implicit_bias_distances": _figure_arrays(config, landed, refs, summary)},
  )


def agreement_tolerance(dtype: str) -> float:
  """How close a landing point must be to its interpolant to "agree": √ε of the dtype (half the
  digits; the float64 runs land within ~1e-12, far below it)."""
  return float(np.sqrt(np.finfo(dtype).eps))


def _summary_lines(config: Config, results: dict) -> list[SummaryLine]:
  tol = agreement_tolerance(config.dtype)
  seeds = len(results["seeds"])
  lines = []
  for method, ref in EXPECTED_LANDING.items():
    dist = results["methods"][method]["relative_distance"][ref]
    lines.append(
      SummaryLine.check(
        f"{LABELS[method]}, n < d",
        f"lands on {REFERENCE_LABELS[ref]}",
        f"relative distance ≤ {dist['max']:.1g} over {seeds} seeds (agrees: ≤ {tol:.0e})",
        dist["max"] <= tol,
      )
    )
  adam = results["methods"]["simplified_adam"]
  lines.append(
    SummaryLine(
      f"{LABELS['simplified_adam']}, n < d",
      "no closed form",
      f"nearest {REFERENCE_LABELS['min_linf']} for {adam['nearest_counts']['min_linf']} of "
      f"{seeds} seeds, median distance {adam['relative_distance']['min_linf']['median']:.2g}",
    )
  )
  single = results.get("single_example")
  if single is not None:
    error = single["simplified_adam_max_abs_error_vs_closed_form"]
    bound = _adam_error_bound(config)
    lines.append(
      SummaryLine(
        f"{LABELS['simplified_adam']}, n = 1",
        "lands on y·sign(x)/‖x‖₁ (min ‖θ‖∞)",
        f"max error {error:.1g}" + (f" (bound {bound:.1g})" if bound is not None else ""),
        "" if bound is None else ("agrees" if error <= bound else "DIFFERS"),
      )
    )
  return lines


def _adam_error_bound(config: Config) -> float | None:
  """The derived bound on |θ − θ*| for one example, where the schedule gives one (module
  jaxopt_hw.studies.q2: |e_t| ≤ α_{t−1} once c* is crossed)."""
  lr, steps = config.adam_learning_rate, config.adam_steps
  if config.adam_schedule == "harmonic":
    return lr / steps
  if config.adam_schedule == "inverse_sqrt":
    return lr / np.sqrt(steps)
  return None


def _figure_arrays(config, landed, refs, summary) -> dict:
  """The arrays behind the figure (drawn by :mod:`jaxopt_hw.studies.figures`)."""
  return {
    "methods": np.asarray(METHODS),
    "method_labels": np.asarray([LABELS[m] for m in METHODS]),
    "references": np.asarray(REFERENCES),
    "reference_labels": np.asarray([REFERENCE_LABELS[r] for r in REFERENCES]),
    "distances": np.asarray(
      [[summary[m]["relative_distance"][r]["per_seed"] for r in REFERENCES] for m in METHODS]
    ),
    "theta_first_seed": np.stack([landed[m]["theta"][0] for m in METHODS]),
    "references_first_seed": np.stack([refs[r][0] for r in REFERENCES]),
    "title": np.asarray(f"n = {config.n}, d = {config.d}, {config.seeds} seeds"),
  }
