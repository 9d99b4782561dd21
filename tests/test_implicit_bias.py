"""Implicit bias: the exact interpolants, and where each method lands when a closed form exists."""

import json

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_hw import problems, testing
from jaxopt_hw.engine import sweep
from jaxopt_hw.runner import StudyContext, write_figures
from jaxopt_hw.studies import figures
from jaxopt_hw.studies import implicit_bias as ib


def _random(n, d, seed, scales=True):
  rng = np.random.default_rng(seed)
  X = rng.standard_normal((n, d)) * (np.geomspace(1, 1e-2, d) if scales else 1)
  return X, rng.standard_normal(n)


def _kkt_weighted(X, y, w):
  """argmin Σ w_j θ_j² s.t. Xθ = y from its KKT system [[2W, Xᵀ], [X, 0]] [θ; λ] = [0; y]."""
  n, d = X.shape
  K = np.block([[2 * np.diag(w), X.T], [X, np.zeros((n, n))]])
  return np.linalg.solve(K, np.concatenate([np.zeros(d), y]))[:d]


def _assert_proven_optimal(X, y, sol):
  """θ is feasible and the dual λ certifies it: by weak duality yᵀλ <= min ‖θ‖∞ whenever
  ‖Xᵀλ‖₁ <= 1, so yᵀλ = ‖θ‖∞ proves θ optimal. Recomputed here from θ and λ alone."""
  scale = max(1.0, np.abs(y).max())
  np.testing.assert_allclose(X @ sol.theta, y, atol=1e-10 * scale)
  assert np.abs(X.T @ sol.dual).sum() <= 1 + 1e-9
  value = np.abs(sol.theta).max()
  np.testing.assert_allclose(y @ sol.dual, value, rtol=1e-9, atol=1e-12)
  np.testing.assert_allclose(sol.value, value, rtol=0)


@pytest.mark.parametrize("n, d, seed", [(1, 5, 0), (3, 10, 1), (8, 64, 2), (5, 6, 3), (20, 40, 4)])
def test_min_norm_and_weighted_interpolants_match_their_kkt_systems(n, d, seed):
  X, y = _random(n, d, seed)
  np.testing.assert_allclose(
    problems.min_norm_interpolant(X, y), _kkt_weighted(X, y, np.ones(d)), rtol=1e-9, atol=1e-12
  )
  w = problems.feature_second_moments(X)
  theta = problems.weighted_min_norm_interpolant(X, y, w)
  np.testing.assert_allclose(theta, _kkt_weighted(X, y, w), rtol=1e-8, atol=1e-10)
  np.testing.assert_allclose(X @ theta, y, atol=1e-10)


@pytest.mark.parametrize(
  "n, d, seed", [(1, 5, 0), (2, 3, 1), (3, 10, 2), (8, 64, 3), (5, 6, 4), (20, 40, 5), (10, 100, 6)]
)
def test_min_linf_interpolant_is_proven_optimal_by_its_dual_certificate(n, d, seed):
  X, y = _random(n, d, seed)
  sol = problems.min_linf_interpolant(X, y)
  _assert_proven_optimal(X, y, sol)
  assert sol.residual < 1e-10 * max(1, np.abs(y).max())
  assert abs(sol.duality_gap) < 1e-9 * max(1, sol.value)


def test_min_linf_with_one_example_is_sign_over_l1_norm():
  # n = 1: min ‖θ‖∞ s.t. xᵀθ = y puts |θ_j| = t on every coordinate, θ = y·sign(x)/‖x‖₁
  rng = np.random.default_rng(7)
  for d in (3, 20, 50):
    x, y = rng.standard_normal(d), rng.standard_normal()
    np.testing.assert_allclose(
      problems.min_linf_interpolant(x[None], [y]).theta,
      y * np.sign(x) / np.abs(x).sum(),
      rtol=1e-12,
    )
  np.testing.assert_allclose(
    problems.min_linf_interpolant(np.array([problems.HOMEWORK_A]), [1.0]).theta,
    np.full(3, 1 / 1.11),
    rtol=1e-13,
  )


def test_min_linf_degenerate_and_infeasible_cases():
  # duplicated columns (non-unique minimiser): still a certified optimum
  X, y = _random(3, 6, 11)
  X = np.hstack([X, X[:, :2]])
  _assert_proven_optimal(X, y, problems.min_linf_interpolant(X, y))
  # y = 0: θ = 0
  np.testing.assert_array_equal(problems.min_linf_interpolant(X, np.zeros(3)).theta, 0.0)
  with pytest.raises(ValueError, match="no solution"):
    problems.min_linf_interpolant(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([1.0, 2.0]))


def _batch(n, d, seeds):
  batch = problems.random_overparameterized(seeds, n=n, d=d)
  return batch, np.asarray(batch.data["X"]), np.asarray(batch.data["y"])


