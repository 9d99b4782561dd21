"""The Q1 study: through the runner and the CLI with a tiny config, and its numerical minimiser's
projections against SciPy (float64)."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from jaxopt_hw import cli, duality, runner
from jaxopt_hw import config as cfg
from jaxopt_hw.duality import NORMS
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.studies import figures, q1

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "hw2_q1.toml"
TINY_SETTINGS = {
  "trials": 3,
  "dims": [3],
  "matrix_shapes": ["3x2"],
  "alphas": [0.5],
  "pgd_steps": 80,
}
TINY = [
  "--set",
  "q1.trials=3",
  "--set",
  "q1.dims=[3]",
  "--set",
  'q1.matrix_shapes=["3x2"]',
  "--set",
  "q1.alphas=[0.5]",
  "--set",
  "q1.pgd_steps=80",
]


@pytest.fixture(scope="module")
def q1_run(tmp_path_factory):
  """One tiny Q1 run through the CLI, shared by the tests below: (its folder, what it printed)."""
  out = tmp_path_factory.mktemp("q1") / "run"
  printed = io.StringIO()
  with contextlib.redirect_stdout(printed):
    assert cli.main(["run", str(CONFIG), "--out", str(out), "--no-progress", *TINY]) == 0
  return out, printed.getvalue()


def test_cli_run_writes_every_row_with_gaps_below_tolerance_and_prints_a_summary(q1_run):
  out, printed = q1_run
  results = json.loads((out / "results.json").read_text())["q1"]
  rows = results["rows"]
  expected_rows = {
    (n, f)
    for n in ("l2", "linf", "l1", "lp (p = 1.5)", "lp (p = 3)", "mahalanobis", "spectral")
    for f in ("penalty", "ball")
  }
  assert {(r["norm"], r["form"]) for r in rows} == expected_rows
  for r in rows:
    assert set(r) >= {"norm", "form", "closed_form", "optimizer", "max_relative_gap", "trials"}
    assert isinstance(r["max_relative_gap"], float) and r["max_relative_gap"] < 1e-10, r
    assert r["max_closed_form_beaten_by"] < 1e-9, r  # the numerical minimiser never wins
    assert r["trials"] == 3 and r["passed"] is True
  assert results["all_gaps_below_tolerance"] is True
  checks = results["unsquared_penalty"]["checks"]
  assert {c["has_minimiser"] for c in checks if c["alpha_times_dual_norm"] < 1} == {True}
  assert {c["has_minimiser"] for c in checks if c["alpha_times_dual_norm"] > 1} == {False}
  assert printed.startswith("Q1: steepest descent under a norm (")
  assert re.search(r"^  Q1\(a\) ‖·‖₂, penalty +u = −\(α/2\)·g: .* agrees$", printed, re.M), printed
  assert re.search(r"^  Q1\(b\) ‖·‖∞, un-squared .* agrees$", printed, re.M), printed
  report = (out / "report.md").read_text()
  assert "| linf | ball | u = −α·sign(g) |" in report
  assert "Every gap is below 1e-10" in report and "![norm balls and steepest steps]" in report


def test_a_penalty_step_0_3_percent_too_long_fails(monkeypatch):
  # At u = (1 + δ)u* the penalty objective is −(α/4)‖g‖*²(1 − δ²): a relative gap of δ² = 9e-6,
  # which a tolerance of 1e-5 let pass; float64 rounding of the objectives is ~1e-11.
  right = duality.penalty_step
  monkeypatch.setattr(duality, "penalty_step", lambda g, alpha, norm: 1.003 * right(g, alpha, norm))
  settings = {**TINY_SETTINGS, "norms": ["l2"], "forms": ["penalty"]}
  result = runner.run_study("q1", settings, show_progress=False)
  (row,) = result.results["rows"]
  np.testing.assert_allclose(row["max_relative_gap"], 0.003**2, rtol=1e-6)
  assert row["passed"] is False and result.results["all_gaps_below_tolerance"] is False
  (line,) = [ln for ln in result.summary if ln.question.startswith("Q1(a)")]
  assert line.verdict == "DIFFERS"
  assert "**Some gaps are not below 1e-10.**" in result.markdown


def test_the_tolerance_is_above_the_rounding_estimate_of_the_default_config():
  # ε·(1.2⁵⁰·max(√d, √κ) + 3·d·κ) with d = 16 (dims) vs 5·2 = 10 (matrices), κ = 100:
  # 2.22e-16·(9100·10 + 4800) ≈ 2.1e-11
  eps = np.finfo(np.float64).eps
  expected = eps * (1.2**50 * 10 + 3 * 16 * 100)
  assert q1.rounding_estimate(q1.Config()) == pytest.approx(expected, rel=1e-12)
  assert expected < q1.Config().tolerance == 1e-10


def test_the_figure_data_are_the_balls_and_the_minimisers_in_two_dimensions(q1_run):
  out, _ = q1_run
  a = figures.load_arrays(out / "q1_unit_balls.npz")
  assert str(a["figure"]) == "q1_unit_balls" and (out / "q1_unit_balls.png").stat().st_size
  labels = a["labels"].tolist()
  assert labels == ["ℓ₂", "ℓ∞", "ℓ₁", "ℓp, p = 1.5", "ℓp, p = 3", "Mahalanobis, M = [2 0.8; 0.8 1]"]
  M = np.array([[2.0, 0.8], [0.8, 1.0]])
  norms = [  # written here with NumPy, independently of jaxopt_hw.duality
    lambda x: np.linalg.norm(x, axis=-1),
    lambda x: np.abs(x).max(-1),
    lambda x: np.abs(x).sum(-1),
    lambda x: (np.abs(x) ** 1.5).sum(-1) ** (1 / 1.5),
    lambda x: (np.abs(x) ** 3).sum(-1) ** (1 / 3),
    lambda x: np.sqrt(np.einsum("...i,ij,...j->...", x, M, x)),
  ]
  g, alpha = a["g"], float(a["alpha"])
  # brute force on a fine 2-D grid: the minimisers of the penalty objective and of gᵀΔ on the ball
  axis = np.linspace(-1.5, 1.5, 1201)
  grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
  h = axis[1] - axis[0]
  for k, norm in enumerate(norms):
    np.testing.assert_allclose(norm(a["balls"][k]), alpha, rtol=1e-12)  # the boundary ‖Δ‖ = α
    inside = grid[norm(grid) <= alpha]
    assert g @ a["ball_steps"][k] <= (inside @ g).min() + 1e-12
    assert norm(a["ball_steps"][k]) == pytest.approx(alpha, rel=1e-12)
    objective = grid @ g + norm(grid) ** 2 / alpha
    best = grid[np.argmin(objective)]
    np.testing.assert_allclose(a["penalty_steps"][k], best, atol=2 * h)
    value = g @ a["penalty_steps"][k] + norm(a["penalty_steps"][k]) ** 2 / alpha
    assert value <= objective.min() + 1e-12


def test_packaged_config_is_the_study_default():
  import tomllib

  settings = tomllib.loads(CONFIG.read_text())
  assert settings.pop("experiment") == "q1"
  assert cfg.load(q1.Config, settings, prefix="q1") == q1.Config()


@pytest.mark.parametrize(
  "settings,match",
  [
    ({"norms": ["l2", "l3"]}, r"q1.norms"),
    ({"p_values": [1.0]}, r"q1.p_values"),
    ({"matrix_shapes": ["3by2"]}, r"q1.matrix_shapes"),
    ({"alphas": [0.0]}, r"q1.alphas"),
    ({"trails": 3}, r"trials"),
    ({"trials": 10**9}, r"^q1\.trials: 1000000000 is not allowed; must be between 1 and 100000"),
  ],
)
def test_bad_settings_are_config_errors(settings, match):
  with pytest.raises(cfg.ConfigError, match=match):
    cfg.load(q1.Config, settings, prefix="q1")


def test_run_study_with_one_norm_and_form():
  result = runner.run_study(
    "q1",
    {
      "norms": ["linf"],
      "forms": ["ball"],
      "trials": 2,
      "dims": [4],
      "alphas": [2.0],
      "pgd_steps": 40,
    },
    show_progress=False,
  )
  (row,) = result.results["rows"]
  assert (row["norm"], row["form"], row["closed_form"]) == ("linf", "ball", "u = −α·sign(g)")
  assert row["max_relative_gap"] < 1e-12  # PGD lands exactly on the vertex −α·sign(g)
  assert result.seeds == [0]
  assert set(NORMS) == {"l2", "linf", "l1", "lp", "mahalanobis", "spectral"}


# -- the projections the numerical minimiser relies on, against SciPy's SLSQP.


def _scipy_projection(y, value, radius):
  cons = [{"type": "ineq", "fun": lambda x: radius - value(x)}]
  best = scipy.optimize.minimize(
    lambda x: np.sum((x - y) ** 2),
    y * 0.5 * radius / max(value(y), 1e-12),
    method="SLSQP",
    constraints=cons,
    options={"ftol": 1e-15, "maxiter": 500},
  )
  return best.x


@pytest.mark.parametrize("p", [1.3, 2.0, 4.0])
def test_lp_ball_projection_matches_scipy(p):
  rng = np.random.default_rng(0)
  for _ in range(3):
    y = rng.standard_normal(4) * 2
    x = np.asarray(q1.project_lp_ball(jnp.asarray(y), 1.0, p))
    ref = _scipy_projection(y, lambda v: np.sum(np.abs(v) ** p) ** (1 / p), 1.0)
    np.testing.assert_allclose(x, ref, atol=1e-6)
  inside = jnp.array([0.1, -0.2, 0.05])
  np.testing.assert_array_equal(np.asarray(q1.project_lp_ball(inside, 1.0, p)), np.asarray(inside))


@pytest.mark.parametrize("p", [1.1, 8.0, 30.0])
def test_lp_ball_projection_of_far_points_is_a_projection(p):
  # Points far outside the ball (as the growing PGD steps produce) and extreme p: check feasibility
  # and the variational characterisation ⟨y − x, z − x⟩ ≤ 0 for random feasible z.
  rng = np.random.default_rng(2)
  norm_p = lambda v: np.sum(np.abs(v / np.abs(v).max()) ** p) ** (1 / p) * np.abs(v).max()
  for scale in (1e-3, 1.0, 1e4):
    y = rng.standard_normal(6) * scale * 1e4  # ‖y‖ ≫ r, as after a long PGD step
    x = np.asarray(q1.project_lp_ball(jnp.asarray(y), scale, p))
    assert norm_p(x) <= scale * (1 + 1e-12)
    for _ in range(200):
      z = rng.standard_normal(6)
      z = z * scale * rng.uniform(0, 1) ** 0.1 / norm_p(z)
      assert np.sum((y - x) * (z - x)) <= 1e-10 * scale**2


def test_mahalanobis_and_spectral_projections_match_scipy():
  rng = np.random.default_rng(1)
  A = rng.standard_normal((3, 3))
  M = A @ A.T + 0.3 * np.eye(3)
  lam, Q = np.linalg.eigh(M)
  y = rng.standard_normal(3) * 3
  x = np.asarray(q1.project_mahalanobis_ball(jnp.asarray(y), 0.7, jnp.asarray(lam), jnp.asarray(Q)))
  np.testing.assert_allclose(x, _scipy_projection(y, lambda v: np.sqrt(v @ M @ v), 0.7), atol=1e-6)
  # Spectral: SLSQP is unreliable on the non-smooth constraint, so check the variational
  # characterisation of a projection instead: ⟨Y − X, Z − X⟩ ≤ 0 for every feasible Z (here random
  # matrices of operator norm ≤ r, and random semi-orthogonal r·Q, the extreme points).
  Y = rng.standard_normal((3, 2)) * 2
  X = np.asarray(q1.project_spectral_ball(jnp.asarray(Y), 0.5))
  assert np.linalg.norm(X, 2) <= 0.5 * (1 + 1e-12)
  for _ in range(200):
    Z = rng.standard_normal((3, 2))
    Z = Z * 0.5 * rng.uniform(0, 1) / np.linalg.norm(Z, 2)
    Q = np.linalg.qr(rng.standard_normal((3, 2)))[0] * 0.5
    for W in (Z, Q):
      assert np.sum((Y - X) * (W - X)) <= 1e-12


@pytest.mark.parametrize(
  "settings,match",
  [
    # 1,000 × 100,000-entry gradients: 8e8 bytes of float64 for the gradients alone
    (
      {"norms": ["l2"], "dims": [100_000], "trials": 1000},
      r"^q1\.dims: \[100000\] is not allowed with trials = 1000: 1,000 trials × 100,000 entries",
    ),
    # the Mahalanobis norm holds a d × d matrix per trial
    (
      {"norms": ["mahalanobis"], "dims": [2000], "trials": 32},
      r"^q1\.dims: \[2000\] is not allowed with trials = 32: 32 trials × 4,000,000 d²",
    ),
    (
      {"norms": ["spectral"], "matrix_shapes": ["3000x3000"], "trials": 10},
      r"^q1\.matrix_shapes: \['3000x3000'\] is not allowed with trials = 10",
    ),
  ],
)
def test_sizes_too_big_to_hold_are_refused_before_q1_runs(settings, match):
  with pytest.raises(UserInputError, match=match):
    cfg.load(q1.Config, settings, prefix="q1")
  cfg.load(q1.Config, {}, prefix="q1")  # the default is far inside
