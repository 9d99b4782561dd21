"""Messages and bytes read off a compiled program's collectives.

The homework asks, per paradigm, how many messages one iteration sends and how large each is. Here
those numbers are *measured*: the paradigm is compiled (``jax.jit(f).lower(...).compile()``), the
HLO text of the compiled module is parsed, and every collective in it is turned into messages with
the rules below. :func:`count_messages` works on any HLO text; :func:`measure` compiles one paradigm
and returns a :class:`MessageCount`.

What one HLO collective means in messages
-----------------------------------------
Sizes are in elements ("parameters") of the operand's type; bytes are elements × the type's size.
A group is one entry of ``replica_groups`` (``{{0,1,2,3}}``, the iota form ``[G,M]<=[N]`` or
``[G,M]<=[a,b]T(1,0)``, the mesh-axes form ``mesh['a'=2,'b'=4] {'b'}`` of newer XLA, or ``{}`` =
all ``replica_count × num_partitions`` devices); m is its size.

* ``collective-permute``: each source-target pair with source ≠ target is one message of the
  operand's size, sent by the source. (A pair i → i is a local copy: no message.) This is the only
  rule that needs no model: point-to-point is what the instruction says.
* ``all-gather``: per group, every member sends its shard (the operand) directly to the m − 1
  others: m(m − 1) messages of the shard size (direct-send model).
* ``reduce-scatter``: per group, every member sends to each other member the block that member owns:
  m(m − 1) messages of size S/m (the result's size), S = the operand's size (direct-send model).
* ``all-to-all``: per group, every member sends block j of its operand to member j ≠ itself:
  m(m − 1) messages of size S/m.
* ``all-reduce``: counted as a reduce-scatter followed by an all-gather, i.e. 2m(m − 1) messages of
  ceil(S/m) entries, each member sending 2(m − 1)·ceil(S/m) entries. This is the bandwidth-optimal
  way (what a ring or NCCL's large-message algorithm sends, and what the two rules above give when
  composed). It is a *model*: an ``all-reduce`` instruction does not say which algorithm the runtime
  uses (XLA:CPU, within one process, adds through shared memory), so for ``pmean`` the bytes
  reported are the optimum by construction, not an observation.
* ``collective-broadcast``: the group's first member sends the operand to the m − 1 others.
* Several operands in one collective (a combined collective) travel together: their sizes add up.
* Asynchronous pairs (``all-reduce-start`` / ``all-reduce-done``, ``collective-permute-start`` /
  ``-done``, …, as on GPU) count once, at the ``-start``; ``-done`` and ``-update`` carry no data.
  A generic ``async-start`` counts the collective in the computation it ``calls``.
* Loops: a collective in the body of a ``while`` whose ``backend_config`` has
  ``"known_trip_count":{"n":"K"}`` counts K times (its condition K + 1 times); nested loops
  multiply. A loop without a known trip count is counted once and the result is marked not
  ``exact``. XLA may unroll a loop or not; either way the counts are the same.
* ``conditional``: only one branch runs; the branch that sends the most messages is counted and the
  result is marked not ``exact``. Calls (``call``, ``fusion``, ``to_apply``, …) count once per call.
* ``send``/``recv`` (what XLA:GPU's collective-permute decomposer turns a permute in a loop into):
  each pair of the send's ``_xla_send_recv_source_target_pairs`` frontend attribute is one message
  of the send's data operand; ``recv``, ``send-done`` and ``recv-done`` carry no count of their
  own. A send without that attribute counts one message from an unknown device (not ``exact``); host
  transfers (``is_host_transfer=true``) are not device-to-device messages and are skipped.

The text is read by :mod:`hlo` (one instruction per line, as XLA prints it with
``compiled.as_text()``).

A message is attributed to the device that sends it (its index in the mesh: partition id, or
replica id for replica-based programs), which gives the bytes each device sends.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxopt_hw.distributed import hlo
from jaxopt_hw.distributed import paradigms as agg
from jaxopt_hw.distributed.mesh import AXIS, check_workers
from jaxopt_hw.distributed.parameter_server import parameter_server_update
from jaxopt_hw.distributed.ring import ring_allreduce_mean
from jaxopt_hw.errors import UserInputError

# ---------------------------------------------------------------------------------------------
# Collectives -> messages.

#: Opcodes that move data between devices (synchronous form; ``<kind>-start`` is the async form).
COLLECTIVES = (
  "collective-permute",
  "all-gather",
  "reduce-scatter",
  "all-to-all",
  "all-reduce",
  "collective-broadcast",
)


@dataclasses.dataclass(frozen=True)
class Collective:
  """One collective instruction, as messages per execution."""

  kind: str  # e.g. "collective-permute" (the -start of an async pair is reported as its kind)
  name: str  # the instruction's name in the HLO
  computation: str
  messages: int  # messages one execution sends
  message_size: int  # elements per message
  message_bytes: int
  senders: tuple[tuple[int, int], ...]  # (device, messages it sends per execution)
  times: int = 1  # executions per run of the program (loop trip counts multiplied)


def _collective(
  instruction: hlo.Instruction, kind: str, computation: str, module: hlo.Module
) -> Collective:
  operand_shapes = hlo.operand_shapes(instruction, module)
  if kind in ("collective-permute", "send"):
    # Only the first operand is data (the in-place permute adds buffers and offsets; send a token).
    data = operand_shapes[:1]
  else:
    data = operand_shapes
  size = sum(s.elements for s in data)
  nbytes = sum(s.bytes for s in data)
  senders: dict[int, int] = {}

  def send(device, count):
    senders[device] = senders.get(device, 0) + count

  unattributed = 0
  if kind in ("collective-permute", "send"):
    if kind == "send":
      pairs = hlo.send_recv_pairs(instruction)
    else:
      pairs = hlo.source_target_pairs(instruction)
    if pairs is None:
      unattributed = 1
    else:
      for source, target in (p for p in pairs if len(p) == 2):
        if source != target:
          send(source, 1)
    message_size, message_bytes = size, nbytes
  else:
    groups = hlo.parse_replica_groups(
      hlo.attribute(instruction.attributes, "replica_groups"), module.num_devices
    )
    m = len(groups[0])
    # One block of each operand array per member (ceil: a ragged last block travels padded).
    block = sum(-(-e // m) for s in data for _, e in s.arrays)
    block_bytes = sum(-(-e // m) * hlo.itemsize(t) for s in data for t, e in s.arrays)
    if kind == "all-to-all" and len(data) > 1:
      # The tuple form: operand j is the block for member j.
      block, block_bytes = max(s.elements for s in data), max(s.bytes for s in data)
    if kind == "all-gather":
      message_size, message_bytes, per_member = size, nbytes, m - 1
    elif kind in ("reduce-scatter", "all-to-all"):
      message_size, message_bytes, per_member = block, block_bytes, m - 1
    elif kind == "all-reduce":
      message_size, message_bytes, per_member = block, block_bytes, 2 * (m - 1)
    elif kind == "collective-broadcast":
      message_size, message_bytes, per_member = size, nbytes, None
    else:  # pragma: no cover - COLLECTIVES is closed
      raise ValueError(kind)
    for group in groups:
      if per_member is None:
        if len(group) > 1:
          send(group[0], len(group) - 1)
      elif per_member > 0:
        for device in group:
          send(device, per_member)
  return Collective(
    kind=kind,
    name=instruction.name,
    computation=computation,
    messages=sum(senders.values()) + unattributed,
    message_size=message_size,
    message_bytes=message_bytes,
    senders=tuple(sorted(senders.items())),
  )


def _kind(opcode: str) -> tuple[str | None, bool]:
  """(collective kind or None, whether the instruction carries no data of its own)."""
  if opcode in COLLECTIVES or opcode == "send":
    return opcode, False
  if opcode == "recv":
    return None, True
  if opcode.endswith("-start") and opcode[: -len("-start")] in COLLECTIVES:
    return opcode[: -len("-start")], False
  if opcode.endswith("-done") or opcode.endswith("-update"):
    return None, True
  return None, False


@dataclasses.dataclass(frozen=True)
class Traffic:
  """All collectives of a program, each with how many times one run executes it."""

  collectives: tuple[Collective, ...]
  exact: bool
  notes: tuple[str, ...] = ()

  @property
  def messages(self) -> int:
    return sum(c.messages * c.times for c in self.collectives)

  @property
  def bytes_total(self) -> int:
    return sum(c.messages * c.times * c.message_bytes for c in self.collectives)

  def message_sizes(self) -> dict[int, int]:
    """Message size (elements) -> number of messages of that size."""
    sizes: dict[int, int] = {}
    for c in self.collectives:
      if c.messages:
        sizes[c.message_size] = sizes.get(c.message_size, 0) + c.messages * c.times
    return dict(sorted(sizes.items()))

  def bytes_sent(self) -> dict[int, int]:
    """Device -> bytes it sends in one run."""
    sent: dict[int, int] = {}
    for c in self.collectives:
      for device, count in c.senders:
        sent[device] = sent.get(device, 0) + count * c.times * c.message_bytes
    return dict(sorted(sent.items()))


def count_messages(hlo_text: str) -> Traffic:
  """The messages of every collective in an HLO module, following the rules of this module."""
  module = hlo.parse_module(hlo_text)
  notes: list[str] = []

  @functools.cache
  def inside(computation: str) -> tuple[tuple[Collective, int], ...]:
    found: list[tuple[Collective, int]] = []
    for instruction in module.computations.get(computation, []):
      kind, no_data = _kind(instruction.opcode)
      if no_data or (
        kind == "send" and re.search(r"is_host_transfer=true", instruction.attributes)
      ):
        continue
      if kind is not None:
        collective = _collective(instruction, kind, computation, module)
        if kind == "send" and not collective.senders:
          notes.append(
            f"send {instruction.name!r} has no source-target pairs; "
            "counted as one message from an unknown device"
          )
        found.append((collective, 1))
        continue
      callees = hlo.callees(instruction)
      if instruction.opcode == "while":
        trips = hlo.known_trip_count(instruction)
        if trips is None:
          trips = 1
          notes.append(
            f"while {instruction.name!r} has no known trip count; its body is counted once"
          )
        for role, name in callees:
          scale = trips if role == "body" else trips + 1 if role == "condition" else 1
          found.extend((c, t * scale) for c, t in inside(name))
      elif instruction.opcode == "conditional":
        branches = [inside(name) for _, name in callees]
        heaviest = max(branches, key=lambda b: sum(c.messages * t for c, t in b), default=())
        if any(branches):
          notes.append(
            f"conditional {instruction.name!r}: the branch with the most messages is counted"
          )
        found.extend(heaviest)
      else:
        for _, name in callees:
          found.extend(inside(name))
    return tuple(found)

  collectives = tuple(dataclasses.replace(c, times=t) for c, t in inside(module.entry))
  return Traffic(collectives=collectives, exact=not notes, notes=tuple(notes))


# ---------------------------------------------------------------------------------------------
# The paradigms, measured.

#: Per paradigm, the counts of the homework as formulas in n and p: (messages, message size).
THEORY = {
  "all_to_all": ("n(n-1)", "p"),
  "parameter_server": ("2n", "p"),
  "ring_allreduce": ("2n(n-1)", "p/n"),
  "pmean": ("2n(n-1) (model)", "p/n"),
}


def optimal_bytes_per_worker(n: int, p: int, itemsize: int) -> float:
  """The least any all-reduce among n workers can make each send: 2(n − 1)/n · p · itemsize."""
  return 2 * (n - 1) / n * p * itemsize


@dataclasses.dataclass(frozen=True)
class MessageCount:
  """What one aggregation of a p-entry gradient over n workers sends, read off the compiled
  program."""

  paradigm: str
  n: int
  p: int
  dtype: str
  messages: int  # total messages of one iteration
  message_size: int  # entries per message (the largest, if sizes differ: see message_sizes)
  message_sizes: dict  # entries per message -> number of such messages
  bytes_total: int
  bytes_per_worker: int  # bytes sent by the busiest of the n workers
  bytes_server: int  # bytes sent by the parameter server (0 for the other paradigms)
  optimal_bytes_per_worker: float  # 2(n − 1)/n · p · itemsize
  exact: bool
  collectives: tuple[str, ...]  # one line per collective instruction

  def as_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["message_sizes"] = {str(k): v for k, v in self.message_sizes.items()}
    d["collectives"] = list(self.collectives)
    return d


def _describe(c: Collective) -> str:
  times = f" x{c.times}" if c.times != 1 else ""
  return f"{c.kind} {c.name}{times}: {c.messages} messages of {c.message_size}"


def count_from_text(
  hlo_text: str, paradigm: str, n: int, p: int, dtype: str = "float32"
) -> MessageCount:
  """A :class:`MessageCount` from the HLO text of ``paradigm`` compiled for ``n`` workers."""
  traffic = count_messages(hlo_text)
  sizes = traffic.message_sizes()
  sent = traffic.bytes_sent()
  itemsize = jnp.dtype(dtype).itemsize
  return MessageCount(
    paradigm=paradigm,
    n=n,
    p=p,
    dtype=str(jnp.dtype(dtype)),
    messages=traffic.messages,
    message_size=max(sizes, default=0),
    message_sizes=sizes,
    bytes_total=traffic.bytes_total,
    bytes_per_worker=max((sent.get(w, 0) for w in range(n)), default=0),
    bytes_server=sent.get(n, 0) if paradigm == "parameter_server" else 0,
    optimal_bytes_per_worker=optimal_bytes_per_worker(n, p, itemsize),
    exact=traffic.exact,
    collectives=tuple(_describe(c) for c in traffic.collectives),
  )


def compile_paradigm(
  paradigm: str, n: int, p: int, dtype: str = "float32", *, unroll: bool = False, devices=None
):
  """``(compiled, mesh)``: one iteration of ``paradigm`` on a p-entry vector per device.

  The parameter server is compiled as :func:`parameter_server_update` with ``optax.sgd`` (the
  server updates the weights and sends them back: it takes ``(grads, params)``); the others as
  their mean function (they take the gradients). Every input is ``[devices, p]``, sharded over the
  mesh axis. ``devices`` defaults to ``jax.devices()``.
  """
  agg.check_paradigm(paradigm)
  n = check_workers(n)
  if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
    raise UserInputError(f"p: {p!r} is not a valid number of parameters; allowed: an integer >= 1")
  mesh = agg.mesh_for(paradigm, n, AXIS, devices=devices)
  devices = agg.num_devices(paradigm, n)
  local = jax.ShapeDtypeStruct(
    (devices, int(p)), jnp.dtype(dtype), sharding=NamedSharding(mesh, P(AXIS))
  )

  if paradigm == "parameter_server":
    optimizer = optax.sgd(0.1)

    def per_device(grads, params):
      new_params, _ = parameter_server_update(
        grads[0], params[0], optimizer.init(params[0]), optimizer, AXIS
      )
      return new_params[None]

    fn = jax.shard_map(per_device, mesh=mesh, in_specs=(P(AXIS), P(AXIS)), out_specs=P(AXIS))
    lowered = jax.jit(fn).lower(local, local)
  else:
    mean = agg.mean_fn(paradigm)
    if paradigm == "ring_allreduce":
      mean = functools.partial(ring_allreduce_mean, unroll=unroll)
    fn = jax.shard_map(
      lambda x: mean(x[0], AXIS)[None], mesh=mesh, in_specs=P(AXIS), out_specs=P(AXIS)
    )
    lowered = jax.jit(fn).lower(local)
  return lowered.compile(), mesh


@functools.lru_cache(maxsize=256)
def measure(
  paradigm: str, n: int, p: int, dtype: str = "float32", *, unroll: bool = False
) -> MessageCount:
  """Compile one iteration of ``paradigm`` for ``n`` workers and a p-entry gradient; count its
  messages.

  Needs ``n`` devices (``n + 1`` for the parameter server); nothing is executed, only compiled.

  Example::

    >>> measure("ring_allreduce", 4, 1024).messages      # 2·4·3
    24
  """
  compiled, _ = compile_paradigm(paradigm, n, p, dtype, unroll=unroll)
  return count_from_text(compiled.as_text(), paradigm, n, p, dtype)
