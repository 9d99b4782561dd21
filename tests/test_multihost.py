"""Two local processes, 4 emulated CPU devices each, one 8-device mesh across them (Gloo over TCP):
ring all-reduce (and the other paradigms) equal pmean and the float64 mean across the processes."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 60


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_agree_with_pmean_across_hosts():
  port = free_port()
  env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
  cmd = [
    sys.executable,
    "-m",
    "jaxopt_hw.distributed.multihost",
    "--coordinator",
    f"127.0.0.1:{port}",
    "--num-processes",
    "2",
    "--local-devices",
    "4",
    "--p",
    "1001",
    "--timeout",
    str(TIMEOUT_S - 10),
  ]
  procs = [
    subprocess.Popen(
      cmd + ["--process-id", str(i)],
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
  assert sorted(r["process_id"] for r in reports) == [0, 1]
  seen = {}
  for r in reports:
    assert (r["process_count"], r["devices"], r["local_devices"]) == (2, 8, 4)
    for name, result in r["paradigms"].items():
      assert result["max_diff_vs_pmean"] < 1e-5 and result["max_diff_vs_mean64"] < 1e-5, (
        name,
        result,
      )
      seen.setdefault(name, set()).update(result["local_workers"])
  # Each process computed its own workers' rows; together they cover every worker of the ring.
  assert seen["ring_allreduce"] == set(range(8))
  assert seen["parameter_server"] == set(range(7))  # 7 workers + the server on device 8
  assert all(r["ok"] for r in reports)
