"""Optimizers on real digits: an MLP and a small CNN, every optimizer over learning rates × seeds.

  python experiments/network_study.py --out runs/network
  python experiments/network_study.py --models mlp --optimizers sgd adamw --epochs 20 --seeds 5

The same study runs with `jaxopt-hw run configs/network_study.toml`. Library use (any nnx model):

  import optax
  from jaxopt_hw import datasets, grids, models, problems, sweep

  train, test = datasets.digits()
  problem = problems.classification(models.MLP, train, test, batch_size=32,
                                    model_args=((64, 64, 10),))
  r = sweep(problem, optax.adamw, hyperparams=grids.product(learning_rate=[1e-3, 3e-3, 1e-2]),
            steps=400, seeds=[0, 1, 2])
  r.metrics["accuracy"][..., -1]     # (3 learning rates, 3 seeds): final test accuracy
"""

import argparse

from jaxopt_hw.platform import configure


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--models", nargs="+", default=None, help="mlp and/or cnn")
  parser.add_argument(
    "--optimizers", nargs="+", default=None, help="names from NETWORK_OPTIMIZERS (default: all)"
  )
  parser.add_argument("--seeds", type=int, default=None)
  parser.add_argument("--epochs", type=int, default=None)
  parser.add_argument("--grid-points", type=int, default=None, help="learning rates per optimizer")
  parser.add_argument(
    "--out", default=None, help="folder for the PNG figures (default: a temporary one)"
  )
  args = parser.parse_args()
  configure()

  from jaxopt_hw.runner import run_study

  settings = {
    key: value
    for key, value in {
      "models": args.models,
      "optimizers": args.optimizers,
      "seeds": args.seeds,
      "epochs": args.epochs,
      "grid_points": args.grid_points,
    }.items()
    if value is not None
  }
  print(run_study("network", settings, args.out).markdown)


if __name__ == "__main__":
  main()
