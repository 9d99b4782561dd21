"""The package's public names resolve to the objects that implement them."""

import optax
import pytest

import jaxopt_hw


def test_every_public_name_resolves():
  for name in jaxopt_hw.__all__:
    assert getattr(jaxopt_hw, name) is not None, name


def test_top_level_names_are_the_implementations():
  from jaxopt_hw.engine import sweep
  from jaxopt_hw.transforms.steepest import steepest_descent

  assert jaxopt_hw.sweep is sweep
  assert jaxopt_hw.steepest_descent is steepest_descent
  assert isinstance(jaxopt_hw.steepest_descent(0.1, "linf"), optax.GradientTransformation)
  assert isinstance(jaxopt_hw.simplified_adam(0.1), optax.GradientTransformation)


def test_unknown_attribute_is_an_attribute_error():
  with pytest.raises(AttributeError, match="not_a_name"):
    _ = jaxopt_hw.not_a_name
