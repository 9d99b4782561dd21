"""Print the Polar Express Newton–Schulz schedule and every preset's bound on max|σᵢ − 1|.

The coefficients are computed, not typed in: :func:`jaxopt_hw.polar.polar_express_coefficients`
builds each step as the odd quintic that is best in the minimax sense on the interval the previous
steps left the singular values in (Amsel et al. 2025, arXiv:2505.16932), by the Remez exchange
algorithm in float64. The bounds are exact interval images (:func:`jaxopt_hw.polar.schedule_bound`)
for singular values σ/‖G‖_F in [1e-3, 1].

    python experiments/polar_express_coefficients.py [--steps 8]
"""

from __future__ import annotations

import argparse

from jaxopt_hw import polar


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=8)
  args = parser.parse_args()
  table = polar.polar_express_coefficients(args.steps)
  print(f"Polar Express, designed on [{polar.POLAR_EXPRESS_LOWER}, 1]:")
  print("step           a                  b                  c          max|σ − 1| after")
  for t, (a, b, c) in enumerate(table, start=1):
    lo, hi = polar.schedule_bound(table[:t], polar.POLAR_EXPRESS_LOWER)
    print(f"{t:4d}  {a:18.12f} {b:18.12f} {c:18.12f}   {max(1 - lo, hi - 1):.3e}")
  print("\nmax|σ − 1| over σ/‖G‖_F in [1e-3, 1]:")
  for preset in ("jordan", "cubic", "dion", "polar_express"):
    bounds = []
    for k in (5, 8, 30):
      lo, hi = polar.schedule_bound(polar.coefficient_schedule(preset, k), 1e-3)
      bounds.append(f"{k} steps {max(1 - lo, hi - 1):.2e} (σ in [{lo:.4f}, {hi:.4f}])")
    print(f"  {preset:14s} " + "; ".join(bounds))


if __name__ == "__main__":
  main()
