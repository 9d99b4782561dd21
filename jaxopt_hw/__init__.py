"""jaxopt_hw: optimizers in JAX, from a graduate homework to reusable, tested, accelerated code."""

__version__ = "0.1.0"
