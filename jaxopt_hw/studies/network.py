"""Optimizers on real digits: an MLP and a small CNN trained with every optimizer, learning rates ×
seeds in one compiled program per optimizer.

Data: scikit-learn's bundled 8×8 handwritten digits (:func:`jaxopt_hw.datasets.digits`), split
deterministically (stratified; 1,438 training and 359 test images by default). Models:
:class:`jaxopt_hw.models.MLP` (tanh) and :class:`jaxopt_hw.models.CNN`. Optimizers: the registry
:data:`jaxopt_hw.families.NETWORK_OPTIMIZERS` (SGD, SGD with momentum, sign descent, the spectral
rule, simplified Adam, jaxopt_hw's Muon and Scion, and optax's AdamW and Muon as references). Each
optimizer sweeps a log-spaced grid of learning rates around its registry value, every point × seed
in one :func:`jaxopt_hw.sweep` (mini-batches drawn per seed inside the program, the test set scored
at the logged steps inside it too).

What it reports, per model: the final test accuracy against the learning rate (median and range
over seeds, one line per optimizer), the training curves at each optimizer's best learning rate,
and a table of the best test accuracy with its learning rate and the spread over seeds. "Best" is
the learning rate with the highest median final test accuracy, a seed that diverged counting as
the worst; nothing is tuned on the test set beyond that choice, which the table says.

:func:`figure_arrays` turns the runs' arrays (:func:`arrays`) into the data of each figure, which
the runner saves as ``.npz`` and :mod:`jaxopt_hw.studies.figures` draws (so ``jaxopt-hw plot``
redraws them without JAX).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from jaxopt_hw import config as cfg
from jaxopt_hw import datasets, grids, models, problems
from jaxopt_hw.engine import SweepResult, sweep
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.families import NETWORK_OPTIMIZERS
from jaxopt_hw.report import markdown_table
from jaxopt_hw.studies import STUDIES, StudyResult, SummaryLine, sweep_progress

NAME = "network"
TITLE = STUDIES[NAME].title

#: The study's models (the constructor arguments come from the config).
MODELS = {"mlp": "MLP (64 → hidden → 10, tanh)", "cnn": "CNN (two 3×3 convolutions, pooling)"}

OPTIMIZERS = tuple(NETWORK_OPTIMIZERS)


@dataclass(frozen=True)
class Config:
  models: tuple[str, ...] = field(
    default=tuple(MODELS),
    metadata=cfg.check(
      lambda v: len(v) > 0 and all(m in MODELS for m in v),
      "a non-empty list of: " + ", ".join(MODELS),
    ),
  )
  optimizers: tuple[str, ...] = field(
    default=OPTIMIZERS,
    metadata=cfg.check(
      lambda v: len(v) > 0 and all(o in NETWORK_OPTIMIZERS for o in v),
      "a non-empty list of: " + ", ".join(OPTIMIZERS),
    ),
  )
  seeds: int = field(default=3, metadata=cfg.in_range(1, 1024))
  first_seed: int = field(default=0, metadata=cfg.in_range(0, 2**32 - 1024))
  epochs: int = field(default=8, metadata=cfg.in_range(1, 100_000))
  batch_size: int = field(default=32, metadata=cfg.in_range(1, 1024))
  #: Examples per batch when the whole training set and the test set are scored at logged steps.
  eval_batch_size: int = field(default=256, metadata=cfg.in_range(1, 65_536))
  #: Learning rates per optimizer: log-spaced over ``grid_decades`` decades centred on the
  #: optimizer's registry value.
  grid_points: int = field(default=5, metadata=cfg.in_range(1, 1024))
  grid_decades: float = field(default=2.0, metadata=cfg.in_range(0.0, 12.0))
  hidden: int = field(default=64, metadata=cfg.in_range(1, 65_536))
  channels: tuple[int, ...] = field(
    default=(8, 16),
    metadata=cfg.check(
      lambda v: len(v) == 2 and all(1 <= c <= 4096 for c in v),
      "two channel counts from 1 to 4096, e.g. [8, 16]",
    ),
  )
  test_fraction: float = field(
    default=0.2, metadata=cfg.check(lambda v: 0 < v < 1, "must be strictly between 0 and 1")
  )
  split_seed: int = field(default=0, metadata=cfg.at_least(0))
  #: Logged steps (the whole training set and the test set are scored there); epochs + 1 logs
  #: every epoch.
  log_points: int = field(default=9, metadata=cfg.in_range(2, 10_000))
  dtype: str = field(default="float32", metadata=cfg.one_of("float32", "float64"))


def learning_rates(name: str, config: Config) -> np.ndarray:
  """The learning-rate grid of optimizer ``name``: ``grid_points`` values log-spaced over
  ``grid_decades`` decades around its registry value."""
  half = config.grid_decades / 2
  centre = NETWORK_OPTIMIZERS[name].learning_rate
  if config.grid_points == 1:
    return np.asarray([centre])
  return centre * np.logspace(-half, half, config.grid_points)


def build_problem(model: str, config: Config, train, test) -> problems.Problem:
  """The classification problem of ``model`` on the study's data."""
  if model == "mlp":
    sizes = (int(np.prod(train["x"].shape[1:])), config.hidden, 10)
    cls, args, kwargs = models.MLP, (sizes,), None
  else:
    cls, args, kwargs = models.CNN, (), {"channels": tuple(config.channels), "classes": 10}
  return problems.classification(
    cls,
    train,
    test,
    batch_size=config.batch_size,
    eval_batch_size=config.eval_batch_size,
    model_args=args,
    model_kwargs=kwargs,
  )


