"""Benchmarks run by `jaxopt-hw bench NAME`; each module defines ``main(argv) -> int``.

They print ratios measured within one run (absolute times on shared machines are noise); the
figures recorded in BENCHMARKS.md come from these commands. The test suite only smoke-tests them.
"""

BENCHMARKS = {
  "sweep": (
    "jaxopt_hw.bench.sweep",
    "compiled sweep vs a bare jit(vmap(scan)), a per-configuration loop and NumPy; memory",
  ),
  "network": (
    "jaxopt_hw.bench.network",
    "many small networks trained at once vs one after another vs a Python step loop",
  ),
  "collectives": (
    "jaxopt_hw.bench.collectives",
    "time and bytes per aggregation for each distributed paradigm",
  ),
  "optimizers": (
    "jaxopt_hw.bench.optimizers",
    "Newton–Schulz presets vs the SVD by size; one jaxopt_hw.muon step vs optax.contrib.muon",
  ),
}
