"""`jaxopt-hw plot RUN_DIR`: every figure of a run redrawn from the arrays saved beside it, without
JAX."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxopt_hw import cli
from jaxopt_hw.studies import figures

ROOT = Path(__file__).resolve().parents[1]

TINY = [
  *("--set", "q5.n=2", "--set", "q5.p=12", "--set", "q5.extra_n=[]", "--set", "q5.extra_p=[]"),
  *("--set", "q5.curve_n=[2]", "--set", 'data_parallel.paradigms=["pmean"]'),
  *(
    "--set",
    "data_parallel.n=2",
    "--set",
    "data_parallel.steps=3",
    "--set",
    "data_parallel.batch=4",
  ),
  *("--set", "data_parallel.hidden=[3]", "--set", "data_parallel.features=2"),
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
  out = tmp_path_factory.mktemp("plot") / "run"
  with contextlib.redirect_stdout(io.StringIO()):
    assert (
      cli.main(["run", "hw2_q5", "data_parallel", "--out", str(out), "--no-progress", *TINY]) == 0
    )
  return out


_PROBE = """
import json, sys
from jaxopt_hw.cli import main
rc = main(json.loads(sys.argv[1]))
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'optax', 'flax'))
print(json.dumps({'rc': rc, 'heavy': heavy}))
"""


def _plot_in_a_fresh_process(*args):
  proc = subprocess.run(
    [sys.executable, "-c", _PROBE, json.dumps(["plot", *map(str, args)])],
    capture_output=True,
    text=True,
    timeout=120,
    cwd=ROOT,
  )
  assert proc.returncode == 0, proc.stderr
  return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stdout


def test_a_run_saves_the_arrays_of_every_figure_it_draws(run_dir):
  pngs = sorted(p.stem for p in run_dir.glob("*.png"))
  assert pngs == ["data_parallel_loss", "q5_messages"]
  assert sorted(p.stem for p in run_dir.glob("*.npz")) == pngs
  with np.load(run_dir / "q5_messages.npz", allow_pickle=False) as saved:  # plain NumPy, no pickle
    assert str(saved["figure"]) == "q5_messages"
    assert saved["messages"].shape == (4, 1)  # 3 paradigms and pmean × n = 2
  meta = json.loads((run_dir / "results.json").read_text())["meta"]
  assert meta["figures"] == {"q5": ["q5_messages.png"], "data_parallel": ["data_parallel_loss.png"]}


def test_plot_redraws_every_figure_from_the_saved_arrays_without_jax(run_dir, tmp_path):
  drawn = {p.name: p.read_bytes() for p in run_dir.glob("*.png")}
  for name in drawn:
    (run_dir / name).unlink()
  result, stdout = _plot_in_a_fresh_process(run_dir)
  assert result == {"rc": 0, "heavy": []}, "plot imported JAX"
  assert stdout.startswith(
    f"redrew 2 figures in {run_dir}: data_parallel_loss.png, q5_messages.png"
  )
  # the same pictures as the run drew: they depend on nothing but the saved arrays
  assert {p.name: p.read_bytes() for p in run_dir.glob("*.png")} == drawn

  # change the data: the redrawn figure changes with it
  changed = tmp_path / "changed"
  changed.mkdir()
  arrays = figures.load_arrays(run_dir / "q5_messages.npz")
  arrays["messages"] = arrays["messages"] * 2
  np.savez(changed / "q5_messages.npz", **arrays)
  result, _ = _plot_in_a_fresh_process(changed, "--out", tmp_path / "pngs")
  assert result["rc"] == 0
  assert (tmp_path / "pngs" / "q5_messages.png").read_bytes() != drawn["q5_messages.png"]
  assert not (changed / "q5_messages.png").exists(), "--out puts the PNGs elsewhere"


@pytest.mark.parametrize(
  "setup, message",
  [
    (None, "is not a folder"),
    ("empty", "holds no saved figure arrays (*.npz)"),
    ("unknown", "holds figure 'pie_chart', which this version cannot draw; known: q1_unit_balls"),
    ("foreign", "has no 'figure' key; it was not saved by jaxopt-hw"),
  ],
)
def test_plot_refuses_what_it_cannot_redraw_with_one_line(tmp_path, capsys, setup, message):
  folder = tmp_path / "run"
  if setup is not None:
    folder.mkdir()
  if setup == "unknown":
    np.savez(folder / "pie.npz", figure=np.asarray("pie_chart"), x=np.arange(3))
  if setup == "foreign":
    np.savez(folder / "other.npz", x=np.arange(3))
  assert cli.main(["plot", str(folder)]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: plot: ") and message in err and err.count("\n") == 1, err


def test_every_figure_documents_its_keys():
  for name, draw in figures.FIGURES.items():
    assert "Keys:" in (draw.__doc__ or ""), name
