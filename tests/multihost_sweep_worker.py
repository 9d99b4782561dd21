"""One process of tests/test_sweep_multihost.py: join a 2-process JAX runtime (2 CPU devices each),
run two sweeps sharded over all 4 devices (the homework's full-batch problem, and least squares in
mini-batches), print their results as one JSON line."""

import argparse
import json

import jax

#: The sweep each process runs over the devices of both, and the test runs on one device.
SWEEP = {
  "learning_rates": [0.1, 0.5, 1.05],
  "seeds": [0, 1, 2],
  "steps": 200,
  "log_points": 5,
  "dtype": "float64",
  "progress": False,
}


def minibatch_problem():
  """Least squares on 37 random examples in mini-batches of 4: each grid point draws its epoch
  orders inside the program (a cycle walk over a domain of 64), nine epochs in SWEEP's steps."""
  import dataclasses

  import numpy as np

  from jaxopt_hw import problems

  rng = np.random.default_rng(0)
  X = rng.normal(size=(37, 5))
  y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=37)
  return dataclasses.replace(problems.least_squares(X, y), batch_size=4)


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--coordinator", required=True)
  parser.add_argument("--process-id", type=int, required=True)
  args = parser.parse_args()
  jax.config.update("jax_num_cpu_devices", 2)
  jax.config.update("jax_enable_x64", True)
  jax.distributed.initialize(
    args.coordinator, num_processes=2, process_id=args.process_id, initialization_timeout=50
  )
  import numpy as np
  import optax

  from jaxopt_hw import problems
  from jaxopt_hw.engine import sweep

  # over the 4 devices of both processes
  r = sweep(problems.homework_problem(init_scale=1.0), optax.sgd, devices=jax.devices(), **SWEEP)
  m = sweep(minibatch_problem(), optax.sgd, devices=jax.devices(), **SWEEP)
  print(
    json.dumps(
      {
        "process": jax.process_index(),
        "devices": jax.device_count(),
        "num_devices": r.num_devices,
        "params": np.asarray(r.params).tolist(),
        "losses": np.asarray(r.losses).tolist(),
        "diverged_at": np.asarray(r.diverged_at).tolist(),
        "minibatch_params": np.asarray(m.params).tolist(),
        "minibatch_losses": np.asarray(m.losses).tolist(),
      }
    )
  )
  jax.distributed.shutdown()


if __name__ == "__main__":
  main()
