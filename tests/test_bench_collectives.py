"""Smoke test of `jaxopt-hw bench collectives` at tiny sizes (timings are never asserted)."""

import json

import pytest

from jaxopt_hw.bench import collectives
from jaxopt_hw.errors import UserInputError


def test_bench_collectives_json_rows_and_plot(capsys, tmp_path):
  plot = tmp_path / "t.png"
  assert (
    collectives.main(
      [
        "--n",
        "2",
        "3",
        "--min-log2",
        "4",
        "--max-log2",
        "6",
        "--step-log2",
        "2",
        "--repeats",
        "1",
        "--json",
        "--plot",
        str(plot),
      ]
    )
    == 0
  )
  rows = json.loads(capsys.readouterr().out)
  assert len(rows) == 2 * 2 * 4  # n in {2, 3} × p in {16, 64} × 4 aggregators
  for row in rows:
    assert {"paradigm", "n", "p", "seconds", "bytes_per_worker"} <= set(row)
    assert row["seconds"] > 0
  ring = {
    (r["n"], r["p"]): r["bytes_per_worker"] for r in rows if r["paradigm"] == "ring_allreduce"
  }
  assert ring[(3, 16)] == 2 * 2 * 6 * 4  # 2(n-1) chunks of ceil(16/3) = 6 float32 entries
  assert plot.stat().st_size > 0


def test_bench_collectives_table(capsys):
  assert (
    collectives.main(
      [
        "--n",
        "2",
        "--min-log2",
        "3",
        "--max-log2",
        "3",
        "--repeats",
        "1",
        "--paradigms",
        "ring_allreduce",
      ]
    )
    == 0
  )
  out = capsys.readouterr().out
  assert "| ring_allreduce | 2 | 2^3 |" in out and "measured / optimal" in out


def test_bench_collectives_rejects_unknown_paradigm():
  with pytest.raises(UserInputError, match="--paradigms: 'ring'"):
    collectives.main(["--paradigms", "ring"])


def test_bench_collectives_help(capsys):
  with pytest.raises(SystemExit) as e:
    collectives.main(["--help"])
  assert e.value.code == 0 and "jaxopt-hw bench collectives" in capsys.readouterr().out
