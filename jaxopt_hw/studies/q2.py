"""Q2: where SGD, simplified Adam and rescaled-feature SGD converge on f(θ) = (1 − aᵀθ)².

Every run is a :func:`jaxopt_hw.sweep` (all learning rates of a grid in one compiled program,
float64 by default), through :func:`jaxopt_hw.families.sweep_method`. The values the runs are
compared with are derived in closed form (:func:`jaxopt_hw.problems.derived_thetas`), not read off
the runs:

* SGD from θ₀ = 0: every gradient −2(1 − aᵀθ)a is parallel to a, so θ stays in span(a); the only
  interpolant there is θ = a/‖a‖² (the minimum-ℓ2-norm solution). The residual obeys
  r_{t+1} = (1 − 2α‖a‖²) r_t, so constant steps converge iff 0 < α < 1/‖a‖² (Hessian 2aaᵀ,
  λmax = 2‖a‖²).
* Simplified Adam with one example is θ ← θ − α_t·sign(∇f) = θ + α_t·sign(r)·sign(a): θ stays on
  the line c·sign(a), and c does 1-D sign descent towards c* = 1/‖a‖₁. With |e_t| = |c_t − c*|:
  |e_{t+1}| = ||e_t| − α_t|. A constant α ends up oscillating between two points α apart around c*
  (it does not converge); α_t → 0 with Σα_t = ∞ converges (|e_t| ≤ α_{t−1} once c* is crossed); a
  geometric α_t = α₀γᵗ converges iff it can reach, α₀/(1 − γ) ≥ c*, and (γ ≥ ½) each step is at
  most the sum of all later ones. Limit: θ = sign(a)/‖a‖₁, the minimum-ℓ∞-norm interpolant.
* Rescaled SGD: s_j = 1/sqrt(E[x_j²]) = 1/|a_j|, the rescaled point is sign(a), SGD on w converges
  to sign(a)/d, and θ_j = s_j·w_j = 1/(d·a_j); the same iterates as SGD preconditioned by
  diag(1/a_j²).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from jaxopt_hw import config as cfg
from jaxopt_hw.families import HOMEWORK_SETTINGS, sweep_method
from jaxopt_hw.names import METHODS, SCHEDULES
from jaxopt_hw.problems import HOMEWORK_A, derived_thetas, stability_thresholds
from jaxopt_hw.report import markdown_table
from jaxopt_hw.studies import STUDIES, StudyResult, SummaryLine, sweep_progress

NAME = "q2"
TITLE = STUDIES[NAME].title

LABELS = {
  "sgd": "SGD",
  "simplified_adam": "simplified Adam",
  "rescaled_sgd": "rescaled-feature SGD",
}
#: The step-size map's cases (keys of results.json's "step_size_map") as figures and tables name
#: them.
STEP_SIZE_MAP_LABELS = {
  "sgd": "SGD, constant α",
  "rescaled_sgd": "rescaled-feature SGD, constant α",
  "simplified_adam (constant)": "simplified Adam, constant α",
  "simplified_adam (α/(t+1))": "simplified Adam, α/(t+1)",
}
SCHEDULE_TEXT = {
  "constant": "α",
  "harmonic": "α/(t+1)",
  "inverse_sqrt": "α/√(t+1)",
  "exponential": "α·γᵗ",
}


def _nonzero(values) -> bool:
  return len(values) > 0 and all(v != 0 for v in values)


_SGD = HOMEWORK_SETTINGS["sgd"]
_ADAM = HOMEWORK_SETTINGS["simplified_adam"]
_RESCALED = HOMEWORK_SETTINGS["rescaled_sgd"]


@dataclass(frozen=True)
class SGDConfig:
  learning_rate: float = field(default=_SGD.learning_rate, metadata=cfg.positive())
  grid: tuple[float, ...] = field(
    default=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95), metadata=cfg.non_empty_positive()
  )
  steps: int = field(default=_SGD.steps, metadata=cfg.positive())


@dataclass(frozen=True)
class SimplifiedAdamConfig:
  schedule: str = field(default=_ADAM.schedule, metadata=cfg.one_of(*SCHEDULES))
  learning_rate: float = field(default=_ADAM.learning_rate, metadata=cfg.positive())
  decay_rate: float = field(
    default=_ADAM.decay_rate,
    metadata=cfg.check(lambda v: 0 < v < 1, "must be strictly between 0 and 1"),
  )
  grid: tuple[float, ...] = field(default=(0.1, 0.25, 0.5, 1.0), metadata=cfg.non_empty_positive())
  steps: int = field(default=_ADAM.steps, metadata=cfg.positive())


@dataclass(frozen=True)
class RescaledSGDConfig:
  learning_rate: float = field(default=_RESCALED.learning_rate, metadata=cfg.positive())
  grid: tuple[float, ...] = field(
    default=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3), metadata=cfg.non_empty_positive()
  )
  steps: int = field(default=_RESCALED.steps, metadata=cfg.positive())


@dataclass(frozen=True)
class StepSizeMapConfig:
  enabled: bool = True
  lr_min: float = field(default=1e-3, metadata=cfg.positive())
  lr_max: float = field(default=10.0, metadata=cfg.positive())
  #: points × seeds runs per sweep, each kept in memory and in results.json: bounded.
  points: int = field(default=161, metadata=cfg.in_range(2, 10_000))
  seeds: int = field(default=8, metadata=cfg.in_range(1, 100))
  steps: int = field(default=4000, metadata=cfg.positive())
  #: θ₀ ~ N(0, init_scale²·I) per seed (the threshold does not depend on θ₀).
  init_scale: float = field(default=1.0, metadata=cfg.positive())
  #: a point counts as converged when its loss is at most this from some step to the end.
  loss_tol: float = field(default=1e-12, metadata=cfg.positive())
  #: a linear grid of this many points between the coarse bracket of each stability threshold.
  refine_points: int = field(default=101, metadata=cfg.in_range(2, 10_000))


@dataclass(frozen=True)
class Config:
  a: tuple[float, ...] = field(
    default=HOMEWORK_A, metadata=cfg.check(_nonzero, "must be a non-empty list of non-zero numbers")
  )
  dtype: str = field(default="float64", metadata=cfg.one_of("float32", "float64"))
  #: a grid point has converged when max|θ − θ*| <= tol at the end.
  tol: float = field(default=1e-8, metadata=cfg.positive())
  log_points: int = field(default=120, metadata=cfg.in_range(2, 10_000))
  compare_schedules: bool = True
  sgd: SGDConfig = SGDConfig()
  simplified_adam: SimplifiedAdamConfig = SimplifiedAdamConfig()
  rescaled_sgd: RescaledSGDConfig = RescaledSGDConfig()
  step_size_map: StepSizeMapConfig = StepSizeMapConfig()


# ---------------------------------------------------------------------------------------------
# Closed forms (derived in jaxopt_hw.problems), as the report writes them.


DERIVED_TEXT = {
  "sgd": "a/‖a‖²",
  "simplified_adam": "sign(a)/‖a‖₁",
  "rescaled_sgd": "1/(d·a_j)",
}


def _method_settings(config: Config, method: str):
  m = getattr(config, method)
  schedule = getattr(m, "schedule", "constant")
  decay_rate = getattr(m, "decay_rate", 0.5)
  return m, schedule, decay_rate


# ---------------------------------------------------------------------------------------------
# The study.


def _fmt_vec(v, digits: int = 6) -> str:
  return "[" + ", ".join(f"{x:.{digits}g}" for x in np.asarray(v, np.float64)) + "]"


def _fmt_err(x: float) -> str:
  return "—" if x is None or not np.isfinite(x) else f"{x:.1e}"


def _grid_summary(method, result, derived, tol):
  thetas = np.asarray(result.params, np.float64)[:, 0]
  errors = np.max(np.abs(thetas - derived), axis=-1)
  diverged = np.asarray(result.diverged)[:, 0]
  steps_to_tol = np.asarray(result.steps_to_tol)[:, 0]
  rows = []
  for i, lr in enumerate(np.asarray(result.learning_rates, np.float64)):
    rows.append(
      {
        "learning_rate": float(lr),
        "theta": thetas[i].tolist(),
        "max_error": float(errors[i]) if np.isfinite(errors[i]) else None,
        "steps_to_tol": int(steps_to_tol[i]),
        "diverged": bool(diverged[i]),
        "converged": bool(not diverged[i] and errors[i] <= tol),
      }
    )
  return rows


def _schedule_cases(config: Config):
  """(label, method, schedule, α₀, γ, steps) of the schedule comparison."""
  steps = config.simplified_adam.steps
  c_star = 1.0 / np.abs(np.asarray(config.a, np.float64)).sum()
  short = 0.5 * c_star * (1 - 0.9)  # budget α₀/(1−γ) = c*/2 < c*: cannot reach
  return [
    ("constant α = 0.1", "simplified_adam", "constant", 0.1, 0.5, steps),
    ("constant α = 0.001", "simplified_adam", "constant", 0.001, 0.5, steps),
    ("α/(t+1), α = 1", "simplified_adam", "harmonic", 1.0, 0.5, steps),
    ("α/√(t+1), α = 1", "simplified_adam", "inverse_sqrt", 1.0, 0.5, steps),
    ("α·0.5ᵗ, α = 1", "simplified_adam", "exponential", 1.0, 0.5, steps),
    (
      f"α·0.9ᵗ, α = {short:.3g} (α/(1−γ) = c*/2)",
      "simplified_adam",
      "exponential",
      short,
      0.9,
      steps,
    ),
    ("SGD, α·0.9ᵗ, α = 0.1 (Σα = 1)", "sgd", "exponential", 0.1, 0.9, config.sgd.steps),
  ]


def _step_sum(schedule: str, lr: float, gamma: float) -> str:
  return f"{lr / (1 - gamma):.3g}" if schedule == "exponential" else "∞"


def _error_bound(method: str, schedule: str, lr: float, gamma: float, steps: int, a) -> str:
  """What the derivation says about the final error max|θ_T − θ*| (module docstring)."""
  a = np.asarray(a, np.float64)
  if method == "sgd":
    # exact: θ_T − θ* = −θ*·Π_t (1 − 2α_t‖a‖²)
    t = np.arange(steps)
    alphas = lr * gamma**t if schedule == "exponential" else np.full(steps, lr)
    factor = np.prod(np.abs(1 - 2 * alphas * (a @ a)))
    return f"= {np.max(np.abs(a / (a @ a))) * factor:.2g} (exact)"
  c_star = 1.0 / np.abs(a).sum()
  if schedule == "constant":
    return f"oscillates: ≤ α = {lr:g}, no limit"
  if schedule == "harmonic":
    return f"≤ α/T = {lr / steps:.1e}"
  if schedule == "inverse_sqrt":
    return f"≤ α/√T = {lr / math.sqrt(steps):.1e}"
  total = lr / (1 - gamma)
  if total < c_star:
    return f"≥ c* − α/(1−γ) = {c_star - total:.3g} (cannot reach)"
  return f"≤ αγᵀ/(1−γ) = {lr * gamma**steps / (1 - gamma):.1e}"


def _classify(result):
  """Per (lr, seed): 0 converged, 1 stable (loss shrank, not yet within tol), 2 grew, 3 diverged."""
  losses = np.asarray(result.losses, np.float64)
  first = losses[..., 0]
  final = np.asarray(result.final_loss, np.float64)
  diverged = np.asarray(result.diverged)
  converged = np.asarray(result.steps_to_tol) >= 0
  cls = np.where(final <= first, 1, 2)
  cls = np.where(converged, 0, cls)
  return np.where(diverged, 3, cls)


def _threshold_from(result_cls, lrs):
  """(largest lr whose every seed is stable, smallest lr with a seed unstable), or None."""
  stable = np.all(result_cls <= 1, axis=-1)
  unstable = np.any(result_cls >= 2, axis=-1)
  if not unstable.any():
    return None
  hi = float(lrs[np.argmax(unstable)])
  below = lrs[(lrs < hi) & stable]
  lo = float(below.max()) if below.size else None
  return lo, hi


def _step_size_map(config: Config, ctx):
  m = config.step_size_map
  a = np.asarray(config.a, np.float64)
  lrs = np.geomspace(m.lr_min, m.lr_max, m.points)
  seeds = list(range(m.seeds))
  derived = stability_thresholds(a)
  cases = [
    ("sgd", "sgd", "constant"),
    ("rescaled_sgd", "rescaled_sgd", "constant"),
    ("simplified_adam (constant)", "simplified_adam", "constant"),
    ("simplified_adam (α/(t+1))", "simplified_adam", "harmonic"),
  ]
  out = {}
  for label, method, schedule in cases:
    kw = dict(
      steps=m.steps,
      schedule=schedule,
      dtype=config.dtype,
      seeds=seeds,
      init_scale=m.init_scale,
      tol=m.loss_tol,
      log_points=2,
      log_spacing="linear",
      progress=sweep_progress(ctx),
    )
    r = sweep_method(method, a, lrs, **kw)
    cls = _classify(r)
    entry = {
      "method": method,
      "schedule": schedule,
      "learning_rates": lrs.tolist(),
      "fraction_converged": np.mean(cls == 0, axis=-1).tolist(),
      "fraction_stable": np.mean(cls == 1, axis=-1).tolist(),
      "fraction_growing": np.mean(cls == 2, axis=-1).tolist(),
      "fraction_diverged": np.mean(cls == 3, axis=-1).tolist(),
      "any_diverged": bool(np.any(cls == 3)),
      "converging_learning_rates": [
        float(lrs[i]) for i in np.flatnonzero(np.all(cls == 0, axis=-1))
      ],
      "derived_threshold": derived.get(method),
      "measured_threshold": None,
      "bracket": None,
    }
    bracket = _threshold_from(cls, lrs)
    if bracket is not None and bracket[0] is not None and method in derived:
      fine = np.linspace(bracket[0], bracket[1], m.refine_points)
      rf = sweep_method(method, a, fine, **kw)
      fine_bracket = _threshold_from(_classify(rf), fine)
      if fine_bracket is not None and fine_bracket[0] is not None:
        bracket = fine_bracket
      entry["measured_threshold"] = 0.5 * (bracket[0] + bracket[1])
      entry["bracket"] = list(bracket)
    out[label] = entry
  return out


def run(config: Config, ctx):
  a = np.asarray(config.a, np.float64)
  derived = derived_thetas(a)
  results: dict = {"a": a.tolist(), "dtype": config.dtype, "tol": config.tol}
  runs = {}
  for method in METHODS:
    m, schedule, decay_rate = _method_settings(config, method)
    grid = sorted(set(m.grid) | {m.learning_rate})
    r = sweep_method(
      method,
      a,
      grid,
      steps=m.steps,
      schedule=schedule,
      decay_rate=decay_rate,
      dtype=config.dtype,
      target=derived[method],
      tol=config.tol,
      log_points=config.log_points,
      record_params=True,
      progress=sweep_progress(ctx),
    )
    runs[method] = r
    rows = _grid_summary(method, r, derived[method], config.tol)
    chosen = min(rows, key=lambda row: abs(row["learning_rate"] - m.learning_rate))
    results[method] = {
      "theta": chosen["theta"],
      "derived": derived[method].tolist(),
      "derived_formula": DERIVED_TEXT[method],
      "learning_rate": m.learning_rate,
      "schedule": schedule,
      "steps": m.steps,
      "max_error": chosen["max_error"],
      "grid": rows,
      "all_converged": all(row["converged"] for row in rows),
    }
  # Rescaled SGD as fixed diagonal preconditioning: the same iterates in the original units.
  m = config.rescaled_sgd
  grid = sorted(set(m.grid) | {m.learning_rate})
  pre = sweep_method(
    "preconditioned_sgd",
    a,
    grid,
    steps=m.steps,
    dtype=config.dtype,
    log_points=config.log_points,
    record_params=True,
    progress=sweep_progress(ctx),
  )
  forms_gap = float(
    np.max(
      np.abs(
        np.asarray(pre.params_log, np.float64)
        - np.asarray(runs["rescaled_sgd"].params_log, np.float64)
      )
    )
  )
  results["rescaled_sgd"]["preconditioned_theta"] = np.asarray(pre.params, np.float64)[
    grid.index(m.learning_rate), 0
  ].tolist()
  results["rescaled_sgd"]["max_difference_between_forms"] = forms_gap

  schedule_rows, schedule_results = [], []
  const_run = None
  if config.compare_schedules:
    for label, method, schedule, lr, gamma, steps in _schedule_cases(config):
      r = sweep_method(
        method,
        a,
        [lr],
        steps=steps,
        schedule=schedule,
        decay_rate=gamma,
        dtype=config.dtype,
        target=derived[method],
        tol=config.tol,
        log_points=config.log_points,
        record_params=True,
        progress=sweep_progress(ctx),
      )
      plog = np.asarray(r.params_log, np.float64)[0, 0]  # (K, d)
      tail = plog[int(0.75 * len(plog)) :]
      err_tail = np.max(np.abs(tail - derived[method]), axis=-1)
      final_err = float(np.max(np.abs(np.asarray(r.params, np.float64)[0, 0] - derived[method])))
      converged = final_err <= config.tol
      entry = {
        "label": label,
        "method": method,
        "schedule": schedule,
        "learning_rate": lr,
        "decay_rate": gamma if schedule == "exponential" else None,
        "steps": steps,
        "step_sum": _step_sum(schedule, lr, gamma),
        "derived_error": _error_bound(method, schedule, lr, gamma, steps, a),
        "final_error": final_err,
        "max_error_last_quarter": float(err_tail.max()),
        "converged": bool(converged),
      }
      schedule_results.append(entry)
      schedule_rows.append(
        [
          label,
          entry["step_sum"],
          steps,
          entry["derived_error"],
          _fmt_err(final_err),
          _fmt_err(entry["max_error_last_quarter"]),
          "yes" if converged else "**no**",
        ]
      )
      if method == "simplified_adam" and schedule == "constant" and const_run is None:
        const_run = (label, r)
  results["schedules"] = schedule_results

  step_map = _step_size_map(config, ctx) if config.step_size_map.enabled else {}
  results["step_size_map"] = step_map

  arrays = _figure_arrays(config, runs, const_run, derived, step_map)
  figures = [
    (alt, f"{name}.png")
    for alt, name in [
      ("trajectories", "q2_trajectories"),
      ("loss curves", "q2_loss_curves"),
      ("step-size map", "q2_step_size_map"),
    ]
    if name in arrays
  ]
  markdown = _markdown(config, results, derived, schedule_rows, step_map, figures)
  return StudyResult(
    results=results,
    markdown=markdown,
    seeds=list(range(config.step_size_map.seeds)) if config.step_size_map.enabled else [0],
    summary=_summary(config, results, derived, step_map),
    arrays=arrays,
  )


def _summary(config, results, derived, step_map) -> list[SummaryLine]:
  lines = []
  for method, question in [
    ("sgd", "Q2(a) SGD from θ₀ = 0"),
    ("simplified_adam", "Q2(b) simplified Adam"),
    ("rescaled_sgd", "Q2(c) rescaled features"),
  ]:
    res = results[method]
    error = res["max_error"]
    lines.append(
      SummaryLine.check(
        question,
        f"θ = {DERIVED_TEXT[method]} = {_fmt_vec(derived[method], 4)}",
        f"θ = {_fmt_vec(res['theta'], 4)}, max error {_fmt_err(error)}",
        error is not None and error <= config.tol,
      )
    )
  for key, question, formula in [
    ("sgd", "Q2(a) stable step sizes", "1/‖a‖²"),
    ("rescaled_sgd", "Q2(c) stable step sizes", "1/d"),
  ]:
    e = step_map.get(key)
    if e and e["derived_threshold"] is not None and e["bracket"] is not None:
      lo, hi = e["bracket"]
      lines.append(
        SummaryLine.check(
          question,
          f"α < {formula} = {e['derived_threshold']:.6g}",
          f"stability lost between α = {lo:.6g} and {hi:.6g}",
          lo <= e["derived_threshold"] <= hi,
        )
      )
  return lines


def _markdown(config, results, derived, schedule_rows, step_map, figures) -> str:
  a = np.asarray(config.a)
  rows = []
  for method in METHODS:
    res = results[method]
    if method == "simplified_adam":
      how = f"{SCHEDULE_TEXT[res['schedule']]}, α = {res['learning_rate']:g}" + (
        f", γ = {config.simplified_adam.decay_rate:g}" if res["schedule"] == "exponential" else ""
      )
    else:
      how = f"α = {res['learning_rate']:g}"
    rows.append(
      [
        LABELS[method],
        how,
        res["steps"],
        _fmt_vec(res["theta"]),
        f"{DERIVED_TEXT[method]} = {_fmt_vec(derived[method])}",
        _fmt_err(res["max_error"]),
      ]
    )
  main = markdown_table(
    [
      "method",
      "step size",
      "steps",
      "converged θ (measured)",
      "derived θ",
      "max |measured − derived|",
    ],
    rows,
  )

  grid_rows = []
  for method in METHODS:
    g = results[method]["grid"]
    ok = [row for row in g if row["converged"]]
    worst = max(
      (row["max_error"] for row in g if row["max_error"] is not None), default=float("nan")
    )
    lrs = ", ".join(f"{row['learning_rate']:g}" for row in g)
    grid_rows.append([LABELS[method], lrs, f"{len(ok)}/{len(g)}", _fmt_err(worst)])
  grid_table = markdown_table(
    [
      "method",
      "learning rates (α₀ for schedules)",
      f"converged (max error ≤ {config.tol:g})",
      "worst max error",
    ],
    grid_rows,
  )

  parts = [
    f"## {TITLE}",
    f"f(θ) = (1 − aᵀθ)², a = {_fmt_vec(a)}, θ₀ = 0, {config.dtype}. Each row of the grid below "
    "is one compiled sweep over its learning rates. The derived values are closed forms (see "
    "`jaxopt_hw.studies.q2`): SGD stays in span(a) → the minimum-ℓ2-norm interpolant; "
    "simplified Adam with one example is sign descent, stays on the line c·sign(a) → c* = "
    "1/‖a‖₁, the minimum-ℓ∞-norm interpolant; rescaling feature j by 1/|a_j| makes the point "
    "sign(a), SGD lands on sign(a)/d, i.e. θ_j = 1/(d·a_j) in the original units.",
    main,
    f"Every learning rate of each grid:\n\n{grid_table}",
    "Rescaled SGD run as SGD preconditioned by the fixed diagonal M = diag(1/E[x_j²]) = "
    'diag(1/a_j²) on θ directly: largest difference from "rescale, run SGD, convert back" over '
    "every logged iterate of every learning rate: "
    f"{_fmt_err(results['rescaled_sgd']['max_difference_between_forms'])}.",
  ]
  if schedule_rows:
    parts.append(
      "Simplified Adam needs α_t → 0: its steps have size α_t in every coordinate whatever the "
      "gradient's size. A constant step oscillates between two points about α apart around c* "
      "(it also never diverges); α_t → 0 with Σα_t = ∞ converges; a geometric schedule "
      "converges only if its total α/(1−γ) reaches c*. SGD is shown once with a summable "
      "schedule: it stops short too. Errors are max|θ − θ*| against the derived θ; the derived "
      "column is what the analysis guarantees.\n\n"
      + markdown_table(
        [
          "schedule",
          "Σα_t",
          "steps T",
          "derived final error",
          "measured final error",
          "max error, last quarter of the logged steps",
          f"converged (≤ {config.tol:g})",
        ],
        schedule_rows,
      )
      + "\n\nMeasured errors far below the bound for α/(t+1) and α/√(t+1) are not the generic "
      "rate. The iterates alternate between two subsequences: one at distance about α_t from "
      "c*, and one whose distance shrinks much faster (by α_t − α_(t+1) every two steps). The "
      "fast one reaches a θ whose computed residual 1 − aᵀθ is exactly 0 in floating point "
      "(after about 2,000 steps here), and sign(0) = 0 stops it there for good. In exact "
      "arithmetic it would keep moving inside the bound; the tests rely only on the bound."
    )
  if step_map:
    mrows = []
    for key, e in step_map.items():
      label = STEP_SIZE_MAP_LABELS[key]
      conv = e["converging_learning_rates"]
      conv_text = (
        f"{min(conv):.3g} … {max(conv):.3g} ({len(conv)} of {len(e['learning_rates'])})"
        if conv
        else "none"
      )
      derived_t = f"{e['derived_threshold']:.6g}" if e["derived_threshold"] is not None else "—"
      measured_t = (
        f"{e['measured_threshold']:.6g} (between {e['bracket'][0]:.6g} and {e['bracket'][1]:.6g})"
        if e["measured_threshold"] is not None
        else "—"
      )
      mrows.append([label, conv_text, "yes" if e["any_diverged"] else "no", derived_t, measured_t])
    m = config.step_size_map
    parts.append(
      f"Step-size map: {m.points} learning rates from {m.lr_min:g} to {m.lr_max:g} (log-spaced) "
      f"× {m.seeds} seeds (θ₀ ~ N(0, {m.init_scale:g}²I)), {m.steps} steps, converged = loss ≤ "
      f"{m.loss_tol:g} from some step to the end, for every seed. The stability threshold is "
      f"bracketed on that grid, then on {m.refine_points} linear points inside the bracket "
      "(stable = the final loss is below the initial one for every seed; simplified Adam's "
      "steps are bounded, so a loss above its start there means oscillation, not instability); "
      "derived: α < 2/λmax of the Hessian (SGD: 2aaᵀ, 1/‖a‖²; "
      "rescaled: 2·sign(a)sign(a)ᵀ, 1/d).\n\n"
      + markdown_table(
        [
          "method",
          "converging α (all seeds)",
          "diverges somewhere",
          "derived threshold",
          "measured threshold",
        ],
        mrows,
      )
    )
  parts.append(" ".join(f"![{alt}]({name})" for alt, name in figures))
  return "\n\n".join(parts)


def _figure_arrays(config, runs, const_run, derived, step_map) -> dict:
  """The arrays behind Q2's figures (drawn by :mod:`jaxopt_hw.studies.figures`)."""
  chosen = {}
  for method in METHODS:
    lrs = np.asarray(runs[method].learning_rates, np.float64)
    chosen[method] = int(np.argmin(np.abs(lrs - getattr(config, method).learning_rate)))
  names = {"methods": np.asarray(METHODS), "labels": np.asarray([LABELS[m] for m in METHODS])}
  trajectories, losses = dict(names), dict(names)
  for method in METHODS:
    r = runs[method]
    steps = np.asarray(r.log_steps)
    trajectories[f"steps_{method}"] = losses[f"steps_{method}"] = steps
    trajectories[f"theta_{method}"] = np.asarray(r.params_log, np.float64)[chosen[method], 0]
    trajectories[f"derived_{method}"] = np.asarray(derived[method], np.float64)
    losses[f"loss_{method}"] = np.asarray(r.losses, np.float64)[chosen[method], 0]
  if const_run is not None:
    label, r = const_run
    for d in (trajectories, losses):
      d["extra_label"] = np.asarray(f"simplified Adam, {label}")
      d["extra_steps"] = np.asarray(r.log_steps)
    trajectories["extra_theta"] = np.asarray(r.params_log, np.float64)[0, 0]
    losses["extra_loss"] = np.asarray(r.losses, np.float64)[0, 0]
  arrays = {"q2_trajectories": trajectories, "q2_loss_curves": losses}
  if step_map:
    outcomes = ["converged", "stable", "growing", "diverged"]  # figures.STEP_SIZE_OUTCOMES' order

    def threshold(value):
      return np.nan if value is None else value

    entries = list(step_map.values())
    arrays["q2_step_size_map"] = {
      "labels": np.asarray([STEP_SIZE_MAP_LABELS[k] for k in step_map]),
      "learning_rates": np.asarray(entries[0]["learning_rates"]),
      "fractions": np.asarray([[e[f"fraction_{o}"] for o in outcomes] for e in entries]),
      "derived_thresholds": np.asarray([threshold(e["derived_threshold"]) for e in entries]),
      "measured_thresholds": np.asarray([threshold(e["measured_threshold"]) for e in entries]),
    }
  return arrays
