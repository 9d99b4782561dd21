"""The studies `jaxopt-hw run` knows, and the types every study shares.

A study is a module with a frozen dataclass ``Config`` (its defaults are the embedded homework
report) and ``run(config, ctx) -> StudyResult``. It is registered in :data:`STUDIES` under the name
configs give in ``experiment = "..."``, with its title and a one-line description. The registry
names modules as strings and imports them only when used, so `jaxopt-hw --help` and `list` load no
JAX.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

from jaxopt_hw.errors import unknown_choice


@dataclasses.dataclass(frozen=True)
class StudyInfo:
  """Where a study lives and how `jaxopt-hw list` and the report name it."""

  module: str
  title: str
  description: str


#: name -> the study; the modules are imported on first use.
STUDIES = {
  "q1": StudyInfo(
    "jaxopt_hw.studies.q1",
    "Q1: steepest descent under a norm",
    "closed-form steepest-descent steps under l2, linf, l1, lp, Mahalanobis and spectral norms "
    "vs a numerical minimiser (float64)",
  ),
  "q2": StudyInfo(
    "jaxopt_hw.studies.q2",
    "Q2: where optimizers converge",
    "SGD, simplified Adam and rescaled SGD on (1 − aᵀθ)²: converged θ vs closed forms, schedules, "
    "step-size map",
  ),
  "implicit_bias": StudyInfo(
    "jaxopt_hw.studies.implicit_bias",
    "Implicit bias: where each method lands on over-parameterised least squares",
    "n < d random least squares over many seeds: SGD, simplified Adam, rescaled SGD vs min-ℓ2, "
    "weighted min-norm and min-ℓ∞ interpolants",
  ),
  "q5": StudyInfo(
    "jaxopt_hw.studies.q5",
    "Q5: what distributed training sends",
    "messages and message sizes of all-to-all, parameter server and ring all-reduce, read off "
    "compiled JAX programs",
  ),
  "network": StudyInfo(
    "jaxopt_hw.studies.network",
    "Optimizers on real digits: an MLP and a CNN, every optimizer over learning rates × seeds",
    "SGD, momentum, sign descent, the spectral rule, simplified Adam, AdamW and Muon train flax "
    "models on scikit-learn's digits; each optimizer's grid in one compiled program",
  ),
  "data_parallel": StudyInfo(
    "jaxopt_hw.studies.data_parallel",
    "Data-parallel training with each aggregation paradigm",
    "train a flax MLP data-parallel with all-to-all, parameter server, ring all-reduce and pmean; "
    "compare with one device",
  ),
}


@dataclasses.dataclass
class StudyResult:
  """What a study returns: JSON-ready ``results`` (stored under its name in results.json), its
  section of report.md, and the seeds it used."""

  results: dict
  markdown: str
  seeds: list = dataclasses.field(default_factory=list)


def get_study(name: str) -> ModuleType:
  """The study module registered as ``name``."""
  if name not in STUDIES:
    raise unknown_choice("experiment", name, STUDIES)
  return importlib.import_module(STUDIES[name].module)


def sweep_progress(ctx) -> bool | None:
  """The ``progress`` argument of a sweep inside a study: a bar only when the run shows progress,
  and then only on a terminal (None lets the sweep decide)."""
  return None if getattr(ctx, "show_progress", False) else False
