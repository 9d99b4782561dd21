"""Process-wide JAX settings shared by the CLI and the test suite.

They must be applied before JAX creates its first device, which is why the CLI and
``tests/conftest.py`` call :func:`configure` first thing.
"""

from __future__ import annotations

import os

#: CPU devices to emulate: the parameter server of Q5 needs n workers + 1 server, n up to 8.
EMULATED_CPU_DEVICES = 16


def configure(cpu_devices: int = EMULATED_CPU_DEVICES, enable_x64: bool = True) -> None:
  """Enable float64 and emulate ``cpu_devices`` CPU devices.

  float64 is needed for reference computations; every library function takes its dtype from its
  inputs, so enabling it changes no result computed in float32 or bfloat16. The device count only
  affects the CPU backend; an accelerator, if present, stays the default device. A count already
  given through ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` is respected.
  """
  import jax

  jax.config.update("jax_enable_x64", enable_x64)
  if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    try:
      jax.config.update("jax_num_cpu_devices", cpu_devices)
    except RuntimeError:
      # The CPU backend already exists (JAX was used before us): keep what it has.
      pass


def device_summary() -> dict:
  """The versions and the device this process computes on, for ``results.json``."""
  import jax
  import jaxlib

  device = jax.devices()[0]
  return {
    "jax_version": jax.__version__,
    "jaxlib_version": jaxlib.__version__,
    "backend": jax.default_backend(),
    "device_kind": device.device_kind,
    "device_count": jax.device_count(),
    "cpu_device_count": len(jax.devices("cpu")),
  }
