"""Data-parallel training with each paradigm: the loss curves, and the distance to one device.

A small flax ``nnx`` MLP is trained on a synthetic regression batch split over n workers, with the
gradients averaged by each paradigm and the step taken by an optax transform. Every paradigm must
reproduce single-device full-batch training; the report shows the loss curves (they lie on top of
each other), the largest weight difference from the single-device run, and what one step sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxopt_hw import config as cfg
from jaxopt_hw import models
from jaxopt_hw.distributed import accounting
from jaxopt_hw.distributed import data_parallel as dp
from jaxopt_hw.errors import UserInputError
from jaxopt_hw.names import AGGREGATORS, FORMS, NORMS
from jaxopt_hw.report import markdown_table
from jaxopt_hw.studies import STUDIES, StudyResult, SummaryLine
from jaxopt_hw.transforms.steepest import steepest_descent

NAME = "data_parallel"
TITLE = STUDIES[NAME].title

ALL = AGGREGATORS
LABELS = {
  "all_to_all": "all-to-all",
  "parameter_server": "parameter server",
  "ring_allreduce": "ring all-reduce",
  "pmean": "lax.pmean",
}
OPTIMIZERS = ("sgd", "adam", "steepest")
#: The norms steepest descent can use here: lp needs p and mahalanobis needs M, which a model's
#: parameters do not come with.
STEEPEST_NORMS = tuple(n for n in NORMS if n not in ("lp", "mahalanobis"))


@dataclass(frozen=True)
class Config:
  n: int = field(default=4, metadata=cfg.in_range(1, 15))
  paradigms: tuple[str, ...] = field(default=ALL, metadata=cfg.each_one_of(*ALL))
  steps: int = field(default=200, metadata=cfg.positive())
  batch: int = field(default=64, metadata=cfg.positive())
  features: int = field(default=8, metadata=cfg.positive())
  hidden: tuple[int, ...] = field(default=(32,), metadata=cfg.each_positive())
  outputs: int = field(default=1, metadata=cfg.positive())
  optimizer: str = field(default="sgd", metadata=cfg.one_of(*OPTIMIZERS))
  learning_rate: float = field(default=0.1, metadata=cfg.positive())
  #: Steepest descent (optimizer = "steepest"): its norm and form; with the spectral norm the
  #: non-matrix leaves (biases) step in the ℓ2 norm.
  norm: str = field(default="l2", metadata=cfg.one_of(*STEEPEST_NORMS))
  form: str = field(default="penalty", metadata=cfg.one_of(*FORMS))
  dtype: str = field(default="float32", metadata=cfg.one_of("float32", "float64"))
  seed: int = field(default=0, metadata=cfg.at_least(0))

  def validate(self) -> None:
    """The checks between fields, run before any study starts (config.load)."""
    if self.batch % self.n:
      raise UserInputError(
        f"data_parallel.batch: {self.batch} is not allowed with n = {self.n}; the batch must "
        f"split into n equal shards (a multiple of {self.n})"
      )


def make_optimizer(config: Config):
  """The optax transform named by the config."""
  if config.optimizer == "sgd":
    return optax.sgd(config.learning_rate)
  if config.optimizer == "adam":
    return optax.adam(config.learning_rate)
  extra = {"non_matrix": "l2"} if config.norm == "spectral" else {}
  return steepest_descent(config.learning_rate, config.norm, form=config.form, **extra)


def run(config: Config, ctx):
  config.validate()
  dtype = jnp.dtype(config.dtype)
  x, y = dp.regression_data(
    jax.random.key(config.seed), config.batch, config.features, config.outputs, dtype
  )
  model = models.MLP(
    (config.features, *config.hidden, config.outputs), rngs=nnx.Rngs(config.seed + 1), dtype=dtype
  )
  p = dp.num_params(model)
  optimizer = make_optimizer(config)
  runs = {}
  with ctx.progress(len(config.paradigms) + 1, "training") as bar:
    reference = dp.train_single_device(model, x, y, optimizer, steps=config.steps)
    bar.update(1)
    for name in config.paradigms:
      runs[name] = dp.train_data_parallel(
        model, x, y, optimizer, paradigm=name, n=config.n, steps=config.steps
      )
      bar.update(1)

  rows, results = [], {"single_device": {"losses": reference.losses.tolist()}}
  for name, result in runs.items():
    diff = dp.max_param_difference(result.params, reference.params)
    count = accounting.measure(name, config.n, p, config.dtype)
    results[name] = {
      "losses": result.losses.tolist(),
      "final_loss": float(result.losses[-1]),
      "max_abs_param_diff_vs_single_device": diff,
      "messages_per_step": count.messages,
      "message_size": count.message_size,
      "bytes_per_worker_per_step": count.bytes_per_worker,
    }
    rows.append(
      [
        name,
        f"{result.losses[0]:.4g}",
        f"{result.losses[-1]:.4g}",
        f"{diff:.2e}",
        count.messages,
        f"{count.message_size:,}",
        f"{count.bytes_per_worker:,}",
      ]
    )
  rows.append(
    [
      "one device, full batch",
      f"{reference.losses[0]:.4g}",
      f"{reference.losses[-1]:.4g}",
      "—",
      0,
      "—",
      0,
    ]
  )
  tol = agreement_tolerance(config.dtype)
  summary = [
    SummaryLine.check(
      f"data-parallel, {LABELS[name]}",
      "the weights of one-device training",
      f"max difference {results[name]['max_abs_param_diff_vs_single_device']:.1g} after "
      f"{config.steps} steps (agrees: ≤ {tol:.0e})",
      results[name]["max_abs_param_diff_vs_single_device"] <= tol,
    )
    for name in runs
  ]
  arrays = {
    "data_parallel_loss": {
      "labels": np.asarray([LABELS[name] for name in runs]),
      "losses": np.asarray([np.asarray(r.losses, np.float64) for r in runs.values()]),
      "reference_losses": np.asarray(reference.losses, np.float64),
      "n": np.asarray(config.n),
    }
  }
  opt = (
    f"steepest descent ({config.norm}, {config.form} form)"
    if config.optimizer == "steepest"
    else config.optimizer
  )
  markdown = "\n\n".join(
    [
      f"## {TITLE}",
      f"An MLP {(config.features, *config.hidden, config.outputs)} ({p:,} {config.dtype} "
      f"parameters) trained for {config.steps} steps with {opt}, learning rate "
      f"{config.learning_rate}, on a batch of {config.batch} split over n = {config.n} workers; "
      "gradients averaged by each paradigm. The reference is the same optimizer on one device "
      f"with the full batch. Rounding of {config.dtype} is ~{float(jnp.finfo(dtype).eps):.0e}.",
      markdown_table(
        [
          "paradigm",
          "loss at step 0",
          f"loss after {config.steps} steps",
          "largest weight difference from one device",
          "messages per step",
          "message size",
          "bytes sent per worker per step",
        ],
        rows,
      ),
      "![loss curves](data_parallel_loss.png)",
    ]
  )
  results["config"] = {"n": config.n, "params": p, "steps": config.steps}
  return StudyResult(
    results=results, markdown=markdown, seeds=[config.seed], summary=summary, arrays=arrays
  )


def agreement_tolerance(dtype: str) -> float:
  """The largest weight difference from one device that still "agrees": √ε of the dtype (half the
  digits). The sums run in another order, so the runs differ by rounding, which the steps carry
  forward; float32 runs of the default config differ by a few 1e-7."""
  return float(np.sqrt(np.finfo(dtype).eps))
