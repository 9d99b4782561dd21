"""Implicit bias: where SGD, simplified Adam and rescaled SGD land on over-parameterised least
squares.

  python experiments/implicit_bias.py --n 8 --d 64 --seeds 32 --out runs/implicit_bias

The same study runs with `jaxopt-hw run configs/implicit_bias.toml`. Library use:

  import optax, jax.numpy as jnp
  from jaxopt_hw import problems, sweep

  batch = problems.random_overparameterized(range(32), n=8, d=64)     # one instance per seed
  r = sweep(batch, optax.sgd, [1.0], steps=4000, batched_data=True, dtype=jnp.float64)
  # where r.params[0, 0, 0] lands:
  problems.min_norm_interpolant(batch.data["X"][0], batch.data["y"][0])
"""

import argparse

from jaxopt_hw.platform import configure


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--n", type=int, default=8, help="examples")
  parser.add_argument("--d", type=int, default=64, help="parameters (> n)")
  parser.add_argument("--seeds", type=int, default=32, help="random problems, all swept at once")
  parser.add_argument(
    "--scale-min", type=float, default=0.01, help="smallest feature scale (the largest is 1)"
  )
  parser.add_argument(
    "--adam-schedule", default="harmonic", help="harmonic, inverse_sqrt, exponential or constant"
  )
  parser.add_argument("--adam-steps", type=int, default=20000)
  parser.add_argument(
    "--out", default=None, help="folder for the PNG figure (default: a temporary one)"
  )
  args = parser.parse_args()
  configure()

  from jaxopt_hw.runner import run_study

  settings = {
    "n": args.n,
    "d": args.d,
    "seeds": args.seeds,
    "scale_min": args.scale_min,
    "adam_schedule": args.adam_schedule,
    "adam_steps": args.adam_steps,
  }
  print(run_study("implicit_bias", settings, args.out).markdown)


if __name__ == "__main__":
  main()
