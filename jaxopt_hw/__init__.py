"""jaxopt_hw: optimizers in JAX, from a graduate homework to reusable, tested, accelerated code.

Update rules are optax ``GradientTransformation``\\ s::

    import optax, jaxopt_hw
    tx = optax.chain(optax.clip_by_global_norm(1.0), jaxopt_hw.steepest_descent(0.1, "linf"))

Most names are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
  "steepest_descent": "jaxopt_hw.transforms.steepest",
  "steepest_step": "jaxopt_hw.transforms.steepest",
  "simplified_adam": "jaxopt_hw.transforms.simplified_adam",
  "scale_by_epoch_rms": "jaxopt_hw.transforms.simplified_adam",
  "preconditioned_sgd": "jaxopt_hw.transforms.rescale",
  "rescaled_sgd": "jaxopt_hw.transforms.rescale",
  "scale_by_fixed_diagonal": "jaxopt_hw.transforms.rescale",
  "SweepResult": "jaxopt_hw.sweep",
  "UserInputError": "jaxopt_hw.errors",
}
_SUBMODULES = (
  "duality",
  "problems",
  "testing",
  "distributed",
  "check",
  "transforms",
  "config",
  "runner",
)

__all__ = ["sweep", *_EXPORTS, *_SUBMODULES, "__version__"]

# Imported eagerly: the function shares its name with its module, and importing the module
# first would otherwise leave ``jaxopt_hw.sweep`` bound to the module instead of the function.
from jaxopt_hw.sweep import sweep  # noqa: E402

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
  # ruff: noqa: F401
  from jaxopt_hw import check, config, distributed, duality, problems, runner, testing, transforms
  from jaxopt_hw.errors import UserInputError
  from jaxopt_hw.sweep import SweepResult
  from jaxopt_hw.transforms.rescale import preconditioned_sgd, rescaled_sgd, scale_by_fixed_diagonal
  from jaxopt_hw.transforms.simplified_adam import scale_by_epoch_rms, simplified_adam
  from jaxopt_hw.transforms.steepest import steepest_descent, steepest_step


def __getattr__(name: str):
  if name in _EXPORTS:
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
  elif name in _SUBMODULES:
    value = importlib.import_module(f"jaxopt_hw.{name}")
  else:
    raise AttributeError(f"module 'jaxopt_hw' has no attribute {name!r}")
  globals()[name] = value
  return value


def __dir__():
  return sorted(__all__)
