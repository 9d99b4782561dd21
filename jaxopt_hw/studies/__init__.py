"""The studies `jaxopt-hw run` knows, and the types every study shares.

A study is a module with a frozen dataclass ``Config`` (its defaults are the embedded homework
report) and ``run(config, ctx) -> StudyResult``. It is registered in :data:`STUDIES` under the name
configs give in ``experiment = "..."``, with its title and a one-line description. The registry
names modules as strings and imports them only when used, so `jaxopt-hw --help` and `list` load no
JAX.

What a study returns (:class:`StudyResult`):

* ``results``: JSON-ready numbers, stored under the study's name in ``results.json``;
* ``markdown``: its section of ``report.md`` (printed in full only with ``jaxopt-hw run
  --verbose``);
* ``summary``: a few :class:`SummaryLine` s, what the terminal shows after the study: each question
  it answers, the answer, what was measured and whether the two agree;
* ``arrays``: the data behind every figure, ``{figure name: {key: NumPy array}}``.

Figures are drawn from saved arrays, never from live JAX values. The pattern, for a new figure:

1. write ``draw_<name>(arrays) -> matplotlib.figure.Figure`` in
   :mod:`jaxopt_hw.studies.figures` (JAX-free: NumPy and matplotlib only, every label and number it
   shows read from ``arrays``), document its keys in its docstring, and register it in
   ``figures.FIGURES`` under ``<name>`` (by convention prefixed with the study's name);
2. in the study, put ``arrays["<name>"] = {key: np.ndarray, ...}`` in the StudyResult (plain NumPy:
   numbers, booleans or strings; ``np.asarray`` on JAX arrays) and link ``<name>.png`` from the
   markdown.

The runner then writes ``<name>.npz`` (``numpy.savez``; ``np.load`` opens it without pickle, and its
``figure`` key names the drawing function) and draws ``<name>.png`` from the file it just wrote, the
same way ``jaxopt-hw plot RUN_DIR`` redraws every figure of a finished run without JAX.
``ctx.save_figure`` still saves a ready-made figure, but such a figure cannot be redrawn.
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


#: The verdicts of a :class:`SummaryLine`: the measurement agrees with the answer, it does not, or
#: the "measured" value is itself a model (nothing was observed that could disagree).
AGREES, DIFFERS, MODEL = "agrees", "DIFFERS", "model"


@dataclasses.dataclass(frozen=True)
class SummaryLine:
  """One line of the terminal summary: a question, its answer, what was measured, the verdict.

  ``verdict`` is :data:`AGREES`, :data:`DIFFERS`, :data:`MODEL`, or ``""`` when the line only
  reports (nothing to agree with).
  """

  question: str
  answer: str
  measured: str
  verdict: str = ""

  @staticmethod
  def check(question: str, answer: str, measured: str, agrees: bool) -> SummaryLine:
    return SummaryLine(question, answer, measured, AGREES if agrees else DIFFERS)


@dataclasses.dataclass
class StudyResult:
  """What a study returns: JSON-ready ``results`` (stored under its name in results.json), its
  section of report.md, the seeds it used, its terminal summary and the arrays behind its figures
  (see the module docstring)."""

  results: dict
  markdown: str
  seeds: list = dataclasses.field(default_factory=list)
  summary: list[SummaryLine] = dataclasses.field(default_factory=list)
  arrays: dict[str, dict] = dataclasses.field(default_factory=dict)


def get_study(name: str) -> ModuleType:
  """The study module registered as ``name``."""
  if name not in STUDIES:
    raise unknown_choice("experiment", name, STUDIES)
  return importlib.import_module(STUDIES[name].module)


def sweep_progress(ctx) -> bool | None:
  """The ``progress`` argument of a sweep inside a study: a bar only when the run shows progress,
  and then only on a terminal (None lets the sweep decide)."""
  return None if getattr(ctx, "show_progress", False) else False
