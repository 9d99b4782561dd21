"""One process of tests/test_sweep_multihost.py: join a 2-process JAX runtime (2 CPU devices each),
run one sweep sharded over all 4 devices, print its results as one JSON line."""

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
  print(
    json.dumps(
      {
        "process": jax.process_index(),
        "devices": jax.device_count(),
        "num_devices": r.num_devices,
        "params": np.asarray(r.params).tolist(),
        "losses": np.asarray(r.losses).tolist(),
        "diverged_at": np.asarray(r.diverged_at).tolist(),
      }
    )
  )
  jax.distributed.shutdown()


if __name__ == "__main__":
  main()
