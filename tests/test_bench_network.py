"""Smoke tests of `jaxopt-hw bench network` and of `bench sweep`'s bare-scan comparison, at toy
sizes (timings are never asserted)."""

import json

import pytest

from jaxopt_hw.bench import network as bench_network
from jaxopt_hw.bench import sweep as bench_sweep
from jaxopt_hw.errors import UserInputError

TINY = ["--configs", "4", "--seeds", "2", "--steps", "3", "--batch-size", "16", "--hidden", "8"]
TINY += ["--loop-configs", "1", "--repeats", "1"]


def test_bench_network_json_has_the_three_rates_and_their_ratios(capsys):
  assert bench_network.main(TINY + ["--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  for key in (
    "sweep_examples_per_second",
    "compiled_sequential_examples_per_second",
    "python_loop_examples_per_second",
    "speedup_vs_compiled_sequential",
    "speedup_vs_python_loop",
    "sharded_sweep_examples_per_second",
    "sharded_speedup_vs_compiled_sequential",
  ):
    assert isinstance(out[key], float) and out[key] > 0, key
  assert out["examples"] == 4 * 3 * 16 and out["model"] == "MLP 64-8-10"
  # the ratios are the rates divided, as printed
  assert out["speedup_vs_compiled_sequential"] == pytest.approx(
    out["sweep_examples_per_second"] / out["compiled_sequential_examples_per_second"]
  )


@pytest.mark.parametrize(
  "argv, message",
  [
    (["--configs", "6", "--seeds", "4"], r"^--configs: 6 is not allowed; must be a multiple"),
    (["--batch-size", "5000"], r"^--batch-size: 5000 is not allowed; must be <= 1438$"),
    (["--steps", "x"], r"^--steps: 'x' is not allowed; must be an integer >= 1$"),
    (["--devices", "100000"], r"^--devices: 100000 is not allowed; must be from 1 to the \d+ "),
    (["--devices", "0"], r"^--devices: 0 is not allowed; must be from 1 to the \d+ devices"),
  ],
)
def test_bench_network_refuses_bad_sizes_in_one_line(argv, message):
  with pytest.raises(UserInputError, match=message):
    bench_network.main(argv)


def test_bench_sweep_reports_the_overhead_against_a_bare_scan(capsys):
  argv = ["--configs", "16", "--seeds", "4", "--steps", "20", "--loop-configs", "1"]
  assert bench_sweep.main(argv + ["--repeats", "1", "--no-memory", "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  assert out["bare_scan_config_steps_per_second"] > 0
  assert out["overhead_vs_bare_scan"] == pytest.approx(
    out["bare_scan_config_steps_per_second"] / out["sweep_config_steps_per_second"]
  )
