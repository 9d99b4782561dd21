"""Data-parallel training with every paradigm equals single-device training on the full batch.

Reference: :func:`train_single_device` — plain full-batch training on one device with the same optax
transform, no collectives. The mean of n equal-size shard gradients is the full-batch gradient, so
the two must agree to rounding (float64 here, so "rounding" is ~1e-15).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxopt_hw import distributed as dist
from jaxopt_hw import models
from jaxopt_hw.distributed import data_parallel as dp
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.transforms.steepest import steepest_descent

STEPS = 12


@pytest.fixture(scope="module")
def problem():
  x, y = dp.regression_data(jax.random.key(0), batch=24, features=5, outputs=2, dtype=jnp.float64)
  model = models.MLP((5, 8, 2), rngs=nnx.Rngs(1), dtype=jnp.float64)
  return model, x, y


OPTIMIZERS = {"sgd": lambda: optax.sgd(0.2), "adam": lambda: optax.adam(0.05)}
_references = {}


def reference(problem, opt_name):
  if opt_name not in _references:
    model, x, y = problem
    _references[opt_name] = dp.train_single_device(model, x, y, OPTIMIZERS[opt_name](), steps=STEPS)
  return _references[opt_name]


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("paradigm", dist.AGGREGATORS)
def test_data_parallel_weights_equal_single_device_full_batch_training(problem, paradigm, opt_name):
  model, x, y = problem
  ref = reference(problem, opt_name)
  got = dp.train_data_parallel(
    model, x, y, OPTIMIZERS[opt_name](), paradigm=paradigm, n=4, steps=STEPS
  )
  assert ref.losses[-1] < ref.losses[0]  # the reference actually trains
  assert dp.max_param_difference(got.params, ref.params) < 1e-12
  np.testing.assert_allclose(got.losses, ref.losses, rtol=1e-12)
  assert jax.tree.map(lambda a: a.dtype, got.params) == jax.tree.map(lambda a: a.dtype, ref.params)


@pytest.mark.parametrize(
  "paradigm,n", [("ring_allreduce", 3), ("parameter_server", 2), ("all_to_all", 6)]
)
def test_other_worker_counts(problem, paradigm, n):
  model, x, y = problem
  ref = reference(problem, "sgd")
  got = dp.train_data_parallel(
    model, x, y, OPTIMIZERS["sgd"](), paradigm=paradigm, n=n, steps=STEPS
  )
  assert dp.max_param_difference(got.params, ref.params) < 1e-12


def test_parameter_server_returns_the_servers_optimizer_state(problem):
  model, x, y = problem
  got = dp.train_data_parallel(
    model, x, y, optax.adam(0.05), paradigm="parameter_server", n=2, steps=STEPS
  )
  ref = reference(problem, "adam")
  assert int(got.opt_state[0].count) == STEPS == int(ref.opt_state[0].count)
  for a, b in zip(jax.tree.leaves(got.opt_state), jax.tree.leaves(ref.opt_state)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-15)


def test_float32_training_agrees_to_float32_rounding():
  x, y = dp.regression_data(jax.random.key(3), batch=32, features=4, dtype=jnp.float32)
  model = models.MLP((4, 16, 1), rngs=nnx.Rngs(0), dtype=jnp.float32)
  ref = dp.train_single_device(model, x, y, optax.sgd(0.1), steps=20)
  got = dp.train_data_parallel(
    model, x, y, optax.sgd(0.1), paradigm="ring_allreduce", n=8, steps=20
  )
  assert jax.tree.leaves(got.params)[0].dtype == jnp.float32
  assert dp.max_param_difference(got.params, ref.params) < 1e-5


def test_batch_not_divisible_by_n_is_refused(problem):
  model, x, y = problem
  with pytest.raises(
    UserInputError, match="batch: 24 examples .* cannot be split into 5 equal shards"
  ):
    dp.train_data_parallel(model, x, y, optax.sgd(0.1), paradigm="pmean", n=5, steps=1)


def test_num_params_counts_every_weight(problem):
  model, _, _ = problem
  assert dp.num_params(model) == 5 * 8 + 8 + 8 * 2 + 2


# (norm, options, learning rate): the ℓ∞ penalty step scales with ‖g‖₁, so ℓ∞ uses the ball form
# (a sign step of size α) and ℓ2 the penalty form (a gradient step of α/2); the spectral norm
# orthogonalises the kernels and steps the biases in ℓ2.
STEEPEST = [
  ("l2", {"form": "penalty"}, 0.2),
  ("linf", {"form": "ball"}, 0.005),
  ("spectral", {"form": "ball", "non_matrix": "l2"}, 0.02),
]


@pytest.mark.parametrize("norm,options,lr", STEEPEST)
def test_steepest_descent_trains_identically_data_parallel(problem, norm, options, lr):
  model, x, y = problem
  ref = dp.train_single_device(model, x, y, steepest_descent(lr, norm, **options), steps=STEPS)
  got = dp.train_data_parallel(
    model, x, y, steepest_descent(lr, norm, **options), paradigm="ring_allreduce", n=4, steps=STEPS
  )
  assert ref.losses[-1] < ref.losses[0]
  assert dp.max_param_difference(got.params, ref.params) < 1e-10


def test_data_parallel_config_file_is_valid():
  from pathlib import Path

  from jaxopt_hw import config as cfg
  from jaxopt_hw.studies import data_parallel as study

  (spec,) = cfg.read_specs(
    [str(Path(__file__).resolve().parent.parent / "configs" / "data_parallel.toml")],
    ["data_parallel"],
  )
  config = cfg.load(study.Config, spec.settings, prefix="data_parallel")
  assert spec.experiment == "data_parallel" and config.batch % config.n == 0


def test_data_parallel_study_reports_curves_equal_to_one_device(tmp_path):
  from jaxopt_hw.runner import run_study

  settings = {
    "n": 2,
    "steps": 5,
    "batch": 8,
    "features": 3,
    "hidden": [4],
    "paradigms": ["ring_allreduce", "parameter_server"],
    "dtype": "float64",
  }
  result = run_study("data_parallel", settings, tmp_path, show_progress=False)
  reference = result.results["single_device"]["losses"]
  for name in ("ring_allreduce", "parameter_server"):
    r = result.results[name]
    assert len(r["losses"]) == 5 and r["max_abs_param_diff_vs_single_device"] < 1e-12
    np.testing.assert_allclose(r["losses"], reference, rtol=1e-12)
  assert (tmp_path / "data_parallel_loss.png").stat().st_size > 0
  from jaxopt_hw.studies import figures

  saved = figures.load_arrays(tmp_path / "data_parallel_loss.npz")
  assert saved["labels"].tolist() == ["ring all-reduce", "parameter server"]
  np.testing.assert_array_equal(saved["reference_losses"], reference)
  assert [line.verdict for line in result.summary] == ["agrees", "agrees"]


def test_data_parallel_study_refuses_a_batch_that_does_not_split(tmp_path):
  from jaxopt_hw.runner import run_study

  with pytest.raises(UserInputError, match="data_parallel.batch: 10 is not allowed with n = 4"):
    run_study("data_parallel", {"n": 4, "batch": 10, "steps": 1}, tmp_path, show_progress=False)
