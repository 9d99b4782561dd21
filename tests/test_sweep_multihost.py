"""Multi-host with the same code: a sweep sharded over the devices of two processes (JAX's own
runtime, Gloo over TCP on 127.0.0.1) gives every process the results of the one-device run, for a
full-batch problem and for one in mini-batches (whose epoch orders each device draws itself)."""

from pathlib import Path

import numpy as np
import optax
from multihost_sweep_worker import SWEEP, minibatch_problem

from jaxopt_hw import problems
from jaxopt_hw.engine import sweep

WORKER = str(Path(__file__).resolve().parent / "multihost_sweep_worker.py")
TIMEOUT_S = 90


def test_a_sweep_over_two_processes_equals_the_one_device_run(run_local_processes):
  def command(coordinator, i):
    return [WORKER, "--coordinator", coordinator, "--process-id", str(i)]

  reports = run_local_processes(command, 2, TIMEOUT_S)
  assert sorted(r["process"] for r in reports) == [0, 1]
  # the reference: the same sweep in this process, on one device
  one = sweep(problems.homework_problem(init_scale=1.0), optax.sgd, **SWEEP)
  for r in reports:
    assert r["devices"] == 4 and r["num_devices"] == 4
    np.testing.assert_array_equal(np.asarray(r["params"]), np.asarray(one.params))
    np.testing.assert_array_equal(np.asarray(r["losses"]), np.asarray(one.losses))
    np.testing.assert_array_equal(np.asarray(r["diverged_at"]), np.asarray(one.diverged_at))
  assert np.asarray(one.diverged_at)[2].min() > 0  # α = 1.05 diverges: the flag crossed hosts too
  minibatch = sweep(minibatch_problem(), optax.sgd, **SWEEP)
  for r in reports:
    np.testing.assert_array_equal(np.asarray(r["minibatch_params"]), np.asarray(minibatch.params))
    np.testing.assert_array_equal(np.asarray(r["minibatch_losses"]), np.asarray(minibatch.losses))
  # the three seeds of α = 0.1 trained on orders of their own (not, say, one device's)
  assert len(set(np.asarray(minibatch.losses)[0, :, -1].tolist())) == 3
