"""Q5: messages and message sizes of each distributed paradigm, measured from compiled programs.

  python experiments/q5_distributed.py --n 8 --p 4096 --out runs/q5

The same study runs in the default report (`jaxopt-hw run`) from configs/hw2_q5.toml. Library use:

  from jaxopt_hw.distributed import accounting
  accounting.measure("ring_allreduce", n=8, p=4096)
  # -> MessageCount(messages=112, message_size=512, ...)
"""

import argparse

from jaxopt_hw.platform import configure


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--n", type=int, default=4, help="workers")
  parser.add_argument("--p", type=int, default=1_000_000, help="parameters (gradient entries)")
  parser.add_argument("--dtype", default="float32")
  parser.add_argument(
    "--out", default=None, help="folder for the figure (default: a temporary one)"
  )
  args = parser.parse_args()
  configure()  # 16 emulated CPU devices, before JAX starts

  from jaxopt_hw.runner import run_study

  result = run_study("q5", {"n": args.n, "p": args.p, "dtype": args.dtype}, args.out)
  print(result.markdown)


if __name__ == "__main__":
  main()
