r"""Q2: where SGD, simplified Adam and rescaled-feature SGD converge on (1 − aᵀθ)², θ₀ = 0.

  python experiments/q2_convergence.py --out runs/q2
  python experiments/q2_convergence.py --adam-schedule exponential --adam-learning-rate 1 \
    --no-step-size-map

The same study runs in the default report (`jaxopt-hw run`) from configs/hw2_q2.toml. Library use:

  import optax, jax.numpy as jnp
  from jaxopt_hw import problems, sweep, testing
  from jaxopt_hw.transforms.simplified_adam import simplified_adam

  r = sweep(problems.homework_problem(), lambda lr: simplified_adam(lambda t: lr / (t + 1)),
            [0.25, 0.5, 1.0], steps=200_000, dtype=jnp.float64)
  testing.assert_converged_to(r, [1 / 1.11] * 3, atol=1e-5)
"""

import argparse

from jaxopt_hw.platform import configure


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--a", type=float, nargs="+", default=None, help="the training point (default: 1 0.1 0.01)"
  )
  parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
  parser.add_argument("--sgd-learning-rate", type=float, default=None)
  parser.add_argument(
    "--adam-schedule", default=None, help="constant, harmonic, inverse_sqrt or exponential"
  )
  parser.add_argument("--adam-learning-rate", type=float, default=None)
  parser.add_argument("--rescaled-learning-rate", type=float, default=None)
  parser.add_argument("--no-step-size-map", action="store_true", help="skip the step-size map")
  parser.add_argument(
    "--out", default=None, help="folder for the PNG figures (default: a temporary one)"
  )
  args = parser.parse_args()
  configure()

  from jaxopt_hw.runner import run_study

  settings: dict = {"dtype": args.dtype}
  if args.a is not None:
    settings["a"] = args.a
  if args.sgd_learning_rate is not None:
    settings["sgd"] = {"learning_rate": args.sgd_learning_rate}
  adam = {
    k: v
    for k, v in (("schedule", args.adam_schedule), ("learning_rate", args.adam_learning_rate))
    if v is not None
  }
  if adam:
    settings["simplified_adam"] = adam
  if args.rescaled_learning_rate is not None:
    settings["rescaled_sgd"] = {"learning_rate": args.rescaled_learning_rate}
  if args.no_step_size_map:
    settings["step_size_map"] = {"enabled": False}
  print(run_study("q2", settings, args.out).markdown)


if __name__ == "__main__":
  main()
