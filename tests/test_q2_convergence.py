"""Q2: the converged θ of each method against values derived by hand, over grids and schedules.

Tolerances: every check below holds within 1e-5 in float64 (most are at rounding level). In float32
the same runs agree within 1e-6 + 2e-6·|θ*| (``test_float32_tolerance``): the rescaled run's third
coordinate is 100·w₃, so it inherits 100× the float32 error of w.
"""

import json

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_hw import families, problems, testing
from jaxopt_hw.engine import sweep
from jaxopt_hw.studies import figures, q2
from jaxopt_hw.transforms import rescale
from jaxopt_hw.transforms.simplified_adam import simplified_adam

a = np.array([1.0, 0.1, 0.01])
# (a) gradients −2(1 − aᵀθ)a are parallel to a, so θ stays in span(a): θ = c·a with c‖a‖² = 1.
THETA_SGD = a / (a @ a)
# (b) sign(∇f) = −sign(1 − aᵀθ)(1,1,1) for a > 0: θ = c·(1,1,1) with c·Σa = 1.
THETA_ADAM = np.ones(3) / a.sum()
# (c) s_j = 1/|a_j| makes the point (1,1,1); SGD from 0 gives w = (1,1,1)/3,
# θ_j = s_j w_j = 1/(3a_j).
THETA_RESCALED = 1.0 / (3.0 * a)
F64_ATOL = 1e-5


def test_homework_constants_and_derived_values():
  assert problems.HOMEWORK_A == (1.0, 0.1, 0.01)
  np.testing.assert_allclose(THETA_RESCALED, [1 / 3, 10 / 3, 100 / 3])
  np.testing.assert_allclose(THETA_ADAM, np.full(3, 1 / 1.11))
  derived = problems.derived_thetas(a)
  for key, value in [
    ("sgd", THETA_SGD),
    ("simplified_adam", THETA_ADAM),
    ("rescaled_sgd", THETA_RESCALED),
  ]:
    np.testing.assert_allclose(derived[key], value, rtol=1e-15)
  for theta in (THETA_SGD, THETA_ADAM, THETA_RESCALED):
    assert abs(a @ theta - 1) < 1e-14  # all three interpolate the one point


@pytest.mark.parametrize(
  "family",
  [
    optax.sgd,
    lambda lr: optax.sgd(optax.piecewise_constant_schedule(lr, {500: 0.5, 1500: 0.5})),
    lambda lr: optax.sgd(optax.cosine_decay_schedule(lr, decay_steps=1000, alpha=0.2)),
    lambda lr: optax.sgd(optax.linear_schedule(0.0, lr, transition_steps=200)),  # warm-up
  ],
  ids=["constant", "piecewise_constant", "cosine_to_20%", "linear_warmup"],
)
def test_sgd_converges_to_the_min_norm_solution_for_every_stable_learning_rate(family):
  # all α below 1/‖a‖² ≈ 0.990 (GD is stable iff α < 2/λmax, λmax = 2‖a‖²)
  lrs = [0.02, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95]
  r = sweep(problems.homework_problem(), family, lrs, steps=4000, dtype=jnp.float64)
  testing.assert_converged_to(r, THETA_SGD, atol=F64_ATOL)


@pytest.mark.parametrize(
  "schedule, lrs, steps",
  [
    # α_t = α/(t+1): Σα = ∞, α_t → 0; once c* is crossed |c_t − c*| <= α_{t−1},
    # so <= α/T = 5e-6 here
    ("harmonic", [0.25, 0.5, 1.0], 200_000),
    # α·γᵗ with γ >= 1/2 and α/(1−γ) >= c*: each step <= the sum of the later ones,
    # |e_T| <= αγᵀ/(1−γ)
    ("exponential:0.5", [1.0, 3.0], 200),
    ("exponential:0.7", [0.5, 1.0], 200),
    ("exponential:0.9", [0.1, 1.0], 600),
  ],
)
def test_simplified_adam_converges_to_ones_over_sum_a_with_decaying_steps(schedule, lrs, steps):
  kind, _, gamma = schedule.partition(":")
  r = families.sweep_method(
    "simplified_adam",
    a,
    lrs,
    steps=steps,
    schedule=kind,
    decay_rate=float(gamma or 0.5),
    log_points=2,
  )
  testing.assert_converged_to(r, THETA_ADAM, atol=F64_ATOL)


def test_simplified_adam_with_an_optax_schedule_object():
  # optax.exponential_decay(α, 1, 0.6): the same geometric schedule as above, as optax builds it
  family = lambda lr: simplified_adam(
    optax.exponential_decay(lr, transition_steps=1, decay_rate=0.6)
  )
  r = sweep(problems.homework_problem(), family, [0.5, 1.0, 2.0], steps=300, dtype=jnp.float64)
  testing.assert_converged_to(r, THETA_ADAM, atol=F64_ATOL)


