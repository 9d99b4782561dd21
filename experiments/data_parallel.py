r"""Data-parallel training of a flax MLP with each aggregation paradigm, compared with one device.

  python experiments/data_parallel.py --n 4 --steps 200 --optimizer adam --learning-rate 0.01 \
    --out runs/dp

Library use:

  from jaxopt_hw.distributed import data_parallel as dp
  result = dp.train_data_parallel(
    model, x, y, optax.sgd(0.1), paradigm="ring_allreduce", n=4, steps=100
  )
"""

import argparse

from jaxopt_hw.platform import configure


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--n", type=int, default=4, help="workers")
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--optimizer", default="sgd", help="sgd, adam or steepest")
  parser.add_argument("--norm", default="l2", help="norm of steepest descent")
  parser.add_argument("--learning-rate", type=float, default=0.1)
  parser.add_argument(
    "--out", default=None, help="folder for the loss-curve PNG (default: a temporary one)"
  )
  args = parser.parse_args()
  configure()  # 16 emulated CPU devices, before JAX starts

  from jaxopt_hw.runner import run_study

  settings = {
    "n": args.n,
    "steps": args.steps,
    "optimizer": args.optimizer,
    "norm": args.norm,
    "learning_rate": args.learning_rate,
  }
  print(run_study("data_parallel", settings, args.out).markdown)


if __name__ == "__main__":
  main()
