"""`jaxopt-hw check`: grade claimed answers to the homework against the experiments.

* :mod:`jaxopt_hw.check.expr`: the safe expression language the claims are written in;
* :mod:`jaxopt_hw.check.sheet`: the TOML answer sheet;
* :mod:`jaxopt_hw.check.grade`: grading (Q1 by what every minimiser satisfies, and against the
  minimiser where it is unique; Q2 against the experiment; Q5 against the message counts measured
  from compiled programs);
* :mod:`jaxopt_hw.check.cli`: the command line.

Example::

    from jaxopt_hw.check import load_sheet, grade_sheet
    report = grade_sheet(load_sheet("configs/answers_example.toml"))
    print(report.format_text()); assert report.passed
"""

from jaxopt_hw.check.expr import Expression, ExpressionError, evaluate, parse
from jaxopt_hw.check.grade import (
  ItemResult,
  Report,
  grade_messages,
  grade_sheet,
  grade_theta,
  grade_update,
)
from jaxopt_hw.check.sheet import Sheet, message_claim, theta_claim, update_claim
from jaxopt_hw.check.sheet import load as load_sheet
from jaxopt_hw.check.sheet import loads as loads_sheet

__all__ = [
  "Expression",
  "ExpressionError",
  "ItemResult",
  "Report",
  "Sheet",
  "evaluate",
  "grade_messages",
  "grade_sheet",
  "grade_theta",
  "grade_update",
  "load_sheet",
  "loads_sheet",
  "message_claim",
  "parse",
  "theta_claim",
  "update_claim",
]
