"""The studies `jaxopt-hw run` knows, by the name configs give in ``experiment = "..."``.

Each study module defines ``NAME``, ``TITLE``, ``DESCRIPTION``, a frozen dataclass ``Config`` whose
defaults are the embedded homework report, and ``run(config, ctx) -> StudyResult``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from jaxopt_hw.errors import unknown_choice

#: name -> module; imported only when used, so `jaxopt-hw --help` stays fast.
STUDIES = {
  "q1": "jaxopt_hw.studies.q1",
  "q2": "jaxopt_hw.studies.q2",
  "implicit_bias": "jaxopt_hw.studies.implicit_bias",
  "q5": "jaxopt_hw.studies.q5",
  "data_parallel": "jaxopt_hw.studies.data_parallel",
}


def get_study(name: str) -> ModuleType:
  """The study module registered as ``name``."""
  if name not in STUDIES:
    raise unknown_choice("experiment", name, STUDIES)
  return importlib.import_module(STUDIES[name])
