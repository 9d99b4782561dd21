"""Update rules as optax ``GradientTransformation``\\ s."""

from jaxopt_hw.transforms.muon import muon
from jaxopt_hw.transforms.rescale import preconditioned_sgd, rescaled_sgd, scale_by_fixed_diagonal
from jaxopt_hw.transforms.scion import scion
from jaxopt_hw.transforms.simplified_adam import scale_by_epoch_rms, simplified_adam
from jaxopt_hw.transforms.steepest import (
  scale_by_steepest_descent,
  steepest_descent,
  steepest_step,
)

__all__ = [
  "muon",
  "preconditioned_sgd",
  "rescaled_sgd",
  "scale_by_epoch_rms",
  "scale_by_fixed_diagonal",
  "scale_by_steepest_descent",
  "scion",
  "simplified_adam",
  "steepest_descent",
  "steepest_step",
]
