"""jaxopt_hw: optimizers in JAX, from a graduate homework to reusable, tested, accelerated code.

Update rules are optax ``GradientTransformation``\\ s::

    import optax, jaxopt_hw
    tx = optax.chain(optax.clip_by_global_norm(1.0), jaxopt_hw.steepest_descent(0.1, "linf"))

This is the library core (transforms, norms, the sweep engine, problems, testing, distributed
collectives); the command line and the homework report sit on top of it and are not imported
here. Importing the package loads no JAX: every name is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: The optax transform factories the package exports (each has a case in the conformance suite).
TRANSFORMS = (
  "steepest_descent",
  "scale_by_steepest_descent",
  "simplified_adam",
  "scale_by_epoch_rms",
  "preconditioned_sgd",
  "rescaled_sgd",
  "scale_by_fixed_diagonal",
  "muon",
  "scion",
)

# public name -> module that defines it
_EXPORTS = {
  "steepest_descent": "jaxopt_hw.transforms.steepest",
  "scale_by_steepest_descent": "jaxopt_hw.transforms.steepest",
  "steepest_step": "jaxopt_hw.transforms.steepest",
  "simplified_adam": "jaxopt_hw.transforms.simplified_adam",
  "scale_by_epoch_rms": "jaxopt_hw.transforms.simplified_adam",
  "preconditioned_sgd": "jaxopt_hw.transforms.rescale",
  "rescaled_sgd": "jaxopt_hw.transforms.rescale",
  "scale_by_fixed_diagonal": "jaxopt_hw.transforms.rescale",
  "muon": "jaxopt_hw.transforms.muon",
  "scion": "jaxopt_hw.transforms.scion",
  "orthogonalize": "jaxopt_hw.polar",
  "sweep": "jaxopt_hw.engine",
  "SweepResult": "jaxopt_hw.engine",
  "UserInputError": "jaxopt_hw.errors",
}
_SUBMODULES = (
  "datasets",
  "distributed",
  "duality",
  "engine",
  "families",
  "grids",
  "models",
  "names",
  "numerics",
  "polar",
  "problems",
  "testing",
  "transforms",
)

__all__ = ["TRANSFORMS", "__version__", *_EXPORTS, *_SUBMODULES]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
  from jaxopt_hw import (  # noqa: F401
    datasets,
    distributed,
    duality,
    engine,
    families,
    grids,
    models,
    names,
    numerics,
    polar,
    problems,
    testing,
    transforms,
  )
  from jaxopt_hw.engine import SweepResult, sweep  # noqa: F401
  from jaxopt_hw.errors import UserInputError  # noqa: F401
  from jaxopt_hw.polar import orthogonalize  # noqa: F401
  from jaxopt_hw.transforms.muon import muon  # noqa: F401
  from jaxopt_hw.transforms.rescale import (  # noqa: F401
    preconditioned_sgd,
    rescaled_sgd,
    scale_by_fixed_diagonal,
  )
  from jaxopt_hw.transforms.scion import scion  # noqa: F401
  from jaxopt_hw.transforms.simplified_adam import scale_by_epoch_rms, simplified_adam  # noqa: F401
  from jaxopt_hw.transforms.steepest import (  # noqa: F401
    scale_by_steepest_descent,
    steepest_descent,
    steepest_step,
  )


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
