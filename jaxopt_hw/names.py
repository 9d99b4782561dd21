"""The lists of choices the package knows, defined once.

This module imports nothing (no JAX), so the command line, the config checks and the answer-sheet
parser can name the allowed values without loading JAX; the library modules import their lists
from here too, so the two cannot drift apart.
"""

from __future__ import annotations

#: Norms of :func:`jaxopt_hw.duality.get_norm` and :func:`jaxopt_hw.steepest_descent`.
NORMS = ("l2", "linf", "l1", "lp", "mahalanobis", "spectral")

#: The two steepest-descent problems: the homework's penalised form and the constrained one.
FORMS = ("penalty", "ball")

#: Ways to compute the spectral dual map UVᵀ.
SPECTRAL_METHODS = ("svd", "newton_schulz")

#: Norms that may step the leaves that are not matrices when ``norm="spectral"``.
NON_MATRIX_NORMS = ("l2", "linf", "l1", "lp")

#: The homework's three ways to aggregate gradients over workers (Q5) ...
PARADIGMS = ("all_to_all", "parameter_server", "ring_allreduce")
#: ... and XLA's all-reduce, the baseline they are compared with.
BASELINE = "pmean"
AGGREGATORS = PARADIGMS + (BASELINE,)

#: Q2's three methods.
METHODS = ("sgd", "simplified_adam", "rescaled_sgd")

#: Step-size schedules α_t of :func:`jaxopt_hw.families.step_size`.
SCHEDULES = ("constant", "harmonic", "inverse_sqrt", "exponential")
