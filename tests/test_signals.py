"""Ctrl-C and SIGTERM, sent to the real program in a subprocess: exit status 130 / 143, one line
saying so, no crash, no traceback and nothing half-written — wherever the signal lands.

The signal lands at several delays after the program says it is working: while a study compiles
(XLA compiles on its own threads; a KeyboardInterrupt inside ``compile_and_load`` used to leave that
compile running into the interpreter's teardown, which crashed with SIGSEGV), while figures are
written (SIGTERM used to leave ``.partial-*`` folders and ``.png.*.tmp`` files), during start-up
(while JAX is imported), and while the main thread is stuck in native code that never returns.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: A study that keeps XLA compiling new programs and writing figures until it is stopped.
STRESS_STUDY = textwrap.dedent(
  """
  import itertools
  from dataclasses import dataclass

  import jax
  import jax.numpy as jnp
  import numpy as np
  from matplotlib.figure import Figure

  @dataclass(frozen=True)
  class Config:
    mode: str = "loop"

  def run(config, ctx):
    if config.mode == "compile":  # one long XLA compile (a 300-step program, unrolled)
      def f(x):
        for i in range(300):
          x = jnp.sin(x) * (i + 1.0) + jnp.cos(x[::-1])
        return x
      lowered = jax.jit(f).lower(jnp.ones(64))
      ctx.log("compiling")
      lowered.compile()
    if config.mode == "hang":  # one XLA loop of 2**62 steps: JAX waits without polling for signals
      step = lambda c: (c[0] + 1, c[1] * 1.0000001)
      loop = jax.jit(lambda: jax.lax.while_loop(lambda c: c[0] < 2**62, step, (0, 1.0)))
      compiled = loop.lower().compile()
      ctx.log("looping")
      compiled()
    ctx.log("working")
    for i in itertools.count():
      n = 1 + i % 64  # a new shape: a new program to compile
      jax.jit(lambda x: jnp.cumsum(jnp.sin(x) @ jnp.cos(x).T, axis=0))(jnp.ones((n, n)))
      fig = Figure()
      fig.subplots().plot(np.arange(200.0) ** 0.5)
      ctx.save_figure(f"figure{i % 4}", fig)
  """
)

LAUNCH = (
  "import sys; sys.path.insert(0, '.'); "
  "from jaxopt_hw.studies import STUDIES, StudyInfo; "
  "STUDIES['stress'] = StudyInfo('stress_study', 'Stress', 'compiles and figures until stopped'); "
  "from jaxopt_hw.cli import main; sys.exit(main())"
)


class Program:
  """The program in a subprocess, its stderr read as it comes."""

  def __init__(self, args: list[str], cwd: Path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1"}
    self.proc = subprocess.Popen(
      [sys.executable, *args],
      cwd=cwd,
      env=env,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
    )
    self.lines: list[str] = []
    self._seen = threading.Condition()
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.proc.stderr:
      with self._seen:
        self.lines.append(line)
        self._seen.notify_all()

  def wait_for(self, text: str, timeout: float = 120) -> None:
    with self._seen:
      found = self._seen.wait_for(lambda: any(text in line for line in self.lines), timeout)
    assert found, f"the program never printed {text!r}; stderr: {''.join(self.lines)}"

  def finish(self, timeout: float = 60) -> tuple[int, str]:
    try:
      code = self.proc.wait(timeout)
    except subprocess.TimeoutExpired:
      self.proc.kill()
      self.proc.wait()
      pytest.fail(f"the program did not stop within {timeout} s; stderr: {''.join(self.lines)}")
    self._reader.join(10)
    return code, "".join(self.lines)


def stress(tmp_path: Path, *extra: str) -> Program:
  (tmp_path / "stress_study.py").write_text(STRESS_STUDY)
  (tmp_path / "stress.toml").write_text('experiment = "stress"\n')
  return Program(["-c", LAUNCH, "run", "stress.toml", "--out", "out", *extra], tmp_path)


def assert_stopped_cleanly(
  code: int, err: str, signum: int, folder: Path, keep: tuple[str, ...] = ()
) -> None:
  expected = {signal.SIGINT: 130, signal.SIGTERM: 143}[signum]
  assert code == expected, f"exit status {code}, expected {expected}; stderr:\n{err}"
  last = err.strip().splitlines()[-1]
  assert last == f"interrupted ({signal.Signals(signum).name}): stopped; no partial output left"
  assert "Traceback" not in err and "Fatal Python error" not in err, err
  ours = {"stress_study.py", "stress.toml", "__pycache__", *keep}
  left = sorted(p.name for p in folder.iterdir() if p.name not in ours)
  assert left == [], f"left behind: {left}"


def test_a_signal_while_compiling_and_writing_figures_stops_cleanly(tmp_path):
  # Several delays, so the signal lands in a compile, in a figure being written, between them.
  for signum, delay in [(signal.SIGINT, 0.25), (signal.SIGTERM, 0.6)]:
    folder = tmp_path / f"{signal.Signals(signum).name}-after-{delay}"
    folder.mkdir()
    program = stress(folder)
    program.wait_for("[stress] working")
    time.sleep(delay)
    program.proc.send_signal(signum)
    assert_stopped_cleanly(*program.finish(), signum, folder)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_inside_an_xla_compile_does_not_crash_the_teardown(tmp_path, signum):
  # Issue 11.1's segmentation fault, made certain: the signal lands while XLA compiles on its
  # thread pool. Python's KeyboardInterrupt left that compile running into the interpreter's
  # teardown, which freed the client under it (exit -11 every time on the base commit).
  program = stress(tmp_path, "--set", "stress.mode='compile'")
  program.wait_for("[stress] compiling")
  time.sleep(0.3)
  program.proc.send_signal(signum)
  assert_stopped_cleanly(*program.finish(), signum, tmp_path)


def test_ctrl_c_on_the_homework_report_exits_130_and_keeps_the_previous_run(tmp_path):
  # The case of the issue: `jaxopt-hw run hw2_q1 --out X`, interrupted while Q1 compiles, here over
  # a previous run that --force would replace: it must stay as it was.
  out = tmp_path / "X"
  out.mkdir()
  (out / "results.json").write_text('{"meta": {"created_utc": "then", "configs": {}}}\n')
  program = Program(["-m", "jaxopt_hw", "run", "hw2_q1", "--out", "X", "--force"], tmp_path)
  program.wait_for("[q1] running")
  time.sleep(1.0)
  program.proc.send_signal(signal.SIGINT)
  code, err = program.finish()
  assert_stopped_cleanly(code, err, signal.SIGINT, tmp_path, keep=("X",))
  assert sorted(p.name for p in out.iterdir()) == ["results.json"]
  assert "then" in (out / "results.json").read_text()


def test_ctrl_c_during_start_up_exits_130_without_an_import_traceback(tmp_path):
  # While JAX is imported and its backend created (`jaxopt-hw list` never imports JAX, `run` does
  # first thing); before, a KeyboardInterrupt inside an extension module's initialisation gave an
  # ImportError traceback, or a crash.
  for delay in (0.2, 0.6):
    folder = tmp_path / f"after-{delay}"
    folder.mkdir()
    program = Program(["-m", "jaxopt_hw", "run", "hw2_q5", "--out", "out"], folder)
    time.sleep(delay)
    program.proc.send_signal(signal.SIGINT)
    code, err = program.finish()
    assert_stopped_cleanly(code, err, signal.SIGINT, folder)


def test_a_signal_while_stuck_in_native_code_stops_within_the_grace_period(tmp_path):
  # The main thread waits for XLA and never returns to Python, so no Python handler can run: the
  # watchdog stops the program after its grace period and removes the unfinished output itself.
  program = stress(tmp_path, "--set", "stress.mode='hang'")
  program.wait_for("[stress] looping")
  time.sleep(0.3)
  program.proc.send_signal(signal.SIGTERM)
  code, err = program.finish(timeout=30)
  assert code == 143, err
  assert err.strip().splitlines()[-1] == (
    "interrupted (SIGTERM): no safe point within 3 s, stopped at once; unfinished output removed"
  )
  left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".", "out")))
  assert left == [], left
