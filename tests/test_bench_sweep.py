"""Smoke test of `jaxopt-hw bench sweep` at tiny sizes (timings are never asserted)."""

import json

import numpy as np
import optax
import pytest

from jaxopt_hw.bench import sweep as bench
from jaxopt_hw.engine import sweep
from jaxopt_hw.errors import UserInputError

TINY = ["--configs", "16", "--seeds", "4", "--steps", "50", "--loop-configs", "2", "--repeats", "1"]


def test_bench_sweep_json_has_the_ratios_and_memory_figures(capsys):
  assert bench.main(TINY + ["--memory-steps", "20", "--memory-factor", "10", "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  for key in (
    "speedup_vs_loop",
    "speedup_vs_numpy",
    "memory_ratio",
    "sweep_config_steps_per_second",
    "loop_config_steps_per_second",
    "numpy_config_steps_per_second",
    "overhead_vs_bare_scan",
    "overhead_vs_nested_bare_scan",
  ):
    assert isinstance(out[key], float) and out[key] > 0, key
  assert out["small_steps"] == 20 and out["large_steps"] == 200
  assert out["small_peak_rss_bytes"] > 0 and out["large_peak_rss_bytes"] > 0
  assert out["configs"] == 16 and out["loop_timed_configs"] == 2
  # the ratios are the rates divided, as printed
  assert out["speedup_vs_loop"] == pytest.approx(
    out["sweep_config_steps_per_second"] / out["loop_config_steps_per_second"]
  )
  assert out["overhead_vs_nested_bare_scan"] == pytest.approx(
    out["sweep_seconds"] / out["nested_bare_scan_seconds"]
  )


def test_bench_sweep_table_without_memory(capsys):
  assert bench.main(TINY + ["--no-memory"]) == 0
  text = capsys.readouterr().out
  assert "compiled sweep" in text and "sweep is faster by" in text and "peak memory" not in text


@pytest.mark.parametrize(
  "argv, message",
  [
    (
      ["--configs", "10", "--seeds", "4"],
      r"^--configs: 10 is not allowed; must be a multiple of --seeds \(4\)$",
    ),
    (["--steps", "0"], r"^--steps: 0 is not allowed; must be >= 1$"),
    (
      ["--configs", "8", "--seeds", "4", "--loop-configs", "9"],
      r"^--loop-configs: 9 is not allowed",
    ),
  ],
)
def test_bench_sweep_rejects_bad_sizes(argv, message):
  with pytest.raises(UserInputError, match=message):
    bench.main(argv)


def test_bench_sweep_help(capsys):
  with pytest.raises(SystemExit) as e:
    bench.main(["--help"])
  assert e.value.code == 0 and "jaxopt-hw bench sweep" in capsys.readouterr().out


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_the_bare_scan_takes_the_same_steps_as_the_sweep(nested):
  # The baseline must do the sweep's work: its final θ equals the sweep's final parameters at every
  # configuration (both float32 SGD from the same starts; tolerance: a few float32 ulps, as the two
  # programs may fuse the same arithmetic differently).
  args = bench._parser().parse_args(TINY)
  out = bench._bare_scan_call(args, nested=nested)()
  lrs, seeds = bench._grid(args)
  result = sweep(bench._problem(), optax.sgd, lrs, seeds=seeds, steps=args.steps)
  bare = np.asarray(out).reshape(np.shape(result.params))
  np.testing.assert_allclose(bare, np.asarray(result.params), rtol=1e-5, atol=1e-6)