@pytest.mark.parametrize("lr", [0.1, 0.03, 0.001])
def test_simplified_adam_with_a_constant_step_oscillates_and_never_converges(lr):
  # c_{t+1} = c_t + α·sign(c* − c_t): once |c − c*| < α it alternates between two points α apart
  # that straddle c*, so one of them is at least α/2 from c* at every other step.
  steps = 3000
  r = families.sweep_method(
    "simplified_adam",
    a,
    [lr],
    steps=steps,
    schedule="constant",
    log_points=steps + 1,
    log_spacing="linear",
    record_params=True,
  )
  c = np.asarray(r.params_log)[0, 0, -200:, 0]  # last 200 iterates, first coordinate
  assert np.all(np.asarray(r.params_log)[0, 0, -200:] == c[:, None])  # still on the line c·(1,1,1)
  c_star = THETA_ADAM[0]
  lo, hi = np.unique(c)[[0, -1]]
  assert len(np.unique(c)) == 2 and lo < c_star < hi
  np.testing.assert_allclose(hi - lo, lr, rtol=1e-6)
  assert np.max(np.abs(c - c_star)) >= lr / 2
  assert not bool(r.diverged[0, 0]) and int(r.steps_to_tol[0, 0]) == -1


def test_simplified_adam_budget_too_small_stops_short():
  # α·γᵗ with α/(1−γ) < c*: the iterate can travel at most α/(1−γ), so it stays >= c* − α/(1−γ) away
  lr, gamma = 0.05, 0.9
  r = families.sweep_method(
    "simplified_adam", a, [lr], steps=500, schedule="exponential", decay_rate=gamma, log_points=2
  )
  np.testing.assert_allclose(np.asarray(r.params)[0, 0], np.full(3, lr / (1 - gamma)), rtol=1e-12)


def test_rescaled_sgd_by_features_and_by_preconditioning_agree_and_converge():
  lrs = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3]  # stable iff α < 1/3 (rescaled point (1,1,1), λmax = 6)
  kw = dict(steps=3000, log_points=3001, log_spacing="linear", record_params=True)
  by_features = families.sweep_method("rescaled_sgd", a, lrs, **kw)
  by_precond = families.sweep_method("preconditioned_sgd", a, lrs, **kw)
  testing.assert_converged_to(by_features, THETA_RESCALED, atol=F64_ATOL)
  testing.assert_converged_to(by_precond, THETA_RESCALED, atol=F64_ATOL)
  # every iterate: θ_t = s ⊙ w_t  (∇_w = S∇_θ, so θ ← θ − α S²∇_θ f)
  np.testing.assert_allclose(
    np.asarray(by_precond.params_log), np.asarray(by_features.params_log), rtol=1e-12, atol=1e-13
  )


def test_rescale_helpers_and_fixed_diagonal_transform():
  X = jnp.asarray([[1.0, 0.1, 0.01], [3.0, -0.3, 0.0]], jnp.float64)
  Xs, s = rescale.rescale_features(X)
  np.testing.assert_allclose(
    np.mean(np.asarray(Xs) ** 2, axis=0), [1.0, 1.0, 1.0]
  )  # column 3 = 0.01, 0 → scale 1/sqrt(5e-5)
  w = jnp.asarray([1.0, 2.0, 3.0], jnp.float64)
  np.testing.assert_allclose(
    np.asarray(Xs @ w), np.asarray(X @ rescale.to_original_units(w, s)), rtol=1e-14
  )
  np.testing.assert_array_equal(
    np.asarray(rescale.feature_scales(jnp.zeros((2, 2)))), [1.0, 1.0]
  )  # zero feature keeps scale 1
  tx = rescale.rescaled_sgd(0.5, jnp.asarray([[1.0, 0.1, 0.01]], jnp.float64))
  u, _ = tx.update(jnp.ones(3, jnp.float64), tx.init(jnp.zeros(3, jnp.float64)))
  np.testing.assert_allclose(
    np.asarray(u), -0.5 * np.array([1.0, 100.0, 10000.0]), rtol=1e-12
  )  # −α·g/a_j²


def test_float32_tolerance():
  tol = dict(atol=1e-6, rtol=2e-6)
  testing.assert_converged_to(
    families.sweep_method("sgd", a, [0.05, 0.5, 0.95], steps=3000, dtype="float32", log_points=2),
    THETA_SGD,
    **tol,
  )
  testing.assert_converged_to(
    families.sweep_method(
      "rescaled_sgd", a, [0.01, 0.1, 0.3], steps=3000, dtype="float32", log_points=2
    ),
    THETA_RESCALED,
    **tol,
  )
  r = families.sweep_method(
    "simplified_adam",
    a,
    [0.25, 1.0],
    steps=200_000,
    schedule="harmonic",
    dtype="float32",
    log_points=2,
  )
  testing.assert_converged_to(r, THETA_ADAM, **tol)


def test_converged_thetas_of_the_default_config():
  thetas = families.converged_thetas()
  assert set(thetas) == {"sgd", "simplified_adam", "rescaled_sgd"}
  for key, expected in [
    ("sgd", THETA_SGD),
    ("simplified_adam", THETA_ADAM),
    ("rescaled_sgd", THETA_RESCALED),
  ]:
    assert thetas[key].dtype == np.float64
    np.testing.assert_allclose(thetas[key], expected, atol=F64_ATOL, rtol=0)