def run_sweeps(
  config: Config, *, progress: bool | None = None
) -> dict[str, dict[str, SweepResult]]:
  """Every model × optimizer: ``{model: {optimizer: SweepResult}}``."""
  dtype = {"float32": jnp.float32, "float64": jnp.float64}[config.dtype]
  seeds = list(range(config.first_seed, config.first_seed + config.seeds))
  out = {}
  for model in config.models:
    train, test = datasets.digits(
      test_fraction=config.test_fraction,
      seed=config.split_seed,
      images=model == "cnn",
      dtype=np.float64 if config.dtype == "float64" else np.float32,
    )
    if config.batch_size > len(train["y"]):
      raise UserInputError(
        f"{NAME}.batch_size: {config.batch_size} is not allowed; must be at most the "
        f"{len(train['y'])} training examples"
      )
    problem = build_problem(model, config, train, test)
    out[model] = {}
    for name in config.optimizers:
      opt = NETWORK_OPTIMIZERS[name]
      out[model][name] = sweep(
        problem,
        opt.family,
        hyperparams=grids.product(learning_rate=learning_rates(name, config)),
        steps=config.epochs * problem.steps_per_epoch,
        seeds=seeds,
        dtype=dtype,
        log_points=config.log_points,
        per_example_grads=opt.per_example,
        progress=progress,
        desc=f"{NAME}: {model} {name}",
      )
  return out


# ---------------------------------------------------------------------------------------------
# From runs to plain arrays, and the summary.


def arrays(runs: Mapping[str, Mapping[str, SweepResult]]) -> dict[str, np.ndarray]:
  """The arrays behind the figures and the table, keyed ``"{model}/{optimizer}/{what}"``:
  ``learning_rates`` (L,), ``log_epochs`` (K,), ``train_loss``, ``test_loss`` and
  ``test_accuracy`` (L, S, K) at the logged steps (NaN once a point diverged), ``diverged`` (L, S).
  """
  out = {}
  for model, per in runs.items():
    for name, r in per.items():
      key = f"{model}/{name}"
      out[f"{key}/learning_rates"] = np.asarray(r.hyperparams["learning_rate"], np.float64)
      out[f"{key}/log_epochs"] = np.asarray(r.log_epochs, np.float64)
      out[f"{key}/train_loss"] = np.asarray(r.losses, np.float64)
      out[f"{key}/test_loss"] = np.asarray(r.metrics["loss"], np.float64)
      out[f"{key}/test_accuracy"] = np.asarray(r.metrics["accuracy"], np.float64)
      out[f"{key}/diverged"] = np.asarray(r.diverged, bool)
  return out


