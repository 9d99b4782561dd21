"""Shared test set-up: float64 on and 16 emulated CPU devices, before JAX creates any device; and
the launcher of the multi-host tests' local processes."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jaxopt_hw.platform import configure

configure()

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _run_local_processes(command, n: int, timeout_s: float) -> list[dict]:
  """Start ``command(coordinator, i)`` for i = 0 … n − 1 as CPU-only processes that find each
  other at a free port on 127.0.0.1; wait for all of them (failing the test after ``timeout_s``);
  return the JSON object each printed last."""
  coordinator = f"127.0.0.1:{_free_port()}"
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
  procs = [
    subprocess.Popen(
      [sys.executable, *command(coordinator, i)],
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
      env=env,
      cwd=ROOT,
    )
    for i in range(n)
  ]
  outputs = []
  try:
    for proc in procs:
      outputs.append(proc.communicate(timeout=timeout_s))
  except subprocess.TimeoutExpired:
    for proc in procs:
      proc.kill()
    for proc in procs:
      proc.communicate()
    pytest.fail(f"the {n} processes did not finish within {timeout_s} s")
  for proc, (out, err) in zip(procs, outputs):
    assert proc.returncode == 0, f"process exited with {proc.returncode}:\n{out}\n{err[-3000:]}"
  return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


@pytest.fixture
def run_local_processes():
  """``run_local_processes(command, n, timeout_s) -> [report, ...]``: see
  :func:`_run_local_processes`."""
  return _run_local_processes
