"""Multi-host with the same code: a sweep sharded over the devices of two processes (JAX's own
runtime, Gloo over TCP on 127.0.0.1) gives every process the results of the one-device run."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import optax
import pytest

from jaxopt_hw import problems
from jaxopt_hw.engine import sweep

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 90


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_a_sweep_over_two_processes_equals_the_one_device_run():
  port = free_port()
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
  worker = str(ROOT / "tests" / "multihost_sweep_worker.py")
  procs = [
    subprocess.Popen(
      [sys.executable, worker, "--coordinator", f"127.0.0.1:{port}", "--process-id", str(i)],
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
      env=env,
      cwd=ROOT,
    )
    for i in range(2)
  ]
  outputs = []
  try:
    for proc in procs:
      outputs.append(proc.communicate(timeout=TIMEOUT_S))
  except subprocess.TimeoutExpired:
    for proc in procs:
      proc.kill()
    for proc in procs:
      proc.communicate()
    pytest.fail(f"the two processes did not finish within {TIMEOUT_S} s")
  for proc, (out, err) in zip(procs, outputs):
    assert proc.returncode == 0, f"process exited with {proc.returncode}:\n{out}\n{err[-3000:]}"
  reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
  assert sorted(r["process"] for r in reports) == [0, 1]
  # the reference: the same sweep in this process, on one device
  one = sweep(
    problems.homework_problem(init_scale=1.0),
    optax.sgd,
    [0.1, 0.5, 1.05],
    seeds=[0, 1, 2],
    steps=200,
    log_points=5,
    dtype=np.float64,
    progress=False,
  )
  for r in reports:
    assert r["devices"] == 4 and r["num_devices"] == 4
    np.testing.assert_array_equal(np.asarray(r["params"]), np.asarray(one.params))
    np.testing.assert_array_equal(np.asarray(r["losses"]), np.asarray(one.losses))
    np.testing.assert_array_equal(np.asarray(r["diverged_at"]), np.asarray(one.diverged_at))
  assert np.asarray(one.diverged_at)[2].min() > 0  # α = 1.05 diverges: the flag crossed hosts too