def _pairs(data: Mapping[str, np.ndarray]) -> list[tuple[str, str]]:
  """(model, optimizer) pairs present in ``data``, in insertion order."""
  seen = []
  for key in data:
    model, name, _ = key.split("/")
    if (model, name) not in seen:
      seen.append((model, name))
  return seen


def best_index(accuracy_final: np.ndarray) -> int:
  """The learning rate (row of (L, S) final accuracies) with the highest median over seeds; a
  diverged seed (NaN) counts as the worst."""
  scored = np.where(np.isnan(accuracy_final), -np.inf, accuracy_final)
  return int(np.argmax(np.median(scored, axis=1)))


def summary(data: Mapping[str, np.ndarray]) -> dict:
  """Per model and optimizer: the best learning rate and the final test accuracy there (median,
  min and max over seeds), the final training loss there, and how many points diverged."""
  out = {}
  for model, name in _pairs(data):
    key = f"{model}/{name}"
    acc = data[f"{key}/test_accuracy"][..., -1]
    i = best_index(acc)
    seeds_acc = acc[i]
    out.setdefault(model, {})[name] = {
      "best_learning_rate": float(data[f"{key}/learning_rates"][i]),
      "best_test_accuracy": float(np.median(np.where(np.isnan(seeds_acc), 0.0, seeds_acc))),
      "test_accuracy_min": float(np.nanmin(seeds_acc)) if np.any(~np.isnan(seeds_acc)) else None,
      "test_accuracy_max": float(np.nanmax(seeds_acc)) if np.any(~np.isnan(seeds_acc)) else None,
      "final_train_loss": float(np.nanmedian(data[f"{key}/train_loss"][i, :, -1]))
      if np.any(~np.isnan(data[f"{key}/train_loss"][i, :, -1]))
      else None,
      "diverged_points": int(np.sum(data[f"{key}/diverged"])),
      "points": int(data[f"{key}/diverged"].size),
    }
  return out


def by_optimizer(per_model: Mapping[str, Mapping[str, dict]]) -> dict:
  """``results.json``'s ``study``: each optimizer's best test accuracy over the models, with its
  learning rate and model, and every model's summary under ``per_model``."""
  out = {}
  for model, per in per_model.items():
    for name, s in per.items():
      entry = out.setdefault(name, {"per_model": {}})
      entry["per_model"][model] = s
      if "best_test_accuracy" not in entry or s["best_test_accuracy"] > entry["best_test_accuracy"]:
        entry.update(
          best_test_accuracy=s["best_test_accuracy"],
          best_learning_rate=s["best_learning_rate"],
          best_model=model,
        )
  return out


# ---------------------------------------------------------------------------------------------
# The arrays behind the figures (drawn by jaxopt_hw.studies.figures, without JAX).


def _label(name: str) -> str:
  return NETWORK_OPTIMIZERS[name].label if name in NETWORK_OPTIMIZERS else name


