"""Update rules as optax ``GradientTransformation``\\ s."""

from jaxopt_hw.transforms.steepest import (
  FORMS,
  SteepestDescentState,
  steepest_descent,
  steepest_step,
)

__all__ = ["FORMS", "SteepestDescentState", "steepest_descent", "steepest_step"]
