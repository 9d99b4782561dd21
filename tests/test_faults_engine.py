"""Hostile input to the sweep engine and its benchmark (issue 12, items 8, 13 and 14): each is
refused with one line naming the field, the value and what is allowed, before anything runs.

The same cases, as commands, are in experiments/adversarial/engine.toml.
"""

import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

from jaxopt_hw import cli, engine, problems
from jaxopt_hw.engine import sweep
from jaxopt_hw.errors import UserInputError


@pytest.fixture
def nothing_may_run(monkeypatch):
  """Fail the test if the sweep gets as far as building a compiled program."""

  def refuse(*args, **kwargs):
    raise AssertionError("the sweep started running before refusing its input")

  monkeypatch.setattr(engine, "_program", refuse)


def _one_line(e: pytest.ExceptionInfo) -> str:
  text = str(e.value)
  assert "\n" not in text
  return text


# --- 12.8: step counts of 2**31 and more are refused by sweep() (steps are int32 inside)


@pytest.mark.parametrize("steps", [2**31, 3_000_000_000, 10**20])
def test_step_counts_from_2_to_the_31_are_refused_before_anything_runs(steps, nothing_may_run):
  with pytest.raises(UserInputError) as e:
    sweep(problems.homework_problem(), optax.sgd, [0.1], steps=steps)
  assert _one_line(e) == (
    f"steps: {steps} is not allowed; must be an integer < 2**31 = 2147483648 "
    "(steps are counted in int32)"
  )


def test_a_float_step_count_such_as_1e20_is_refused(nothing_may_run):
  with pytest.raises(UserInputError, match=r"^steps: 1e\+20 is not allowed; must be an integer"):
    sweep(problems.homework_problem(), optax.sgd, [0.1], steps=1e20)


def test_the_largest_step_count_is_accepted_by_the_checks():
  # 2**31 - 1 passes validation (running it would take hours, so only the check is exercised: a
  # bad learning rate after it is what stops the call)
  with pytest.raises(UserInputError, match=r"^learning_rates: "):
    sweep(problems.homework_problem(), optax.sgd, [-1.0], steps=2**31 - 1)


# --- 12.8: `jaxopt-hw bench sweep` bounds its options instead of printing a traceback


@pytest.mark.parametrize(
  "argv, message",
  [
    (
      ["--memory-factor", "1e9"],
      "error: --memory-factor: '1e9' is not allowed; must be an integer >= 1",
    ),
    (
      ["--memory-factor", "1000000000"],
      "error: --memory-factor: 1000000000 is not allowed with --memory-steps 2000; the larger "
      "memory run takes their product in steps, which must be <= 2147483647 (or pass --no-memory)",
    ),
    (["--steps", "3000000000"], "error: --steps: 3000000000 is not allowed; must be <= 2147483647"),
  ],
)
def test_bench_sweep_refuses_huge_sizes_in_one_line_before_running(argv, message, capsys):
  tiny = ["--configs", "16", "--seeds", "4", "--steps", "10", "--loop-configs", "1"]
  tiny += ["--repeats", "1", "--memory-steps", "2000"]
  code = cli.main(["bench", "sweep", *tiny, *argv])
  err = capsys.readouterr().err
  assert code == 2
  assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


def test_bench_sweep_memory_factor_1e9_from_the_command_line_prints_one_line():
  proc = subprocess.run(
    [sys.executable, "-m", "jaxopt_hw", "bench", "sweep", "--memory-factor", "1e9"],
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 2
  assert proc.stderr.startswith("error: --memory-factor: ") and proc.stderr.count("\n") == 1


# --- 12.13: seeds of 2**32 and more used to wrap silently onto small seeds


def test_seeds_from_2_to_the_32_are_refused_not_wrapped(nothing_may_run):
  with pytest.raises(UserInputError) as e:
    sweep(
      problems.homework_problem(init_scale=1.0), optax.sgd, [0.1], steps=5, seeds=[0, 2**32, 2**40]
    )
  assert _one_line(e) == (
    "seeds: [0, 4294967296, 1099511627776] is not allowed; must be a non-empty list of integers "
    "from 0 to 4294967295 (2**32 - 1)"
  )


def test_the_largest_seed_is_its_own_stream():
  # 2**32 - 1 is allowed and is not seed 0 in disguise: its starting point is jax.random.key's
  r = sweep(
    problems.homework_problem(init_scale=1.0),
    optax.sgd,
    [0.1],
    steps=1,
    seeds=[0, 2**32 - 1],
    log_points=2,
    record_params=True,
    dtype=np.float64,
  )
  start = np.asarray(r.params_log)[0, :, 0]
  data = problems.homework_problem(init_scale=1.0).data
  for s, seed in enumerate([0, 2**32 - 1]):
    expected = problems.normal_init(jax.random.key(seed), data)  # the key of that very seed
    np.testing.assert_allclose(start[s], np.asarray(expected, np.float64), rtol=1e-6)
  assert not np.allclose(start[0], start[1])


# --- 12.14: learning_rates=None reported "[nan]"; strings raised a bare ValueError


def test_learning_rates_none_is_refused_naming_none(nothing_may_run):
  with pytest.raises(UserInputError) as e:
    sweep(problems.homework_problem(), optax.sgd, None, steps=5)
  assert _one_line(e).startswith("learning_rates: None is not allowed; must be a non-empty list")
  assert "nan" not in str(e.value)


@pytest.mark.parametrize("rates", [["abc"], ["0.1"], [0.1, "x"], "0.1", [True]])
def test_learning_rates_that_are_not_numbers_are_user_input_errors(rates, nothing_may_run):
  with pytest.raises(UserInputError) as e:
    sweep(problems.homework_problem(), optax.sgd, rates, steps=5)
  assert _one_line(e).startswith(f"learning_rates: {rates!r} is not allowed; must be a non-empty")