def test_step_size_map_brackets_the_derived_stability_thresholds():
  config = q2.Config(
    step_size_map=q2.StepSizeMapConfig(points=41, seeds=2, steps=3000, refine_points=41)
  )

  class Ctx:
    show_progress = False

  out = q2._step_size_map(config, Ctx())
  # derived: GD on (1 − aᵀθ)² is stable iff α < 2/λmax(2aaᵀ) = 1/‖a‖²; rescaled point (1,1,1): 1/3
  for label, derived in [("sgd", 1 / (a @ a)), ("rescaled_sgd", 1 / 3)]:
    lo, hi = out[label]["bracket"]
    assert lo < derived < hi and (hi - lo) < 1e-2 * derived, (
      label,
      lo,
      hi,
    )  # coarse ratio 1.26, refined 40×
    assert out[label]["any_diverged"]
  # simplified Adam moves each coordinate by at most α per step: it never diverges
  assert not out["simplified_adam (constant)"]["any_diverged"]
  assert out["simplified_adam (constant)"]["converging_learning_rates"] == []
  assert not out["simplified_adam (α/(t+1))"]["any_diverged"]


def test_study_runs_and_reports_each_theta(tmp_path):
  from jaxopt_hw.runner import StudyContext, write_figures

  config = q2.Config(
    sgd=q2.SGDConfig(grid=(0.1, 0.5), steps=500),
    simplified_adam=q2.SimplifiedAdamConfig(
      schedule="exponential", learning_rate=1.0, decay_rate=0.5, grid=(1.0,), steps=200
    ),
    rescaled_sgd=q2.RescaledSGDConfig(grid=(0.1, 0.2), steps=500),
    step_size_map=q2.StepSizeMapConfig(points=9, seeds=2, steps=300, refine_points=5),
  )
  result = q2.run(config, StudyContext(tmp_path, "q2"))
  json.dumps(result.results, allow_nan=False)
  for key, expected in [
    ("sgd", THETA_SGD),
    ("simplified_adam", THETA_ADAM),
    ("rescaled_sgd", THETA_RESCALED),
  ]:
    np.testing.assert_allclose(result.results[key]["theta"], expected, atol=F64_ATOL)
    assert result.results[key]["all_converged"]
  assert result.markdown.startswith("## Q2: where optimizers converge")
  assert "[0.333333, 3.33333, 33.3333]" in result.markdown
  names = ("q2_trajectories", "q2_loss_curves", "q2_step_size_map")
  assert set(result.arrays) == set(names)
  assert write_figures(tmp_path, result) == [f"{name}.png" for name in names]
  for name in names:
    assert (tmp_path / f"{name}.png").stat().st_size > 0 and f"]({name}.png)" in result.markdown

  # the terminal summary: each question's derived θ beside the measured one
  lines = {line.question: line for line in result.summary}
  assert lines["Q2(c) rescaled features"].answer == "θ = 1/(d·a_j) = [0.3333, 3.333, 33.33]"
  assert lines["Q2(c) rescaled features"].measured.startswith("θ = [0.3333, 3.333, 33.33]")
  assert {line.verdict for line in result.summary} == {"agrees"}

  # the arrays behind the figures hold the runs, with human names
  trajectories = figures.load_arrays(tmp_path / "q2_trajectories.npz")
  assert trajectories["labels"].tolist() == ["SGD", "simplified Adam", "rescaled-feature SGD"]
  np.testing.assert_allclose(trajectories["theta_sgd"][-1], THETA_SGD, atol=F64_ATOL)
  np.testing.assert_allclose(trajectories["derived_rescaled_sgd"], THETA_RESCALED, rtol=1e-15)
  step_map = figures.load_arrays(tmp_path / "q2_step_size_map.npz")
  assert "rescaled_sgd" not in " ".join(step_map["labels"].tolist())
  np.testing.assert_allclose(step_map["fractions"].sum(axis=1), 1.0)  # the outcomes partition

  # every panel has axis labels and human titles; θ₃'s scale shows every method
  for name, arrays in result.arrays.items():
    fig = figures.FIGURES[name](arrays)
    for ax in fig.axes:
      assert ax.get_xlabel() and ax.get_ylabel(), (name, ax.get_title())
      assert "_" not in ax.get_title(), (name, ax.get_title())  # human names, not identifiers
  fig = figures.draw_q2_trajectories(result.arrays["q2_trajectories"])
  theta3 = fig.axes[2]
  low, high = theta3.get_ylim()
  # derived limits of θ₃: 0.0099 (SGD), 0.90 (Adam), 33.3 (rescaled): every one inside the axis,
  # and apart on it (on a linear axis up to 33 the two small ones would be 3e-4 of it apart)
  limits = [THETA_SGD[2], THETA_ADAM[2], THETA_RESCALED[2]]
  assert all(low < v < high for v in limits)
  shown = theta3.transData.transform([(1, v) for v in limits])[:, 1]
  assert np.min(np.diff(np.sort(shown))) > 0.1 * theta3.bbox.height
