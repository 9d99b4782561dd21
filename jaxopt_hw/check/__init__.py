"""`jaxopt-hw check`: grade claimed answers to the homework against the experiments.

* :mod:`jaxopt_hw.check.expr`: the safe expression language the claims are written in;
* :mod:`jaxopt_hw.check.sheet`: the TOML answer sheet;
* :mod:`jaxopt_hw.check.grade`: grading (Q1 by the objective, Q2 against the experiment, Q5 against
  the message counts measured from compiled programs);
* :mod:`jaxopt_hw.check.cli`: the command line.
"""

from jaxopt_hw.check.expr import ExpressionError, Expression, evaluate, parse

__all__ = ["ExpressionError", "Expression", "evaluate", "parse"]
