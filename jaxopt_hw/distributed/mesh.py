"""Meshes of workers (and a server) with errors a user can act on.

Paradigms run on a one-dimensional mesh whose axis is named ``axis_name`` (default ``"workers"``).
The parameter server needs one device more than it has workers: device n is the server.
On a machine with one CPU, JAX can emulate several devices; :func:`require_devices` says how when
there are too few.
"""

from __future__ import annotations

import jax
import numpy as np

from jaxopt_hw.errors import UserInputError

#: The mesh axis the paradigms communicate over unless told otherwise.
AXIS = "workers"

EMULATION_HINT = (
  "on CPU, emulate more devices with jax.config.update('jax_num_cpu_devices', N) or "
  "XLA_FLAGS=--xla_force_host_platform_device_count=N, set before JAX creates its first device "
  "(the jaxopt-hw CLI emulates 16)"
)


def check_workers(n, field: str = "n") -> int:
  """``n`` as an int >= 1, or a :class:`UserInputError` naming ``field``."""
  if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
    raise UserInputError(
      f"{field}: {n!r} is not a valid number of workers; allowed: an integer >= 1"
    )
  return int(n)


def pick_devices(needed: int, default: list, cpu: list) -> list:
  """The default backend's devices when there are ``needed`` of them, else the (emulated) CPU
  devices when there are enough of those, else the default ones (and the caller reports too few).

  So on a machine with one GPU, 4 workers run on 4 emulated CPU devices instead of failing.
  """
  if len(default) >= needed or len(cpu) < needed:
    return default
  return cpu


def require_devices(needed: int, *, what: str, field: str = "n", devices=None) -> list:
  """The first ``needed`` devices, or a one-line :class:`UserInputError` that says how to get more.

  Without ``devices``, the default backend's devices are used when there are enough, else the CPU
  devices (see :func:`pick_devices`).
  """
  if devices is None:
    try:
      cpu = jax.devices("cpu")
    except RuntimeError:
      cpu = []
    devices = pick_devices(needed, jax.devices(), cpu)
  devices = list(devices)
  if needed > len(devices):
    kind = devices[0].platform.upper() if devices else "no"
    raise UserInputError(
      f"{field}: {what} need {needed} devices but only {len(devices)} {kind} device(s) exist; "
      f"{EMULATION_HINT}"
    )
  return devices[:needed]


def make_mesh(
  num_devices: int,
  axis_name: str = AXIS,
  *,
  devices=None,
  what: str | None = None,
  field: str = "n",
) -> jax.sharding.Mesh:
  """A 1-D mesh of ``num_devices`` devices with an ``Auto`` axis named ``axis_name``.

  ``Auto`` is given explicitly because since JAX 0.10 :func:`jax.make_mesh` defaults to explicit
  axes, which changes how un-annotated arrays are sharded.
  """
  chosen = require_devices(
    num_devices, what=what or f"{num_devices} devices", field=field, devices=devices
  )
  return jax.sharding.Mesh(np.array(chosen), (axis_name,), axis_types=(jax.sharding.AxisType.Auto,))


def worker_mesh(
  n: int, *, server: bool = False, axis_name: str = AXIS, devices=None
) -> jax.sharding.Mesh:
  """A mesh of ``n`` workers, plus one server device (the last) when ``server`` is true."""
  n = check_workers(n)
  what = f"{n} workers and a parameter server" if server else f"{n} workers"
  return make_mesh(n + 1 if server else n, axis_name, devices=devices, what=what)
