"""Experiment configs: TOML files checked against each study's frozen dataclass.

A study declares ``Config``, a frozen dataclass whose fields are ``bool``, ``int``, ``float``,
``str``, ``tuple[T, ...]`` of those, or nested frozen dataclasses. Checks that go beyond the type
live in the field's metadata::

    @dataclass(frozen=True)
    class Config:
      learning_rate: float = field(default=0.5, metadata=positive())
      norms: tuple[str, ...] = field(default=("l2",), metadata=each_one_of("l1", "l2", "linf"))

:func:`load` turns a mapping (read from TOML, overridden from the command line) into a Config and
reports the first problem as a :class:`ConfigError` that names the field, the value and what is
allowed, suggesting the nearest key for a typo.

Checks between fields live in an optional ``validate(self)`` method of the Config, which raises
:class:`ConfigError` naming the full key; :func:`load` runs it, so every experiment of a run is
checked before the first one starts.

A config *file* is either one experiment (``experiment = "q2"`` and the Config's fields) or a
suite (``include = ["hw2_q1.toml", ...]``, paths relative to the file). Files are UTF-8 TOML of at
most :data:`MAX_CONFIG_BYTES` bytes, values nest at most :data:`MAX_DEPTH` deep, lists hold at most
:data:`MAX_LIST_ITEMS` entries and integers fit in 32 bits; anything else is refused with one line
naming the file or the field.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path

from jaxopt_hw.errors import UserInputError, did_you_mean

_CHECK = "jaxopt_hw.check"

DEFAULT_CONFIG = "hw2.toml"

#: A config file is a few settings (the shipped ones are under 2 kB); a bigger one is a mistake.
MAX_CONFIG_BYTES = 1 << 20
#: Tables and lists nested deeper than this are no config (the studies' go 3 deep).
MAX_DEPTH = 32
#: The longest list a field takes: grids, dimensions, seeds (results.json grows with them).
MAX_LIST_ITEMS = 10_000
#: Integers are 32-bit: step counts and seeds become int32 on the device (the engine's loop
#: counters, jaxopt_hw/engine.py), where a bigger one overflows after the study has started.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class ConfigError(UserInputError):
  """A config that cannot be used: unknown key, wrong type, or a value outside what is allowed."""


# ---------------------------------------------------------------------------------------------
# Field checks (used as ``field(metadata=...)``).


def check(fn: Callable[[typing.Any], bool], allowed: str) -> dict:
  """Metadata for a field whose value must satisfy ``fn``; ``allowed`` says so in words."""
  return {_CHECK: (fn, allowed)}


def positive() -> dict:
  return check(lambda v: v > 0, "must be > 0")


def at_least(lo) -> dict:
  return check(lambda v: v >= lo, f"must be >= {lo}")


def greater_than(lo) -> dict:
  return check(lambda v: v > lo, f"must be > {lo}")


def in_range(lo, hi) -> dict:
  return check(lambda v: lo <= v <= hi, f"must be between {lo} and {hi} (inclusive)")


def one_of(*choices) -> dict:
  return check(lambda v: v in choices, "allowed: " + ", ".join(map(str, choices)))


def each_one_of(*choices) -> dict:
  return check(
    lambda vs: all(v in choices for v in vs), "each must be one of: " + ", ".join(map(str, choices))
  )


def each_positive() -> dict:
  return check(lambda vs: all(v > 0 for v in vs), "every entry must be > 0")


def non_empty() -> dict:
  return check(lambda vs: len(vs) > 0, "must not be empty")


def non_empty_positive() -> dict:
  return check(lambda vs: len(vs) > 0 and all(v > 0 for v in vs), "a non-empty list of numbers > 0")


# ---------------------------------------------------------------------------------------------
# Building a Config from a mapping.


def _type_name(tp) -> str:
  origin = typing.get_origin(tp)
  if origin is tuple:
    return f"a list of {_type_name(typing.get_args(tp)[0]).split(' ', 1)[1]}s"
  if dataclasses.is_dataclass(tp):
    return "a table"
  return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _describe(value) -> str:
  """What a TOML value is, in words: "an integer", "a string", ..."""
  kinds = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "a list"}
  kinds |= {tuple: "a list", dict: "a table", datetime.datetime: "a date-time"}
  kinds |= {datetime.date: "a date", datetime.time: "a time"}
  return kinds.get(type(value), "a " + type(value).__name__)


def _shown(value, limit: int = 60) -> str:
  """``repr(value)``, cut to ``limit`` characters so that an error stays one short line."""
  text = repr(list(value) if isinstance(value, tuple) else value)
  if len(text) <= limit:
    return text
  return text[:limit] + (" ...]" if text[0] == "[" else " ...")


def _coerce(value, tp, name: str):
  """``value`` as type ``tp``, or a ConfigError naming ``name``."""
  origin = typing.get_origin(tp)
  if origin is typing.Union or origin is types.UnionType:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return _coerce(value, args[0], name)
  if dataclasses.is_dataclass(tp):
    if not isinstance(value, Mapping):
      raise ConfigError(
        f"{name}: {_shown(value)} is {_describe(value)}; expected a table with keys "
        f"{sorted(f.name for f in dataclasses.fields(tp))}"
      )
    return load(tp, value, prefix=name)
  if origin is tuple:
    if not isinstance(value, (list, tuple)):
      raise ConfigError(f"{name}: {_shown(value)} is not a list; expected {_type_name(tp)}")
    if len(value) > MAX_LIST_ITEMS:
      raise ConfigError(
        f"{name}: a list of {len(value)} entries is not allowed; at most {MAX_LIST_ITEMS}"
      )
    (elem,) = typing.get_args(tp)[:1]
    return tuple(_coerce(v, elem, f"{name}[{i}]") for i, v in enumerate(value))
  ok = {
    bool: isinstance(value, bool),
    int: isinstance(value, int) and not isinstance(value, bool),
    float: isinstance(value, (int, float)) and not isinstance(value, bool),
    str: isinstance(value, str),
  }.get(tp)
  if ok is None:
    raise TypeError(f"config field {name} has an unsupported type {tp!r}")
  if not ok:
    raise ConfigError(f"{name}: {_shown(value)} is {_describe(value)}; expected {_type_name(tp)}")
  if tp is int and not INT_MIN <= value <= INT_MAX:
    raise ConfigError(
      f"{name}: {value} is not allowed; integers must be between {INT_MIN} and {INT_MAX} (32 bits)"
    )
  if tp is float:
    value = float(value)
    if not math.isfinite(value):
      raise ConfigError(f"{name}: {value!r} is not finite; expected a finite number")
  return value


def load(cls, mapping: Mapping | None = None, prefix: str = ""):
  """Build and check an instance of the frozen dataclass ``cls`` from ``mapping``.

  Missing keys take the dataclass defaults. Raises :class:`ConfigError` on the first unknown key
  (with the nearest known key), wrong type, or value outside what the field's metadata allows.
  """
  mapping = dict(mapping or {})
  fields = {f.name: f for f in dataclasses.fields(cls)}
  hints = typing.get_type_hints(cls)
  dot = f"{prefix}." if prefix else ""
  for key in mapping:
    if key not in fields:
      hint = did_you_mean(key, fields)
      raise ConfigError(f"{dot}{key}: unknown key{hint}; allowed: {', '.join(fields)}")
  values = {}
  for name, f in fields.items():
    if name not in mapping:
      continue
    value = _coerce(mapping[name], hints[name], f"{dot}{name}")
    rule = f.metadata.get(_CHECK)
    if rule is not None:
      fn, allowed = rule
      if not fn(value):
        raise ConfigError(f"{dot}{name}: {_shown(value)} is not allowed; {allowed}")
    values[name] = value
  config = cls(**values)
  if hasattr(config, "validate"):
    config.validate()
  return config


def to_dict(config) -> dict:
  """A config as plain data (tuples become lists), for results.json."""

  def plain(v):
    if isinstance(v, (tuple, list)):
      return [plain(x) for x in v]
    if isinstance(v, dict):
      return {k: plain(x) for k, x in v.items()}
    return v

  return plain(dataclasses.asdict(config))


@dataclasses.dataclass(frozen=True)
class FieldInfo:
  """One setting of a Config, as `jaxopt-hw run --print-config` shows it (values as TOML)."""

  key: str
  type: str
  value: str
  default: str
  allowed: str


def _toml(value) -> str:
  """``value`` written as the TOML value ``--set key=VALUE`` reads back."""
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, str):
    return json.dumps(value, ensure_ascii=False)
  if isinstance(value, (tuple, list)):
    return "[" + ", ".join(_toml(v) for v in value) + "]"
  return repr(value)


_ANY = {bool: "true or false", int: "any integer", float: "any finite number", str: "any string"}


def describe(config, prefix: str = "") -> list[FieldInfo]:
  """Every setting of the Config instance ``config`` (nested tables flattened to dotted keys, as
  ``--set`` names them): its type, value, default and what is allowed (from the field's metadata,
  else what the type allows)."""
  return _describe_fields(config, type(config)(), prefix)


def _describe_fields(config, default, prefix: str) -> list[FieldInfo]:
  hints = typing.get_type_hints(type(config))
  dot = f"{prefix}." if prefix else ""
  out = []
  for f in dataclasses.fields(config):
    tp, value, dflt = hints[f.name], getattr(config, f.name), getattr(default, f.name)
    if dataclasses.is_dataclass(tp):
      out += _describe_fields(value, dflt, f"{dot}{f.name}")
      continue
    rule = f.metadata.get(_CHECK)
    kind = _type_name(tp).split(" ", 1)[1]
    allowed = rule[1] if rule else _ANY.get(tp, f"any {kind}")
    out.append(FieldInfo(f"{dot}{f.name}", kind, _toml(value), _toml(dflt), allowed))
  return out


# ---------------------------------------------------------------------------------------------
# Files, suites and command-line overrides.


@dataclasses.dataclass(frozen=True)
class ExperimentSpec:
  """One experiment to run: its registered name, its raw settings and where they came from."""

  experiment: str
  settings: dict
  source: str


def _read_toml(text: str, source: str) -> dict:
  try:
    data = tomllib.loads(text)
  except tomllib.TOMLDecodeError as e:
    raise ConfigError(f"{source}: not valid TOML ({e})") from None
  except RecursionError:  # tomllib reads nested arrays and inline tables recursively
    data = None
  if data is None or _nesting(data) > MAX_DEPTH:
    raise ConfigError(f"{source}: values nested more than {MAX_DEPTH} deep; no config needs that")
  return data


def _nesting(value) -> int:
  """How deep lists and tables nest in ``value`` (a scalar: 0), without recursion."""
  deepest, stack = 0, [(value, 0)]
  while stack:
    v, d = stack.pop()
    if isinstance(v, dict):
      v = list(v.values())
    if isinstance(v, list):
      deepest = max(deepest, d + 1)
      if d + 1 <= MAX_DEPTH:
        stack.extend((x, d + 1) for x in v)
  return deepest


def _decode(data: bytes, shown: str) -> str:
  if len(data) > MAX_CONFIG_BYTES:
    raise ConfigError(f"{shown}: over {MAX_CONFIG_BYTES} bytes, too big for a config")
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError as e:
    raise ConfigError(
      f"{shown}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); TOML files are "
      "UTF-8"
    ) from None


_PACKAGED = "<packaged>"


def _read_source(ref: str, base) -> tuple[str, str, object]:
  """(text, shown name, where its includes are looked up) of a config reference.

  A reference is a path, or the name of a config shipped inside the package (the embedded
  default works without the repository at hand). Includes of a packaged suite are packaged too.
  """
  name = ref if ref.endswith(".toml") else ref + ".toml"
  if base != _PACKAGED:
    path = Path(ref) if base is None else Path(base) / ref
    if path.is_file():
      try:
        with open(path, "rb") as f:
          data = f.read(MAX_CONFIG_BYTES + 1)
      except OSError as e:
        raise ConfigError(f"config: cannot read {str(path)!r}: {e.strerror or e}") from None
      return _decode(data, str(path)), str(path), path.parent
    if base is not None or Path(ref).name != ref:
      raise ConfigError(f"config: {str(path)!r} is not a file")
  packaged = packaged_dir().joinpath(name)
  if packaged.is_file():
    shown = f"{_PACKAGED}/{name}"
    return _decode(packaged.read_bytes(), shown), shown, _PACKAGED
  raise ConfigError(
    f"config: {ref!r} is neither a file nor a packaged config; "
    f"packaged: {', '.join(packaged_configs())}"
  )


def packaged_dir():
  """The shipped configs: the package ``jaxopt_hw.configs`` once installed, else the checkout's
  ``configs/`` (when the source tree shadows an installed copy, e.g. ``python -m pytest``)."""
  try:
    return resources.files("jaxopt_hw.configs")
  except ModuleNotFoundError:
    return Path(__file__).resolve().parent.parent / "configs"


def packaged_configs() -> list[str]:
  """Names of the configs shipped inside the package."""
  return sorted(p.name for p in packaged_dir().iterdir() if p.name.endswith(".toml"))


def is_runnable(ref: str) -> bool:
  """Whether a config names an experiment or a suite (answer sheets for `check` do neither)."""
  text, shown, _ = _read_source(ref, None)
  data = _read_toml(text, shown)
  return "experiment" in data or "include" in data


def read_specs(
  refs: Sequence[str], known: Sequence[str], _base=None, _depth: int = 0
) -> list[ExperimentSpec]:
  """Expand config files (and suites) into the experiments they name, in order."""
  if _depth > 8:
    raise ConfigError(f"include: nested more than 8 deep at {refs!r}; is a suite including itself?")
  specs = []
  for ref in refs:
    text, shown, folder = _read_source(ref, _base)
    data = _read_toml(text, shown)
    if "include" in data:
      rest = sorted(set(data) - {"include", "title"})
      if rest:
        raise ConfigError(
          f"{shown}: a suite holds only 'include' (and 'title'); found {', '.join(rest)}"
        )
      includes = data["include"]
      if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError(
          f"{shown}: include = {_shown(includes)}; expected a list of config file names"
        )
      if not includes:
        raise ConfigError(f"{shown}: include = []; a suite must include at least one config")
      specs += read_specs(includes, known, folder, _depth + 1)
      continue
    name = data.pop("experiment", None)
    if name is None:
      raise ConfigError(
        f"{shown}: no 'experiment' key; set experiment to one of: {', '.join(known)}"
      )
    if name not in known:
      hint = did_you_mean(name, known)
      raise ConfigError(
        f"{shown}: experiment = {name!r} is not known{hint}; allowed: {', '.join(known)}"
      )
    specs.append(ExperimentSpec(name, data, shown))
  return specs


def parse_override(text: str) -> tuple[list[str], typing.Any]:
  """``"q2.sgd.learning_rate=0.1"`` -> (["q2", "sgd", "learning_rate"], 0.1).

  The value is read as a TOML value (numbers, booleans, lists, quoted strings); anything that is not
  valid TOML is taken as a bare string, so ``--set q1.norm=linf`` works without quotes.
  """
  key, sep, raw = text.partition("=")
  key = key.strip()
  if not sep or not key or any(not part for part in key.split(".")):
    raise ConfigError(
      f"--set: {text!r} is not of the form experiment.key=value (e.g. q2.sgd.learning_rate=0.1)"
    )
  try:
    value = tomllib.loads(f"v = {raw.strip()}")["v"]
  except tomllib.TOMLDecodeError:
    value = raw.strip()
  except RecursionError:
    value = None
  if value is None or _nesting(value) > MAX_DEPTH:
    raise ConfigError(f"--set {key}: the value nests more than {MAX_DEPTH} deep")
  return key.split("."), value


def apply_overrides(specs: list[ExperimentSpec], overrides: Sequence[str]) -> list[ExperimentSpec]:
  """Apply ``--set experiment.key=value`` overrides to the experiments they name."""
  specs = [ExperimentSpec(s.experiment, _deep_copy(s.settings), s.source) for s in specs]
  names = [s.experiment for s in specs]
  for text in overrides:
    path, value = parse_override(text)
    target, keys = path[0], path[1:]
    if target not in names:
      hint = did_you_mean(target, names)
      raise ConfigError(
        f"--set {text}: no experiment {target!r} in this run{hint}; experiments: {', '.join(names)}"
      )
    if not keys:
      raise ConfigError(f"--set {text}: name a key inside {target!r}, e.g. {target}.seed=1")
    for spec in specs:
      if spec.experiment == target:
        node = spec.settings
        for k in keys[:-1]:
          node = node.setdefault(k, {})
          if not isinstance(node, dict):
            raise ConfigError(f"--set {text}: {k!r} is not a table")
        node[keys[-1]] = value
  return specs


def _deep_copy(d):
  return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in d.items()}
