"""Smoke test of `jaxopt-hw bench optimizers` at toy sizes (timings are never asserted)."""

import json

import pytest

from jaxopt_hw.bench import optimizers as bench
from jaxopt_hw.errors import UserInputError


def test_bench_optimizers_json_has_every_point_and_the_muon_ratio(capsys):
  argv = ["--sizes", "8", "12", "--presets", "jordan", "polar_express", "--steps", "5", "8"]
  assert bench.main(argv + ["--width", "16", "--layers", "2", "--repeats", "1", "--json"]) == 0
  out = json.loads(capsys.readouterr().out)
  rows = out["newton_schulz"]
  assert len(rows) == 2 * (1 + 2 * 2)  # per size: the SVD and 2 presets × 2 step counts
  svd = {r["n"]: r for r in rows if r["method"] == "svd"}
  for r in rows:
    assert r["seconds"] > 0
    # the ratio is the SVD's time over this row's, as printed
    assert r["svd_over_this"] == pytest.approx(svd[r["n"]]["seconds"] / r["seconds"])
  exact = [r["max_abs_sigma_minus_1"] for r in rows if r["method"] == "svd"]
  assert max(exact) < 1e-5  # the SVD's polar factor is orthogonal to float32 rounding
  m = out["muon"]
  assert m["ratio"] == pytest.approx(m["jaxopt_hw_seconds"] / m["optax_seconds"])


def test_bench_optimizers_table(capsys):
  argv = ["--parts", "newton_schulz", "--sizes", "8", "--presets", "cubic", "--steps", "5"]
  assert bench.main(argv + ["--repeats", "1"]) == 0
  out = capsys.readouterr().out
  assert "| 8 | SVD | — |" in out and "| 8 | cubic | 5 |" in out


@pytest.mark.parametrize(
  "argv,match",
  [
    (["--presets", "fast"], r"--presets: 'fast' is not valid"),
    (["--parts", "adam"], r"--parts: 'adam' is not valid"),
    (["--sizes", "0"], r"--sizes: \[0\] is not allowed"),
  ],
)
def test_bench_optimizers_rejects_bad_options(argv, match):
  with pytest.raises(UserInputError, match=match):
    bench.main(argv)
