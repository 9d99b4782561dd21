"""Reading compiled HLO text: shapes, instructions, computations and the attributes collectives use.

The input is the text XLA prints for a module (``jax.jit(f).lower(...).compile().as_text()``), or
the same grammar written by hand: a ``HloModule`` header (``replica_count=``, ``num_partitions=``),
then computations (``[ENTRY] %name (...) -> ... {``, one instruction per line, ``}``), each
instruction ``[ROOT] %name = shape opcode(operands), attributes``. What is read:

* shapes (:func:`parse_shape`): arrays, tuples of arrays, dynamic dimensions (``<=8``), and the
  size of every element type (:func:`itemsize`; ``token`` and ``opaque`` have none);
* instructions and computations (:func:`parse_module`): opcode, operands with the shape written
  beside them or known from the instruction that defines them (:func:`operand_shapes`), and the
  attribute text with quoted strings (metadata, op names) blanked, so their contents never look
  like attributes;
* attributes (:func:`attribute`): a bracket group (``{...}``, ``[...]``), a single token, and the
  two spellings of ``replica_groups`` that are not one bracket group;
* replica groups (:func:`parse_replica_groups`) in every form XLA prints: the list form
  ``{{0,1},{2,3}}``, ``{}`` (all devices), the iota form ``[G,M]<=[N]`` or ``[G,M]<=[a,b]T(1,0)``,
  and the mesh-axes form ``mesh['a'=2,'b'=4] {'b'}`` of newer XLA;
* source-target pairs of ``collective-permute`` (:func:`source_target_pairs`) and of ``send``
  (:func:`send_recv_pairs`, a frontend attribute);
* control flow: the computations an instruction calls (:func:`callees`: loop body and condition,
  branches, ``to_apply``, ``calls``) and a ``while`` loop's known trip count
  (:func:`known_trip_count`).

Nothing here knows about messages or paradigms: :mod:`accounting` says what a collective means.
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np

_ITEMSIZE = {
    "pred": 1, "s2": 1, "u2": 1, "s4": 1, "u4": 1, "s8": 1, "u8": 1,
    "s16": 2, "u16": 2, "f16": 2, "bf16": 2,
    "s32": 4, "u32": 4, "f32": 4,
    "s64": 8, "u64": 8, "f64": 8, "c64": 8,
    "c128": 16,
    "token": 0, "opaque": 0,
}  # fmt: skip

_ARRAY_SHAPE = re.compile(r"([a-z][a-z0-9]*)\[([^\]]*)\]")
_COMPUTATION = re.compile(r"^(ENTRY\s+)?%?([^\s({]+)\s*(\(.*)?\{\s*$")
_INSTRUCTION = re.compile(r"^\s+(?:ROOT\s+)?%?([^\s=]+)\s*=\s*(.*)$")
_OPCODE = re.compile(r"\s*([A-Za-z][\w\-]*)\(")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_TRIP_COUNT = re.compile(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"?(\d+)"?')
_SEND_PAIRS = re.compile(
  r'_xla_send_recv_source_target_pairs\s*=\s*"?(\{(?:\s*\{[\d\s,]*\}\s*,?)*\s*\})'
)


def itemsize(dtype: str) -> int:
  """Bytes per element of the HLO element type ``dtype`` (``f32`` -> 4; the f8/f6/f4 types -> 1)."""
  if dtype in _ITEMSIZE:
    return _ITEMSIZE[dtype]
  if dtype.startswith("f8") or dtype.startswith("f4") or dtype.startswith("f6"):
    return 1
  raise ValueError(f"unknown HLO element type {dtype!r}")


@dataclasses.dataclass(frozen=True)
class Shape:
  """An HLO shape as the arrays in it: ``((dtype, elements), ...)`` (a tuple shape has several)."""

  arrays: tuple[tuple[str, int], ...]

  @property
  def elements(self) -> int:
    return sum(e for _, e in self.arrays)

  @property
  def bytes(self) -> int:
    return sum(e * itemsize(t) for t, e in self.arrays)


def parse_shape(text: str) -> Shape:
  """The arrays in an HLO shape such as ``f32[4,2]{1,0}`` or ``(f32[4], u32[])``."""
  arrays = []
  for dtype, dims in _ARRAY_SHAPE.findall(text):
    sizes = [int(d.strip().lstrip("<=")) for d in dims.split(",") if d.strip()]
    arrays.append((dtype, math.prod(sizes)))
  return Shape(tuple(arrays))


def _balanced(text: str, start: int) -> int:
  """Index just past the bracket group that opens at ``text[start]``."""
  pairs = {"(": ")", "{": "}", "[": "]"}
  depth = []
  i = start
  while i < len(text):
    ch = text[i]
    if ch == '"':
      m = _QUOTED.match(text, i)
      i = m.end() if m else i + 1
      continue
    if ch in pairs:
      depth.append(pairs[ch])
    elif depth and ch == depth[-1]:
      depth.pop()
      if not depth:
        return i + 1
    i += 1
  raise ValueError(f"unbalanced brackets in HLO: {text[start : start + 80]!r}")


def _split_top(text: str, sep: str = ",") -> list[str]:
  """``text`` split at ``sep`` outside brackets and quotes."""
  parts, depth, current, i = [], 0, [], 0
  while i < len(text):
    ch = text[i]
    if ch == '"':
      m = _QUOTED.match(text, i)
      end = m.end() if m else i + 1
      current.append(text[i:end])
      i = end
      continue
    if ch in "({[":
      depth += 1
    elif ch in ")}]":
      depth -= 1
    if ch == sep and depth == 0:
      parts.append("".join(current))
      current = []
    else:
      current.append(ch)
    i += 1
  if "".join(current).strip():
    parts.append("".join(current))
  return [p.strip() for p in parts]


@dataclasses.dataclass(frozen=True)
class Instruction:
  """One instruction line: ``name = shape opcode(operands), attributes``."""

  name: str
  shape: Shape
  opcode: str
  operands: tuple[tuple[str, Shape | None], ...]  # (name, shape written inline or None)
  attributes: str  # the text after the operands, quoted strings blanked
  raw: str


def _parse_instruction(name: str, rest: str) -> Instruction | None:
  rest = rest.strip()
  if rest.startswith("("):
    end = _balanced(rest, 0)
  else:
    m = re.match(r"[a-z][a-z0-9]*\[[^\]]*\](\{[^}]*\})?", rest)
    if not m:
      return None
    end = m.end()
  shape = parse_shape(rest[:end])
  m = _OPCODE.match(rest, end)
  if not m:
    return None
  open_paren = m.end() - 1
  close = _balanced(rest, open_paren)
  operands = []
  for operand in _split_top(rest[open_paren + 1 : close - 1]):
    if not operand:
      continue
    tokens = operand.rsplit(None, 1)
    op_name = tokens[-1].lstrip("%")
    inline = parse_shape(tokens[0]) if len(tokens) == 2 else None
    operands.append((op_name, inline if inline and inline.arrays else None))
  attributes = _QUOTED.sub('""', rest[close:])
  return Instruction(name, shape, m.group(1), tuple(operands), attributes, rest)


@dataclasses.dataclass(frozen=True)
class Module:
  """A parsed HLO module: computations by name, the entry's name, and the device count."""

  computations: dict[str, list[Instruction]]
  entry: str
  num_devices: int
  shapes: dict[str, Shape]


