"""Q1: steepest descent under a norm — the closed forms, the optax transform, and the study.

  python experiments/q1_steepest_descent.py                    # demo + the full Q1 study
  python experiments/q1_steepest_descent.py --trials 8 --norms linf l2 --out runs/q1

The same study runs in the default report (`jaxopt-hw run`) from configs/hw2_q1.toml. Library use:

  from jaxopt_hw import duality
  duality.penalty_step(g, alpha, "linf")    # −(α/2)·‖g‖₁·sign(g), the answer to Q1(b)
  from jaxopt_hw.transforms import steepest_descent
  tx = optax.chain(
    optax.clip_by_global_norm(1.0),
    steepest_descent(0.1, "spectral", form="ball", non_matrix="l2"),
  )
"""

import argparse
import sys

from jaxopt_hw.errors import UserInputError
from jaxopt_hw.platform import configure


def demo() -> None:
  """The homework's two questions by hand, then one rule used as an optax optimizer."""
  import jax
  import jax.numpy as jnp
  import optax

  from jaxopt_hw import duality
  from jaxopt_hw.transforms import steepest_descent

  g = jnp.array([0.5, -2.0, 1.0], jnp.float64)
  alpha = 0.1
  print(f"g = {g.tolist()}, α = {alpha}")
  for name in ("l2", "linf"):  # Q1(a) and Q1(b)
    norm = duality.get_norm(name)
    u = duality.penalty_step(g, alpha, norm)
    value = float(duality.penalty_objective(g, u, alpha, norm))
    print(
      f"  {name:>4}: u = {u.tolist()}  objective {value:.6f} = −(α/4)‖g‖*² = "
      f"{float(duality.penalty_optimum(g, alpha, norm)):.6f}"
    )
  sol = duality.unsquared_penalty_step(g, alpha, "linf")
  print(
    f"  un-squared ℓ∞ penalty: ‖g‖₁ = {float(jnp.abs(g).sum())} vs 1/α = {1 / alpha}: "
    f"{'minimiser Δ = 0' if bool(sol.has_minimiser) else 'no minimiser (unbounded below)'}"
  )

  # The same rule as an optax transform, in a chain with clipping and a schedule, on a least-squares
  # problem; the update is the step itself, applied with optax.apply_updates.
  key_a, key_b = jax.random.split(jax.random.key(0))
  A = jax.random.normal(key_a, (20, 5), jnp.float64)
  b = jax.random.normal(key_b, (20,), jnp.float64)
  loss = lambda w: 0.5 * jnp.mean((A @ w - b) ** 2)
  for name in ("l2", "linf", "l1"):
    tx = optax.chain(
      optax.clip_by_global_norm(10.0), steepest_descent(optax.exponential_decay(0.5, 50, 0.5), name)
    )
    w = jnp.zeros(5, jnp.float64)
    state = tx.init(w)

    @jax.jit
    def step(w, state, tx=tx):
      updates, state = tx.update(jax.grad(loss)(w), state, w)
      return optax.apply_updates(w, updates), state

    for _ in range(200):
      w, state = step(w, state)
    print(f"  steepest descent ({name}, penalty form), 200 steps: loss {float(loss(w)):.6f}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--trials", type=int, default=None, help="random gradients per (norm, dimension, α)"
  )
  parser.add_argument("--norms", nargs="+", default=None, help="norms to study (default: all)")
  parser.add_argument("--seed", type=int, default=None)
  parser.add_argument("--no-demo", action="store_true", help="only run the study")
  parser.add_argument("--out", default=None, help="folder for outputs (default: a temporary one)")
  args = parser.parse_args()
  configure()  # float64 for the reference computations

  if not args.no_demo:
    demo()
  from jaxopt_hw.runner import run_study

  settings = {
    k: v
    for k, v in {"trials": args.trials, "norms": args.norms, "seed": args.seed}.items()
    if v is not None
  }
  try:
    print(run_study("q1", settings, args.out).markdown)
  except UserInputError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  main()
