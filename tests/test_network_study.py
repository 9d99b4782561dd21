"""The network study at toy sizes: the plumbing, never accuracy thresholds.

Every optimizer of the registry lowers the training loss on a fixed seed; the study writes its
table, figures and ``results.json``; its figures are drawn from plain arrays (redrawable from saved
data).
"""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_hw import config as cfg
from jaxopt_hw import datasets, grids, models, problems, runner
from jaxopt_hw.engine import sweep
from jaxopt_hw.families import NETWORK_OPTIMIZERS
from jaxopt_hw.studies import STUDIES, figures, network


@pytest.fixture(scope="module")
def small_problem():
  train, _ = datasets.digits()
  train = {k: v[:128] for k, v in train.items()}  # 8 steps of 16 per epoch
  return problems.classification(models.MLP, train, batch_size=16, model_args=((64, 16, 10),))


@pytest.mark.parametrize("name", list(NETWORK_OPTIMIZERS))
def test_every_optimizer_lowers_the_training_loss_on_a_fixed_seed(small_problem, name):
  opt = NETWORK_OPTIMIZERS[name]
  r = sweep(
    small_problem,
    opt.family,
    hyperparams=grids.product(learning_rate=[opt.learning_rate]),
    seeds=[0],
    steps=16,
    log_points=2,
    per_example_grads=opt.per_example,
    progress=False,
  )
  losses = np.asarray(r.losses)[0, 0]  # the whole training set's loss at steps 0 and 16
  assert not bool(np.asarray(r.diverged)[0, 0])
  assert losses[-1] < losses[0], (name, losses)


TINY = [
  'network.models=["cnn"]',
  'network.optimizers=["sgd"]',
  "network.seeds=2",
  "network.epochs=1",
  "network.grid_points=2",
  "network.batch_size=64",
  "network.log_points=3",
  "network.channels=[2, 4]",
]


def test_the_study_writes_its_table_figures_and_results(tmp_path):
  out = runner.run(["network_study.toml"], TINY, out_dir=tmp_path / "run", echo=lambda s: None)
  results = json.loads((out / "results.json").read_text())["network"]
  entry = results["study"]["sgd"]  # results.json's `study`: optimizer -> best accuracy and rate
  assert 0 <= entry["best_test_accuracy"] <= 1
  assert entry["best_learning_rate"] in results["learning_rates"]["sgd"]
  assert entry["best_model"] == "cnn" and set(entry["per_model"]) == {"cnn"}
  for figure in ("network_cnn_sensitivity", "network_cnn_curves"):
    assert (out / f"{figure}.png").stat().st_size > 0
    assert (out / f"{figure}.npz").stat().st_size > 0  # `jaxopt-hw plot` redraws from these
  report = (out / "report.md").read_text()
  assert "| cnn | SGD |" in report and "network_cnn_curves.png" in report


def test_figures_are_drawn_from_plain_arrays_alone():
  # synthetic arrays, as a saved run would hold them: no SweepResult anywhere
  L, S, K = 3, 2, 4
  acc = np.linspace(0.1, 0.9, L * S * K).reshape(L, S, K)
  acc[2, 1, -1] = np.nan  # a diverged seed
  data = {
    "mlp/sgd/learning_rates": np.array([0.01, 0.1, 1.0]),
    "mlp/sgd/log_epochs": np.arange(K, dtype=float),
    "mlp/sgd/train_loss": np.full((L, S, K), 0.5),
    "mlp/sgd/test_loss": np.full((L, S, K), 0.7),
    "mlp/sgd/test_accuracy": acc,
    "mlp/sgd/diverged": np.isnan(acc[..., -1]),
  }
  drawn = network.figure_arrays(data)
  assert set(drawn) == {"network_mlp_sensitivity", "network_mlp_curves"}
  for name, saved in drawn.items():  # drawn by the JAX-free figures module, as `plot` does
    assert name in figures.FIGURES
    assert figures.FIGURES[name](saved) is not None
  np.testing.assert_array_equal(drawn["network_mlp_sensitivity"]["accuracy"][0], acc[..., -1])
  # the curves are those of the best learning rate (row 1), median over seeds
  np.testing.assert_array_equal(
    drawn["network_mlp_curves"]["test_accuracy"][0], np.nanmedian(acc[1], axis=0)
  )
  # the best learning rate: highest median final accuracy, a diverged seed counting as the worst
  # (row 2 has a NaN seed, so its median is -inf; row 1's final accuracies beat row 0's)
  assert network.best_index(acc[..., -1]) == 1
  s = network.summary(data)["mlp"]["sgd"]
  assert s["best_learning_rate"] == 0.1 and s["diverged_points"] == 1


def test_the_default_config_is_a_valid_study_config_and_not_part_of_the_homework_report():
  specs = cfg.read_specs(["network_study.toml"], list(STUDIES))
  config = cfg.load(network.Config, specs[0].settings, prefix="network")
  assert config == network.Config()  # the file spells out the defaults
  hw2 = cfg.read_specs([cfg.DEFAULT_CONFIG], list(STUDIES))
  assert "network" not in {spec.experiment for spec in hw2}


def test_learning_rate_grids_are_centred_on_the_registry_values():
  config = network.Config(grid_points=5, grid_decades=2.0)
  lrs = network.learning_rates("adamw", config)
  np.testing.assert_allclose(lrs, NETWORK_OPTIMIZERS["adamw"].learning_rate * np.logspace(-1, 1, 5))
  assert jnp.isclose(np.sqrt(lrs[0] * lrs[-1]), NETWORK_OPTIMIZERS["adamw"].learning_rate)


def test_every_model_of_the_study_has_its_figures_registered():
  # figures.py (JAX-free) names the study's models itself: the two lists must not drift apart
  assert set(figures.NETWORK_MODELS) == set(network.MODELS)