def parse_module(hlo_text: str) -> Module:
  """Parse HLO text (as printed by ``compiled.as_text()``, or written by hand)."""
  computations: dict[str, list[Instruction]] = {}
  shapes: dict[str, Shape] = {}
  entry = None
  current = None
  replicas = partitions = 1
  for line in hlo_text.splitlines():
    if line.startswith("HloModule"):
      m = re.search(r"replica_count=(\d+)", line)
      replicas = int(m.group(1)) if m else 1
      m = re.search(r"num_partitions=(\d+)", line)
      partitions = int(m.group(1)) if m else 1
      continue
    m = _COMPUTATION.match(line)
    if m and not line[:1].isspace():
      current = m.group(2)
      computations[current] = []
      if m.group(1):
        entry = current
      continue
    if line.startswith("}"):
      current = None
      continue
    if current is None:
      continue
    m = _INSTRUCTION.match(line)
    if not m:
      continue
    instruction = _parse_instruction(m.group(1), m.group(2))
    if instruction is not None:
      computations[current].append(instruction)
      shapes[instruction.name] = instruction.shape
  if not computations:
    raise ValueError("no HLO computation found in the text")
  if entry is None:
    entry = list(computations)[-1]
  return Module(computations, entry, replicas * partitions, shapes)


def attribute(attributes: str, key: str) -> str | None:
  """The raw value of ``key=`` in an attribute string (a bracket group or one token)."""
  m = re.search(rf"(?:^|[\s,]){re.escape(key)}=", attributes)
  if not m:
    return None
  start = m.end()
  if attributes.startswith("mesh[", start):
    # The mesh-axes form of replica groups (newer XLA): mesh['a'=2,'b'=4] {'b'}.
    end = _balanced(attributes, start + len("mesh"))
    axes = re.match(r"\s*\{", attributes[end:])
    return attributes[start : _balanced(attributes, end + axes.end() - 1) if axes else end]
  if start < len(attributes) and attributes[start] in "{[(":
    end = _balanced(attributes, start)
    # The iota form of replica groups: [G,M]<=[dims] with an optional T(perm).
    tail = re.match(r"<=\[[^\]]*\](T\([^)]*\))?", attributes[end:])
    return attributes[start : end + (tail.end() if tail else 0)]
  m = re.match(r"[^\s,]+", attributes[start:])
  return m.group(0) if m else ""


