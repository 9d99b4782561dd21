"""jaxopt_hw.testing: the converged-θ assertion users put in their own tests, and its message."""

import os
import re
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_hw import problems, testing
from jaxopt_hw.engine import sweep

A = np.array(problems.HOMEWORK_A)
THETA_SGD = A / (A @ A)  # SGD from 0 stays in span(a): θ = a/‖a‖²


def test_passes_when_every_point_converged():
  r = sweep(
    problems.homework_problem(),
    optax.sgd,
    [0.1, 0.5, 0.9],
    seeds=[0, 1],
    steps=400,
    dtype=jnp.float64,
  )
  testing.assert_converged_to(r, THETA_SGD, atol=1e-12)
  np.testing.assert_array_less(testing.max_errors(r, THETA_SGD), 1e-12)


def test_failure_lists_the_points_that_missed_by_how_much_and_the_diverged_ones():
  # α = 0.001: 50 steps are far too few; α = 1.2 > 1/‖a‖² diverges; the rest converge.
  r = sweep(
    problems.homework_problem(),
    optax.sgd,
    [0.001, 0.5, 1.2],
    steps=50,
    dtype=jnp.float64,
    explode_factor=1e4,
  )
  with pytest.raises(AssertionError) as info:
    testing.assert_converged_to(r, THETA_SGD, atol=1e-6)
  message = str(info.value)
  lines = message.splitlines()
  assert lines[0] == (
    "2 of 3 grid points did not converge to the expected parameters "
    "(|theta - expected| <= 1e-06 + 0*|expected|):"
  )
  # residual after 50 steps at α = 0.001: θ = (1 − ρ⁵⁰)θ*, ρ = 1 − 0.002‖a‖², so the worst entry is
  # θ*_0 ρ⁵⁰ at index 0
  rho = 1 - 0.002 * (A @ A)
  err0 = THETA_SGD[0] * rho**50
  got0 = THETA_SGD[0] - err0
  assert lines[1] == (
    f"  learning_rate=0.001, seed=0: max |error| {err0:.2g} at [0] "
    f"(got {got0:.6g}, expected {THETA_SGD[0]:.6g})"
  )
  assert re.fullmatch(r"  learning_rate=1\.2, seed=0: diverged at step \d+", lines[2])
  assert re.fullmatch(r"3 points checked; the 1 that passed are within \S+\.", lines[3])


def test_relative_tolerance_and_nan_and_plain_pytrees():
  thetas = np.array([[1.0, 100.0], [1.0, 100.5], [np.nan, 100.0]])
  testing.assert_converged_to(thetas[:1], [1.0, 100.0], atol=0, rtol=0)
  with pytest.raises(AssertionError) as info:
    testing.assert_converged_to(thetas, [1.0, 100.0], atol=1e-9, rtol=1e-3, axes=("run",))
  lines = str(info.value).splitlines()
  assert lines[0].startswith("2 of 3 grid points")
  assert (
    lines[1] == "  run=1: max |error| 0.5 at [1] (got 100.5, expected 100)"
  )  # 0.5 > 1e-9 + 1e-3·100
  assert lines[2] == "  run=2: max |error| NaN at [0] (got nan, expected 1)"
  # a pytree of parameters: entries are named by their path
  with pytest.raises(
    AssertionError, match=r"point=0: max \|error\| 2 at \['w'\]\[1, 0\] \(got 2, expected 0\)"
  ):
    testing.assert_converged_to(
      {"w": np.array([[[0.0, 0.0], [2.0, 0.0]]]), "b": np.zeros((1, 3))},
      {"w": np.zeros((2, 2)), "b": np.zeros(3)},
    )


def test_expected_values_per_grid_point():
  thetas = np.array([[1.0], [2.0]])
  testing.assert_converged_to(thetas, np.array([[1.0], [2.0]]), atol=0)
  with pytest.raises(ValueError, match=r"expected has shape \(3,\)"):
    testing.assert_converged_to(thetas, np.zeros(3))


def test_long_failure_lists_are_cut():
  thetas = np.ones((30, 1))
  with pytest.raises(AssertionError) as info:
    testing.assert_converged_to(thetas, [0.0], max_lines=5)
  lines = str(info.value).splitlines()
  assert (
    lines[0].startswith("30 of 30")
    and lines[6] == "  ... and 25 more"
    and lines[7] == "30 points checked; none passed."
  )


@pytest.mark.parametrize(
  "params, expected, message",
  [
    (
      np.zeros((2, 3)),
      {"w": np.zeros(3)},
      "expected does not have the pytree structure of the parameters; expected: a dict with "
      "leaves ['w']; parameters: one array (ndarray)",
    ),
    (
      {"w": np.zeros((2, 3)), "b": np.zeros((2, 1))},
      {"w": np.zeros(3), "bias": np.zeros(1)},
      "expected: a dict with leaves ['bias'], ['w']; parameters: a dict with leaves ['b'], ['w']",
    ),
    (
      {"w": np.zeros((2, 3))},
      [0.0, 0.0, 0.0],
      "expected: a list with leaves [0], [1], [2]; parameters: a dict with leaves ['w']",
    ),
  ],
  ids=["dict against an array", "other keys", "list against a dict"],
)
def test_an_expected_of_another_structure_is_refused(params, expected, message):
  with pytest.raises(ValueError) as info:
    testing.assert_converged_to(params, expected)
  assert message in str(info.value)
  with pytest.raises(ValueError, match="pytree structure"):
    testing.max_errors(params, expected, grid_ndim=1)


def test_matching_structures_are_accepted():
  # dict against dict (keys in any order), tuple against list, a list of numbers for one array
  params = {"b": np.ones((1, 2)), "w": np.zeros((1, 3))}
  testing.assert_converged_to(params, {"w": np.zeros(3), "b": np.ones(2)})
  testing.assert_converged_to((np.ones((1, 2)), np.zeros((1, 1))), [np.ones(2), np.zeros(1)])
  testing.assert_converged_to(np.ones((1, 2)), [1, 1])


FAILING_TEST = """
import numpy as np
from jaxopt_hw import testing

def test_it():
  testing.assert_converged_to(np.array([[1.0, 2.0]]), [1.0, 0.0], atol=1e-6)
"""


def test_a_failure_shows_the_callers_line_and_the_message_not_the_helpers_source(tmp_path):
  (tmp_path / "test_user.py").write_text(FAILING_TEST)
  proc = subprocess.run(
    [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
    capture_output=True,
    text=True,
    cwd=tmp_path,
    timeout=120,
    env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
  )
  out = proc.stdout
  assert proc.returncode == 1, out
  assert "testing.assert_converged_to(np.array([[1.0, 2.0]])" in out  # the user's own line
  assert "point=0: max |error| 2 at [1] (got 2, expected 0)" in out  # and the message
  # none of the helper's frames: no line of its source, no location inside it
  assert "testing.py" not in out and "def assert_converged_to" not in out, out
  assert "raise AssertionError" not in out, out
