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

#: Newton–Schulz coefficient presets of :func:`jaxopt_hw.orthogonalize`.
NS_PRESETS = ("jordan", "cubic", "polar_express", "dion")

#: How :func:`jaxopt_hw.orthogonalize` scales G before Newton–Schulz (optax's ``muon`` options).
NS_PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")

#: Norms for one layer of a network (Scion, modula), beside the homework's :data:`NORMS`: the
#: RMS→RMS operator norm, the largest column / row ℓ2 norm, the RMS norm and d_in-scaled sign.
LAYER_NORMS = ("rms_spectral", "col_l2", "row_l2", "rms", "sign")

#: Every norm :func:`jaxopt_hw.duality.get_norm` builds by name.
ALL_NORMS = NORMS + LAYER_NORMS

#: The per-leaf norm choice of :func:`jaxopt_hw.duality.auto_norm`.
AUTO = "auto"