def _int_lists(text: str) -> list[list[int]]:
  return [
    [int(x) for x in re.findall(r"-?\d+", inner)] for inner in re.findall(r"\{([^{}]*)\}", text)
  ]


def parse_replica_groups(text: str | None, num_devices: int) -> list[list[int]]:
  """Groups of device ids from ``replica_groups`` in any of its forms (``{}`` = all devices)."""
  if text is None or re.fullmatch(r"\{\s*\}", text.strip()):
    return [list(range(num_devices))]
  if text.strip().startswith("mesh["):
    return _mesh_axes_groups(text.strip())
  m = re.fullmatch(r"\[([\d,\s]+)\]<=\[([\d,\s]+)\](?:T\(([\d,\s]+)\))?", text.strip())
  if m:
    groups_shape = [int(x) for x in m.group(1).split(",")]
    dims = [int(x) for x in m.group(2).split(",")]
    ids = np.arange(math.prod(dims)).reshape(dims)
    if m.group(3):
      ids = ids.transpose([int(x) for x in m.group(3).split(",")])
    return ids.reshape(groups_shape).tolist()
  groups = _int_lists(text[1:-1] if text.startswith("{{") else text)
  return [g for g in groups if g]


def _mesh_axes_groups(text: str) -> list[list[int]]:
  """Groups of the mesh-axes form ``mesh['a'=2,'b'=4] {'b'}``.

  The devices are numbered row-major over the mesh's axes; a group holds the devices that differ
  only along the braced axes (so ``{'b'}`` above gives {0,1,2,3}, {4,5,6,7} and ``{'a'}`` gives
  {0,4}, {1,5}, {2,6}, {3,7}). Other spellings (sub-axes, explicit device lists) are refused
  rather than guessed.
  """
  m = re.fullmatch(r"mesh\[((?:\s*'[^']*'\s*=\s*\d+\s*,?)*)\]\s*\{((?:\s*'[^']*'\s*,?)*)\}", text)
  if not m:
    raise ValueError(f"replica_groups: unsupported mesh-axes form {text!r}")
  axes = [(name, int(size)) for name, size in re.findall(r"'([^']*)'\s*=\s*(\d+)", m.group(1))]
  names = [name for name, _ in axes]
  chosen = re.findall(r"'([^']*)'", m.group(2))
  unknown = [c for c in chosen if c not in names]
  if unknown:
    raise ValueError(f"replica_groups: axes {unknown} are not in the mesh {names}: {text!r}")
  ids = np.arange(math.prod(size for _, size in axes)).reshape([size for _, size in axes])
  kept = [i for i, name in enumerate(names) if name not in chosen]
  grouped = [i for i, name in enumerate(names) if name in chosen]
  group_size = math.prod(axes[i][1] for i in grouped)
  return ids.transpose(kept + grouped).reshape(-1, group_size).tolist()


def source_target_pairs(instruction: Instruction) -> list[list[int]]:
  """The ``source_target_pairs`` of a collective-permute, as ``[source, target]`` lists."""
  return _int_lists(attribute(instruction.attributes, "source_target_pairs") or "{}")


def send_recv_pairs(instruction: Instruction) -> list[list[int]] | None:
  """The pairs of a send's ``_xla_send_recv_source_target_pairs`` frontend attribute,
  or None when it has none."""
  # Read from the raw text: XLA may print the pairs quoted, and quoted strings are blanked in
  # ``attributes``.
  m = _SEND_PAIRS.search(instruction.raw)
  return _int_lists(m.group(1)) if m else None


def known_trip_count(instruction: Instruction) -> int | None:
  """K of a ``while`` whose ``backend_config`` has ``"known_trip_count":{"n":"K"}``, else None."""
  m = _TRIP_COUNT.search(instruction.raw)
  return int(m.group(1)) if m else None


def operand_shapes(instruction: Instruction, module: Module) -> list[Shape]:
  """The shape of each operand: written beside it, else that of the instruction defining it."""
  shapes = []
  for name, inline in instruction.operands:
    shape = inline if inline is not None else module.shapes.get(name)
    if shape is None:
      raise ValueError(f"operand {name!r} of {instruction.name!r} has no known shape")
    shapes.append(shape)
  return shapes


def callees(instruction: Instruction) -> list[tuple[str, str]]:
  """(role, computation) pairs this instruction calls."""
  out = []
  for key in ("body", "condition", "to_apply", "calls", "true_computation", "false_computation"):
    value = attribute(instruction.attributes, key)
    if value:
      out.extend(
        (key, name.strip().lstrip("%")) for name in value.strip("{}").split(",") if name.strip()
      )
  value = attribute(instruction.attributes, "branch_computations")
  if value:
    out.extend(
      ("branch", name.strip().lstrip("%")) for name in value.strip("{}").split(",") if name.strip()
    )
  return out