def test_gradient_descent_from_zero_lands_on_the_min_norm_interpolant_for_every_seed():
  # GD from 0 moves along Xᵀ(Xθ − y) ∈ row space of X; the only interpolant there is X⁺y
  batch, X, y = _batch(6, 40, range(12))
  r = sweep(
    batch, optax.sgd, [0.5, 1.0, 1.5], steps=3000, batched_data=True, dtype=jnp.float64
  )  # λmax = 1
  expected = np.stack(
    [np.linalg.lstsq(X[i], y[i], rcond=None)[0] for i in range(len(X))]
  )  # numpy's min-norm solve
  testing.assert_converged_to(r, expected[:, None, None, :], atol=1e-8)


def test_rescaled_sgd_lands_on_the_weighted_min_norm_interpolant_for_every_seed():
  # in w = θ/s the same row-space argument gives min ‖w‖₂, i.e. min Σ_j θ_j²/s_j² = Σ_j E[x_j²] θ_j²
  _, X, y = _batch(6, 40, range(12))
  landed = ib.run_methods(
    X, y, ib.Config(n=6, d=40, seeds=12, rescaled_steps=3000, sgd_steps=10, adam_steps=10)
  )
  expected = np.stack(
    [_kkt_weighted(X[i], y[i], np.mean(X[i] ** 2, axis=0)) for i in range(len(X))]
  )
  testing.assert_converged_to(
    landed["rescaled_sgd"]["theta"], expected, atol=1e-8, rtol=1e-8, axes=("seed",)
  )


@pytest.mark.parametrize(
  "schedule, lr, steps", [("exponential", 10.0, 300), ("harmonic", 1.0, 200_000)]
)
def test_simplified_adam_with_one_example_lands_on_the_min_linf_interpolant(schedule, lr, steps):
  # n = 1: sign(∇f) = −sign(r)·sign(x), so θ_t = c_t·sign(x) and c_t → y/‖x‖₁ (|c*| < 10 here;
  # exponential: α/(1−γ) = 20 >= |c*| and error <= αγᵀ/(1−γ); harmonic: error <= α/T = 5e-6)
  _, X, y = _batch(1, 30, range(8))
  config = ib.Config(
    n=1,
    d=30,
    seeds=8,
    adam_schedule=schedule,
    adam_learning_rate=lr,
    adam_decay_rate=0.5,
    adam_steps=steps,
    sgd_steps=10,
    rescaled_steps=10,
  )
  landed = ib.run_methods(X, y, config)
  closed = y[:, :1] * np.sign(X[:, 0, :]) / np.abs(X[:, 0, :]).sum(-1, keepdims=True)
  assert np.abs(closed).max() < 10
  testing.assert_converged_to(landed["simplified_adam"]["theta"], closed, atol=1e-5, axes=("seed",))


def test_study_reports_where_each_method_lands(tmp_path):
  config = ib.Config(n=4, d=16, seeds=4, sgd_steps=2000, rescaled_steps=2000, adam_steps=3000)
  result = ib.run(config, StudyContext(tmp_path, "implicit_bias"))
  write_figures(tmp_path, result)
  json.dumps(result.results, allow_nan=False)
  methods = result.results["methods"]
  assert set(methods) == {"sgd", "simplified_adam", "rescaled_sgd"}
  assert methods["sgd"]["relative_distance"]["min_l2"]["max"] < 1e-9
  assert methods["rescaled_sgd"]["relative_distance"]["weighted_min_norm"]["max"] < 1e-9
  assert methods["sgd"]["nearest_counts"]["min_l2"] == 4
  assert result.seeds == [0, 1, 2, 3]
  assert result.markdown.startswith(f"## {ib.TITLE}")
  assert (tmp_path / "implicit_bias_distances.png").stat().st_size > 0
  saved = figures.load_arrays(tmp_path / "implicit_bias_distances.npz")
  assert saved["distances"].shape == (3, 3, 4)  # methods × references × seeds
  # SGD's distances to min ‖θ‖₂, per seed, are what results.json reports
  np.testing.assert_array_equal(
    saved["distances"][0, 0], methods["sgd"]["relative_distance"]["min_l2"]["per_seed"]
  )
  verdicts = {line.question: line.verdict for line in result.summary}
  assert verdicts["SGD (full batch), n < d"] == "agrees"
  assert verdicts["rescaled-feature SGD, n < d"] == "agrees"


def test_config_errors_are_one_line():
  from jaxopt_hw.errors import UserInputError

  with pytest.raises(
    UserInputError, match=r"^implicit_bias\.n: 64 is not allowed; must be smaller than d = 64"
  ):
    ib.run(ib.Config(n=64, d=64), StudyContext(".", "implicit_bias"))


def test_a_data_set_too_big_to_hold_is_refused_before_anything_runs():
  from jaxopt_hw.errors import UserInputError

  # 1,000 seeds × 1,000 examples × 100,000 features would be 8e11 bytes in float64
  with pytest.raises(
    UserInputError,
    match=r"^implicit_bias\.d: 100000 is not allowed with n = 1000 and seeds = 1000; "
    r"seeds × n × d = 100,000,000,000 must be at most 33,554,432",
  ):
    ib.Config(n=1000, d=100_000, seeds=1000).validate()
  ib.Config(n=8, d=64, seeds=32).validate()  # the default is far inside