def figure_arrays(data: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
  """Per model, the arrays of its two figures (see :func:`figures.draw_network_sensitivity` and
  :func:`figures.draw_network_curves`), from the arrays of :func:`arrays`."""
  out = {}
  pairs = _pairs(data)
  for model in dict.fromkeys(m for m, _ in pairs):
    names = [n for m, n in pairs if m == model]
    title = MODELS.get(model, model)
    final = [data[f"{model}/{n}/test_accuracy"][..., -1] for n in names]  # (L, S) each
    best = [best_index(acc) for acc in final]
    out[f"network_{model}_sensitivity"] = {
      "model": np.asarray(title),
      "labels": np.asarray([_label(n) for n in names]),
      "learning_rates": np.stack([data[f"{model}/{n}/learning_rates"] for n in names]),
      "accuracy": np.stack(final),
    }
    out[f"network_{model}_curves"] = {
      "model": np.asarray(title),
      "labels": np.asarray(
        [
          f"{_label(n)}, α = {data[f'{model}/{n}/learning_rates'][i]:.3g}"
          for n, i in zip(names, best)
        ]
      ),
      "epochs": data[f"{model}/{names[0]}/log_epochs"],
      "train_loss": np.stack(
        [np.nanmedian(data[f"{model}/{n}/train_loss"][i], axis=0) for n, i in zip(names, best)]
      ),
      "test_accuracy": np.stack(
        [np.nanmedian(data[f"{model}/{n}/test_accuracy"][i], axis=0) for n, i in zip(names, best)]
      ),
    }
  return out


def summary_lines(per_model: Mapping[str, Mapping[str, dict]]) -> list[SummaryLine]:
  """Per model, the optimizer with the best test accuracy (a comparison: nothing to agree with)."""
  lines = []
  for model, per in per_model.items():
    name, s = max(per.items(), key=lambda item: item[1]["best_test_accuracy"])
    diverged = sum(v["diverged_points"] for v in per.values())
    points = sum(v["points"] for v in per.values())
    lines.append(
      SummaryLine(
        f"{model}: best test accuracy",
        f"{_label(name)} at α = {s['best_learning_rate']:.3g}",
        f"{s['best_test_accuracy']:.3f} (median over seeds; {len(per)} optimizers, "
        f"{diverged} of {points} points diverged)",
      )
    )
  return lines


# ---------------------------------------------------------------------------------------------
# The study.


def _fmt(x) -> str:
  return "—" if x is None else f"{x:.3g}"


def run(config: Config, ctx):
  runs = run_sweeps(config, progress=sweep_progress(ctx))
  data = arrays(runs)
  per_model = summary(data)
  first = next(iter(next(iter(runs.values())).values()))
  seeds = [int(s) for s in np.asarray(first.seeds)]
  rows = []
  for model, per in per_model.items():
    for name, s in per.items():
      rows.append(
        [
          model,
          NETWORK_OPTIMIZERS[name].label,
          f"{s['best_learning_rate']:.3g}",
          f"{s['best_test_accuracy']:.3f} [{_fmt(s['test_accuracy_min'])}, "
          f"{_fmt(s['test_accuracy_max'])}]",
          _fmt(s["final_train_loss"]),
          f"{s['diverged_points']} of {s['points']}",
        ]
      )
  table = markdown_table(
    [
      "model",
      "optimizer",
      "best learning rate",
      "test accuracy there: median [min, max] over seeds",
      "training loss there",
      "diverged points",
    ],
    rows,
  )
  steps_per_epoch = first.steps_per_epoch
  drawn = figure_arrays(data)
  parts = [
    f"## {TITLE}",
    f"scikit-learn's 8×8 digits, {len(seeds)} seeds ({seeds[0]}…{seeds[-1]}), {config.epochs} "
    f"epochs of mini-batches of {config.batch_size} ({steps_per_epoch} steps per epoch, a fresh "
    f"order per seed and epoch), {config.dtype}. Each optimizer sweeps {config.grid_points} "
    f"learning rates over {config.grid_decades:g} decades around its usual value, every learning "
    "rate × seed in one compiled program; the test set is scored inside it at "
    f"{config.log_points} logged steps. Best = highest median final test accuracy over seeds (a "
    "diverged seed counts as the worst): the learning rate is chosen on the test set, so read "
    "the accuracies as a comparison of optimizers, not as held-out estimates.",
    table,
  ]
  parts += [f"![{name}]({name}.png)" for name in drawn]
  results = {
    "study": by_optimizer(per_model),
    "models": per_model,
    "learning_rates": {name: learning_rates(name, config).tolist() for name in config.optimizers},
    "steps_per_epoch": steps_per_epoch,
    "steps": config.epochs * steps_per_epoch,
  }
  return StudyResult(
    results=results,
    markdown="\n\n".join(parts),
    seeds=seeds,
    summary=summary_lines(per_model),
    arrays=drawn,
  )
